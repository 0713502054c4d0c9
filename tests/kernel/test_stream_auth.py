"""An open event stream (SSE) ends soon after the credential that opened it stops working:
the install token rotated, the session signed out or idle past its time, the scoped token
revoked.  A stream whose credential still holds keeps delivering."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import timedelta

import eventful
import httpx
import pytest
from starlette.applications import Starlette

from kernel.config import rotate_token
from kernel.system_api import RECHECK_SECONDS
from tests.ui.browsing import SignedIn, sign_in

from .conftest import StreamingASGITransport, kernel_of
from .test_events import read_sse, record
from .test_sessions import FakeClock

#: the bound on a stream ending: it re-checks its credential every RECHECK_SECONDS
ENDS_WITHIN = RECHECK_SECONDS + 3
#: the bound on anything else a test waits for
WAIT = 5


@pytest.fixture
async def app(make_app):
    return make_app(extra_plugins=[("eventful", eventful)])


@asynccontextmanager
async def browser_on(app: Starlette, **headers: str) -> AsyncIterator[httpx.AsyncClient]:
    """Another client on the running ``app`` that can read endless responses."""
    async with httpx.AsyncClient(transport=StreamingASGITransport(app),
                                 base_url="http://testserver", headers=headers) as c:
        yield c


class Stream:
    """An open SSE response, read in several goes: ``read_sse`` reads ``aiter_lines()``,
    which here continues where the last read stopped."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.lines = response.aiter_lines()

    def aiter_lines(self) -> AsyncIterator[str]:
        return self.lines


@asynccontextmanager
async def open_stream(client: httpx.AsyncClient) -> AsyncIterator[Stream]:
    async with AsyncExitStack() as stack:
        async with asyncio.timeout(WAIT):
            response = await stack.enter_async_context(
                client.stream("GET", "/v1/events/stream"))
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        yield Stream(response)


async def delivers(stream: Stream, writer: httpx.AsyncClient, type: str) -> None:
    """Commit an event and see it arrive on the open stream."""
    event_id = await record(writer, type)
    async with asyncio.timeout(WAIT):
        events = await read_sse(stream, 1)  # type: ignore[arg-type]
    assert [(int(e["id"]), e["event"]) for e in events] == [(event_id, type)]


async def ends(stream: Stream, app: Starlette) -> list[str]:
    """An event committed now is not delivered, and the stream ends within ENDS_WITHIN;
    returns what it sent after the last event."""
    await kernel_of(app).db.write(lambda tx: tx.event("after.end", {}))
    rest = []
    try:
        async with asyncio.timeout(ENDS_WITHIN):
            async for line in stream.lines:
                rest.append(line)
    except TimeoutError:
        pytest.fail(f"the stream was still open {ENDS_WITHIN}s after its credential ended")
    assert not [line for line in rest if line.startswith("data:")], rest
    return rest


async def signed_in_browser(browser: httpx.AsyncClient, token: str) -> SignedIn:
    signed = await sign_in(browser, token)
    assert (await browser.get("/v1/ping")).status_code == 200
    return signed


# --- the stream ends with its credential ------------------------------------------------


async def test_rotating_the_install_token_ends_its_stream(app, client, streaming,
                                                          settings) -> None:
    async with open_stream(streaming) as response:
        await delivers(response, client, "before.rotation")
        rotate_token(settings.paths.config_file)
        kernel_of(app).tokens._checked = float("-inf")  # skip the once-a-second re-read
        await ends(response, app)
    # and a new stream with the old token is refused
    refused = await streaming.get("/v1/events/stream")
    assert refused.status_code == 401


async def test_rotating_the_install_token_ends_a_sessions_stream(app, client, streaming,
                                                                settings) -> None:
    async with browser_on(app) as browser:
        await signed_in_browser(browser, settings.install_token)
        async with open_stream(browser) as response:
            await delivers(response, client, "before.rotation")
            rotate_token(settings.paths.config_file)
            kernel_of(app).tokens._checked = float("-inf")
            await ends(response, app)


async def test_signing_out_ends_the_stream_that_session_opened(app, client,
                                                               settings) -> None:
    async with browser_on(app) as browser:
        signed = await signed_in_browser(browser, settings.install_token)
        async with open_stream(browser) as response:
            await delivers(response, client, "before.logout")
            # sign out in another tab of the same browser
            out = await browser.post("/ui/logout", data={"csrf_token": signed.csrf})
            assert (out.status_code, out.headers["location"]) == (303, "/ui/login")
            await ends(response, app)


async def test_a_session_idle_past_its_time_ends_its_stream(app, client, settings) -> None:
    clock = FakeClock.on(app)
    idle = kernel_of(app).sessions.idle
    async with browser_on(app) as browser:
        await signed_in_browser(browser, settings.install_token)
        async with open_stream(browser) as response:
            clock.now += idle / 2
            # a stream delivering events is not activity: only requests are
            await delivers(response, client, "while.watching")
            clock.now += idle / 2
            await ends(response, app)
        assert (await browser.get("/v1/ping")).status_code == 401


async def test_revoking_a_scoped_token_ends_its_stream(app, client) -> None:
    scoped = kernel_of(app).scoped_tokens
    token = await scoped.issue("dashboard", ["events:read"])
    async with browser_on(app, Authorization=f"Bearer {token}") as dashboard:
        async with open_stream(dashboard) as response:
            await delivers(response, client, "before.revoke")
            assert await scoped.revoke("dashboard") is True
            await ends(response, app)
        assert (await dashboard.get("/v1/events/stream")).status_code == 401


# --- a stream whose credential still holds keeps going ----------------------------------


async def test_other_streams_keep_delivering_when_one_session_signs_out(
    app, client, streaming, settings
) -> None:
    async with (browser_on(app) as leaving, browser_on(app) as staying):
        signed = await signed_in_browser(leaving, settings.install_token)
        await signed_in_browser(staying, settings.install_token)
        async with (open_stream(leaving) as ended, open_stream(staying) as by_session,
                    open_stream(streaming) as by_token):
            out = await leaving.post("/ui/logout", data={"csrf_token": signed.csrf})
            assert out.status_code == 303
            await ends(ended, app)
            # committed after the other stream saw its credential end: these re-checked too
            await record(client, "after.logout")
            async with asyncio.timeout(WAIT):
                for response in (by_session, by_token):
                    events = await read_sse(response, 2)  # type: ignore[arg-type]
                    assert [e["event"] for e in events] == ["after.end", "after.logout"]


async def test_revoking_one_scoped_token_leaves_anothers_stream_open(app, client) -> None:
    scoped = kernel_of(app).scoped_tokens
    revoked = await scoped.issue("old-dashboard", ["events:read"])
    kept = await scoped.issue("new-dashboard", ["events:read"])
    async with (browser_on(app, Authorization=f"Bearer {revoked}") as old,
                browser_on(app, Authorization=f"Bearer {kept}") as new,
                open_stream(old) as ending, open_stream(new) as going):
        await scoped.revoke("old-dashboard")
        await ends(ending, app)
        async with asyncio.timeout(WAIT):
            (event,) = await read_sse(going, 1)  # type: ignore[arg-type]
        assert event["event"] == "after.end"  # what the revoked one did not get
        await delivers(going, client, "after.revoke")


async def test_an_active_session_keeps_its_stream_open_past_the_idle_time(
    app, client, settings
) -> None:
    clock = FakeClock.on(app)
    idle: timedelta = kernel_of(app).sessions.idle
    async with browser_on(app) as browser:
        await signed_in_browser(browser, settings.install_token)
        async with open_stream(browser) as response:
            for n in range(3):  # one and a half idle times in all, with requests in between
                clock.now += idle / 2
                assert (await browser.get("/v1/ping")).status_code == 200
                await delivers(response, client, f"active.{n}")

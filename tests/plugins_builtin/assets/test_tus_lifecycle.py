"""A tus upload over time, in-process: it survives a restart of Core, a PATCH whose client
went silent does not block the upload forever, and an idle upload expires and is swept."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from tests.plugins_builtin.assets.tus import (
    OCTETS,
    VERSION,
    Tus,
    asset_id_of,
    core,
    metadata,
    offset_of,
)

DATA = os.urandom(256 * 1024)
HALF = 100_000
DEADLINE = 10.0  # seconds: far beyond what any step here takes when it works


@pytest.fixture
def tus(client: httpx.AsyncClient) -> Tus:
    return Tus(client)


# -- restart -----------------------------------------------------------------------------

async def test_an_upload_survives_a_restart(make_app, settings):
    meta = metadata(filename="big.bin", kind="model.lora")
    async with core(make_app, settings) as (_, http):
        tus = Tus(http)
        path = await tus.created(len(DATA), meta)
        await tus.patched(path, DATA[:HALF], 0)
    async with core(make_app, settings) as (_, http):
        tus = Tus(http)
        r = await tus.head(path)
        assert r.status_code == 200
        assert offset_of(r) == HALF
        assert r.headers["upload-length"] == str(len(DATA))
        assert r.headers["upload-metadata"] == meta
        asset_id = asset_id_of(await tus.patched(path, DATA[HALF:], HALF), DATA)
        asset = (await http.get(f"/v1/assets/{asset_id}")).json()
        assert asset["kind"] == "model.lora" and asset["filename"] == "big.bin"
        assert (await http.get(f"/v1/assets/{asset_id}/download")).content == DATA


async def test_a_terminated_upload_stays_gone_after_a_restart(make_app, settings):
    async with core(make_app, settings) as (_, http):
        tus = Tus(http)
        path = await tus.created(len(DATA))
        await tus.patched(path, DATA[:HALF], 0)
        assert (await tus.delete(path)).status_code == 204
    async with core(make_app, settings) as (_, http):
        assert (await Tus(http).head(path)).status_code == 404


# -- a PATCH whose client went silent ------------------------------------------------------

class SilentPatch:
    """A PATCH sent straight to the ASGI app whose client sent its headers and ``first``
    bytes of a longer body, then went silent: neither more bytes nor a disconnect — until
    :meth:`wake` delivers ``late`` bytes, as a client that comes back would."""

    def __init__(self, app: Starlette, token: str, path: str, offset: int, first: bytes,
                 late: bytes) -> None:
        self.app = app
        self.first, self.late = first, late
        self.silent = asyncio.Event()  # the server has taken ``first`` and waits for more
        self.woken = asyncio.Event()
        self.sent: list[dict[str, Any]] = []
        self.calls = 0
        headers = {"host": "testserver", "authorization": f"Bearer {token}",
                   "tus-resumable": VERSION, "upload-offset": str(offset),
                   "content-type": OCTETS, "content-length": str(len(first) + len(late))}
        self.scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": "PATCH", "scheme": "http", "path": path, "raw_path": path.encode(),
            "query_string": b"", "root_path": "", "server": ("testserver", 80),
            "client": ("127.0.0.1", 50123),
            "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
        }
        self.task: asyncio.Task[None] | None = None

    async def receive(self) -> dict[str, Any]:
        self.calls += 1
        if self.calls == 1:
            return {"type": "http.request", "body": self.first, "more_body": True}
        if self.calls == 2:
            self.silent.set()
            await self.woken.wait()
            return {"type": "http.request", "body": self.late, "more_body": False}
        await asyncio.Future()  # nothing more will come; the app must not wait for it
        raise AssertionError("unreachable")

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)

    async def start(self) -> None:
        self.task = asyncio.create_task(self.app(self.scope, self.receive, self.send))
        async with asyncio.timeout(DEADLINE):
            await self.silent.wait()

    async def wake_and_end(self) -> None:
        """Deliver the late bytes; the request must then end (however it was stopped)."""
        assert self.task is not None
        self.woken.set()
        done, _ = await asyncio.wait([self.task], timeout=DEADLINE)
        assert done, "the silenced PATCH never ended"
        if not self.task.cancelled() and self.task.exception() is not None:
            raise self.task.exception()  # type: ignore[misc]


@pytest.fixture
async def silent(tus, app, settings):
    """An upload with HALF bytes sent, then a PATCH that went silent after 1000 more."""
    path = await tus.created(len(DATA))
    await tus.patched(path, DATA[:HALF], 0)
    stalled = SilentPatch(app, settings.install_token, path, HALF,
                          DATA[HALF:HALF + 1000], DATA[HALF + 1000:])
    await stalled.start()
    yield path, stalled
    stalled.woken.set()
    if stalled.task is not None and not stalled.task.done():
        stalled.task.cancel()
        await asyncio.wait([stalled.task])


async def test_a_head_stops_a_silent_patch_and_reports_its_bytes(tus, client, silent):
    path, stalled = silent
    async with asyncio.timeout(DEADLINE):
        r = await tus.head(path)
    assert r.status_code == 200
    assert offset_of(r) == HALF + 1000, "the bytes the silent PATCH received are kept"
    await stalled.wake_and_end()
    # the PATCH was stopped: what it receives afterwards is not written
    assert await tus.offset(path) == HALF + 1000
    rest = await tus.patched(path, DATA[HALF + 1000:], HALF + 1000)
    asset_id = asset_id_of(rest, DATA)
    assert (await client.get(f"/v1/assets/{asset_id}/download")).content == DATA


async def test_a_new_patch_stops_a_silent_patch_and_proceeds(tus, client, silent):
    path, stalled = silent
    async with asyncio.timeout(DEADLINE):
        r = await tus.patched(path, DATA[HALF + 1000:], HALF + 1000)
    asset_id = asset_id_of(r, DATA)
    await stalled.wake_and_end()
    assert await tus.offset(path) == len(DATA)
    assert (await client.get(f"/v1/assets/{asset_id}/download")).content == DATA


async def test_a_new_patch_at_the_old_offset_is_409_not_a_wait(tus, client, silent):
    path, stalled = silent
    async with asyncio.timeout(DEADLINE):
        r = await tus.patch(path, DATA[HALF:], HALF)
    assert r.status_code == 409, r.text
    await stalled.wake_and_end()
    assert await tus.offset(path) == HALF + 1000


async def test_a_delete_of_an_upload_with_a_silent_patch_is_not_a_wait(tus, client, silent):
    path, stalled = silent
    async with asyncio.timeout(DEADLINE):
        r = await tus.delete(path)
    assert r.status_code == 204
    await stalled.wake_and_end()
    assert (await tus.head(path)).status_code == 404
    assert (await client.get("/v1/assets")).json()["items"] == []

"""A tus upload over time, in-process: it survives a restart of Core, a PATCH whose client
went silent does not block the upload forever, and an idle upload expires and is swept."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from tests.kernel.conftest import eventually
from tests.plugins_builtin.assets.conftest import error_of
from tests.plugins_builtin.assets.tus import (
    OCTETS,
    VERSION,
    Tus,
    asset_id_of,
    configured,
    core,
    expires,
    metadata,
    offset_of,
    tmp_files,
    upload_path,
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


# -- expiration --------------------------------------------------------------------------

class Clock:
    """A clock the test moves (seconds since the epoch), for ``Uploads.clock``."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def expiring(make_app, settings):
    """A Core whose idle uploads expire after 60 s of its test-driven clock."""
    clock = Clock()
    async with core(make_app, configured(settings, upload_expiry_seconds=60)) as (app, http):
        uploads = app.state.kernel.services["assets.uploads"]
        uploads.clock = clock
        yield Tus(http), uploads, clock


async def test_upload_expires_tells_when_an_idle_upload_goes(expiring):
    tus, _, clock = expiring
    r = await tus.create(len(DATA))
    assert expires(r).timestamp() == pytest.approx(clock.now + 60, abs=1)
    path = upload_path(r.headers["location"])
    clock.now += 50
    r = await tus.patched(path, DATA[:HALF], 0)
    # activity pushes the expiry back
    assert expires(r).timestamp() == pytest.approx(clock.now + 60, abs=1)
    clock.now += 50  # 100 s after creation, 50 s after the last bytes: still there
    r = await tus.head(path)
    assert r.status_code == 200 and offset_of(r) == HALF
    assert expires(r).timestamp() == pytest.approx(clock.now + 10, abs=1)


async def test_an_expired_upload_is_410_then_swept_with_its_bytes(expiring, settings):
    tus, uploads, clock = expiring
    before = tmp_files(settings)
    path = await tus.created(len(DATA))
    await tus.patched(path, DATA[:HALF], 0)
    clock.now += 61
    r = await tus.head(path)
    assert r.status_code == 410 and "upload-offset" not in r.headers
    error_of(await tus.patch(path, DATA[HALF:], HALF), 410, "upload_expired")
    error_of(await tus.http.get(path), 410, "upload_expired")
    assert tmp_files(settings) > before  # expired, not yet swept
    assert await uploads.sweep() == 1
    assert tmp_files(settings) == before
    r = await tus.head(path)
    assert r.status_code in (404, 410) and "upload-offset" not in r.headers
    assert (await tus.http.get("/v1/assets")).json()["items"] == []


async def test_the_sweep_takes_only_expired_uploads(expiring, settings):
    tus, uploads, clock = expiring
    idle = await tus.created(len(DATA))
    await tus.patched(idle, DATA[:HALF], 0)
    clock.now += 40
    busy = await tus.created(len(DATA))
    await tus.patched(busy, DATA[:HALF], 0)
    clock.now += 30  # idle: 70 s without bytes; busy: 30 s
    assert await uploads.sweep() == 1
    assert (await tus.head(idle)).status_code in (404, 410)
    assert await tus.offset(busy) == HALF
    asset_id = asset_id_of(await tus.patched(busy, DATA[HALF:], HALF), DATA)
    assert (await tus.http.get(f"/v1/assets/{asset_id}/download")).content == DATA


async def test_sweeping_a_finished_upload_keeps_its_asset(expiring):
    tus, uploads, clock = expiring
    r = await tus.upload(DATA, chunk=HALF)
    asset_id = asset_id_of(r, DATA)
    clock.now += 3600
    await uploads.sweep()
    got = await tus.http.get(f"/v1/assets/{asset_id}")
    assert got.status_code == 200 and got.json()["deleted_at"] is None
    assert (await tus.http.get(f"/v1/assets/{asset_id}/download")).content == DATA


async def test_the_periodic_sweep_removes_expired_uploads(make_app, settings):
    """Nobody calls ``sweep()`` here: Core's own sweeper does (expiry 1 s, so it runs about
    every second)."""
    clock = Clock()
    async with core(make_app, configured(settings, upload_expiry_seconds=1)) as (app, http):
        app.state.kernel.services["assets.uploads"].clock = clock
        tus = Tus(http)
        before = tmp_files(settings)
        path = await tus.created(len(DATA))
        await tus.patched(path, DATA[:HALF], 0)
        clock.now += 5
        await eventually(lambda: tmp_files(settings) == before, timeout=DEADLINE,
                         what="the sweeper to remove the expired upload's bytes")
        assert (await tus.head(path)).status_code in (404, 410)


async def test_a_sweep_never_takes_an_upload_being_created(tus, kernel):
    """The sweep also removes upload files without a row (strays); one created while it
    runs is not a stray."""
    uploads = kernel.services["assets.uploads"]
    for _ in range(200):  # the two interleave differently each time
        _, path = await asyncio.gather(uploads.sweep(), tus.created(10))
        r = await tus.patch(path, b"0123456789", 0)
        assert r.status_code == 204, r.text

"""Start and stop: images stored while the plugin was off (or whose work was dropped at
shutdown) get thumbnails at the next start; a start with nothing to do changes nothing; bad
settings stop the start with a message naming the setting."""

from __future__ import annotations

import asyncio
import re
import threading

import anyio
import anyio.to_thread
import pytest

from kernel.config import load_settings
from kernel.errors import PluginError
from plugins_builtin.thumbnails import derive
from plugins_builtin.thumbnails.render import Thumbnail, render
from tests.plugins_builtin.thumbnails.conftest import (
    asset,
    configured,
    core,
    derived,
    jpeg,
    settle,
    upload,
)


async def test_images_stored_while_off_get_thumbnails_at_the_next_start(
        make_app, home, monkeypatch) -> None:
    monkeypatch.setattr(derive, "CATCH_UP_PAGE", 2)  # several pages of the catch-up query
    off = load_settings(home, env={"FACEFORGE_DISABLE_PLUGINS": "thumbnails"})
    async with core(make_app, off) as (client, kernel):
        assert "thumbnails.worker" not in kernel.services
        r = await client.post("/v1/entities", json={"display_name": "Ada"})
        ada = r.json()["entity_id"]
        images = [(await upload(client, jpeg(300 + i, 200), f"p{i}.jpg"))["asset_id"]
                  for i in range(7)]
        linked = (await upload(client, jpeg(200, 300), "ada.jpg", entity_id=ada))["asset_id"]
        broken = (await upload(client, b"\x89PNG\r\n\x1a\n" + bytes(99), "x.png"))["asset_id"]
        text = (await upload(client, b"notes\n", "notes.txt"))["asset_id"]
        own = (await upload(client, jpeg(64, 64), "own.jpg", kind="image.thumbnail"))
        deleted = (await upload(client, jpeg(90, 90), "gone.jpg"))["asset_id"]
        assert (await client.delete(f"/v1/assets/{deleted}")).status_code == 204

    on = load_settings(home, env={})
    async with core(make_app, on) as (client, kernel):
        await settle(kernel)
        for image in (*images, linked):
            thumbs = (await asset(client, image))["plugin_data"]["thumbnails"]
            assert set(thumbs) == {"256", "1024"}
        assert "error" in (await asset(client, broken))["plugin_data"]["thumbnails"]
        for untouched in (text, own["asset_id"]):
            assert "thumbnails" not in (await asset(client, untouched))["plugin_data"]
        r = await client.get(f"/v1/assets/{deleted}", params={"include_deleted": "true"})
        assert "thumbnails" not in r.json()["plugin_data"]
        r = await client.get(f"/v1/entities/{ada}")
        assert r.json()["primary_thumbnail_asset_id"] == (
            await asset(client, linked))["plugin_data"]["thumbnails"]["256"]
        before = {a: (await asset(client, a))["version"] for a in (*images, broken)}

    async with core(make_app, on) as (client, kernel):  # nothing left to do
        await settle(kernel)
        assert {a: (await asset(client, a))["version"] for a in before} == before
        for image in images:
            assert len(await derived(client, image)) == 2


async def test_work_dropped_at_shutdown_is_done_after_the_next_start(
        make_app, home, monkeypatch) -> None:
    # the first image's decode waits at a gate, so the others are still queued at shutdown
    entered, gate = threading.Event(), threading.Event()

    def gated(data: bytes, max_pixels: int) -> list[Thumbnail]:
        entered.set()
        gate.wait(30)
        return render(data, max_pixels)

    monkeypatch.setattr(derive, "render", gated)
    settings = configured(home, concurrency=1)
    async with core(make_app, settings) as (client, kernel):
        worker = kernel.services["thumbnails.worker"]
        assert worker.concurrency == 1
        images = [(await upload(client, jpeg(400 + i, 300), f"p{i}.jpg"))["asset_id"]
                  for i in range(4)]
        assert await anyio.to_thread.run_sync(entered.wait, 30)
        asyncio.get_running_loop().call_soon(gate.set)  # once stop() has dropped the queue
        await worker.stop(30)
        done = [i for i in images if "thumbnails" in (await asset(client, i))["plugin_data"]]
        assert len(done) == 1  # the one being made was finished, the others dropped
    async with core(make_app, settings) as (client, kernel):
        await settle(kernel)
        for image in images:
            thumbs = (await asset(client, image))["plugin_data"]["thumbnails"]
            assert set(thumbs) == {"256", "1024"}
            assert {a["asset_id"] for a in await derived(client, image)} == set(
                thumbs.values())


@pytest.mark.parametrize(("setting", "value"), [
    ("concurrency", 0), ("concurrency", "2"), ("max_pixels", -1), ("max_source_bytes", 1.5),
    ("max_source_bytes", True)])
def test_a_bad_setting_is_named(make_app, home, setting: str, value: object) -> None:
    with pytest.raises(PluginError, match=re.escape(
            f"plugins.thumbnails.{setting} must be a whole number of at least 1, got "
            f"{value!r}")):
        make_app(settings=configured(home, **{setting: value}))


def test_an_unknown_setting_is_named(make_app, home) -> None:
    with pytest.raises(PluginError, match=re.escape(
            "unknown setting plugins.thumbnails.concurency; expected one of: concurrency, "
            "max_source_bytes, max_pixels")):
        make_app(settings=configured(home, concurency=4))

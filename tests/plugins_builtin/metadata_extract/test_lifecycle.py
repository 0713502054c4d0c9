"""The worker over Core's life: the catch-up at start (batched through one ExifTool), a queue
that overflows into the catch-up, ExifTool killed between batches, shutdown."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from tests.plugins_builtin.metadata_extract import files
from tests.plugins_builtin.metadata_extract.conftest import alive, configure, poll


async def upload_without_extraction(start_core, home: Path, count: int) -> list[dict]:
    """Assets stored while the plugin was not loaded: they were never extracted."""
    settings = configure(home, disabled="thumbnails,metadata_extract")
    async with start_core(settings) as core:
        assets = [await core.upload(files.jpeg(20 + i, 10) if i % 2 else files.png(20 + i, 10),
                                     f"old-{i}.img") for i in range(count)]
        assert "metadata_extract.worker" not in core.kernel.services
    return assets


async def test_catch_up_at_start_batches_through_one_process(start_core, home: Path) -> None:
    assets = await upload_without_extraction(start_core, home, 40)
    settings = configure(home, plugin={"batch_size": 16})
    async with start_core(settings) as core:
        await core.settled()
        done = [await core.asset(a["asset_id"]) for a in assets]
        status = await core.status()
        runner = core.worker.runner
        assert runner is not None and runner.round_trips == 3  # 16 + 16 + 8
    assert [(a["width"], a["height"]) for a in done] == [(20 + i, 10) for i in range(40)]
    assert status["exiftool"]["processes_started"] == 1
    assert status["done"] == 40 and status["queued"] == 0


async def test_a_full_queue_leaves_the_rest_to_the_catch_up(start_core, home: Path) -> None:
    assets = await upload_without_extraction(start_core, home, 13)
    settings = configure(home, plugin={"batch_size": 2, "queue_limit": 5})
    async with start_core(settings) as core:
        await core.settled()
        done = [await core.asset(a["asset_id"]) for a in assets]
        # the hook's way in, past the limit: these are already done and stay as they are
        for asset in assets:
            core.worker.enqueue(asset["asset_id"])
        assert (await core.status())["queued"] == 5
        await core.settled()
        again = [await core.asset(a["asset_id"]) for a in assets]
        status = await core.status()
    assert all(a["extracted_metadata"]["exiftool"] for a in done)
    assert [a["version"] for a in again] == [a["version"] for a in done]
    assert status["done"] == 13


async def test_exiftool_killed_between_batches_is_started_again(start_core, home: Path) -> None:
    async with start_core(configure(home)) as core:
        await core.extracted(files.jpeg(10, 10), "a.jpg")
        first = core.worker.runner.pid
        os.kill(first, signal.SIGKILL)
        asset = await core.extracted(files.jpeg(11, 12), "b.jpg")
        status = await core.status()
    assert (asset["width"], asset["height"]) == (11, 12)
    assert status["exiftool"]["processes_started"] == 2
    assert status["done"] == 2 and status["failed"] == 0


async def test_shutdown_stops_exiftool_and_start_sweeps_old_copies(
        start_core, home: Path) -> None:
    settings = configure(home)
    leftover = settings.paths.tmp_dir / "metadata-extract-0123abcd"
    leftover.write_bytes(b"a copy a crash left behind")
    async with start_core(settings) as core:
        assert not leftover.exists()
        await core.extracted(files.png(5, 5), "p.png")
        pid = core.worker.runner.pid
        assert pid and alive(pid)
    assert not alive(pid)


async def test_deleted_assets_are_not_caught_up(start_core, home: Path) -> None:
    assets = await upload_without_extraction(start_core, home, 2)
    async with start_core(configure(home, disabled="thumbnails,metadata_extract")) as core:
        r = await core.client.delete(f"/v1/assets/{assets[0]['asset_id']}")
        assert r.status_code == 204, r.text
    async with start_core(configure(home)) as core:
        await core.settled()
        kept = await core.asset(assets[1]["asset_id"])
        r = await core.client.get(f"/v1/assets/{assets[0]['asset_id']}",
                                  params={"include_deleted": "true"})
        status = await core.status()
    assert kept["extracted_metadata"]["exiftool"]
    assert r.json()["extracted_metadata"] == {}
    assert status["done"] == 1


async def test_without_the_assets_plugin_it_stays_out_of_the_way(start_core, home: Path) -> None:
    async with start_core(configure(home, disabled="thumbnails,assets")) as core:
        await core.settled()
        status = await core.status()
        lines = [line["message"] for line in core.log_lines()]
    assert status["queued"] == 0 and status["done"] == 0
    assert "metadata extraction off: the assets plugin is not loaded" in lines


async def test_an_idle_exiftool_exits_and_comes_back_for_new_work(
        start_core, home: Path) -> None:
    settings = configure(home, plugin={"exiftool_idle_seconds": 0.2})
    async with start_core(settings) as core:
        await core.extracted(files.jpeg(10, 10), "a.jpg")
        pid = core.worker.runner.pid

        async def stopped():
            status = await core.status()
            return status if not status["exiftool"]["running"] else None

        status = await poll(stopped)
        assert status["exiftool"]["processes_started"] == 1 and not alive(pid)
        asset = await core.extracted(files.jpeg(12, 10), "b.jpg")
        status = await core.status()
    assert asset["width"] == 12 and status["exiftool"]["processes_started"] == 2

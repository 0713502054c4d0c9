"""The ``-stay_open`` runner on its own, with the real ExifTool: many files per round-trip in
one process, per-file errors, a process killed mid-batch, a hung read, a clean exit."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from plugins_builtin.metadata_extract.runner import ExifToolRunner
from tests.plugins_builtin.metadata_extract import files
from tests.plugins_builtin.metadata_extract.conftest import alive, poll


@pytest.fixture
async def runner(exiftool: Path) -> AsyncIterator[ExifToolRunner]:
    runner = ExifToolRunner(exiftool, timeout=30)
    yield runner
    await runner.close()


def write_images(folder: Path, count: int) -> list[Path]:
    paths = []
    for i in range(count):
        path = folder / f"image-{i:04d}"  # no extension, like a blob
        path.write_bytes(files.jpeg(10 + i, 7) if i % 2 else files.png(10 + i, 7))
        paths.append(path)
    return paths


async def test_many_files_one_round_trip_one_process(runner, tmp_path: Path) -> None:
    paths = write_images(tmp_path, 120)
    results = await runner.extract(paths)
    assert [r.tags["File:FileType"] for r in results] == \
        ["PNG" if i % 2 == 0 else "JPEG" for i in range(120)]
    assert [r.tags["Composite:ImageSize"] for r in results] == \
        [f"{10 + i} 7" for i in range(120)]  # in order, each its own
    more = await runner.extract(paths[:5])
    assert all(r.tags for r in more)
    assert runner.starts == 1 and runner.round_trips == 2


async def test_unreadable_files_get_an_error_each_and_the_rest_their_tags(
        runner, tmp_path: Path) -> None:
    good = write_images(tmp_path, 2)
    missing = tmp_path / "gone"
    folder = tmp_path / "a-folder"
    folder.mkdir()
    odd = tmp_path / "line\nbreak"
    odd.write_bytes(files.jpeg())
    results = await runner.extract([good[0], missing, odd, folder, good[1]])
    assert results[0].tags and results[4].tags
    assert results[1].tags is None and results[1].error == "Error: File not found - gone"
    assert results[2].tags is None and "line break" in (results[2].error or "")
    assert results[3].tags is None and results[3].error
    assert str(tmp_path) not in (results[1].error or "")  # no local paths in what is stored
    assert runner.starts == 1 and runner.round_trips == 1


async def test_killed_mid_batch_it_restarts_and_no_file_is_lost(runner, tmp_path: Path) -> None:
    paths = write_images(tmp_path, 200)
    batch = asyncio.create_task(runner.extract(paths))
    first_pid = await poll(lambda: _value(runner.pid), interval=0.001)
    os.kill(first_pid, signal.SIGKILL)  # while ExifTool is still starting or reading
    results = await batch
    assert all(r.tags for r in results), [r.error for r in results if not r.tags][:3]
    assert runner.starts == 2 and runner.pid not in (None, first_pid)
    assert not alive(first_pid)


async def test_a_hung_exiftool_is_killed_and_its_batch_retried(
        exiftool: Path, tmp_path: Path) -> None:
    paths = write_images(tmp_path, 3)
    runner = ExifToolRunner(exiftool, timeout=2)
    try:
        await runner.extract(paths[:1])
        hung_pid = runner.pid
        assert hung_pid
        os.kill(hung_pid, signal.SIGSTOP)  # it stops answering, as a hung read would
        started = time.monotonic()
        results = await runner.extract(paths)
        assert 2 <= time.monotonic() - started < 15
        assert all(r.tags for r in results)  # retried one by one in a new process
        assert runner.starts == 2 and not alive(hung_pid)

        os.kill(runner.pid, signal.SIGSTOP)  # a single file that hangs is an error
        (alone,) = await runner.extract(paths[:1])
        assert alone.tags is None and alone.error == "exiftool took longer than 2 s; it " \
            "was stopped"
        (after,) = await runner.extract(paths[1:2])
        assert after.tags and runner.starts == 3
    finally:
        await runner.close()


async def test_close_ends_the_process(runner, tmp_path: Path) -> None:
    await runner.extract(write_images(tmp_path, 1))
    pid = runner.pid
    assert pid and alive(pid)
    await runner.close()
    assert not runner.running and not alive(pid)


async def test_a_program_that_is_not_there_is_an_error_per_file(tmp_path: Path) -> None:
    runner = ExifToolRunner(tmp_path / "no-exiftool", timeout=5)
    (result,) = await runner.extract(write_images(tmp_path, 1))
    assert result.tags is None and "cannot start" in (result.error or "")


async def _value(value):
    return value

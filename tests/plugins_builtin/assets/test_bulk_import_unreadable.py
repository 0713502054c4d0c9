"""What Core may not read: an unreadable folder is refused (422 naming ``$.path``, no job);
an unreadable file, folder or sidecar inside is skipped with a warning line and the rest
is imported; a re-run does not read unchanged files at all.

File permissions do not stop root (CAP_DAC_OVERRIDE), and these tests often run as root
in containers: so they run a real Core process that, when started by root, lacks the
capabilities to read past permissions — as a Core run by an ordinary user would.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.plugins_builtin.assets.conftest import error_of
from tests.plugins_builtin.assets.folders import (
    BULK_IMPORT,
    assets_by_id,
    job_ids,
    job_log,
    run_import,
    sha,
    shas,
    warnings,
    write_sidecar,
    write_tree,
)
from tests.plugins_builtin.assets.test_bulk_import_crash_e2e import serve

pytestmark = pytest.mark.e2e


@pytest.fixture
def lock() -> Iterator[Callable[[Path], Path]]:
    """``lock(path)``: chmod 000 until the test ends."""
    locked: list[tuple[Path, int]] = []

    def chmod_000(path: Path) -> Path:
        locked.append((path, path.stat().st_mode & 0o7777))
        path.chmod(0)
        return path

    yield chmod_000
    for path, mode in reversed(locked):
        path.chmod(mode)


async def test_an_unreadable_folder_is_refused_and_queues_nothing(home: Path,
                                                                  tmp_path: Path, lock):
    write_tree(tmp_path / "locked", {"a.txt": "a"})
    write_tree(tmp_path / "parent" / "child", {"b.txt": "b"})
    lock(tmp_path / "locked")
    lock(tmp_path / "parent")
    async with serve(home, obey_permissions=True) as core:
        for path in (tmp_path / "locked", tmp_path / "parent" / "child"):
            r = await core.client.post(BULK_IMPORT, json={"path": str(path)})
            error = error_of(r, 422)
            assert "$.path" in [d["path"] for d in error["details"]], error
            assert str(path) in error["message"]
        assert await job_ids(core.client) == []


async def test_unreadable_files_and_folders_inside_are_skipped_with_a_warning(
        home: Path, tmp_path: Path, lock):
    src = tmp_path / "src"
    readable = write_tree(src, {"a.txt": "a", "sub/b.txt": "b", "sub/deeper/c.txt": "c"})
    unread = write_tree(src, {"secret.txt": "secret", "sub/private/d.txt": "d",
                              "sub/locked-too.bin": "locked too"})
    lock(src / "secret.txt")
    lock(src / "sub" / "locked-too.bin")
    lock(src / "sub" / "private")
    async with serve(home, obey_permissions=True) as core:
        job = await run_import(core.client, src)
        assert set(await assets_by_id(core.client)) == shas(readable)
        for data in unread.values():
            assert sha(data) not in await assets_by_id(core.client)
        found = warnings(await job_log(core.client, job["job_id"]))
        assert len(found) == 3, found
        for relpath in ("secret.txt", "sub/locked-too.bin", "sub/private"):
            assert len([m for m in found if m.startswith(f"{relpath}: ")]) == 1, found
        assert all("Permission denied" in m or "permission" in m for m in found), found
        result = job["result"]
        assert (result["imported"], result["failed"], result["problems"]) == (3, 2, 3)
        assert result["files"] == 5  # what was listed: the locked folder's file was not
    assert [p for p in (home / "tmp").rglob("*") if p.is_file()] == []


async def test_an_unreadable_sidecar_leaves_its_file_without_metadata(home: Path,
                                                                     tmp_path: Path, lock):
    src = tmp_path / "src"
    files = write_tree(src, {"photo.jpg": "photo"})
    lock(write_sidecar(src / "photo.jpg_meta.json", {"hidden": True}))
    async with serve(home, obey_permissions=True) as core:
        job = await run_import(core.client, src)
        assets = await assets_by_id(core.client)
        assert set(assets) == shas(files)
        assert assets[sha(files["photo.jpg"])]["user_metadata"] == {}
        found = warnings(await job_log(core.client, job["job_id"]))
        assert len(found) == 1 and found[0].startswith("photo.jpg_meta.json: "), found


async def test_a_rerun_does_not_read_unchanged_files(home: Path, tmp_path: Path, lock):
    src = tmp_path / "src"
    files = write_tree(src, {"a.txt": "a", "sub/b.txt": "b"})
    async with serve(home, obey_permissions=True) as core:
        await run_import(core.client, src)
        lock(src / "a.txt")
        lock(src / "sub" / "b.txt")
        again = await run_import(core.client, src)
        r = again["result"]
        assert (r["files"], r["unchanged"], r["imported"], r["failed"]) == (2, 2, 0, 0)
        assert warnings(await job_log(core.client, again["job_id"])) == []
        assert set(await assets_by_id(core.client)) == shas(files)

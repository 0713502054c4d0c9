"""A full or unwritable store: the upload is a clear 507 or 503 envelope, never a 500, and
leaves nothing behind; the store works again once the cause is gone.

The tests run as root here, where file modes do not stop a write; so a full disk is a real
tiny tmpfs, and a read-only store a real read-only bind mount, whenever ``mount`` is allowed.
Where it is not, the same OS error is raised at the same boundary (the staged file's write,
the blob folder's creation) and the test says so in its id.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

from ff_plugin_sdk.staging import StagedFile
from kernel.config import load_settings
from tests.conftest import running
from tests.plugins_builtin.assets.conftest import (
    PNG,
    Store,
    error_of,
    sha,
    upload,
    uploaded,
)

MiB = 1024 * 1024


@cache
def can_mount() -> bool:
    """Can this process mount a tmpfs (root with CAP_SYS_ADMIN, ``mount`` installed)?"""
    if shutil.which("mount") is None or os.name != "posix" or os.geteuid() != 0:
        return False
    with tempfile.TemporaryDirectory() as where:
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", where],
                          capture_output=True).returncode != 0:
            return False
        subprocess.run(["umount", where], check=True)
    return True


def umount(path: Path) -> None:
    if subprocess.run(["umount", str(path)], capture_output=True).returncode != 0:
        subprocess.run(["umount", "-l", str(path)], check=True)  # something still holds it


# -- a full disk -------------------------------------------------------------------------

DISK_BYTES = 3 * MiB


@pytest.fixture
def full_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, str]]:
    """A home whose disk holds about 3 MiB: a tmpfs of that size, or else ENOSPC raised by
    the staged file's write past that size.  The database and logs live elsewhere, so only
    the asset bytes fill it (and the mount can be let go)."""
    home = tmp_path / "small-disk-home"  # not the ``home`` fixture's: that one is not mounted
    home.mkdir(mode=0o700)
    how = "tmpfs" if can_mount() else "injected-enospc"
    if how == "tmpfs":
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK_BYTES},mode=0700", "tmpfs",
                        str(home)], check=True)
    else:
        write = StagedFile._write

        def write_or_full(self: StagedFile, data: bytes) -> None:
            if self.size + len(data) > DISK_BYTES:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            write(self, data)

        monkeypatch.setattr(StagedFile, "_write", write_or_full)
    (home / "config").mkdir(mode=0o700)
    (home / "config" / "core.json").write_text(json.dumps({"paths": {
        "db_dir": str(tmp_path / "elsewhere" / "db"),
        "logs_dir": str(tmp_path / "elsewhere" / "logs")}}))
    try:
        yield home, how
    finally:
        if how == "tmpfs":
            umount(home)


async def test_a_full_store_is_507_and_leaves_nothing(full_disk, make_app):
    home, how = full_disk
    settings = load_settings(home, env={})
    app = make_app(settings=settings)
    async with running(app, settings.install_token) as client:
        store = Store(app.state.kernel, settings)
        fits = await uploaded(client, b"a" * MiB, "fits.bin")
        before = await store.snapshot()
        r = await upload(client, os.urandom(4 * MiB), "too-big-for-the-disk.bin")
        error = error_of(r, 507, "insufficient_storage")
        assert "full" in error["message"], (how, error)
        await store.assert_nothing_left(before)
        # the failed upload gave its space back: the next file that fits is stored
        again = await uploaded(client, b"b" * MiB, "fits-too.bin")
        assert store.blob_path(again["asset_id"]).read_bytes() == b"b" * MiB
        assert store.blob_path(fits["asset_id"]).read_bytes() == b"a" * MiB


# -- an unwritable store -----------------------------------------------------------------

async def test_a_file_where_a_blob_folder_belongs_is_503_and_leaves_nothing(client, store):
    data = b"cannot be placed"
    blocker = store.assets_dir / sha(data)[:2]
    blocker.write_bytes(b"not a folder")  # the rename into assets/<aa>/<bb>/ cannot happen
    before = await store.snapshot()
    r = await upload(client, data, "blocked.bin")
    error = error_of(r, 503, "storage_unavailable")
    assert "cannot be written" in error["message"]
    await store.assert_nothing_left(before)
    assert blocker.read_bytes() == b"not a folder"
    blocker.unlink()
    await uploaded(client, data, "blocked.bin")  # once the folder can be made, it works


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[str]:
    """``folder`` made read-only for real: a read-only bind mount (root), a mode of 0500
    (anyone else); when neither is possible, EROFS raised where the folder is written."""
    if can_mount():
        subprocess.run(["mount", "--bind", str(folder), str(folder)], check=True)
        try:
            subprocess.run(["mount", "-o", "remount,bind,ro", str(folder)], check=True)
            yield "read-only-mount"
        finally:
            umount(folder)
    elif os.name == "posix" and os.geteuid() != 0:
        folder.chmod(0o500)
        try:
            yield "mode-0500"
        finally:
            folder.chmod(0o700)
    else:
        real_open, real_mkdir = os.open, Path.mkdir

        def refuse(path: Path) -> None:
            if Path(path).parent == folder or folder in Path(path).parents:
                raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))

        def open_(path, *args, **kw):
            refuse(path)
            return real_open(path, *args, **kw)

        def mkdir(self: Path, *args, **kw) -> None:
            refuse(self)
            real_mkdir(self, *args, **kw)

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(os, "open", open_)
            patch.setattr(Path, "mkdir", mkdir)
            yield "injected-erofs"


@pytest.mark.parametrize("folder", ["assets", "tmp"])
async def test_a_read_only_store_is_503_and_leaves_nothing(client, store, folder):
    existing = await uploaded(client, PNG, "existing.png")
    before = await store.snapshot()
    where = store.assets_dir if folder == "assets" else store.tmp_dir
    with read_only(where) as how:
        r = await upload(client, b"new bytes, nowhere to go", "new.bin")
        error = error_of(r, 503, "storage_unavailable")
        assert "cannot be written" in error["message"], (how, error)
        await store.assert_nothing_left(before)
        if folder == "assets":  # bytes already stored need no write: the dedupe still works
            again = await uploaded(client, PNG, "again.png", status=200)
            assert again["deduplicated"] is True
            assert again["asset_id"] == existing["asset_id"]
        download = await client.get(f"/v1/assets/{existing['asset_id']}/download")
        assert download.content == PNG
    await uploaded(client, b"new bytes, nowhere to go", "new.bin")

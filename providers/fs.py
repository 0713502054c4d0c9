"""The filesystem provider: content-addressed blobs under ``assets/<aa>/<bb>/<sha256>``.

A blob is written to ``tmp/`` while it is hashed, made durable (fsync), then renamed into
place; an existing blob is never rewritten.  Blocking file work runs in worker threads, in
1 MiB pieces (DESIGN §10), so the event loop never waits on the disk.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import sys
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import anyio
import anyio.to_thread

from ff_plugin_sdk.staging import StagedFile, storage_error
from ff_plugin_sdk.storage import (
    CHUNK_BYTES,
    BlobMissing,
    BlobStat,
    Health,
    StorageContext,
    StorageUnavailable,
    StoredBlob,
    TooLarge,
)


def blob_path(root: Path, sha256: str) -> Path:
    return root / sha256[:2] / sha256[2:4] / sha256


_KEY = re.compile(r"[0-9a-f]{64}")


def _valid_key(key: str) -> bool:
    return _KEY.fullmatch(key) is not None


def _sync_dir(path: Path) -> None:
    """Make a rename in ``path`` durable (POSIX; Windows cannot open a folder)."""
    if os.name != "posix":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _libc_syncfs() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        syncfs = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None
    syncfs.argtypes = [ctypes.c_int]
    return syncfs


_SYNCFS = _libc_syncfs()


def sync_files(paths: Sequence[Path]) -> None:
    """Make ``paths`` (files, or folders for the names in them) durable: one ``syncfs``
    of their filesystem on Linux, else an fsync each."""
    if not paths:
        return
    if _SYNCFS is not None:
        fd = os.open(paths[0], os.O_RDONLY)
        try:
            if _SYNCFS(fd) != 0:
                err = ctypes.get_errno()
                raise OSError(err, os.strerror(err))
        finally:
            os.close(fd)
        return
    for path in paths:
        if path.is_dir():
            _sync_dir(path)
        else:
            with open(path, "rb+") as fh:
                os.fsync(fh.fileno())


#: threads placing one batch of blobs (``write_files``)
PLACE_THREADS = 4
_PLACERS = ThreadPoolExecutor(max_workers=PLACE_THREADS, thread_name_prefix="faceforge-place")


def _read_at(fh: IO[bytes], position: int, size: int) -> bytes:
    # seek + read rather than os.pread, which Windows lacks; each reader has its own handle
    fh.seek(position)
    return fh.read(size)


class FilesystemProvider:
    """Blobs in a private folder, content-addressed, immutable."""

    name = "fs"

    def __init__(self, root: Path, tmp_dir: Path) -> None:
        self.root = root
        self.tmp_dir = tmp_dir
        #: ``<aa>/<bb>`` folders known to exist (at most 65,536), so a batch of new blobs
        #: costs no mkdir for them
        self._folders: set[str] = set()

    def stage(self) -> StagedFile:
        return StagedFile(self.tmp_dir)

    async def write(self, chunks: AsyncIterable[bytes], *,
                    max_bytes: int | None = None) -> StoredBlob:
        staged = self.stage()
        try:
            pending = bytearray()
            async for chunk in chunks:
                pending += chunk
                if max_bytes is not None and staged.size + len(pending) > max_bytes:
                    raise TooLarge(f"the file is larger than the limit of {max_bytes} bytes")
                if len(pending) >= CHUNK_BYTES:
                    await staged.write(pending)
                    pending = bytearray()
            if pending:
                await staged.write(pending)
            sha256 = await staged.finish()
            return await self.write_file(staged.path, sha256, staged.size)
        finally:
            with anyio.CancelScope(shield=True):
                staged.discard()

    def _place(self, path: Path, sha256: str) -> bool:
        target = blob_path(self.root, sha256)
        if target.exists():  # the same bytes are already stored: never rewrite them
            path.unlink()
            return False
        # one level at a time: ``parents=True`` would create ``<aa>`` with the umask's mode
        for folder in (target.parent.parent, target.parent):
            folder.mkdir(mode=0o700, exist_ok=True)
        os.replace(path, target)
        _sync_dir(target.parent)
        return True

    def _place_many(self, items: Sequence[tuple[Path, str, int]]) -> list[bool]:
        # the bytes first, then the names: a crash can never leave a blob under its hash
        # whose bytes were not yet on disk
        sync_files([path for path, _, _ in items])
        created = [False] * len(items)
        # renames and folder creations into different folders run side by side in the
        # kernel: a few threads place a batch several times faster than one
        parts = [range(k, len(items), PLACE_THREADS) for k in range(PLACE_THREADS)]
        folders = [f for found in _PLACERS.map(
            lambda part: self._place_part(items, part, created), parts) for f in found]
        sync_files([Path(f) for f in dict.fromkeys(folders)])
        return created

    def _place_part(self, items: Sequence[tuple[Path, str, int]], part: range,
                    created: list[bool]) -> list[str]:
        folders = []
        root = str(self.root)
        for i in part:  # plain strings: pathlib costs more than the syscalls
            path, sha256, _ = items[i]
            leaf = os.path.join(root, sha256[:2], sha256[2:4])
            target = os.path.join(leaf, sha256)
            fresh = False  # a folder made just now holds no blob yet
            if leaf not in self._folders:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(os.path.dirname(leaf), 0o700)
                try:
                    os.mkdir(leaf, 0o700)
                    fresh = True
                except FileExistsError:
                    pass
                self._folders.add(leaf)
            if not fresh and os.path.exists(target):
                os.unlink(path)
                continue
            try:
                os.replace(path, target)
            except FileNotFoundError:  # the folder was removed by hand since
                self._folders.discard(leaf)
                raise
            folders.append(leaf)
            created[i] = True
        return folders

    async def write_files(self, items: Sequence[tuple[Path, str, int]]) -> list[StoredBlob]:
        """Take many staged files with one sync for their bytes and one for their names
        (rather than an fsync of each file and folder)."""
        for _, sha256, _ in items:
            if not _valid_key(sha256):
                raise ValueError(f"not a sha256 hex digest: {sha256!r}")
        try:
            created = await anyio.to_thread.run_sync(self._place_many, items)
        except OSError as exc:
            raise storage_error(exc, f"{len(items)} blobs") from exc
        return [StoredBlob(sha256=sha256, size=size, provider=self.name, created=made)
                for (_, sha256, size), made in zip(items, created, strict=True)]

    async def write_file(self, path: Path, sha256: str, size: int) -> StoredBlob:
        if not _valid_key(sha256):
            raise ValueError(f"not a sha256 hex digest: {sha256!r}")
        try:
            created = await anyio.to_thread.run_sync(self._place, path, sha256)
        except OSError as exc:
            raise storage_error(exc, f"blob {sha256}") from exc
        return StoredBlob(sha256=sha256, size=size, provider=self.name, created=created)

    def _path(self, key: str) -> Path:
        if not _valid_key(key):
            raise BlobMissing(f"no blob {key!r} in the filesystem store")
        return blob_path(self.root, key)

    def local_path(self, key: str) -> Path | None:
        """Where the blob lives on this machine, for a program that needs a path (ExifTool);
        read it, never change it.  None for a key that is not a blob id."""
        return blob_path(self.root, key) if _valid_key(key) else None

    async def open_range(self, key: str, start: int = 0,
                         end: int | None = None) -> AsyncIterator[bytes]:
        path = self._path(key)
        try:
            fh = await anyio.to_thread.run_sync(open, path, "rb", 0)
        except FileNotFoundError as exc:
            raise BlobMissing(f"blob {key} is missing from the filesystem store") from exc
        except OSError as exc:
            raise StorageUnavailable(f"blob {key} cannot be read: {exc.strerror}") from exc
        try:
            position = start
            while end is None or position <= end:
                want = CHUNK_BYTES if end is None else min(CHUNK_BYTES, end - position + 1)
                data = await anyio.to_thread.run_sync(_read_at, fh, position, want)
                if not data:
                    break
                position += len(data)
                yield data
        finally:
            fh.close()

    async def stat(self, key: str) -> BlobStat | None:
        try:
            st = await anyio.to_thread.run_sync(os.stat, self._path(key))
        except (FileNotFoundError, BlobMissing):
            return None
        modified = datetime.fromtimestamp(st.st_mtime, UTC)
        return BlobStat(size=st.st_size,
                        modified_at=modified.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))

    async def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError, BlobMissing):
            await anyio.to_thread.run_sync(os.unlink, self._path(key))

    async def health(self) -> Health:
        ok = await anyio.to_thread.run_sync(os.access, self.root, os.W_OK)
        return Health(ok=ok, detail="" if ok else f"{self.root} is not writable")

    async def close(self) -> None:
        return None


def factory(context: StorageContext) -> FilesystemProvider:
    return FilesystemProvider(context.assets_dir, context.tmp_dir)

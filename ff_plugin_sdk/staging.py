"""Writing an upload to ``tmp/`` while hashing it: the first step of every ingest.

An upload is received into a staged file (so its size, hash and kind are known before a
provider is chosen), then handed to the chosen provider with ``write_file``.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO

import anyio
import anyio.to_thread

from ff_plugin_sdk.storage import StorageFull, StorageUnavailable

#: errors that mean "no room" rather than "cannot write"
_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC), errno.EFBIG}


def storage_error(exc: OSError, what: str) -> StorageFull | StorageUnavailable:
    """The envelope error for a failed write: 507 when the disk is full, else 503."""
    reason = exc.strerror or type(exc).__name__
    if exc.errno in _FULL:
        return StorageFull(f"the asset store is full: cannot write {what} ({reason})")
    return StorageUnavailable(f"the asset store cannot be written: {what} ({reason})")


#: hashes staged batches beside the thread that writes them
_HASHER = ThreadPoolExecutor(max_workers=4, thread_name_prefix="faceforge-hash")


class StagedFile:
    """A file being written under ``tmp/`` while hashed; removed unless kept."""

    #: staged files left by a crash are swept at start by this prefix
    PREFIX = "staged-"

    def __init__(self, tmp_dir: Path) -> None:
        self.path = tmp_dir / f"{self.PREFIX}{uuid.uuid4().hex}.part"
        self.size = 0
        self._hash = hashlib.sha256()
        self._file: IO[bytes] | None = None

    def _open(self) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
        self._file = os.fdopen(os.open(self.path, flags, 0o600), "wb", buffering=0)

    def _write(self, data: bytes | bytearray | memoryview) -> None:
        if self._file is None:
            self._open()
        assert self._file is not None
        # hashing and writing both release the GIL: done side by side, a batch takes the
        # longer of the two rather than their sum
        hashed = _HASHER.submit(self._hash.update, data)
        try:
            view = memoryview(data)
            while view:  # a raw write may take less than it was given
                view = view[self._file.write(view) or 0:]
        finally:
            hashed.result()
        self.size += len(data)

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        """Append and hash ``data`` (best in MiB-sized pieces: one thread hop each)."""
        try:
            await anyio.to_thread.run_sync(self._write, data)
        except OSError as exc:
            raise storage_error(exc, "a new file") from exc

    def _finish(self) -> None:
        if self._file is None:
            self._open()
        assert self._file is not None
        os.fsync(self._file.fileno())
        self._file.close()

    async def finish(self) -> str:
        """Flush to disk; returns the sha256 hex of everything written."""
        try:
            await anyio.to_thread.run_sync(self._finish)
        except OSError as exc:
            raise storage_error(exc, "a new file") from exc
        return self._hash.hexdigest()

    def discard(self) -> None:
        """Remove the partial file; safe to call more than once, never raises."""
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
        with contextlib.suppress(OSError):
            self.path.unlink()



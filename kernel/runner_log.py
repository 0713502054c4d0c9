"""A plugin runner's log file: its output, line by line, redacted, rotated by size.

``logs/plugins/<id>.log`` holds ``<timestamp> <stream> <text>`` lines, the stream being
``stdout``, ``stderr`` or ``core`` (what the supervisor says about the process).  Lines are
queued by the event loop and written in batches by a worker thread, so a chatty runner never
blocks the loop on disk; the queue is bounded, so one that writes faster than the disk takes
waits on its full pipe instead of filling Core's memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from kernel.clock import utc_now
from kernel.log import REDACTED

log = logging.getLogger("faceforge.runners")
LOG_FILE_MODE = 0o600
#: lines waiting for the writer; beyond this, the runner's pipe fills and the runner waits
QUEUE_LINES = 10_000
#: a tail reads at most this much of each file, so a file of one huge line stays cheap
TAIL_READ_BYTES = 1 << 20

Entry = tuple[str, str, str]  # timestamp, stream, text


class RunnerLog:
    """The log file of one runner.  ``open()`` before :meth:`line`, ``close()`` at the end.

    ``redact`` is applied to every line before it is written; ``secrets`` are removed
    before it (the runner's own token, which changes at each start).
    """

    def __init__(self, path: Path, redact: Callable[[str], str], *, max_bytes: int,
                 backup_count: int) -> None:
        self.path = path
        self.redact = redact
        self.max_bytes, self.backup_count = max_bytes, backup_count
        self.secrets: set[str] = set()
        self._queue: asyncio.Queue[Entry | None] | None = None
        self._writer: asyncio.Task[None] | None = None
        self._stream: BinaryIO | None = None
        self._size = 0

    def open(self) -> None:
        """Start the writer task (in the running loop); idempotent."""
        if self._writer is None or self._writer.done():
            self._queue = asyncio.Queue(QUEUE_LINES)
            self._writer = asyncio.create_task(self._write_loop(),
                                               name=f"runner-log:{self.path.name}")

    async def line(self, stream: str, text: str) -> None:
        """Queue one line (waits while the queue is full)."""
        if self._queue is not None:
            await self._queue.put((utc_now(), stream, text))

    async def close(self) -> None:
        """Write what is queued, then close the file."""
        writer, queue = self._writer, self._queue
        self._writer = self._queue = None
        if writer is not None and queue is not None:
            await queue.put(None)
            await writer
        await asyncio.to_thread(self._close_file)

    async def _write_loop(self) -> None:
        queue = self._queue
        assert queue is not None
        while True:
            batch = [await queue.get()]
            while not queue.empty() and len(batch) < 2000:
                batch.append(queue.get_nowait())
            entries = [entry for entry in batch if entry is not None]
            if entries:
                try:
                    await asyncio.to_thread(self._write, entries)
                except Exception as exc:  # a full disk loses the output, not the runner
                    log.warning("cannot write %s: %s", self.path, exc)
            if len(entries) != len(batch):
                return

    # -- the worker thread's side ----------------------------------------------------------
    def _write(self, entries: list[Entry]) -> None:
        redact, secrets = self.redact, tuple(self.secrets)
        data = bytearray()
        for stamp, stream, text in entries:
            for secret in secrets:
                text = text.replace(secret, REDACTED)
            line = f"{stamp} {stream} {redact(text)}\n".encode("utf-8", "backslashreplace")
            if (self.max_bytes > 0 and self.backup_count > 0
                    and self._size + len(data) + len(line) > self.max_bytes
                    and self._size + len(data) > 0):
                self._append(bytes(data))
                data.clear()
                self._rotate()
            data += line
        self._append(bytes(data))

    def _append(self, data: bytes) -> None:
        if not data:
            return
        if self._stream is None:
            self._stream = self._open()
        self._stream.write(data)
        self._stream.flush()
        self._size += len(data)

    def _open(self) -> BinaryIO:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_BINARY", 0)
        fd = os.open(self.path, flags, LOG_FILE_MODE)
        try:
            self._size = os.fstat(fd).st_size
            return os.fdopen(fd, "ab")
        except BaseException:
            os.close(fd)
            raise

    def _rotate(self) -> None:
        """<id>.log -> <id>.log.1 -> ... -> <id>.log.N; the oldest is dropped."""
        self._close_file()
        for n in range(self.backup_count - 1, 0, -1):
            older = self._backup(n)
            if older.exists():
                os.replace(older, self._backup(n + 1))
        if self.path.exists():
            os.replace(self.path, self._backup(1))
        self._size = 0

    def _close_file(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.close()

    def _backup(self, n: int) -> Path:
        return self.path.with_name(f"{self.path.name}.{n}")

    # -- reading ---------------------------------------------------------------------------
    def tail(self, n: int = 50) -> list[str]:
        """The last ``n`` lines written, oldest first, reaching into the rotated files when
        the current one holds fewer.  Reads the files (blocking, but bounded)."""
        lines: list[str] = []
        for path in (self.path, *(self._backup(i) for i in range(1, self.backup_count + 1))):
            if len(lines) >= n:
                break
            lines = _last_lines(path, n - len(lines)) + lines
        return lines[-n:] if n > 0 else []


def _last_lines(path: Path, n: int) -> list[str]:
    """The last ``n`` complete lines of ``path`` (none when it is missing)."""
    with contextlib.suppress(FileNotFoundError), open(path, "rb") as fh:
        end = fh.seek(0, os.SEEK_END)
        start = end
        data = b""
        while start > 0 and data.count(b"\n") <= n and end - start < TAIL_READ_BYTES:
            start = max(0, start - 65536)
            fh.seek(start)
            data = fh.read(end - start)
        lines = data.decode("utf-8", "replace").splitlines()
        if start > 0 and lines:
            lines = lines[1:]  # the first is cut where the read began
        return lines[-n:]
    return []

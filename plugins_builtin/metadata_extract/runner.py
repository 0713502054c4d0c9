"""One long-lived ExifTool process in ``-stay_open`` batch mode: many files per round-trip.

ExifTool reads its arguments from stdin (``-@ -``), one per line.  Each batch is the files'
paths, ``-echo4 {readyN}`` (so stderr is marked too) and ``-execute<N>``; ExifTool answers
one JSON array on stdout ended by ``{readyN}``.  Both pipes are read to their marker, so
neither fills up.  The process starts on first use and again after it dies; a batch that
hangs past its timeout is killed with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

#: every command gets these (``-common_args``): JSON, numbers as numbers, groups by location
COMMON_ARGS = ("-j", "-n", "-G1", "-charset", "filename=utf8", "-api", "largefilesupport=1")
#: one batch's JSON larger than this is refused (ExifTool prints no binary data without -b)
MAX_OUTPUT_BYTES = 256 * 1024 * 1024
READ_BYTES = 64 * 1024
DEFAULT_TIMEOUT_SECONDS = 60.0
_JSON = msgspec.json.Decoder(list[dict[str, Any]])


class ExifToolFailed(Exception):
    """The process died, hung past the timeout, or answered something unreadable."""


@dataclass(frozen=True)
class FileResult:
    """What ExifTool said about one file: its tags, or why there are none."""

    tags: dict[str, Any] | None = None
    error: str | None = None


class ExifToolRunner:
    """Runs batches of files through one ``exiftool -stay_open`` process, one at a time."""

    def __init__(self, exe: Path, *, timeout: float = DEFAULT_TIMEOUT_SECONDS,
                 logger: logging.Logger | None = None) -> None:
        self.exe = exe
        self.timeout = timeout
        self.log = logger or logging.getLogger("faceforge.plugins.metadata_extract")
        #: how many processes were started (1 for any number of batches, unless one died)
        self.starts = 0
        #: how many ``-execute`` commands were sent
        self.round_trips = 0
        self._proc: asyncio.subprocess.Process | None = None
        self._numbers = itertools.count(1)
        self._lock = asyncio.Lock()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self.running and self._proc else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    async def extract(self, paths: Sequence[Path]) -> list[FileResult]:
        """One result per path, in order.  A batch that fails as a whole is retried file by
        file, so one bad file (or a crash) costs only that file its metadata."""
        paths = [Path(p).absolute() for p in paths]
        # one argument per line: a path with a line break cannot be said to ExifTool
        results: dict[int, FileResult] = {
            i: FileResult(error="the path has a line break, which exiftool cannot be given")
            for i, p in enumerate(paths) if "\n" in str(p) or "\r" in str(p)}
        sendable = [p for i, p in enumerate(paths) if i not in results]
        found = iter(await self._extract(sendable) if sendable else [])
        return [results[i] if i in results else next(found) for i in range(len(paths))]

    async def _extract(self, paths: list[Path]) -> list[FileResult]:
        async with self._lock:
            try:
                return await self._run(paths)
            except ExifToolFailed as exc:
                if len(paths) == 1:
                    return [FileResult(error=str(exc))]
                self.log.warning("exiftool failed on a batch of %d files (%s); retrying them "
                                 "one by one", len(paths), exc)
            results = []
            for path in paths:
                try:
                    results += await self._run([path])
                except ExifToolFailed as exc:
                    results.append(FileResult(error=str(exc)))
            return results

    async def close(self) -> None:
        """Ask ExifTool to exit (``-stay_open False``); kill it if it does not."""
        async with self._lock:
            proc, self._proc = self._proc, None
            if proc is None or proc.returncode is not None:
                return
            try:
                assert proc.stdin is not None
                proc.stdin.write(b"-stay_open\nFalse\n")
                await proc.stdin.drain()
                proc.stdin.close()
                await asyncio.wait_for(proc.wait(), 5.0)
            except (OSError, TimeoutError):
                await _kill(proc)

    # -- one round-trip ------------------------------------------------------------------
    async def _start(self) -> asyncio.subprocess.Process:
        if self._proc is not None and self._proc.returncode is None:
            return self._proc
        if self._proc is not None:
            self.log.warning("exiftool (pid %d) exited with code %s; starting it again",
                             self._proc.pid, self._proc.returncode)
        try:
            self._proc = await asyncio.create_subprocess_exec(
                str(self.exe), "-stay_open", "True", "-@", "-", "-common_args", *COMMON_ARGS,
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE)
        except OSError as exc:
            self._proc = None
            raise ExifToolFailed(f"cannot start {self.exe}: {exc.strerror or exc}") from exc
        self.starts += 1
        return self._proc

    async def _run(self, paths: list[Path]) -> list[FileResult]:
        proc = await self._start()
        n = next(self._numbers)
        marker = b"{ready%d}" % n
        lines = [os.fsencode(p) for p in paths] + [b"-echo4", marker, b"-execute%d" % n]
        self.round_trips += 1
        payload = b"\n".join(lines) + b"\n"
        try:
            async with asyncio.timeout(self.timeout):
                out, err = await _exchange(proc, payload, marker)
        except TimeoutError:
            await _kill(proc)
            raise ExifToolFailed(f"exiftool took longer than {self.timeout:g} s; "
                                 f"it was stopped") from None
        except ExceptionGroup as group:  # a pipe broke: the process is gone or going
            await _kill(proc)
            raise ExifToolFailed(f"exiftool exited unexpectedly (code {proc.returncode})"
                                 ) from group
        except BaseException:  # cancelled mid-batch: its answer would confuse the next one
            await _kill(proc)
            raise
        return _results(paths, out, err)


async def _exchange(proc: asyncio.subprocess.Process, payload: bytes,
                    marker: bytes) -> tuple[bytes, bytes]:
    """Send one batch; read stdout and stderr side by side up to its marker."""
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    stdin = proc.stdin

    async def send() -> None:
        stdin.write(payload)
        await stdin.drain()

    async with asyncio.TaskGroup() as group:
        group.create_task(send())
        out = group.create_task(_read_to(proc.stdout, marker))
        err = group.create_task(_read_to(proc.stderr, marker))
    return out.result(), err.result()


async def _read_to(stream: asyncio.StreamReader, marker: bytes) -> bytes:
    """Everything before ``marker``, which ExifTool writes on a line of its own, last."""
    data = bytearray()
    while True:
        chunk = await stream.read(READ_BYTES)
        if not chunk:
            raise ExifToolFailed("exiftool closed its output")
        data += chunk
        end = len(data)
        while end and data[end - 1] in b"\r\n":
            end -= 1
        start = end - len(marker)
        if start >= 0 and data[start:end] == marker and (start == 0
                                                         or data[start - 1] in b"\r\n"):
            return bytes(data[:start])
        if len(data) > MAX_OUTPUT_BYTES:
            raise ExifToolFailed(f"exiftool wrote more than {MAX_OUTPUT_BYTES} bytes")


def _results(paths: list[Path], out: bytes, err: bytes) -> list[FileResult]:
    text = out.strip()
    try:
        entries = _JSON.decode(text) if text else []
    except msgspec.DecodeError as exc:
        raise ExifToolFailed(f"exiftool's answer is not JSON: {exc}") from exc
    by_source = {_norm(str(e.get("SourceFile", ""))): e for e in entries}
    errors = err.decode("utf-8", "replace").splitlines()
    results = []
    for path in paths:
        tags = by_source.get(_norm(os.fspath(path)))
        if tags is not None:
            results.append(FileResult(tags=tags))
            continue
        # ExifTool names the file it could not read: "Error: File not found - <path>"
        said = next((line.strip() for line in errors if os.fspath(path) in line), None)
        results.append(FileResult(error=(said or "exiftool returned nothing for this file")
                                  .replace(os.fspath(path), path.name)))
    return results


def _norm(path: str) -> str:
    return path.replace("\\", "/")  # ExifTool reports Windows paths with forward slashes


async def _kill(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    with contextlib.suppress(Exception):
        await proc.wait()

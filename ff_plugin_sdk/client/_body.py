"""Request bodies that stream: a file on disk (or a region of it), an open binary file,
bytes, an iterator of chunks, and a multipart form around any of them.

A body is read a chunk at a time as it is sent, so uploading a file of many gigabytes keeps
memory flat.  The async client reads files in a worker thread, one chunk per trip, so the
event loop (and a runner's heart-beats) never waits on the disk.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterable, AsyncIterator, Generator, Iterable, Iterator
from pathlib import Path
from typing import IO, Any, Protocol, runtime_checkable
from urllib.parse import quote

import anyio.to_thread

#: bytes read from a file per chunk
CHUNK_BYTES = 1024 * 1024
OCTETS = "application/octet-stream"

#: what an upload accepts: a path, bytes, an open binary file, or an (async) iterable of
#: bytes (sent once: a failure midway cannot be retried)
Source = str | os.PathLike[str] | bytes | bytearray | memoryview | IO[bytes] | \
    Iterable[bytes] | AsyncIterable[bytes]


@runtime_checkable
class Body(Protocol):
    #: bytes in all; None when unknown (sent chunked)
    length: int | None
    #: can be sent again from its start (a retry, a resumed upload)
    replayable: bool
    media_type: str

    def chunks(self) -> Iterator[bytes]: ...

    def achunks(self) -> AsyncIterator[bytes]: ...


@runtime_checkable
class Sliceable(Body, Protocol):
    """A body whose parts can be sent one by one (the chunks of a resumable upload)."""

    def part(self, offset: int, length: int) -> Body: ...


class _SyncBody:
    """A body read by blocking code; the async client takes its chunks in a worker thread."""

    length: int | None = None
    replayable = True
    media_type = OCTETS

    def chunks(self) -> Iterator[bytes]:
        raise NotImplementedError

    async def achunks(self) -> AsyncIterator[bytes]:
        chunks = self.chunks()
        try:
            while (chunk := await anyio.to_thread.run_sync(next, chunks, None)) is not None:
                yield chunk
        finally:
            if isinstance(chunks, Generator):  # closes the file it reads
                chunks.close()


class BytesBody(_SyncBody):
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.length = len(data)

    def part(self, offset: int, length: int) -> BytesBody:
        return BytesBody(self.data[offset:offset + length])

    def chunks(self) -> Iterator[bytes]:
        yield self.data

    async def achunks(self) -> AsyncIterator[bytes]:
        yield self.data


class FileBody(_SyncBody):
    """``length`` bytes of the file at ``path`` from ``offset`` (to its end by default),
    opened afresh at each send."""

    def __init__(self, path: str | os.PathLike[str], offset: int = 0,
                 length: int | None = None) -> None:
        self.path = Path(path)
        self.offset = offset
        self.length = self.path.stat().st_size - offset if length is None else length

    def part(self, offset: int, length: int) -> FileBody:
        """``length`` bytes from ``offset`` of this body (a chunk of a resumable upload)."""
        return FileBody(self.path, self.offset + offset, length)

    def chunks(self) -> Iterator[bytes]:
        with open(self.path, "rb") as fh:
            fh.seek(self.offset)
            yield from _read(fh, self.length, self.path)


class FileObjectBody(_SyncBody):
    """An open binary file, from where it stands now; sent again only if it can seek."""

    def __init__(self, fh: IO[bytes], start: int | None = None,
                 length: int | None = None) -> None:
        self.fh = fh
        self.replayable = _seekable(fh)
        self.start = (fh.tell() if start is None else start) if self.replayable else 0
        self.length = length
        if self.replayable and length is None:
            end = fh.seek(0, os.SEEK_END)
            fh.seek(self.start)
            self.length = end - self.start

    def part(self, offset: int, length: int) -> FileObjectBody:
        return FileObjectBody(self.fh, self.start + offset, length)

    def chunks(self) -> Iterator[bytes]:
        if self.replayable:
            self.fh.seek(self.start)
        yield from _read(self.fh, self.length, getattr(self.fh, "name", "the file"))


class IterBody(_SyncBody):
    """Chunks from an iterable: sent once (chunked)."""

    replayable = False

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self.source = chunks

    def chunks(self) -> Iterator[bytes]:
        yield from (bytes(chunk) for chunk in self.source if chunk)


class AsyncIterBody:
    """Chunks from an async iterable: sent once (chunked), by the async client only."""

    length: int | None = None
    replayable = False
    media_type = OCTETS

    def __init__(self, chunks: AsyncIterable[bytes]) -> None:
        self.source = chunks

    def chunks(self) -> Iterator[bytes]:
        raise TypeError("an async iterable body needs AsyncFaceForge; give FaceForge a file, "
                        "bytes or an iterable of bytes")

    async def achunks(self) -> AsyncIterator[bytes]:
        async for chunk in self.source:
            if chunk:
                yield bytes(chunk)


class Multipart:
    """A ``multipart/form-data`` body: text fields, then one file part streamed from
    ``body``; its length is known whenever the file's is (no chunked encoding)."""

    def __init__(self, fields: Iterable[tuple[str, str]], name: str, filename: str,
                 file_type: str, body: Body) -> None:
        boundary = secrets.token_hex(16)
        parts = [_part(boundary, f'name="{key}"', None) + value.encode() + b"\r\n"
                 for key, value in fields]
        self.head = b"".join(parts) + _part(
            boundary, f'name="{name}"; {_filename(filename)}', file_type)
        self.tail = f"\r\n--{boundary}--\r\n".encode()
        self.body = body
        self.replayable = body.replayable
        self.media_type = f"multipart/form-data; boundary={boundary}"
        self.length = (None if body.length is None
                       else len(self.head) + body.length + len(self.tail))

    def chunks(self) -> Iterator[bytes]:
        yield self.head
        yield from self.body.chunks()
        yield self.tail

    async def achunks(self) -> AsyncIterator[bytes]:
        yield self.head
        async for chunk in self.body.achunks():
            yield chunk
        yield self.tail


def as_body(source: Source) -> Body:
    """The body that sends ``source``."""
    if isinstance(source, Body):
        return source
    if isinstance(source, str | os.PathLike):
        return FileBody(source)
    if isinstance(source, bytes | bytearray | memoryview):
        return BytesBody(bytes(source))
    if hasattr(source, "read"):
        return FileObjectBody(source)  # type: ignore[arg-type]
    if isinstance(source, AsyncIterable):
        return AsyncIterBody(source)
    if isinstance(source, Iterable):
        return IterBody(source)
    raise TypeError(f"cannot upload a {type(source).__name__}: give a path, bytes, a binary "
                    f"file or an iterable of bytes")


def source_name(source: Any) -> str | None:
    """The file name a source carries (a path's, an open file's), if any."""
    if isinstance(source, str | os.PathLike):
        return Path(source).name
    name = getattr(source, "name", None)
    return Path(name).name if isinstance(name, str) and name else None


def _read(fh: IO[bytes], length: int | None, what: object) -> Iterator[bytes]:
    left = length
    while left is None or left > 0:
        data = fh.read(CHUNK_BYTES if left is None else min(CHUNK_BYTES, left))
        if not data:
            if left:
                raise OSError(f"{what} ended {left} bytes early (changed while uploading?)")
            return
        if left is not None:
            left -= len(data)
        yield data


def _seekable(fh: IO[bytes]) -> bool:
    try:
        return bool(fh.seekable())
    except (AttributeError, OSError, ValueError):
        return False


def _part(boundary: str, disposition: str, media_type: str | None) -> bytes:
    """A part's boundary line and headers, up to where its value starts."""
    head = f"--{boundary}\r\nContent-Disposition: form-data; {disposition}\r\n"
    if media_type:
        head += f"Content-Type: {media_type}\r\n"
    return (head + "\r\n").encode()


def _filename(name: str) -> str:
    """``filename="..."`` with an ASCII fallback, plus RFC 5987 ``filename*`` when the name
    is not plain ASCII (Core reads the latter first)."""
    plain = "".join(ch if " " <= ch < "\x7f" and ch not in '"\\' else "_" for ch in name)
    if plain == name:
        return f'filename="{name}"'
    return f"filename=\"{plain}\"; filename*=UTF-8''{quote(name, safe='')}"

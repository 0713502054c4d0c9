"""Receiving a multipart upload as it streams in: the file part goes straight to a staged
file under ``tmp/`` (hashed on the way, 1 MiB writes), every other part is a small text
field.  Memory stays flat whatever the file's size; nothing is spooled elsewhere.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, MultipartState, parse_options_header

from ff_plugin_sdk import BadRequest, PayloadTooLarge, ValidationFailed
from ff_plugin_sdk.staging import StagedFile
from ff_plugin_sdk.storage import Storage

#: the form fields an upload takes besides ``file`` (``meta`` may also be a file part)
FIELDS = frozenset({"meta", "kind", "entity_id", "role", "derived_from_asset_id"})
MAX_FIELD_BYTES = 1024 * 1024
MAX_FIELDS = 1000
#: file bytes handed to the writer thread per trip (a trip costs well under a millisecond)
BATCH_BYTES = 4 * 1024 * 1024
#: how much of the file's start is kept for content sniffing
SNIFF_BYTES = 8192


@dataclass
class Received:
    """What a multipart upload carried."""

    staged: StagedFile | None = None
    filename: str = ""
    #: the Content-Type the client gave the file part
    declared_type: str | None = None
    head: bytes = b""
    sha256: str = ""
    fields: dict[str, list[str]] = field(default_factory=dict)

    def field(self, name: str) -> str | None:
        values = self.fields.get(name)
        return values[-1] if values else None


def _disposition(value: bytes) -> tuple[str | None, str | None]:
    """(name, filename) of a part; ``filename*`` (RFC 5987) wins over ``filename``."""
    _, params = parse_options_header(value)
    name = params.get(b"name")
    filename = params.get(b"filename")
    text = value.decode("latin-1")
    star = text.find("filename*=")
    if star >= 0:
        encoded = text[star + len("filename*="):].split(";", 1)[0].strip().strip('"')
        # charset'language'value: the language (often empty) is not needed
        charset, _, rest = encoded.partition("'")
        rest = rest.partition("'")[2]
        if rest:
            try:
                return (name.decode("utf-8", "replace") if name else None,
                        urllib.parse.unquote(rest, encoding=charset or "utf-8",
                                             errors="strict"))
            except (LookupError, UnicodeDecodeError):
                pass
    return (name.decode("utf-8", "replace") if name is not None else None,
            filename.decode("utf-8", "replace") if filename is not None else None)


def clean_filename(name: str) -> str:
    """The last path component, without control characters; never empty, never only
    dots (``..`` is a path, not a name)."""
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch >= " " and ch != "\x7f").strip()
    if len(name) > 255:  # shortened before its extension, which says what the file is
        stem, dot, suffix = name.rpartition(".")
        name = (stem[:254 - len(suffix)] + dot + suffix if dot and len(suffix) <= 16
                else name[:255])
    return name if name.strip(".") else "upload"


def filename_problem(name: str) -> str | None:
    """Why ``name`` (trimmed) cannot be an asset's file name, or None: the rule an uploaded
    name is cleaned to, which a rename is held to as well."""
    if not name:
        return "A file name is required."
    if clean_filename(name) != name:
        return ("A file name is a name, not a path: no '/' or '\\', not only dots, no "
                "control characters, at most 255 characters.")
    return None


class _Parts:
    """The parser's callbacks: collect headers, route data to the file or a field."""

    def __init__(self, received: Received, storage: Storage, max_file_bytes: int) -> None:
        self.received = received
        self.storage = storage
        self.max_file_bytes = max_file_bytes
        self.header_field = b""
        self.header_value = b""
        self.headers: dict[bytes, bytes] = {}
        self.name: str | None = None
        self.is_file = False
        self.text = bytearray()
        #: file bytes waiting to be written (up to about 1 MiB)
        self.pending = bytearray()
        self.file_bytes = 0
        self.count = 0

    def take(self) -> bytearray:
        """The file bytes received since the last call."""
        batch, self.pending = self.pending, bytearray()
        return batch

    def callbacks(self) -> dict[str, Any]:
        return {"on_part_begin": self.part_begin, "on_part_data": self.part_data,
                "on_part_end": self.part_end, "on_header_field": self.header_field_cb,
                "on_header_value": self.header_value_cb, "on_header_end": self.header_end,
                "on_headers_finished": self.headers_finished}

    def part_begin(self) -> None:
        self.headers = {}
        self.text = bytearray()
        self.count += 1
        if self.count > MAX_FIELDS:
            raise ValidationFailed(f"an upload takes at most {MAX_FIELDS} form fields")

    def header_field_cb(self, data: bytes, start: int, end: int) -> None:
        self.header_field += data[start:end]

    def header_value_cb(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def header_end(self) -> None:
        self.headers[self.header_field.lower()] = self.header_value
        self.header_field = self.header_value = b""

    def headers_finished(self) -> None:
        name, filename = _disposition(self.headers.get(b"content-disposition", b""))
        if not name:
            raise BadRequest("every part of the upload needs a Content-Disposition name",
                             code="invalid_multipart")
        self.name = name
        self.is_file = name == "file"
        if self.is_file:
            received = self.received
            if received.staged is not None:
                raise ValidationFailed("an upload takes one 'file' part", details=[
                    {"path": "form.file", "message": "more than one file"}])
            received.staged = self.storage.stage()
            received.filename = clean_filename(filename or "")
            ctype = self.headers.get(b"content-type")
            received.declared_type = ctype.decode("latin-1").strip() if ctype else None
        elif name not in FIELDS:
            raise ValidationFailed(f"unknown upload field {name!r}; fields are 'file', "
                                   f"{', '.join(repr(f) for f in sorted(FIELDS))}",
                                   details=[{"path": f"form.{name}",
                                             "message": "unknown field"}])

    def part_data(self, data: bytes, start: int, end: int) -> None:
        if self.is_file:
            received = self.received
            staged = received.staged
            assert staged is not None
            self.file_bytes += end - start
            if self.file_bytes > self.max_file_bytes:
                raise PayloadTooLarge(f"the file is larger than the limit of "
                                      f"{self.max_file_bytes} bytes")
            self.pending += memoryview(data)[start:end]  # one copy, not two
            if len(received.head) < SNIFF_BYTES:
                received.head += data[start:min(end, start + SNIFF_BYTES - len(received.head))]
            return
        if len(self.text) + end - start > MAX_FIELD_BYTES:
            raise PayloadTooLarge(f"form field {self.name!r} is larger than "
                                  f"{MAX_FIELD_BYTES} bytes")
        self.text += data[start:end]

    def part_end(self) -> None:
        if not self.is_file and self.name is not None:
            try:
                value = self.text.decode("utf-8")
            except UnicodeDecodeError:
                raise ValidationFailed(f"form field {self.name!r} is not UTF-8 text", details=[
                    {"path": f"form.{self.name}", "message": "not UTF-8"}]) from None
            self.received.fields.setdefault(self.name, []).append(value)
        self.is_file = False
        self.name = None


def boundary_of(content_type: str) -> bytes:
    ctype, params = parse_options_header(content_type.encode("latin-1"))
    boundary = params.get(b"boundary")
    if ctype != b"multipart/form-data" or not boundary:
        raise BadRequest("upload with Content-Type multipart/form-data (with a boundary); "
                         f"got {content_type or 'none'!r}", code="unsupported_media_type",
                         status=415)
    return boundary


async def receive(stream: AsyncIterator[bytes], content_type: str, storage: Storage,
                  max_file_bytes: int) -> Received:
    """Parse the upload; on any failure (bad form, too large, client gone) the staged file
    is removed before the error propagates.

    The network and the disk overlap: a writer task writes and hashes one batch while the
    next is received and parsed (taking turns, the upload ran at a third of the network's
    speed).  At most five batches (20 MiB) are in memory: one filling, three queued, one
    being written.
    """
    received = Received()
    parts = _Parts(received, storage, max_file_bytes)
    parser = MultipartParser(boundary_of(content_type), parts.callbacks())
    send, batches = anyio.create_memory_object_stream[bytearray](3)
    try:
        try:
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(_write_batches, received, batches)
                async with send:
                    await _parse(stream, parser, parts, send)
        except BaseExceptionGroup as group:
            raise _first(group) from None
        if received.staged is None:
            raise ValidationFailed("the upload has no 'file' part", details=[
                {"path": "form.file", "message": "required"}])
        received.sha256 = await received.staged.finish()
        return received
    except BaseException:
        if received.staged is not None:
            received.staged.discard()
        raise


async def _parse(stream: AsyncIterator[bytes], parser: MultipartParser, parts: _Parts,
                 send: MemoryObjectSendStream[bytearray]) -> None:
    try:
        async for chunk in stream:
            parser.write(chunk)
            if len(parts.pending) >= BATCH_BYTES:
                await send.send(parts.take())
        parser.finalize()
    except MultipartParseError as exc:
        raise BadRequest(f"malformed multipart body: {exc}", code="invalid_multipart") from exc
    if parser.state != MultipartState.END:
        raise BadRequest("the multipart body ended early (no closing boundary)",
                         code="invalid_multipart")
    if parts.pending:
        await send.send(parts.take())


async def _write_batches(received: Received,
                         batches: MemoryObjectReceiveStream[bytearray]) -> None:
    async with batches:
        async for batch in batches:
            assert received.staged is not None
            await received.staged.write(batch)


def _first(group: BaseExceptionGroup) -> BaseException:
    """The error that ended the task group (the other task was only cancelled)."""
    exc: BaseException = group
    while isinstance(exc, BaseExceptionGroup):
        exc = exc.exceptions[0]
    return exc

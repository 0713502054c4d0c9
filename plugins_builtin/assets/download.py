"""Downloading a blob over HTTP: validators, conditional requests, byte ranges, streaming.

DESIGN §5; RFC 9110 §8.8 (validators), §13 (conditional requests), §14 (ranges), §15.3.7
(206 and ``multipart/byteranges``); RFC 6266 + RFC 8187 (the file name).

:func:`blob_response` decides everything from the request's headers before a byte is read:
304 / 412 / 416 are answered without touching the storage provider, and HEAD never reads it.
Choices where the RFCs leave room:

- ranges are sorted and overlapping or adjacent ones coalesced (RFC 9110 §15.3.7.2), so the
  body is never larger than the blob plus the part headers; a set that coalesces to one
  range is answered as a single-part 206;
- a ``Range`` header with more than :data:`MAX_RANGES` specs is ignored (200, whole body),
  as is any malformed one (another unit, garbage, ``5-2``, numbers past 63 bits);
- unsatisfiable specs in a set are dropped; when none is left: 416, ``bytes */size``;
- a zero-length blob has no satisfiable ``first-last`` range (416), while a non-zero
  suffix (``bytes=-5``) is satisfiable but cannot be expressed as a 206: 200, empty body.
"""

from __future__ import annotations

import logging
import re
import secrets
import unicodedata
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import anyio
import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from ff_plugin_sdk.errors import FaceForgeError, PreconditionFailed, RangeNotSatisfiable

log = logging.getLogger("faceforge.assets.download")

#: ``open_range(first, last)``: the blob's bytes ``first`` to ``last`` inclusive, in large
#: chunks (a provider's ``open_range`` with the key bound)
OpenRange = Callable[[int, int], AsyncIterator[bytes]]

#: more range specs than this in one header is abuse or a broken client: the header is
#: ignored and the whole body served (Starlette's limit; Apache's default is 200)
MAX_RANGES = 100
#: the bytes never change under their hash, but the name, the type and who may read them
#: can: cached a day, then revalidated with a cheap 304
CACHE_CONTROL = "private, max-age=86400"

#: positions past a signed 64-bit integer are malformed, not clamped (no real client sends
#: them, and other code on the path may not take them)
_INT63_MAX = 2**63 - 1
# ASCII digits only (``\d`` would take '٣'; int() would take '+1', ' 1', '1_0'); at most 19,
# so int() never meets a 5,000-digit number
_SPEC = re.compile(r"([0-9]{1,19})-([0-9]{0,19})|-([0-9]{1,19})")
_TAG = re.compile(r'(W/)?"([^"]*)"')
# RFC 8187 attr-char besides ALPHA / DIGIT (which quote() always keeps, with "_.-~")
_ATTR_CHAR = "!#$&+^`|"
# kept out of the quoted ASCII fallback: quoting, escaping, percent-decoding UAs, paths
_UNSAFE_FALLBACK = frozenset('"\\%/')


# --- the file name --------------------------------------------------------------------------
#: what a browser may show inline: types that cannot run script (not HTML, not SVG)
_INLINE_PREFIXES = ("image/", "audio/", "video/")
_INLINE_TYPES = frozenset({"application/pdf", "text/plain"})


def safe_inline(media_type: str) -> bool:
    kind = media_type.split(";", 1)[0].strip().lower()
    return (kind.startswith(_INLINE_PREFIXES) and kind != "image/svg+xml") or \
        kind in _INLINE_TYPES


def content_disposition(filename: str, inline: bool = False) -> str:
    """``attachment`` (or ``inline``) with an ASCII ``filename`` and an exact ``filename*``.

    Any name is safe: the fallback keeps printable ASCII (accents stripped, anything else
    ``_``), and ``filename*`` percent-encodes the UTF-8 name, so quotes, ``;`` and line
    breaks can never break the header.
    """
    name = filename or "download"
    fallback = []
    for char in unicodedata.normalize("NFKD", name):
        if unicodedata.combining(char):
            continue  # the accent of a decomposed 'é'
        fallback.append(char if " " <= char <= "~" and char not in _UNSAFE_FALLBACK else "_")
    ascii_name = "".join(fallback).strip() or "download"
    encoded = quote(name, safe=_ATTR_CHAR, encoding="utf-8", errors="replace")
    kind = "inline" if inline else "attachment"
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{encoded}"


# --- parsing request headers ----------------------------------------------------------------
def parse_range(header: str, size: int) -> list[tuple[int, int]] | None:
    """The ``(first, last)`` byte ranges (inclusive, sorted, coalesced) a ``Range`` header asks
    of a ``size``-byte blob.

    None: ignore the header and serve the whole body (not ``bytes``, malformed, too many
    specs, or a suffix of an empty blob).  ``[]``: nothing satisfiable (416).
    """
    unit, equals, spec_set = header.partition("=")
    if not equals or unit.strip().lower() != "bytes":
        return None
    # a list may hold empty elements, which a recipient ignores (RFC 9110 §5.6.1.2)
    specs = [spec for spec in (part.strip() for part in spec_set.split(",")) if spec]
    if not specs or len(specs) > MAX_RANGES:
        return None
    wanted: list[tuple[int, int]] = []
    whole = False
    for spec in specs:
        match = _SPEC.fullmatch(spec)
        if match is None:
            return None
        first_text, last_text, suffix_text = match.groups()
        if suffix_text is not None:
            suffix = int(suffix_text)
            if suffix > _INT63_MAX:
                return None
            if suffix and size:
                wanted.append((max(size - suffix, 0), size - 1))
            whole = whole or bool(suffix)
            continue
        first = int(first_text)
        last = int(last_text) if last_text else None
        if first > _INT63_MAX or (last is not None and (last < first or last > _INT63_MAX)):
            return None
        if first < size:
            wanted.append((first, size - 1 if last is None else min(last, size - 1)))
    if whole and not size:
        return None
    wanted.sort()
    ranges: list[tuple[int, int]] = []
    for first, last in wanted:
        if ranges and first <= ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], max(ranges[-1][1], last))
        else:
            ranges.append((first, last))
    return ranges


def _tags(headers: Any, name: str) -> list[tuple[bool, str]] | None:
    """The (weak, opaque) entity tags of a list header; None for ``*``."""
    value = ",".join(headers.getlist(name))
    if value.strip() == "*":
        return None
    return [(bool(weak), opaque) for weak, opaque in _TAG.findall(value)]


def _http_date(value: str) -> datetime | None:
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _single_date(headers: Any, name: str) -> datetime | None:
    values = headers.getlist(name)  # more than one member: ignored (RFC 9110 §13.1.3)
    return _http_date(values[0]) if len(values) == 1 else None


def _as_utc_seconds(value: datetime | str | None) -> datetime | None:
    """``last_modified`` (RFC 3339, an HTTP date, or a datetime; naive means UTC) to
    whole seconds, the resolution of ``Last-Modified``."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            found = _http_date(value)
            if found is None:
                raise ValueError(f"last_modified {value!r} is neither RFC 3339 nor an HTTP "
                                 f"date") from None
            parsed = found
    else:
        parsed = value
    parsed = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    return parsed.replace(microsecond=0)


def _if_range_holds(value: str | None, opaque: str, modified: datetime | None) -> bool:
    """RFC 9110 §13.1.5: an entity tag compared strongly, or a date equal to Last-Modified."""
    if value is None:
        return True
    value = value.strip()
    if value.startswith(("W/", '"')):
        return value == f'"{opaque}"'
    return modified is not None and _http_date(value) == modified


# --- responses ------------------------------------------------------------------------------
def error_response(status: int, code: str, message: str,
                   headers: dict[str, str] | None = None) -> Response:
    """The JSON error envelope (DESIGN §5), rendered here: a download answers on its own."""
    body = {"error": {"code": code, "message": message, "details": []}}
    return Response(msgspec.json.encode(body), status_code=status,
                    media_type="application/json", headers=headers)


def blob_response(request: Request, *, open_range: OpenRange, size: int, etag: str,
                  last_modified: datetime | str | None, filename: str, media_type: str,
                  inline: bool = False, cache_control: str = CACHE_CONTROL) -> Response:
    """The response to a GET or HEAD of a blob: 200, 206 (one range or multipart), 304, 412
    or 416, per the request's conditional and ``Range`` headers.

    ``etag`` is the content hash (quoted here unless already quoted); ``last_modified`` is
    when the asset was stored.  Nothing is read until the response is sent, and then only
    for GET, in the provider's own chunks.
    """
    tag = etag if etag.startswith('"') else f'"{etag}"'
    opaque = tag[1:-1]
    modified = _as_utc_seconds(last_modified)
    validators = {"etag": tag, "cache-control": cache_control}
    if modified is not None:
        validators["last-modified"] = format_datetime(modified, usegmt=True)
    headers = request.headers
    get_or_head = request.method in ("GET", "HEAD")

    # RFC 9110 §13.2.2: If-Match, If-Unmodified-Since, If-None-Match, If-Modified-Since,
    # then If-Range with Range.
    if "if-match" in headers:
        tags = _tags(headers, "if-match")
        if tags is not None and (False, opaque) not in tags:
            return error_response(412, PreconditionFailed.code,
                                  f"If-Match does not name this blob's entity tag {tag}")
    elif (modified is not None and (since := _single_date(headers, "if-unmodified-since"))
          and modified > since):
        return error_response(412, PreconditionFailed.code,
                              f"the blob was stored after {format_datetime(since, True)}")
    if "if-none-match" in headers:
        tags = _tags(headers, "if-none-match")
        if tags is None or any(found == opaque for _, found in tags):  # weak comparison
            if not get_or_head:
                return error_response(412, PreconditionFailed.code,
                                      f"If-None-Match names this blob's entity tag {tag}")
            return Response(status_code=304, headers=validators)
    elif get_or_head and modified is not None and (
            since := _single_date(headers, "if-modified-since")) and modified <= since:
        return Response(status_code=304, headers=validators)

    ranges = None
    if get_or_head and "range" in headers and _if_range_holds(headers.get("if-range"),
                                                             opaque, modified):
        ranges = parse_range(headers["range"], size)
        if ranges == []:
            return error_response(
                416, RangeNotSatisfiable.code,
                f"no requested range starts inside the blob's {size} bytes",
                headers={"content-range": f"bytes */{size}", "accept-ranges": "bytes"})

    media_type = media_type if _printable(media_type) else "application/octet-stream"
    inline = inline and safe_inline(media_type)
    # an uploaded page opened from Core's own address must not run script with the user's
    # session: sandboxed, and shown inline only for types that cannot carry script
    out = {**validators, "accept-ranges": "bytes", "x-content-type-options": "nosniff",
           "content-security-policy": "sandbox; default-src 'none'; img-src 'self' data:;"
                                      " media-src 'self'; style-src 'unsafe-inline'",
           "content-disposition": content_disposition(filename, inline)}
    if ranges is None:
        parts = [(0, size - 1, b"")] if size else []
        out |= {"content-type": media_type, "content-length": str(size)}
        return BlobStreamResponse(200, out, parts, b"", open_range, opaque)
    if len(ranges) == 1:
        first, last = ranges[0]
        out |= {"content-type": media_type, "content-length": str(last - first + 1),
                "content-range": f"bytes {first}-{last}/{size}"}
        return BlobStreamResponse(206, out, [(first, last, b"")], b"", open_range, opaque)
    boundary = secrets.token_hex(16)
    # the CRLF before a delimiter belongs to it (RFC 2046 §5.1.1): none before the first
    parts = [(first, last, (b"\r\n" if index else b"") + (
        f"--{boundary}\r\nContent-Type: {media_type}\r\n"
        f"Content-Range: bytes {first}-{last}/{size}\r\n\r\n").encode("ascii"))
        for index, (first, last) in enumerate(ranges)]
    epilogue = f"\r\n--{boundary}--\r\n".encode("ascii")
    length = sum(len(head) + last - first + 1 for first, last, head in parts) + len(epilogue)
    out |= {"content-type": f"multipart/byteranges; boundary={boundary}",
            "content-length": str(length)}
    return BlobStreamResponse(206, out, parts, epilogue, open_range, opaque)


def _printable(text: str) -> bool:
    return bool(text) and all(" " <= char <= "~" for char in text)


class _ShortRead(Exception):
    """The provider ended before the bytes the headers promised."""


class BlobStreamResponse(Response):
    """Streams ``parts`` (``(first, last, part header)``) from ``open_range``.

    The first chunk is read before the status line is sent, so a provider that fails at once
    (:class:`~ff_plugin_sdk.storage.BlobMissing`, ``StorageUnavailable``, any
    :class:`FaceForgeError`) still gets its JSON error envelope and status.  Later failures
    can only cut the connection short: the response ends without its last message (the
    server closes the connection; the client sees fewer bytes than ``Content-Length``), with
    one log line.  Chunks go out as the provider yields them, never copied or re-buffered;
    reading stops when the client disconnects.
    """

    def __init__(self, status_code: int, headers: dict[str, str],
                 parts: Sequence[tuple[int, int, bytes]], epilogue: bytes,
                 open_range: OpenRange, name: str) -> None:
        self.status_code = status_code
        self.background = None
        self.media_type = None
        self.init_headers(headers)
        self.parts = parts
        self.epilogue = epilogue
        self.open_range = open_range
        self.name = name  # for log lines
        self.complete = False  # the last message is being sent

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        start = {"type": "http.response.start", "status": self.status_code,
                 "headers": self.raw_headers}
        if scope.get("method") == "HEAD" or not self.parts:
            await send(start)
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        first, last, _ = self.parts[0]
        chunks = self.open_range(first, last)
        try:
            chunk: bytes | None = await anext(chunks, None)
        except FaceForgeError as exc:
            await _close(chunks)
            log.warning("download of %s refused: %s", self.name, exc.message)
            await error_response(exc.status, exc.code, exc.message)(scope, receive, send)
            return
        except BaseException:
            await _close(chunks)
            raise
        await send(start)
        version = scope.get("asgi", {}).get("spec_version", "2.0")
        if tuple(int(n) for n in version.split(".")) >= (2, 4):
            await self._stream(send, chunks, chunk)  # send() raises OSError once they left
            return
        async with anyio.create_task_group() as group:
            async def watch() -> None:
                while (await receive())["type"] != "http.disconnect":
                    pass
                if not self.complete:  # (servers also say so once the last byte is sent)
                    log.debug("download of %s: the client went away", self.name)
                group.cancel_scope.cancel()

            group.start_soon(watch)
            await self._stream(send, chunks, chunk)
            group.cancel_scope.cancel()

    async def _stream(self, send: Send, chunks: AsyncIterator[bytes],
                      chunk: bytes | None) -> None:
        sent = 0
        try:
            for index, (first, last, head) in enumerate(self.parts):
                if index:
                    await _close(chunks)
                    chunks = self.open_range(first, last)
                    chunk = await anext(chunks, None)
                if head:
                    await send({"type": "http.response.body", "body": head, "more_body": True})
                remaining = last - first + 1
                final = index == len(self.parts) - 1 and not self.epilogue
                while True:
                    if chunk is None:
                        raise _ShortRead(f"{remaining} bytes short in {first}-{last}")
                    if len(chunk) > remaining:
                        chunk = chunk[:remaining]
                    remaining -= len(chunk)
                    if chunk:
                        self.complete = final and remaining == 0
                        await send({"type": "http.response.body", "body": chunk,
                                    "more_body": not self.complete})
                        sent += len(chunk)
                    if remaining == 0:
                        break
                    chunk = await anext(chunks, None)
            if self.epilogue:
                self.complete = True
                await send({"type": "http.response.body", "body": self.epilogue,
                            "more_body": False})
        except (FaceForgeError, _ShortRead) as exc:
            log.warning("download of %s cut short after %d bytes: %s", self.name, sent,
                        getattr(exc, "message", None) or exc)
        except OSError as exc:  # mostly the client leaving (ASGI 2.4 send())
            log.info("download of %s cut short after %d bytes: %s", self.name, sent, exc)
        except Exception:
            log.exception("download of %s cut short after %d bytes", self.name, sent)
        finally:
            await _close(chunks)


async def _close(chunks: AsyncIterator[bytes]) -> None:
    """Close a provider's iterator (its file or connection) even while being cancelled."""
    aclose = getattr(chunks, "aclose", None)
    if aclose is None:
        return
    with anyio.CancelScope(shield=True):
        try:
            await aclose()
        except Exception as exc:  # closing must not turn a sent response into an error
            log.debug("closing a blob reader failed: %s", exc)

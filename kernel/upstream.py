"""A lean HTTP/1.1 client for local upstreams (plugin runners): pooled keep-alive
connections, bodies streamed both ways.

Why not httpx, nor even h11: measured on this machine against a Starlette runner, one
keep-alive GET forwarded through httpx's async client cost Core ~2 ms more than the runner's
own latency (httpcore's anyio locks and cancel scopes per request; without ``sniffio``
installed, also an import that fails, searching ``sys.path``, on every request); through
h11 on asyncio streams the client alone took ~0.25 ms of CPU per request, reading and
writing the messages here ~0.13 ms.  The proxy's whole budget is 1 ms
(tests/bench/plugin_proxy.py).  The parsing is
strict where it matters for framing (RFC 9112 §6): one Content-Length, chunked only as the
final transfer coding, else the body runs to the connection's end and it is not reused.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterable, AsyncIterator

Headers = list[tuple[bytes, bytes]]
Body = bytes | AsyncIterable[bytes] | None
#: one read from the upstream's socket at most (a big body moves in few steps)
READ_BYTES = 1 << 20
#: the socket is not read further while this much (x2, asyncio's rule) waits unread
BUFFER_BYTES = 256 * 1024
#: an upstream's response head, or a chunk-size line, may be this large
MAX_HEAD_BYTES = 64 * 1024
#: sent again on a fresh connection when a pooled one turns out closed
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_STATUS_LINE = re.compile(rb"HTTP/1\.([01]) ([1-9][0-9][0-9])(?: [^\r\n]*)?")
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_FORBIDDEN = re.compile(rb"[\x00\r\n]")
_TARGET = re.compile(rb"[\x21-\x7e]+")


class UpstreamError(Exception):
    """The upstream could not be reached, broke the protocol, or closed the connection
    before it finished answering."""


class UpstreamTimeout(UpstreamError):
    """The upstream did not answer (or send the next part of its body) in time."""


class _Connection:
    __slots__ = ("idle_since", "reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.idle_since = 0.0

    def usable(self, now: float, idle_seconds: float) -> bool:
        """Still open, and not idle so long that the upstream may be closing it now."""
        return (now - self.idle_since < idle_seconds and not self.reader.at_eof()
                and not self.writer.is_closing())

    def close(self) -> None:
        self.writer.close()


class UpstreamResponse:
    """An upstream's answer: status and headers (names in lower case), then its body, read
    whole (:meth:`read`) or as it arrives (:meth:`stream`), once.

    ``length``: the body's size when known in advance (Content-Length; 0 when the answer
    has none, as for HEAD, 204 and 304), else None (chunked, or until the connection ends).
    Read to its end, the connection goes back to the pool; :meth:`aclose` drops it.
    """

    def __init__(self, pool: Upstream, key: tuple[str, int], conn: _Connection, status: int,
                 headers: Headers, length: int | None, chunked: bool, keep_alive: bool) -> None:
        self.status, self.headers, self.length = status, headers, length
        self._pool, self._key = pool, key
        self._conn: _Connection | None = conn
        self._chunked, self._keep_alive = chunked, keep_alive
        if length == 0:
            self._finish()

    def _finish(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            if self._keep_alive:
                self._pool._release(self._key, conn)
            else:
                conn.close()

    async def stream(self) -> AsyncIterator[bytes]:
        """The body as it arrives; each wait is bounded by the pool's ``read_timeout``."""
        try:
            if self._conn is None:
                return
            if self._chunked:
                async for part in self._chunks(self._conn):
                    yield part
            elif self.length is not None:
                left = self.length
                while left:
                    part = await self._read(self._conn, min(left, READ_BYTES))
                    if not part:
                        raise UpstreamError(f"the upstream closed the connection {left} "
                                            f"bytes short of its Content-Length")
                    left -= len(part)
                    yield part
            else:  # to the connection's end
                while part := await self._read(self._conn, READ_BYTES):
                    yield part
            self._finish()
        finally:
            await self.aclose()  # not read to its end: the connection cannot be reused

    async def _chunks(self, conn: _Connection) -> AsyncIterator[bytes]:
        while True:
            line = await self._line(conn)
            size_text = line.split(b";", 1)[0].strip()
            if not size_text or len(size_text) > 16 or not all(
                    c in b"0123456789abcdefABCDEF" for c in size_text):
                raise UpstreamError(f"bad chunk size line {line[:40]!r}")
            left = int(size_text, 16)
            if left == 0:
                while await self._line(conn):  # trailers, until the empty line
                    pass
                return
            while left:
                part = await self._read(conn, min(left, READ_BYTES))
                if not part:
                    raise UpstreamError("the upstream closed the connection mid-chunk")
                left -= len(part)
                yield part
            if await self._line(conn):
                raise UpstreamError("a chunk is longer than its size line says")

    async def _read(self, conn: _Connection, n: int) -> bytes:
        async with asyncio.timeout(self._pool.read_timeout):
            return await conn.reader.read(n)

    async def _line(self, conn: _Connection) -> bytes:
        """One CRLF-ended line, without its CRLF."""
        try:
            async with asyncio.timeout(self._pool.read_timeout):
                return (await conn.reader.readuntil(b"\r\n"))[:-2]
        except asyncio.IncompleteReadError as exc:
            raise UpstreamError("the upstream closed the connection mid-answer") from exc
        except asyncio.LimitOverrunError as exc:
            raise UpstreamError("a line of the upstream's answer is too long") from exc

    async def read(self, limit: int) -> bytes:
        """The whole body, or :class:`OverflowError` once it passes ``limit`` bytes."""
        if self.length is not None and self.length > limit:
            await self.aclose()
            raise OverflowError(limit)
        if self.length is not None and self._conn is not None and not self._chunked:
            try:  # one read of a known size: the common, small answer
                async with asyncio.timeout(self._pool.read_timeout):
                    data = await self._conn.reader.readexactly(self.length)
            except asyncio.IncompleteReadError as exc:
                await self.aclose()
                raise UpstreamError("the upstream closed the connection short of its "
                                    "Content-Length") from exc
            except BaseException:
                await self.aclose()
                raise
            self._finish()
            return data
        parts = bytearray()
        async for part in self.stream():
            parts += part
            if len(parts) > limit:
                raise OverflowError(limit)  # stream()'s finally drops the connection
        return bytes(parts)

    async def aclose(self) -> None:
        """Drop the connection unless the body was read to its end (then it is pooled)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


class Upstream:
    """Keep-alive HTTP/1.1 connections to local servers, pooled by (host, port).

    ``idle_seconds``: a connection idle longer is not reused (it may be closing at the
    server's end: Hypercorn's default keep-alive is 5 s).
    """

    def __init__(self, *, connect_timeout: float = 5.0, read_timeout: float = 60.0,
                 max_idle: int = 16, idle_seconds: float = 4.0) -> None:
        self.connect_timeout, self.read_timeout = connect_timeout, read_timeout
        self.max_idle, self.idle_seconds = max_idle, idle_seconds
        self._idle: dict[tuple[str, int], list[_Connection]] = {}

    async def request(self, method: str, host: str, port: int, target: bytes,
                      headers: Headers, body: Body = None) -> UpstreamResponse:
        """Send one request; returns once the response head has arrived.

        ``headers`` (names in lower case) carry ``Host`` and must not frame the body:
        ``Content-Length`` is added for ``bytes``, and for a stream without one in
        ``headers``, ``Transfer-Encoding: chunked``.  A pooled connection found closed is
        replaced once, for a safe method whose body is not a stream.
        """
        head, chunked = _request_head(method, target, headers, body)
        key = (host, port)
        retry = method in SAFE_METHODS and not isinstance(body, AsyncIterable)
        for attempt in (1, 2):
            conn, reused = self._checkout(key), True
            if conn is None:
                conn, reused = await self._connect(host, port), False
            try:
                await _send(conn.writer, head, body, chunked)
                async with asyncio.timeout(self.read_timeout):
                    status, version, answer = await _read_head(conn.reader)
                return _response(self, key, conn, method, status, version, answer)
            except TimeoutError as exc:
                conn.close()
                raise UpstreamTimeout(f"no answer within {self.read_timeout:g} s") from exc
            except (OSError, EOFError) as exc:
                conn.close()
                if reused and retry and attempt == 1:
                    continue  # the server had closed it meanwhile: once more, on a new one
                raise UpstreamError(_describe(exc)) from exc
            except BaseException:  # cancelled, a bad answer, the caller's body stream failed
                conn.close()
                raise
        raise AssertionError("unreachable")

    async def aclose(self) -> None:
        """Close every pooled connection."""
        idle, self._idle = self._idle, {}
        for conns in idle.values():
            for conn in conns:
                conn.close()

    def _checkout(self, key: tuple[str, int]) -> _Connection | None:
        conns = self._idle.get(key)
        now = time.monotonic()
        while conns:
            conn = conns.pop()
            if conn.usable(now, self.idle_seconds):
                return conn
            conn.close()
        return None

    def _release(self, key: tuple[str, int], conn: _Connection) -> None:
        conns = self._idle.setdefault(key, [])
        if len(conns) < self.max_idle:
            conn.idle_since = time.monotonic()
            conns.append(conn)
        else:
            conn.close()

    async def _connect(self, host: str, port: int) -> _Connection:
        try:
            async with asyncio.timeout(self.connect_timeout):
                reader, writer = await asyncio.open_connection(host, port, limit=BUFFER_BYTES)
        except TimeoutError as exc:
            raise UpstreamError(f"no connection to {host}:{port} within "
                                f"{self.connect_timeout:g} s") from exc
        except OSError as exc:
            raise UpstreamError(f"cannot connect to {host}:{port}: {_describe(exc)}") from exc
        return _Connection(reader, writer)


# -- the wire ------------------------------------------------------------------------------
def _request_head(method: str, target: bytes, headers: Headers,
                  body: Body) -> tuple[bytes, bool]:
    """The request's head, and whether its body goes chunked."""
    if not _TOKEN.fullmatch(method.encode("latin-1")) or not _TARGET.fullmatch(target):
        raise ValueError(f"bad request line: {method!r} {target!r}")
    lines = [b"%s %s HTTP/1.1\r\n" % (method.encode("latin-1"), target)]
    for name, value in headers:
        if _FORBIDDEN.search(value) or not _TOKEN.fullmatch(name):
            raise ValueError(f"bad header {name!r}")
        lines.append(b"%s: %s\r\n" % (name, value))
    chunked = False
    if isinstance(body, bytes | bytearray | memoryview):
        lines.append(b"content-length: %d\r\n" % len(body))
    elif body is not None and not any(name == b"content-length" for name, _ in headers):
        lines.append(b"transfer-encoding: chunked\r\n")
        chunked = True
    lines.append(b"\r\n")
    return b"".join(lines), chunked


async def _send(writer: asyncio.StreamWriter, head: bytes, body: Body, chunked: bool) -> None:
    if body is None or isinstance(body, bytes | bytearray | memoryview):
        writer.write(head + body if body else head)
    else:
        writer.write(head)
        async for part in body:
            if part:
                writer.writelines([b"%x\r\n" % len(part), part, b"\r\n"] if chunked
                                  else [part])
                await writer.drain()  # the upstream's pace, not Core's memory
        if chunked:
            writer.write(b"0\r\n\r\n")
    await writer.drain()


async def _read_head(reader: asyncio.StreamReader) -> tuple[int, int, Headers]:
    """(status, minor version, headers) of the final answer (1xx ones are skipped)."""
    while True:
        try:
            data = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            raise EOFError("the upstream closed the connection without answering") from exc
        except asyncio.LimitOverrunError as exc:
            raise UpstreamError("the upstream's answer has too large a head") from exc
        if len(data) > MAX_HEAD_BYTES:
            raise UpstreamError("the upstream's answer has too large a head")
        lines = data[:-4].split(b"\r\n")
        match = _STATUS_LINE.fullmatch(lines[0])
        if match is None:
            raise UpstreamError(f"the upstream answered no HTTP/1.x: {lines[0][:60]!r}")
        status = int(match.group(2))
        headers = []
        for line in lines[1:]:
            name, colon, value = line.partition(b":")
            if not colon or not _TOKEN.fullmatch(name):  # obs-fold, spaces before ':'
                raise UpstreamError(f"bad header line in the upstream's answer: "
                                    f"{line[:60]!r}")
            headers.append((name.lower(), value.strip(b" \t")))
        if status >= 200 or status == 101:
            return status, int(match.group(1)), headers


def _response(pool: Upstream, key: tuple[str, int], conn: _Connection, method: str,
              status: int, minor: int, headers: Headers) -> UpstreamResponse:
    """Frame the body (RFC 9112 §6.3) and tell whether the connection may be reused."""
    if status == 101:
        raise UpstreamError("the upstream switched protocols, which the proxy does not do")
    connection = b",".join(v for k, v in headers if k == b"connection").lower()
    tokens = {t.strip() for t in connection.split(b",")}
    keep_alive = b"close" not in tokens and (minor == 1 or b"keep-alive" in tokens)
    codings = [v for k, v in headers if k == b"transfer-encoding"]
    lengths = [v for k, v in headers if k == b"content-length"]
    chunked, length = False, None
    if method == "HEAD" or status in (204, 304):
        length = 0
    elif codings:
        chunked = b",".join(codings).split(b",")[-1].strip().lower() == b"chunked"
        keep_alive = keep_alive and chunked and not lengths
    elif lengths:
        values = {v.strip() for v in b",".join(lengths).split(b",")}
        value = values.pop()
        if values or not value.isdigit() or len(value) > 18:
            raise UpstreamError(f"bad Content-Length in the upstream's answer: "
                                f"{b', '.join(lengths)[:60]!r}")
        length = int(value)
    else:
        keep_alive = False  # the body runs to the connection's end
    return UpstreamResponse(pool, key, conn, status, headers, length, chunked, keep_alive)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    return str(exc) or type(exc).__name__

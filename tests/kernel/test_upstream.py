"""The proxy's HTTP/1.1 client against a scripted server: every way an answer may be framed,
when a connection is reused, and the refusals (bad framing, a too large head, silence)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from kernel.upstream import Upstream, UpstreamError, UpstreamResponse, UpstreamTimeout

HOST = [(b"host", b"127.0.0.1")]


class Scripted:
    """Answers each request with the next canned reply (bytes, or None: close at once),
    closing the connection after the last; keeps each request's raw bytes and the
    connection it came on."""

    def __init__(self, *replies: bytes | None) -> None:
        self.replies = list(replies)
        self.requests: list[tuple[int, bytes]] = []
        self.connections = 0
        self.port = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        conn = self.connections
        try:
            while self.replies:
                head = await reader.readuntil(b"\r\n\r\n")
                body = b""
                if b"transfer-encoding: chunked" in head:
                    while (size := int((await reader.readuntil(b"\r\n"))[:-2], 16)):
                        body += (await reader.readexactly(size + 2))[:-2]
                    await reader.readexactly(2)
                elif b"content-length: " in head:
                    length = int(head.split(b"content-length: ")[1].split(b"\r\n")[0])
                    body = await reader.readexactly(length)
                self.requests.append((conn, head + body))
                reply = self.replies.pop(0)
                if reply is None:
                    break
                writer.write(reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()


@contextlib.asynccontextmanager
async def scripted(*replies: bytes | None) -> AsyncIterator[Scripted]:
    script = Scripted(*replies)
    server = await asyncio.start_server(script.handle, "127.0.0.1", 0)
    script.port = server.sockets[0].getsockname()[1]
    async with server:
        yield script


async def get(pool: Upstream, script: Scripted, method: str = "GET",
              body: bytes | AsyncIterator[bytes] | None = None) -> tuple[UpstreamResponse, bytes]:
    answer = await pool.request(method, "127.0.0.1", script.port, b"/x?y=1", HOST, body)
    return answer, await answer.read(1 << 20)


async def test_chunked_answers_with_extensions_and_trailers_keep_the_connection() -> None:
    chunked = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\n\r\n"
               b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n")
    async with scripted(chunked, chunked) as script:
        pool = Upstream()
        answer, body = await get(pool, script)
        assert (answer.status, body, answer.length) == (200, b"hello world", None)
        assert (b"x-a", b"1") in answer.headers  # names in lower case
        _, body = await get(pool, script)
        assert body == b"hello world"
        assert [conn for conn, _ in script.requests] == [1, 1]
        await pool.aclose()


async def test_an_answer_without_length_runs_to_the_end_and_is_not_reused() -> None:
    async with scripted(b"HTTP/1.1 200 OK\r\n\r\nall of it") as script:  # then closes
        pool = Upstream()
        _, body = await get(pool, script)
        assert body == b"all of it"
        assert pool._idle.get(("127.0.0.1", script.port)) in (None, [])
        await pool.aclose()


async def test_connection_close_http_1_0_and_interim_answers() -> None:
    async with scripted(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\n"
                        b"Content-Length: 2\r\nConnection: close\r\n\r\nok",
                        b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nold",
                        b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n") as script:
        pool = Upstream()
        answer, body = await get(pool, script)
        assert (answer.status, body) == (201, b"ok")
        answer, body = await get(pool, script)
        assert (answer.status, body) == (200, b"old")
        answer, body = await get(pool, script, "DELETE")
        assert (answer.status, body, answer.length) == (204, b"", 0)
        assert [conn for conn, _ in script.requests] == [1, 2, 3]  # none reused
        await pool.aclose()


async def test_request_bodies_are_framed() -> None:
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"

    async def parts() -> AsyncIterator[bytes]:
        yield b"abc"
        yield b""
        yield b"defg"

    async with scripted(ok, ok, ok) as script:
        pool = Upstream()
        await get(pool, script, "POST", b"payload")
        await get(pool, script, "PUT", parts())
        answer = await pool.request("HEAD", "127.0.0.1", script.port, b"/", HOST)
        assert answer.length == 0
        sent = [raw for _, raw in script.requests]
        assert sent[0].startswith(b"POST /x?y=1 HTTP/1.1\r\nhost: 127.0.0.1\r\n")
        assert sent[0].endswith(b"content-length: 7\r\n\r\npayload")
        assert b"transfer-encoding: chunked\r\n" in sent[1] and sent[1].endswith(b"abcdefg")
        await pool.aclose()


@pytest.mark.parametrize("reply, why", [
    (b"HTTP/2 200\r\n\r\n", "no HTTP/1.x"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
     "bad Content-Length"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "bad Content-Length"),
    (b"HTTP/1.1 200 OK\r\nBad Header: x\r\n\r\n", "bad header line"),
    (b"HTTP/1.1 200 OK\r\nX: " + b"y" * 70_000 + b"\r\n\r\n", "too large a head"),
    (b"HTTP/1.1 101 Switching Protocols\r\n\r\n", "switched protocols"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "bad chunk size"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", "short of its Content-Length"),
    (None, "without answering"),
])
async def test_broken_answers_are_upstream_errors(reply: bytes | None, why: str) -> None:
    async with scripted(reply) as script:
        pool = Upstream()
        with pytest.raises(UpstreamError, match=why):
            answer = await pool.request("GET", "127.0.0.1", script.port, b"/", HOST)
            await answer.read(1 << 20)  # the server closes after its last reply
        await pool.aclose()


async def test_silence_times_out_and_a_closed_port_is_refused() -> None:
    async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # never answers
        writer.close()

    server = await asyncio.start_server(mute, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        pool = Upstream(read_timeout=0.1)
        with pytest.raises(UpstreamTimeout, match=r"no answer within 0\.1 s"):
            await pool.request("GET", "127.0.0.1", port, b"/", HOST)
        await pool.aclose()
    with pytest.raises(UpstreamError, match="connection refused"):
        await Upstream().request("GET", "127.0.0.1", port, b"/", HOST)


async def test_a_body_past_the_limit_is_refused_and_a_bad_request_line_never_sent() -> None:
    async with scripted(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"x" * 100,
                        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                        b"64\r\n" + b"x" * 100 + b"\r\n0\r\n\r\n") as script:
        pool = Upstream()
        for _ in range(2):
            answer = await pool.request("GET", "127.0.0.1", script.port, b"/", HOST)
            with pytest.raises(OverflowError):
                await answer.read(50)
        with pytest.raises(ValueError, match="bad request line"):
            await pool.request("GET", "127.0.0.1", script.port, b"/a b", HOST)
        with pytest.raises(ValueError, match="bad header"):
            await pool.request("GET", "127.0.0.1", script.port, b"/", [(b"x", b"a\r\nb: c")])
        await pool.aclose()


async def test_a_known_length_larger_than_the_read_buffer_is_read_whole() -> None:
    big = bytes(range(256)) * 8192  # 2 MiB: past the reader's pause threshold
    async with scripted(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(big) + big) \
            as script:
        pool = Upstream()
        answer = await pool.request("GET", "127.0.0.1", script.port, b"/", HOST)
        assert answer.length == len(big) and await answer.read(4 * len(big)) == big
        await pool.aclose()

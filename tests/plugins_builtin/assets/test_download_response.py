"""Downloads with full HTTP semantics: validators, conditional requests, byte ranges
(single, suffix, multipart), 416, Content-Disposition for any name, storage errors before
the first byte, streaming in the provider's chunks, and real clients (curl resuming,
aria2c over four connections) on a real Hypercorn socket."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
import subprocess
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from urllib.parse import unquote

import anyio
import httpx
import pytest
from hypercorn.asyncio.run import worker_serve
from hypercorn.config import Sockets
from hypercorn.utils import wrap_app
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ff_plugin_sdk.storage import CHUNK_BYTES, BlobMissing, StorageUnavailable
from kernel.server import hypercorn_config, listen_socket
from plugins_builtin.assets.download import (
    CACHE_CONTROL,
    MAX_RANGES,
    blob_response,
    content_disposition,
    parse_range,
)

STORED_AT = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
LAST_MODIFIED = "Mon, 06 May 2024 07:08:09 GMT"
MEDIA_TYPE = "image/png"
SERVER_POLLS = 100  # x 0.1 s: the bound on waiting for the live server


@dataclass
class Blob:
    path: Path
    data: bytes
    sha256: str
    #: every (first, last) the provider was asked for
    opened: list[tuple[int, int]] = field(default_factory=list)
    #: seconds per chunk: a store slower than loopback, so parallel clients really overlap
    pace: float = 0.0

    def open_range(self, first: int, last: int) -> AsyncIterator[bytes]:
        self.opened.append((first, last))
        return read_file(self.path, first, last, self.pace)


async def read_file(path: Path, first: int, last: int, pace: float = 0.0
                    ) -> AsyncIterator[bytes]:
    """A filesystem provider's ``open_range`` in miniature: 1 MiB reads."""
    async with await anyio.open_file(path, "rb") as file:
        await file.seek(first)
        remaining = last - first + 1
        while remaining > 0:
            chunk = await file.read(min(CHUNK_BYTES, remaining))
            if not chunk:
                return
            remaining -= len(chunk)
            if pace:
                await anyio.sleep(pace)
            yield chunk


def make_blob(folder: Path, size: int) -> Blob:
    data = os.urandom(size)
    path = folder / "blob.bin"
    path.write_bytes(data)
    return Blob(path, data, hashlib.sha256(data).hexdigest())


async def failing(exc: Exception) -> AsyncIterator[bytes]:
    raise exc
    yield b""  # an async generator, like a provider's


def make_app(blob: Blob, empty: Blob) -> Starlette:
    def serve(target: Blob, request: Request, open_range=None) -> Response:
        return blob_response(
            request, open_range=open_range or target.open_range, size=len(target.data),
            etag=target.sha256, last_modified=STORED_AT,
            filename=request.query_params.get("name", "naïve café.png"), media_type=MEDIA_TYPE)

    async def download(request: Request) -> Response:
        return serve(blob, request)

    async def download_empty(request: Request) -> Response:
        return serve(empty, request)

    async def missing(request: Request) -> Response:
        return serve(blob, request, lambda a, b: failing(BlobMissing("blob abc is gone")))

    async def unavailable(request: Request) -> Response:
        return serve(blob, request,
                     lambda a, b: failing(StorageUnavailable("s3 endpoint unreachable")))

    return Starlette(routes=[
        Route("/blob", download, methods=["GET", "HEAD"]),
        Route("/empty", download_empty, methods=["GET", "HEAD"]),
        Route("/missing", missing, methods=["GET", "HEAD"]),
        Route("/unavailable", unavailable, methods=["GET", "HEAD"]),
    ])


@pytest.fixture
def blob(tmp_path: Path) -> Blob:
    (tmp_path / "big").mkdir()
    return make_blob(tmp_path / "big", 3 * CHUNK_BYTES + 12345)


@pytest.fixture
def empty(tmp_path: Path) -> Blob:
    (tmp_path / "empty").mkdir()
    return make_blob(tmp_path / "empty", 0)


@pytest.fixture
async def client(blob: Blob, empty: Blob) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=make_app(blob, empty))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


def size_of(blob: Blob) -> int:
    return len(blob.data)


def assert_envelope(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    assert body["error"]["details"] == []


# --- whole body --------------------------------------------------------------------------
async def test_get_sends_the_bytes_and_every_header(client, blob) -> None:
    response = await client.get("/blob")
    assert response.status_code == 200
    assert response.content == blob.data
    headers = response.headers
    assert headers["etag"] == f'"{blob.sha256}"'
    assert headers["last-modified"] == LAST_MODIFIED
    assert headers["accept-ranges"] == "bytes"
    assert headers["content-length"] == str(size_of(blob))
    assert headers["content-type"] == MEDIA_TYPE
    assert headers["cache-control"] == CACHE_CONTROL
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["content-disposition"].startswith('attachment; filename="naive cafe.png"')
    assert "content-range" not in headers
    assert blob.opened == [(0, size_of(blob) - 1)]  # one read of the whole, no re-opening


async def test_head_has_get_s_headers_no_body_and_reads_nothing(client, blob) -> None:
    got = await client.get("/blob")
    blob.opened.clear()
    head = await client.head("/blob")
    assert head.status_code == 200
    assert head.content == b""
    assert dict(head.headers) == dict(got.headers)
    assert blob.opened == []
    ranged = await client.head("/blob", headers={"Range": "bytes=10-19"})
    assert ranged.status_code == 206
    assert ranged.headers["content-range"] == f"bytes 10-19/{size_of(blob)}"
    assert ranged.headers["content-length"] == "10"
    assert blob.opened == []


async def test_inline_disposition(blob) -> None:
    async def endpoint(request: Request) -> Response:
        return blob_response(request, open_range=blob.open_range, size=size_of(blob),
                             etag=blob.sha256, last_modified="2024-05-06T07:08:09.5Z",
                             filename="a.png", media_type="image/png", inline=True)

    transport = httpx.ASGITransport(app=Starlette(routes=[Route("/", endpoint)]))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        response = await c.get("/")
    assert response.headers["content-disposition"] == (
        "inline; filename=\"a.png\"; filename*=UTF-8''a.png")
    assert response.headers["last-modified"] == LAST_MODIFIED  # RFC 3339 in, IMF-fixdate out


# --- single ranges ------------------------------------------------------------------------
SIZE = 3 * CHUNK_BYTES + 12345


@pytest.mark.parametrize(("header", "first", "last"), [
    ("bytes=0-99", 0, 99),
    ("bytes=5-5", 5, 5),
    ("bytes=1000-", 1000, SIZE - 1),
    ("bytes=-500", SIZE - 500, SIZE - 1),
    ("bytes=100-99999999999", 100, SIZE - 1),  # the end is clamped
    ("bytes=-99999999999", 0, SIZE - 1),  # a suffix longer than the blob: all of it
    ("bytes=1048000-2098000", 1048000, 2098000),  # across chunk boundaries
    ("BYTES = 7-8", 7, 8),  # the unit is case-insensitive
    ("bytes=7-8,", 7, 8),  # an empty list element is ignored
], ids=["first-last", "one-byte", "open-ended", "suffix", "clamped-end", "suffix-too-long",
        "across-chunks", "unit-case", "empty-element"])
async def test_a_single_range_is_a_206_with_content_range(client, blob, header, first,
                                                          last) -> None:
    response = await client.get("/blob", headers={"Range": header})
    assert response.status_code == 206
    assert response.headers["content-range"] == f"bytes {first}-{last}/{SIZE}"
    assert response.headers["content-length"] == str(last - first + 1)
    assert response.headers["content-type"] == MEDIA_TYPE
    assert response.headers["etag"] == f'"{blob.sha256}"'
    assert response.content == blob.data[first:last + 1]
    assert blob.opened == [(first, last)]  # the provider reads only the range


# --- multiple ranges ----------------------------------------------------------------------
def parse_byteranges(response: httpx.Response) -> list[tuple[dict[str, str], bytes]]:
    """The parts of a ``multipart/byteranges`` body, checked strictly against RFC 2046."""
    match = re.fullmatch(r"multipart/byteranges; boundary=([0-9A-Za-z'()+_,\-./:=?]{1,70})",
                         response.headers["content-type"])
    assert match, response.headers["content-type"]
    delimiter = b"--" + match.group(1).encode()
    body = response.content
    assert int(response.headers["content-length"]) == len(body)
    assert body.startswith(delimiter + b"\r\n")
    assert body.endswith(b"\r\n" + delimiter + b"--\r\n")
    inner = body[len(delimiter) + 2:-(len(delimiter) + 6)]
    parts = []
    for raw in inner.split(b"\r\n" + delimiter + b"\r\n"):
        head, _, data = raw.partition(b"\r\n\r\n")
        headers = {}
        for line in head.decode("ascii").split("\r\n"):
            name, _, value = line.partition(": ")
            headers[name.lower()] = value
        parts.append((headers, data))
    return parts


@pytest.mark.parametrize(("header", "expected"), [
    ("bytes=0-9,100-199,-10", [(0, 9), (100, 199), (SIZE - 10, SIZE - 1)]),
    ("bytes=0-99, 50-149, 150-159, 2000000-2100000",  # overlapping and adjacent: coalesced
     [(0, 159), (2000000, 2100000)]),
    ("bytes=500-509,0-9", [(0, 9), (500, 509)]),  # answered in ascending order
    ("bytes=0-9,20-29,99999999-", [(0, 9), (20, 29)]),  # the unsatisfiable one is dropped
], ids=["three", "coalesced", "sorted", "unsatisfiable-dropped"])
async def test_multiple_ranges_are_multipart_byteranges(client, blob, header,
                                                        expected) -> None:
    response = await client.get("/blob", headers={"Range": header})
    assert response.status_code == 206
    assert "content-range" not in response.headers
    parts = parse_byteranges(response)
    assert [h["content-range"] for h, _ in parts] == [
        f"bytes {a}-{b}/{SIZE}" for a, b in expected]
    assert [h["content-type"] for h, _ in parts] == [MEDIA_TYPE] * len(expected)
    assert [data for _, data in parts] == [blob.data[a:b + 1] for a, b in expected]
    assert blob.opened == expected


async def test_multiple_ranges_head_has_the_same_length(client, blob) -> None:
    header = {"Range": "bytes=0-9,100-199"}
    head = await client.head("/blob", headers=header)
    get = await client.get("/blob", headers=header)
    assert head.status_code == 206 and head.content == b""
    assert head.headers["content-length"] == get.headers["content-length"]
    assert head.headers["content-type"].startswith("multipart/byteranges; boundary=")


async def test_ranges_that_coalesce_to_one_are_a_single_part(client, blob) -> None:
    response = await client.get("/blob", headers={"Range": "bytes=0-9,10-19,5-15"})
    assert response.status_code == 206
    assert response.headers["content-type"] == MEDIA_TYPE
    assert response.headers["content-range"] == f"bytes 0-19/{SIZE}"
    assert response.content == blob.data[:20]


async def test_many_overlapping_ranges_cannot_amplify_the_body(client, blob) -> None:
    header = "bytes=" + ",".join(["0-"] * MAX_RANGES)
    response = await client.get("/blob", headers={"Range": header})
    assert response.status_code == 206
    assert response.headers["content-range"] == f"bytes 0-{SIZE - 1}/{SIZE}"
    assert blob.opened == [(0, SIZE - 1)]


async def test_more_than_max_ranges_is_ignored(client, blob) -> None:
    header = "bytes=" + ",".join(f"{i * 10}-{i * 10 + 1}" for i in range(MAX_RANGES + 1))
    response = await client.get("/blob", headers={"Range": header})
    assert response.status_code == 200
    assert response.content == blob.data
    exactly = "bytes=" + ",".join(f"{i * 10}-{i * 10 + 1}" for i in range(MAX_RANGES))
    response = await client.get("/blob", headers={"Range": exactly})
    assert response.status_code == 206 and len(parse_byteranges(response)) == MAX_RANGES


# --- unsatisfiable and malformed ------------------------------------------------------------
@pytest.mark.parametrize("header", [
    f"bytes={SIZE}-", f"bytes={SIZE}-{SIZE + 10}", "bytes=99999999-", "bytes=-0",
    f"bytes={SIZE}-,{SIZE + 5}-{SIZE + 9}",
])
async def test_unsatisfiable_is_416_with_the_size_and_the_envelope(client, blob,
                                                                   header) -> None:
    response = await client.get("/blob", headers={"Range": header})
    assert_envelope(response, 416, "range_not_satisfiable")
    assert response.headers["content-range"] == f"bytes */{SIZE}"
    assert blob.opened == []


@pytest.mark.parametrize("header", [
    "items=0-5", "bytes", "bytes=", "bytes=abc", "bytes=5-2", "bytes=-", "bytes=1-2-3",
    "bytes=--5", "bytes=+1-2", "bytes=1- 2", "bytes=0x10-20", "bytes=-5-", "bytes=0-9,x",
    "bytes=٣-٥".encode(),  # Arabic-Indic digits are not DIGIT
    "bytes=²-³".encode("latin-1"),
    "bytes=99999999999999999999-",  # past 64 bits
    "bytes=0-99999999999999999999",
    "bytes=9223372036854775808-",  # 2**63
    "bytes=-18446744073709551616",
    "bytes=" + "9" * 5000 + "-",  # past int()'s digit limit
    "bytes=0-1;2-3",
], ids=lambda h: repr(h)[:40])
async def test_a_malformed_range_is_ignored(client, blob, header) -> None:
    response = await client.get("/blob", headers={"Range": header})
    assert response.status_code == 200
    assert response.content == blob.data
    assert "content-range" not in response.headers


def test_parse_range_takes_ascii_digits_only() -> None:
    assert parse_range("bytes=3-5", 10) == [(3, 5)]
    assert parse_range("bytes=٣-٥", 10) is None


# --- If-Range -----------------------------------------------------------------------------
async def test_if_range(client, blob) -> None:
    async def get(if_range: str) -> httpx.Response:
        return await client.get("/blob", headers={"Range": "bytes=0-9", "If-Range": if_range})

    later = format_datetime(STORED_AT.replace(microsecond=0) + timedelta(seconds=1),
                            usegmt=True)
    assert (await get(f'"{blob.sha256}"')).status_code == 206
    assert (await get(LAST_MODIFIED)).status_code == 206
    assert (await get("Monday, 06-May-24 07:08:09 GMT")).status_code == 206  # RFC 850 form
    for stale in ['"0123"', f'W/"{blob.sha256}"', later, "not a date", f"{blob.sha256}"]:
        response = await get(stale)
        assert response.status_code == 200, stale
        assert response.content == blob.data
    # If-Range without Range changes nothing
    plain = await client.get("/blob", headers={"If-Range": '"0123"'})
    assert plain.status_code == 200


# --- If-None-Match / If-Modified-Since / If-Match ------------------------------------------
@pytest.mark.parametrize("header", [
    "{tag}", "*", '"aaa", {tag}', 'W/{tag}', '"x",W/{tag} , "y"', '"a,b", {tag}',
])
async def test_if_none_match_is_304_with_the_etag(client, blob, header) -> None:
    tag = f'"{blob.sha256}"'
    for method in ("GET", "HEAD"):
        response = await client.request(method, "/blob",
                                         headers={"If-None-Match": header.format(tag=tag)})
        assert response.status_code == 304
        assert response.content == b""
        assert response.headers["etag"] == tag
        assert response.headers["cache-control"] == CACHE_CONTROL
        assert "content-length" not in response.headers
    assert blob.opened == []


@pytest.mark.parametrize("header", ['"nope"', 'W/"nope"', "garbage", f'"{"0" * 64}"'])
async def test_if_none_match_not_matching_sends_the_body(client, blob, header) -> None:
    response = await client.get("/blob", headers={"If-None-Match": header})
    assert response.status_code == 200 and response.content == blob.data


async def test_if_modified_since(client, blob) -> None:
    def since(delta: int) -> dict[str, str]:
        moment = STORED_AT.replace(microsecond=0) + timedelta(seconds=delta)
        return {"If-Modified-Since": format_datetime(moment, usegmt=True)}

    assert (await client.get("/blob", headers=since(0))).status_code == 304
    assert (await client.get("/blob", headers=since(3600))).status_code == 304
    earlier = await client.get("/blob", headers=since(-1))
    assert earlier.status_code == 200 and earlier.content == blob.data
    garbage = await client.get("/blob", headers={"If-Modified-Since": "yesterday"})
    assert garbage.status_code == 200
    # If-None-Match wins (RFC 9110 §13.2.2): a stale tag means a body whatever the date
    both = await client.get("/blob", headers={**since(3600), "If-None-Match": '"old"'})
    assert both.status_code == 200 and both.content == blob.data


async def test_if_match_and_if_unmodified_since(client, blob) -> None:
    tag = f'"{blob.sha256}"'
    assert (await client.get("/blob", headers={"If-Match": tag})).status_code == 200
    assert (await client.get("/blob", headers={"If-Match": "*"})).status_code == 200
    for header in ('"other"', f"W/{tag}"):  # If-Match compares strongly
        assert_envelope(await client.get("/blob", headers={"If-Match": header}), 412,
                        "precondition_failed")
    assert (await client.get("/blob", headers={"If-Unmodified-Since": LAST_MODIFIED})
            ).status_code == 200
    assert_envelope(await client.get(
        "/blob", headers={"If-Unmodified-Since": "Mon, 06 May 2024 07:08:08 GMT"}), 412,
        "precondition_failed")
    assert blob.opened == [(0, SIZE - 1), (0, SIZE - 1), (0, SIZE - 1)]


# --- an empty blob ------------------------------------------------------------------------
async def test_an_empty_blob(client, empty) -> None:
    response = await client.get("/empty")
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["content-length"] == "0"
    assert response.headers["etag"] == f'"{hashlib.sha256(b"").hexdigest()}"'
    for header in ("bytes=0-", "bytes=0-0", "bytes=-0"):
        ranged = await client.get("/empty", headers={"Range": header})
        assert_envelope(ranged, 416, "range_not_satisfiable")
        assert ranged.headers["content-range"] == "bytes */0"
    # a non-zero suffix of nothing is satisfiable (RFC 9110 §14.1.1) but has no 206 form
    suffix = await client.get("/empty", headers={"Range": "bytes=-5"})
    assert suffix.status_code == 200 and suffix.content == b""
    assert empty.opened == []


# --- file names ---------------------------------------------------------------------------
NAMES = {
    "naïve café.png": "naive cafe.png",
    "😀.bin": "_.bin",
    "東京.jpg": "__.jpg",
    'a"b;c\r\n.txt': "a_b;c__.txt",
    "back\\slash/and%41.txt": "back_slash_and_41.txt",
    "plain-name_1.txt": "plain-name_1.txt",
    "tab\there\x7f.txt": "tab_here_.txt",
    "": "download",
}


@pytest.mark.parametrize("name", list(NAMES), ids=repr)
def test_content_disposition_any_name(name: str) -> None:
    header = content_disposition(name)
    assert header.isascii() and header.isprintable()
    match = re.fullmatch(r"attachment; filename=\"([^\"\\]*)\"; filename\*=UTF-8''"
                         r"([A-Za-z0-9!#$&+\-.^_`|~%]*)", header)
    assert match, header
    assert match.group(1) == NAMES[name]
    assert unquote(match.group(2), encoding="utf-8", errors="strict") == (name or "download")


async def test_content_disposition_over_http(client) -> None:
    for name in NAMES:
        response = await client.head("/blob", params={"name": name})
        assert response.headers["content-disposition"] == content_disposition(name)
    assert content_disposition("x.png", inline=True).startswith('inline; filename="x.png"')
    # a lone surrogate (an undecodable file-system name) is replaced, not a crash
    assert content_disposition("a\udcff.txt").endswith("filename*=UTF-8''a%3F.txt")


# --- storage errors -----------------------------------------------------------------------
async def test_a_missing_blob_is_404_before_any_byte(client) -> None:
    assert_envelope(await client.get("/missing"), 404, "blob_missing")
    assert_envelope(await client.get("/missing", headers={"Range": "bytes=0-9,20-29"}), 404,
                    "blob_missing")


async def test_unavailable_storage_is_503_before_any_byte(client) -> None:
    response = await client.get("/unavailable", headers={"Range": "bytes=5-"})
    assert_envelope(response, 503, "storage_unavailable")
    assert "s3 endpoint unreachable" in response.json()["error"]["message"]


@dataclass
class Recorder:
    """An ASGI server in miniature: records what the app sends."""

    messages: list[dict] = field(default_factory=list)
    disconnect_after: int | None = None  # body messages
    gone: anyio.Event = field(default_factory=anyio.Event)
    requested: bool = False

    async def receive(self) -> dict:
        if not self.requested:
            self.requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await self.gone.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict) -> None:
        await anyio.sleep(0)  # a real server's send awaits the socket
        self.messages.append(message)
        bodies = [m for m in self.messages if m["type"] == "http.response.body"]
        if self.disconnect_after is not None and len(bodies) >= self.disconnect_after:
            self.gone.set()

    @property
    def bodies(self) -> list[dict]:
        return [m for m in self.messages if m["type"] == "http.response.body"]


def scope(method: str = "GET", headers: list[tuple[bytes, bytes]] = ()) -> dict:
    return {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.1"},
            "http_version": "1.1", "method": method, "scheme": "http", "path": "/",
            "raw_path": b"/", "query_string": b"", "root_path": "",
            "headers": list(headers), "client": ("127.0.0.1", 1), "server": ("t", 80)}


def response_for(open_range, size: int, headers=()) -> Response:
    return blob_response(Request(scope("GET", headers)), open_range=open_range, size=size,
                         etag="ab" * 32, last_modified=STORED_AT, filename="x.bin",
                         media_type="application/octet-stream")


async def test_chunks_go_out_as_the_provider_yields_them() -> None:
    chunks = [os.urandom(CHUNK_BYTES) for _ in range(3)]

    async def provider(first: int, last: int) -> AsyncIterator[bytes]:
        for chunk in chunks:
            yield chunk

    server = Recorder()
    await response_for(provider, 3 * CHUNK_BYTES)(scope(), server.receive, server.send)
    assert server.messages[0]["status"] == 200
    # the very objects: nothing copied, joined or re-split; the last one ends the body
    assert [m["body"] for m in server.bodies] == chunks
    assert all(m["body"] is c for m, c in zip(server.bodies, chunks, strict=True))
    assert [m["more_body"] for m in server.bodies] == [True, True, False]


async def test_a_failure_mid_stream_cuts_the_response_with_one_log_line(caplog) -> None:
    closed = []

    async def provider(first: int, last: int) -> AsyncIterator[bytes]:
        try:
            yield b"x" * CHUNK_BYTES
            raise StorageUnavailable("the disk went away")
        finally:
            closed.append(True)

    server = Recorder()
    with caplog.at_level(logging.INFO, logger="faceforge.assets.download"):
        await response_for(provider, 2 * CHUNK_BYTES)(scope(), server.receive, server.send)
    assert server.messages[0]["status"] == 200
    assert [m["more_body"] for m in server.bodies] == [True]  # never "complete": cut short
    records = [r for r in caplog.records if r.name == "faceforge.assets.download"]
    assert len(records) == 1
    assert "the disk went away" in records[0].getMessage()
    assert records[0].exc_info is None  # no traceback
    assert closed == [True]


async def test_a_short_blob_cuts_the_response() -> None:
    async def provider(first: int, last: int) -> AsyncIterator[bytes]:
        yield b"x" * 10

    server = Recorder()
    await response_for(provider, 100)(scope(), server.receive, server.send)
    assert server.messages[0]["status"] == 200
    assert [m["more_body"] for m in server.bodies] == [True]


async def test_reading_stops_when_the_client_disconnects() -> None:
    read = []
    closed = []

    async def provider(first: int, last: int) -> AsyncIterator[bytes]:
        try:
            for _ in range(64):
                read.append(1)
                yield b"x" * CHUNK_BYTES
        finally:
            closed.append(True)

    server = Recorder(disconnect_after=2)
    with anyio.fail_after(10):
        await response_for(provider, 64 * CHUNK_BYTES)(scope(), server.receive, server.send)
    assert len(read) < 8
    assert closed == [True]
    assert all(m["more_body"] for m in server.bodies)


async def test_asgi_2_4_send_failing_stops_reading() -> None:
    read = []
    closed = []

    async def provider(first: int, last: int) -> AsyncIterator[bytes]:
        try:
            for _ in range(64):
                read.append(1)
                yield b"x" * CHUNK_BYTES
        finally:
            closed.append(True)

    sent = []

    async def send(message: dict) -> None:  # ASGI 2.4: send() raises once the client left
        if len(sent) == 3:
            raise OSError("connection reset")
        sent.append(message)

    server = Recorder()
    asgi = {**scope(), "asgi": {"version": "3.0", "spec_version": "2.4"}}
    await response_for(provider, 64 * CHUNK_BYTES)(asgi, server.receive, send)
    assert len(read) == 3 and closed == [True]


async def test_a_provider_failing_before_the_first_byte_is_closed() -> None:
    closed = []

    async def provider(first: int, last: int) -> AsyncIterator[bytes]:
        try:
            raise BlobMissing("gone")
            yield b""
        finally:
            closed.append(True)

    server = Recorder()
    await response_for(provider, 10, [(b"range", b"bytes=0-3,6-8")])(
        scope(), server.receive, server.send)
    assert server.messages[0]["status"] == 404
    assert closed == [True]


# --- real clients on a real socket ----------------------------------------------------------
@pytest.fixture
def live_blob(tmp_path: Path) -> Blob:
    (tmp_path / "live").mkdir()
    live = make_blob(tmp_path / "live", 8 * CHUNK_BYTES + 777)
    live.pace = 0.02
    return live


@pytest.fixture
def live_url(live_blob: Blob, empty: Blob) -> Iterator[str]:
    """The test app on Hypercorn, in a thread, on a free loopback port."""
    sock = listen_socket("127.0.0.1", 0)
    port = sock.getsockname()[1]
    config = hypercorn_config("127.0.0.1", port)
    app = wrap_app(make_app(live_blob, empty), config.wsgi_max_body_size, "asgi")
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    def run() -> None:
        loop.run_until_complete(worker_serve(app, config, sockets=Sockets([], [sock], []),
                                             shutdown_trigger=stop.wait))

    thread = threading.Thread(target=run, name="download-e2e", daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(SERVER_POLLS):  # the socket listens already; wait for the app
            try:
                if httpx.head(f"{base}/blob", timeout=2, trust_env=False).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            threading.Event().wait(0.1)
        else:
            pytest.fail("the download server did not answer")
        yield f"{base}/blob"
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(15)
        loop.close()
        sock.close()


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run(*command: str | Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(c) for c in command], capture_output=True, text=True,
                            timeout=120, env={**os.environ, "no_proxy": "*"})
    assert result.returncode == 0, result.stderr
    return result


@pytest.mark.e2e
def test_curl_resumes_a_download(live_url: str, live_blob: Blob, tmp_path: Path) -> None:
    part = tmp_path / "part"
    run("curl", "-sS", "-f", "-r", "0-3000000", "-o", part, live_url)
    assert part.stat().st_size == 3000001
    run("curl", "-sS", "-f", "-C", "-", "-o", part, live_url)
    assert part.stat().st_size == len(live_blob.data)
    assert sha256_of(part) == live_blob.sha256
    # several ranges: one multipart body, as long as its Content-Length says
    whole = tmp_path / "whole"
    out = run("curl", "-sS", "-f", "-D", "-", "-r", "0-9,20-29", "-o", whole, live_url)
    assert "multipart/byteranges" in out.stdout
    assert int(re.search(r"content-length: (\d+)", out.stdout, re.I).group(1)) == (
        whole.stat().st_size)


@pytest.mark.e2e
def test_aria2c_downloads_over_four_connections(live_url: str, live_blob: Blob,
                                                tmp_path: Path, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    run("aria2c", "--no-conf", "-q", "-x", "4", "-s", "4", "-k", "1M",
        "--file-allocation=none", "--allow-overwrite=true", "--auto-file-renaming=false",
        "-d", tmp_path, "-o", "got.bin", live_url)
    assert sha256_of(tmp_path / "got.bin") == live_blob.sha256
    # the first GET is cut short once the other connections took their ranges
    assert any(first > 0 for first, _ in live_blob.opened), live_blob.opened
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


@pytest.mark.parametrize(("media_type", "shown"), [
    ("image/png", True), ("video/mp4", True), ("application/pdf", True),
    ("text/plain", True), ("text/html", False), ("image/svg+xml", False),
    ("application/xhtml+xml", False), ("application/javascript", False)])
async def test_only_types_that_cannot_run_script_are_shown_inline(media_type: str,
                                                                  shown: bool) -> None:
    page = b"<script>alert(1)</script>"

    async def serve(request: Request) -> Response:
        return blob_response(request, open_range=lambda a, b: _one(page), size=len(page),
                             etag="e" * 64, last_modified=None, filename="page.html",
                             media_type=media_type, inline=True)

    app = Starlette(routes=[Route("/f", serve)])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://t") as client:
        r = await client.get("/f")
    assert r.headers["content-disposition"].startswith("inline" if shown else "attachment")
    # and whatever it is, a browser runs nothing from it with the user's session
    assert r.headers["content-security-policy"].startswith("sandbox")

"""``limits.max_body_bytes`` on every route: API JSON, UI forms and the sign-in form.  Past
the limit is a 413 (the JSON envelope for the API, the error page for the UI), refused as
soon as it is known: a declared length before any byte is read, a chunked body once the
bytes read pass it.  A route may declare a larger limit of its own."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import big_body
import httpx
import pytest

from kernel.config import load_settings
from tests.conftest import running
from tests.ui.browsing import SignedIn, sign_in, tags

from .conftest import StreamingASGITransport, assert_envelope, write_json
from .test_serve_e2e import clean_env, healthy, ports_json_port, serve_command, wait_for

LIMIT = 4096
CHUNK = 1024
MIB = 1024 * 1024


@pytest.fixture
def settings(home, write_core_json):
    write_core_json({"limits": {"max_body_bytes": LIMIT}})
    loaded = load_settings(home, env={})
    assert loaded.config.limits.body_bytes == LIMIT
    return loaded


@pytest.fixture
async def app(make_app):
    return make_app(extra_plugins=[("big_body", big_body)])


@pytest.fixture
async def ui(anon, settings) -> SignedIn:
    return await sign_in(anon, settings.install_token)


class Body:
    """A request body handed over ``CHUNK`` bytes at a time; counts what the server took."""

    def __init__(self, data: bytes = b"", *, size: int | None = None) -> None:
        self.data = data
        self.size = len(data) if size is None else size
        self.pulled = 0

    async def stream(self) -> AsyncIterator[bytes]:
        for start in range(0, self.size, CHUNK):
            self.pulled += 1
            part = self.data[start:start + CHUNK]
            yield part if self.data else b"x" * min(CHUNK, self.size - start)

    @property
    def chunks(self) -> int:
        return -(-self.size // CHUNK)


def entity_json(size: int) -> bytes:
    """A valid new entity as exactly ``size`` bytes of JSON."""
    shell = b'{"display_name": "Ada", "fields": {"notes": ""}}'
    body = shell[:-3] + b"x" * (size - len(shell)) + shell[-3:]
    assert len(body) == size
    json.loads(body)
    return body


def form(size: int, **fields: str) -> bytes:
    """An urlencoded form of exactly ``size`` bytes: ``fields`` and a padding field."""
    head = "&".join(f"{k}={v}" for k, v in fields.items()).encode() + b"&pad="
    assert size >= len(head)
    return head + b"x" * (size - len(head))


FORM = {"content-type": "application/x-www-form-urlencoded"}
JSON = {"content-type": "application/json"}


async def send(client: httpx.AsyncClient, path: str, data: bytes, how: str,
               headers: dict[str, str]) -> httpx.Response:
    """POST ``data`` with a Content-Length ("declared") or chunked, without one."""
    if how == "declared":
        return await client.post(path, content=data, headers=headers)
    request = client.build_request("POST", path, content=Body(data).stream(), headers=headers)
    assert "content-length" not in request.headers
    return await client.send(request)


async def entity_count(client: httpx.AsyncClient) -> int:
    response = await client.get("/v1/entities", params={"include_total": "true"})
    return response.json()["total"]


def assert_error_page(response: httpx.Response, limit: int = LIMIT) -> None:
    """The UI's 413: an HTML page inside the layout that says what the limit is."""
    assert response.status_code == 413, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert tags(response.text, "main", id="main")
    assert tags(response.text, "section", **{"class": "card narrow error-page"})
    assert "Too large" in response.text
    assert str(limit) in response.text


# --- the API ----------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["declared", "chunked"])
async def test_json_over_the_limit_is_413_and_changes_nothing(client, how) -> None:
    response = await send(client, "/v1/entities", entity_json(LIMIT + 1), how, JSON)
    error = assert_envelope(response, 413, "payload_too_large")
    assert str(LIMIT) in error["message"]
    assert await entity_count(client) == 0


@pytest.mark.parametrize("how", ["declared", "chunked"])
async def test_json_exactly_at_the_limit_is_accepted(client, how) -> None:
    response = await send(client, "/v1/entities", entity_json(LIMIT), how, JSON)
    assert response.status_code == 201, response.text
    assert len(response.json()["fields"]["notes"]) > LIMIT - 100
    assert await entity_count(client) == 1


async def test_far_too_large_json_is_413_too(client) -> None:
    response = await client.post("/v1/entities", content=b"[" * (3 * MIB), headers=JSON)
    assert_envelope(response, 413, "payload_too_large")


async def test_a_declared_length_over_the_limit_is_refused_before_reading_a_byte(
    client,
) -> None:
    body = Body(size=8 * MIB)
    request = client.build_request("POST", "/v1/entities", content=body.stream(),
                                   headers={**JSON, "content-length": str(body.size)})
    assert "transfer-encoding" not in request.headers
    response = await client.send(request)
    error = assert_envelope(response, 413, "payload_too_large")
    assert str(8 * MIB) in error["message"] and str(LIMIT) in error["message"]
    assert body.pulled == 0


async def test_a_chunked_body_is_refused_once_past_the_limit_not_read_to_its_end(
    client,
) -> None:
    body = Body(size=8 * MIB)
    request = client.build_request("POST", "/v1/entities", content=body.stream(),
                                   headers=JSON)
    assert "content-length" not in request.headers
    response = await client.send(request)
    assert_envelope(response, 413, "payload_too_large")
    # the server stopped taking chunks just past the limit, not after 8 MiB
    assert body.pulled <= LIMIT // CHUNK + 1 < body.chunks


async def test_an_unauthenticated_oversized_request_is_401_without_reading_it(anon) -> None:
    body = Body(size=8 * MIB)
    request = anon.build_request("POST", "/v1/entities", content=body.stream(), headers=JSON)
    assert_envelope(await anon.send(request), 401, "unauthorized")
    assert body.pulled == 0


async def test_a_route_that_never_reads_its_body_still_refuses_a_declared_oversize(
    app, client, settings
) -> None:
    """An event stream does not read its body: the declared length alone is refused, as a
    413 before the stream starts, not a stream that fails once it is under way."""
    async with httpx.AsyncClient(
        transport=StreamingASGITransport(app), base_url="http://testserver",
        headers={"Authorization": f"Bearer {settings.install_token}"},
    ) as streaming, asyncio.timeout(5):
        body = Body(size=LIMIT + 1)
        async with streaming.stream("GET", "/v1/events/stream", content=body.stream(),
                                    headers={"content-length": str(body.size)}) as response:
            await response.aread()
        assert_envelope(response, 413, "payload_too_large")
    assert (await client.get("/v1/ping")).status_code == 200


async def test_a_chunked_oversize_to_a_route_that_never_reads_it_is_no_server_error(
    app, client, settings, home
) -> None:
    """The first chunk alone passes the limit while the event stream is starting: whichever
    comes first, the caller gets a 413 or a stream that ends, never a server error."""
    async with httpx.AsyncClient(
        transport=StreamingASGITransport(app), base_url="http://testserver",
        headers={"Authorization": f"Bearer {settings.install_token}"},
    ) as streaming, asyncio.timeout(5):
        for _ in range(20):  # the two orders race: try both many times
            async def oversized() -> AsyncIterator[bytes]:
                yield b"x" * (LIMIT + 1)

            async with streaming.stream("GET", "/v1/events/stream",
                                        content=oversized()) as response:
                await response.aread()
            assert response.status_code in (200, 413)
    assert (await client.get("/v1/ping")).status_code == 200
    log = (home / "logs" / "core.log").read_text("utf-8")
    assert '"level":"ERROR"' not in log


# --- a route's own limit ----------------------------------------------------------------


@pytest.mark.parametrize("how", ["declared", "chunked"])
async def test_a_route_declaring_a_larger_limit_accepts_more(client, how) -> None:
    size = 10 * LIMIT
    assert size < big_body.BIG_LIMIT
    response = await send(client, "/v1/test/upload", b"x" * size, how,
                          {"content-type": "application/octet-stream"})
    assert response.status_code == 200, response.text
    assert response.json() == {"bytes": size}
    # the larger limit is that route's only
    response = await send(client, "/v1/entities", entity_json(size), how, JSON)
    assert_envelope(response, 413, "payload_too_large")


@pytest.mark.parametrize("how", ["declared", "chunked"])
async def test_a_routes_own_limit_is_enforced_too(client, how) -> None:
    octets = {"content-type": "application/octet-stream"}
    at = await send(client, "/v1/test/upload", b"x" * big_body.BIG_LIMIT, how, octets)
    assert at.json() == {"bytes": big_body.BIG_LIMIT}
    over = await send(client, "/v1/test/upload", b"x" * (big_body.BIG_LIMIT + 1), how, octets)
    error = assert_envelope(over, 413, "payload_too_large")
    assert str(big_body.BIG_LIMIT) in error["message"]


# --- UI forms and the sign-in form ------------------------------------------------------


@pytest.mark.parametrize("how", ["declared", "chunked"])
async def test_an_oversized_ui_form_is_a_413_page_and_changes_nothing(ui, client,
                                                                      how) -> None:
    data = form(LIMIT + 1, csrf_token=ui.csrf, display_name="Ada")
    response = await send(ui.client, "/ui/entities/new", data, how, FORM)
    assert_error_page(response)
    assert tags(response.text, "nav", **{"class": "mainnav"})  # still signed in, in the layout
    assert await entity_count(client) == 0
    # the same form within the limit works
    response = await send(ui.client, "/ui/entities/new",
                          form(LIMIT, csrf_token=ui.csrf, display_name="Ada"), how, FORM)
    assert response.status_code == 303, response.text
    assert await entity_count(client) == 1


async def test_an_oversized_htmx_form_gets_the_error_in_the_main_area(ui, client) -> None:
    response = await ui.client.post(
        "/ui/entities/new", content=form(LIMIT + 1, display_name="Ada"),
        headers={**FORM, "HX-Request": "true", "X-CSRF-Token": ui.csrf})
    assert response.status_code == 413
    assert response.headers["hx-retarget"] == "#main"
    assert "Too large" in response.text and str(LIMIT) in response.text
    assert await entity_count(client) == 0


async def test_a_ui_form_declaring_too_much_is_refused_before_reading_a_byte(ui) -> None:
    body = Body(size=8 * MIB)
    request = ui.client.build_request(
        "POST", "/ui/entities/new", content=body.stream(),
        headers={**FORM, "X-CSRF-Token": ui.csrf, "content-length": str(body.size)})
    assert_error_page(await ui.client.send(request))
    assert body.pulled == 0


@pytest.mark.parametrize("how", ["declared", "chunked"])
async def test_an_oversized_sign_in_is_a_413_page_and_signs_nobody_in(anon, settings,
                                                                      how) -> None:
    data = form(LIMIT + 1, token=settings.install_token, next="/ui/system")
    response = await send(anon, "/ui/login", data, how, FORM)
    assert_error_page(response)
    assert "set-cookie" not in response.headers
    assert not tags(response.text, "nav", **{"class": "mainnav"})
    assert "ff_session" not in anon.cookies
    assert (await anon.get("/ui/system")).status_code == 303
    # the same sign-in within the limit works
    response = await send(anon, "/ui/login",
                          form(LIMIT, token=settings.install_token, next="/ui/system"),
                          how, FORM)
    assert (response.status_code, response.headers["location"]) == (303, "/ui/system")
    assert (await anon.get("/ui/system")).status_code == 200


async def test_a_huge_sign_in_is_not_read_into_memory(anon) -> None:
    for headers in ({"content-length": str(64 * MIB)}, {}):
        body = Body(size=64 * MIB)
        request = anon.build_request("POST", "/ui/login", content=body.stream(),
                                     headers={**FORM, **headers})
        response = await anon.send(request)
        assert_error_page(response)
        assert body.pulled <= LIMIT // CHUNK + 1, headers
    assert "ff_session" not in anon.cookies


async def test_the_legacy_key_limits_forms_too(make_app, home) -> None:
    write_json(home / "config" / "core.json", {"limits": {"max_json_body_bytes": 512}})
    settings = load_settings(home, env={})
    app = make_app(settings=settings)
    async with running(app, None) as anon:
        response = await anon.post("/ui/login", content=form(513, token="x"), headers=FORM)
        assert_error_page(response, limit=512)
        response = await anon.post("/ui/login", content=form(512, token="x"), headers=FORM)
        assert response.status_code == 401  # read, and the token is wrong


# --- over a real socket -----------------------------------------------------------------


@pytest.fixture
def small_server(home: Path) -> Iterator[tuple[subprocess.Popen[str], int]]:
    write_json(home / "config" / "core.json", {"limits": {"max_body_bytes": LIMIT}})
    process = subprocess.Popen(serve_command(home, "--port", "0"), env=clean_env(),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        port = ports_json_port(process, home)
        wait_for(process, healthy(f"http://127.0.0.1:{port}"), "/healthz 200")
        yield process, port
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)


def exchange(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send ``request`` (possibly with an unfinished body) and read one response."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            assert chunk, f"connection closed before a response: {data!r}"
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in
                   (line.partition(":") for line in lines)}
        while len(body) < int(headers.get("content-length", 0)):
            chunk = conn.recv(65536)
            assert chunk, "connection closed in the middle of the response"
            body += chunk
    return int(status_line.split()[1]), headers, body


@pytest.mark.e2e
def test_serve_refuses_an_oversized_sign_in_without_waiting_for_the_body(
    small_server, home: Path
) -> None:
    process, port = small_server
    token = json.loads((home / "config" / "core.json").read_text("utf-8"))["auth"][
        "install_token"]
    start = (f"POST /ui/login HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
             "Content-Type: application/x-www-form-urlencoded\r\n").encode()
    prefix = f"token={token}&next=/ui/system&pad=".encode()

    # 50 MB declared, a few bytes sent: the answer comes without the rest
    status, headers, body = exchange(
        port, start + f"Content-Length: {50 * MIB}\r\n\r\n".encode() + prefix)
    assert status == 413
    assert headers["content-type"].startswith("text/html")
    assert "set-cookie" not in headers
    assert b"Too large" in body and str(LIMIT).encode() in body

    # chunked, never finished: the answer comes once the bytes sent pass the limit
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(part), part)
                      for part in [prefix] + [b"x" * CHUNK] * (LIMIT // CHUNK + 1))
    status, headers, body = exchange(port, start + b"Transfer-Encoding: chunked\r\n\r\n"
                                     + chunks)
    assert status == 413
    assert "set-cookie" not in headers
    assert b"Too large" in body

    # a route that never reads its body (an event stream): 413, not a broken stream
    status, headers, body = exchange(port, (
        f"GET /v1/events/stream HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: Bearer {token}\r\nContent-Length: {LIMIT + 1}\r\n\r\n").encode())
    assert status == 413
    assert json.loads(body)["error"]["code"] == "payload_too_large"

    # an event stream already under way when its chunked body passes the limit: it ends
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall((f"GET /v1/events/stream HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                      f"Authorization: Bearer {token}\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "10\r\n" + "x" * 16 + "\r\n").encode())
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = conn.recv(65536)
            assert chunk, received
            received += chunk
        assert received.startswith(b"HTTP/1.1 200")
        conn.sendall(b"%x\r\n%s\r\n" % (LIMIT, b"x" * LIMIT))
        while chunk := conn.recv(65536):  # until the server ends it (bounded by the timeout)
            received += chunk
            if received.endswith(b"0\r\n\r\n"):
                break

    # within the limit it signs in; and the server is still well
    ok = httpx.post(f"http://127.0.0.1:{port}/ui/login", trust_env=False, timeout=10,
                    data={"token": token, "next": "/ui/system"})
    assert ok.status_code == 303 and "ff_session" in ok.headers["set-cookie"]
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=15) == 0
    _, err = process.communicate()
    assert "Traceback" not in err
    log = (home / "logs" / "core.log").read_text("utf-8")
    assert '"level":"ERROR"' not in log.replace(" ", "")


@pytest.mark.parametrize(("limits", "expected"), [
    ({}, 2 * MIB),
    ({"max_json_body_bytes": 1000}, 1000),  # the earlier name alone
    ({"max_body_bytes": 9000, "max_json_body_bytes": 1000}, 9000),  # the new name wins
])
def test_which_limit_key_counts(home, write_core_json, limits, expected) -> None:
    write_core_json({"limits": limits})
    assert load_settings(home, env={}).config.limits.body_bytes == expected

"""The runner proxy against a real upstream (a Starlette app on Hypercorn, on a loopback
socket): what passes through, what never does, streaming both ways in flat memory, and the
envelopes for a dead or silent runner."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from hypercorn.asyncio.run import worker_serve
from hypercorn.config import Sockets
from hypercorn.utils import wrap_app
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from ff_plugin_sdk.types import Principal
from kernel.access import AccessMiddleware
from kernel.envelope import EXCEPTION_HANDLERS
from kernel.plugin_proxy import RunnerProxy, check_proxied_form_csrf
from kernel.runners import free_port
from kernel.server import hypercorn_config, listen_socket
from tests.kernel.conftest import assert_envelope, eventually

MB = 1024 * 1024
BIG = 20 * MB
PATTERN = bytes(range(256)) * 4096  # 1 MiB


# -- the runner's side -------------------------------------------------------------------
async def echo(request: Request) -> Response:
    body = await request.body()
    status = int(request.query_params.get("status", "200"))
    return JSONResponse({"method": request.method, "path": request.url.path,
                         "query": request.url.query, "body": body.decode(),
                         "headers": dict(request.headers.items()),
                         "port": request.client.port if request.client else None},
                        status_code=status,
                        headers={"X-Plugin": "yes", "Set-Cookie": "ff_session=stolen"})


async def no_content(request: Request) -> Response:
    return Response(status_code=204, headers={"X-Plugin": "none"})


async def sink(request: Request) -> Response:
    digest, size = hashlib.sha256(), 0
    async for chunk in request.stream():
        digest.update(chunk)
        size += len(chunk)
    return JSONResponse({"size": size, "sha256": digest.hexdigest(),
                         "length": request.headers.get("content-length")})


async def source(request: Request) -> Response:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(BIG // len(PATTERN)):
            yield PATTERN
    return StreamingResponse(chunks(), media_type="application/octet-stream")


async def broken(request: Request) -> Response:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"x" * 1000
        await asyncio.sleep(0)
        raise RuntimeError("the runner fell over mid-answer")
    return StreamingResponse(chunks(), headers={"content-length": request.query_params["size"]})


async def slow(request: Request) -> Response:
    await asyncio.Event().wait()  # never answers
    return Response()


async def page(request: Request) -> Response:
    if request.method == "POST":
        return HTMLResponse((await request.body()).decode(), status_code=201)
    prefix = request.headers.get("x-forwarded-prefix")
    return Response(f"<p>caf\u00e9 <a href='{prefix}/next'>next</a></p>",
                    media_type="text/html; charset=utf-8")


async def image(request: Request) -> Response:
    return Response(b"\x89PNG" + b"\0" * 2000, media_type="image/png")


RUNNER = Starlette(routes=[
    Route("/v1/plugins/demo/echo/{rest:path}", echo,
          methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]),
    Route("/v1/plugins/demo/empty", no_content, methods=["DELETE"]),
    Route("/v1/plugins/demo/sink", sink, methods=["POST"]),
    Route("/v1/plugins/demo/source", source),
    Route("/v1/plugins/demo/broken", broken),
    Route("/v1/plugins/demo/slow", slow),
    Route("/page", page, methods=["GET", "POST"]),
    Route("/image.png", image),
])


# -- Core's side -------------------------------------------------------------------------
SESSION = Principal(kind="session", scopes=frozenset(), name="ui", csrf_token="good-csrf")


class FakeAuth:
    """Stands in for AuthMiddleware: a session principal, and a pending CSRF check on a
    form post (the page checks the field)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope["ff.principal"] = SESSION
            if scope["method"] == "POST" and scope["path"].startswith("/ui"):
                scope["ff.csrf_pending"] = True
        await self.app(scope, receive, send)


def core_app(proxy: RunnerProxy, base_url: Callable[[], str]) -> Starlette:
    async def api(request: Request) -> Response:
        prefix = "/v1/plugins/demo"
        return await proxy.forward(request, base_url(), prefix + "/" +
                                   request.path_params["path"], prefix=prefix)

    async def ui(request: Request) -> Response:
        body = await check_proxied_form_csrf(request)
        got = await proxy.fetch_html(request, base_url(), "/" + request.path_params["path"],
                                     body=body, prefix="/ui/ext/demo")
        if got.text is None:
            return Response(got.body, status_code=got.status, headers=got.headers)
        return Response(f"<shell>{got.text}</shell>", status_code=got.status,
                        media_type="text/html")

    app = Starlette(routes=[
        Route("/v1/plugins/demo/{path:path}", api,
              methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]),
        Route("/ui/ext/demo/{path:path}", ui, methods=["GET", "POST"]),
    ], exception_handlers=EXCEPTION_HANDLERS)
    app.add_middleware(FakeAuth)
    app.add_middleware(AccessMiddleware, access_log=False)
    return app


@contextlib.asynccontextmanager
async def served(app: ASGIApp, keep_alive: float = 75) -> AsyncIterator[str]:
    """``app`` on Hypercorn on a loopback socket (listening before this yields)."""
    sock = listen_socket("127.0.0.1", 0)
    port = sock.getsockname()[1]
    config = hypercorn_config("127.0.0.1", port)
    config.graceful_timeout = 1
    config.keep_alive_timeout = keep_alive
    stop = asyncio.Event()
    server = asyncio.create_task(worker_serve(
        wrap_app(app, config.wsgi_max_body_size, "asgi"),  # type: ignore[arg-type]
        config, sockets=Sockets([], [sock], []), shutdown_trigger=stop.wait))
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop.set()
        try:
            async with asyncio.timeout(10):
                await server
        finally:
            sock.close()


Setup = tuple[httpx.AsyncClient, RunnerProxy]


@pytest.fixture
async def live() -> AsyncIterator[Callable[..., Awaitable[Any]]]:
    """``await live(**proxy_options)`` -> (client to a served Core-like app, its proxy),
    the runner served too; everything closed after the test."""
    stack = contextlib.AsyncExitStack()

    async def start(runner_url: str | None = None, keep_alive: float = 75,
                    **options: Any) -> Setup:
        if runner_url is None:
            runner_url = await stack.enter_async_context(served(RUNNER, keep_alive))
        proxy = RunnerProxy(**options)
        stack.push_async_callback(proxy.aclose)
        core_url = await stack.enter_async_context(
            served(core_app(proxy, lambda: runner_url)))
        client = await stack.enter_async_context(
            httpx.AsyncClient(base_url=core_url, timeout=30, trust_env=False))
        return client, proxy

    async with stack:
        yield start


# -- tests -------------------------------------------------------------------------------
async def test_method_query_body_status_and_headers_pass_through(live: Any) -> None:
    client, _ = await live()
    for method in ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"):
        r = await client.request(method, "/v1/plugins/demo/echo/a%20b/caf%C3%A9?x=1&y=%2F&y=2"
                                 "&status=202", content=b"payload" if method != "GET" else None,
                                 headers={"Content-Type": "text/plain", "X-Custom": "kept"})
        assert r.status_code == 202, r.text
        got = r.json()
        assert got["method"] == method
        assert got["path"] == "/v1/plugins/demo/echo/a b/caf\u00e9"
        assert got["query"] == "x=1&y=%2F&y=2&status=202"
        assert got["body"] == ("payload" if method != "GET" else "")
        assert got["headers"]["x-custom"] == "kept"
        assert got["headers"]["content-type"] == "text/plain"
        assert r.headers["x-plugin"] == "yes"
        assert r.headers["content-type"] == "application/json"
        assert "set-cookie" not in r.headers  # a plugin cannot set Core's cookies
        assert len(r.headers.get_list("date")) == 1 and len(r.headers.get_list("server")) == 1

    head = await client.head("/v1/plugins/demo/echo/x")
    assert head.status_code == 200 and head.content == b""
    assert int(head.headers["content-length"]) > 0
    gone = await client.delete("/v1/plugins/demo/empty")
    assert gone.status_code == 204 and gone.content == b"" and gone.headers["x-plugin"] == "none"

    async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: sent on chunked
        yield b"part one, "
        yield b"part two"
    r = await client.post("/v1/plugins/demo/echo/chunks", content=chunked())
    assert r.json()["body"] == "part one, part two"


async def test_credentials_are_stripped_and_who_is_calling_is_said(live: Any) -> None:
    client, _ = await live()
    r = await client.get("/v1/plugins/demo/echo/who", headers={
        "Authorization": "Bearer install-token", "X-FaceForge-Token": "install-token",
        "Cookie": "ff_session=abc", "X-CSRF-Token": "good-csrf",
        "X-FaceForge-Principal": "install_token:install", "X-Forwarded-For": "6.6.6.6",
        "X-Forwarded-Prefix": "/evil", "X-Correlation-ID": "req-42",
        "Connection": "keep-alive, X-Hop", "X-Hop": "hop-only"})
    headers = r.json()["headers"]
    for name in ("authorization", "x-faceforge-token", "cookie", "x-csrf-token", "x-hop"):
        assert name not in headers, name
    assert headers["x-faceforge-principal"] == "session:ui"
    assert headers["x-forwarded-for"] == "127.0.0.1"
    assert headers["x-forwarded-prefix"] == "/v1/plugins/demo"
    assert headers["x-forwarded-proto"] == "http"
    assert headers["x-forwarded-host"] == client.base_url.netloc.decode()
    assert headers["x-correlation-id"] == "req-42"
    assert r.headers["x-correlation-id"] == "req-42"  # Core's own, once
    assert len(r.headers.get_list("x-correlation-id")) == 1


async def test_keep_alive_connections_are_reused_and_stale_ones_replaced(live: Any) -> None:
    client, proxy = await live(keep_alive=0.3)
    ports = {(await client.get("/v1/plugins/demo/echo/n")).json()["port"] for _ in range(20)}
    assert len(ports) == 1  # one pooled connection served them all

    # the runner closes the idle connection; the next request notices and opens a new one
    idle = next(iter(proxy.upstream._idle.values()))[0]
    await eventually(idle.reader.at_eof, what="the runner closing the idle connection")
    r = await client.get("/v1/plugins/demo/echo/again")
    assert r.status_code == 200 and r.json()["port"] not in ports


async def test_a_big_body_streams_both_ways_in_flat_memory(live: Any) -> None:
    client, _ = await live()

    async def upload() -> AsyncIterator[bytes]:
        for _ in range(BIG // len(PATTERN)):
            yield PATTERN

    expected = hashlib.sha256(PATTERN * (BIG // len(PATTERN))).hexdigest()
    tracemalloc.start()
    try:
        r = await client.post("/v1/plugins/demo/sink", content=upload(),
                              headers={"Content-Length": str(BIG)})
        assert r.json() == {"size": BIG, "sha256": expected, "length": str(BIG)}
        digest, size = hashlib.sha256(), 0
        async with client.stream("GET", "/v1/plugins/demo/source") as down:
            assert down.status_code == 200
            assert down.headers["content-type"] == "application/octet-stream"
            async for chunk in down.aiter_raw():
                digest.update(chunk)
                size += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert size == BIG and digest.hexdigest() == expected
    # client, Core and runner all in this process: 20 MB each way, a few MB at any time
    assert peak < 10 * MB, f"peak {peak / MB:.1f} MB"


async def test_a_dead_runner_is_502_and_a_silent_one_504(live: Any) -> None:
    client, _ = await live(runner_url=f"http://127.0.0.1:{free_port()}")
    error = assert_envelope(await client.get("/v1/plugins/demo/echo/x"), 502,
                            "plugin_unavailable")
    assert "connection refused" in error["message"]
    assert_envelope(await client.post("/v1/plugins/demo/echo/x", content=b"x" * 100_000),
                    502, "plugin_unavailable")

    client, _ = await live(read_timeout=0.2)
    assert_envelope(await client.get("/v1/plugins/demo/slow"), 504, "plugin_timeout")
    # and the proxy still works afterwards
    assert (await client.get("/v1/plugins/demo/echo/x")).status_code == 200


async def test_a_runner_breaking_off_mid_answer_is_502_or_a_cut_response(live: Any) -> None:
    client, _ = await live()
    # a small answer is read whole before Core answers: the break is still a clean 502
    assert_envelope(await client.get("/v1/plugins/demo/broken?size=5000"), 502,
                    "plugin_unavailable")
    # a big one streams: the client sees it cut, never a complete-looking body
    with pytest.raises(httpx.RemoteProtocolError):
        await client.get("/v1/plugins/demo/broken?size=1000000")
    assert (await client.get("/v1/plugins/demo/echo/x")).status_code == 200


async def test_fetch_html_reads_pages_whole_and_passes_other_answers_on(live: Any) -> None:
    client, _ = await live()
    r = await client.get("/ui/ext/demo/page")
    assert r.status_code == 200
    assert r.text == "<shell><p>caf\u00e9 <a href='/ui/ext/demo/next'>next</a></p></shell>"
    img = await client.get("/ui/ext/demo/image.png")
    assert img.headers["content-type"] == "image/png" and img.content.startswith(b"\x89PNG")
    assert len(img.content) == 2004

    small, _ = await live(max_page_bytes=1000)
    assert_envelope(await small.get("/ui/ext/demo/image.png"), 502,
                    "plugin_response_too_large")


async def test_a_proxied_form_post_checks_csrf_and_passes_the_body_on(live: Any) -> None:
    client, _ = await live()
    form = "csrf_token=good-csrf&name=caf%C3%A9&tags=a&tags=b"
    r = await client.post("/ui/ext/demo/page", content=form,
                          headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 201 and r.text == f"<shell>{form}</shell>"  # unchanged

    wrong = await client.post("/ui/ext/demo/page", content="csrf_token=bad&name=x",
                              headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert_envelope(wrong, 403, "csrf_failed")
    missing = await client.post("/ui/ext/demo/page", files={"f": ("a.txt", b"data")})
    assert_envelope(missing, 403, "csrf_failed")
    multipart = await client.post("/ui/ext/demo/page", data={"csrf_token": "good-csrf"},
                                  files={"f": ("a.txt", b"data")})
    assert multipart.status_code == 201 and "data" in multipart.text
    big = await client.post("/ui/ext/demo/page", content=b"csrf_token=good-csrf&x=" +
                            b"y" * (2 * MB),
                            headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert_envelope(big, 413, "payload_too_large")

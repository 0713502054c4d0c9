"""The plugin proxy phase: a request through Core's runner proxy beside the same request
sent to the runner directly (issue 11: <= 1 ms p50 over the runner's own latency).

Two processes besides the benchmark client, each Starlette on Hypercorn on loopback:

- the runner (``python -m tests.bench.plugin_proxy runner PORT``): ``GET /healthz`` (a small
  JSON answer), ``POST /items`` (echoes a JSON body), ``POST /upload`` (reads a body to its
  end), ``GET /download?mb=N`` (streams N MiB);
- a Core-like app (``python -m tests.bench.plugin_proxy core PORT RUNNER_URL``): Core's
  access middleware (correlation ids), a principal in the scope, the kernel's error
  handlers, and ``/v1/plugins/demo/{path}`` forwarding through
  :class:`kernel.plugin_proxy.RunnerProxy`.  For comparison, ``/httpx/{path}`` forwards
  through a plain ``httpx.AsyncClient`` and ``/healthz`` answers itself (the hop without any
  forwarding).

One keep-alive client sends sequential requests; each round measures direct then proxied
back to back; overhead = proxied p50 - direct p50 of the same round, median over rounds.
Informational: p95s, the httpx and no-forwarding variants, the Core-like process's CPU per
request, and streaming MB/s both ways, direct and proxied.
"""

from __future__ import annotations

import asyncio
import signal
import statistics
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from tests.bench.load import client_for
from tests.bench.server import BenchError, Server

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from tests.bench.run import Bench

BODY = b'{"status":"ok","version":"0.1.0"}'
ITEM = b'{"display_name":"Ada Lovelace","tags":["math","poet"],"fields":{"born":1815}}'
MIB = 1024 * 1024
TARGET_OVERHEAD_MS = 1.0
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]


# -- the two server processes ------------------------------------------------------------
def runner_app() -> Starlette:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response, StreamingResponse
    from starlette.routing import Route

    async def healthz(request: Request) -> Response:
        return Response(BODY, media_type="application/json")

    async def items(request: Request) -> Response:
        return Response(await request.body(), status_code=201, media_type="application/json")

    async def upload(request: Request) -> Response:
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
        return JSONResponse({"bytes": size})

    async def download(request: Request) -> Response:
        block = b"\xab" * MIB
        count = int(request.query_params["mb"])

        async def blocks() -> AsyncIterator[bytes]:
            for _ in range(count):
                yield block
        return StreamingResponse(blocks(), media_type="application/octet-stream",
                                 headers={"content-length": str(count * MIB)})

    return Starlette(routes=[Route("/healthz", healthz), Route("/items", items, methods=["POST"]),
                             Route("/upload", upload, methods=["POST"]),
                             Route("/download", download)])


def core_app(runner_url: str) -> Starlette:
    from starlette.applications import Starlette
    from starlette.background import BackgroundTask
    from starlette.requests import Request
    from starlette.responses import Response, StreamingResponse
    from starlette.routing import Route
    from starlette.types import ASGIApp, Receive, Scope, Send

    from ff_plugin_sdk.types import Principal
    from kernel.access import AccessMiddleware
    from kernel.envelope import EXCEPTION_HANDLERS
    from kernel.plugin_proxy import RunnerProxy

    proxy = RunnerProxy()
    plain = httpx.AsyncClient(base_url=runner_url, timeout=60)
    principal = Principal(kind="install_token", scopes=frozenset(), name="install")
    skip = {"host", "content-length", "connection", "transfer-encoding", "authorization"}

    async def forward(request: Request) -> Response:
        return await proxy.forward(request, runner_url, "/" + request.path_params["path"],
                                   prefix="/v1/plugins/demo")

    async def via_httpx(request: Request) -> Response:
        sent = plain.build_request(
            request.method, "/" + request.path_params["path"], params=request.url.query,
            headers=[(k, v) for k, v in request.headers.items() if k not in skip],
            content=await request.body() or None)
        answer = await plain.send(sent, stream=True)
        return StreamingResponse(
            answer.aiter_raw(), status_code=answer.status_code,
            headers={k: v for k, v in answer.headers.items() if k not in skip},
            background=BackgroundTask(answer.aclose))

    async def healthz(request: Request) -> Response:
        return Response(BODY, media_type="application/json")

    class WithPrincipal:
        def __init__(self, app: ASGIApp) -> None:
            self.app = app

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            scope["ff.principal"] = principal
            await self.app(scope, receive, send)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await proxy.aclose()
        await plain.aclose()

    app = Starlette(routes=[
        Route("/healthz", healthz),
        Route("/v1/plugins/demo/{path:path}", forward, methods=METHODS),
        Route("/httpx/{path:path}", via_httpx, methods=METHODS),
    ], exception_handlers=EXCEPTION_HANDLERS, lifespan=lifespan)
    app.add_middleware(WithPrincipal)
    app.add_middleware(AccessMiddleware, access_log=False)
    return app


async def _serve(app: Starlette, port: int) -> None:
    """Hypercorn with Core's settings on ``port`` until SIGTERM."""
    from hypercorn.asyncio.run import worker_serve
    from hypercorn.config import Sockets
    from hypercorn.utils import wrap_app

    from kernel.server import hypercorn_config, listen_socket

    sock = listen_socket("127.0.0.1", port)
    config = hypercorn_config("127.0.0.1", port)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await worker_serve(wrap_app(app, config.wsgi_max_body_size, "asgi"),  # type: ignore[arg-type]
                       config, sockets=Sockets([], [sock], []), shutdown_trigger=stop.wait)


class _App(Server):
    """One of this module's servers, as a child process on a free port."""

    def __init__(self, home: Path, role: str, *args: str) -> None:
        super().__init__(home)
        self.role, self.args = role, args
        self.log_path = home / f"bench-{role}.log"

    def start(self, timeout: float = 60.0) -> float:
        from kernel.server import reserve_port

        self.home.mkdir(parents=True, exist_ok=True)
        chosen = reserve_port("127.0.0.1", 0)
        return self._start([sys.executable, "-m", "tests.bench.plugin_proxy", self.role,
                            str(chosen), *self.args], lambda: chosen, timeout)


# -- measuring ---------------------------------------------------------------------------
def _blocks(total: int) -> Iterator[bytes]:
    block = b"\xcd" * MIB
    for _ in range(total // MIB):
        yield block


def _mb_per_s(client: httpx.Client, method: str, url: str, total: int) -> float:
    started = time.perf_counter()
    if method == "POST":
        r = client.post(url, content=_blocks(total), headers={"content-length": str(total)})
        if r.status_code != 200 or r.json()["bytes"] != total:
            raise BenchError(f"upload through {url}: {r.status_code} {r.text[:300]}")
    else:
        size = 0
        with client.stream("GET", url) as r:
            for chunk in r.iter_raw(MIB):
                size += len(chunk)
        if size != total:
            raise BenchError(f"download through {url}: {size} bytes, expected {total}")
    return round(total / MIB / (time.perf_counter() - started), 1)


def bench_plugin_proxy(root: Path, bench: Bench, progress: Callable[[str], None],
                       quick: bool) -> None:
    n = 500 if quick else 2_000
    rounds = 1 if quick else 3
    stream_bytes = (64 if quick else 256) * MIB
    home = root / "plugin-proxy"
    out: dict[str, Any] = {"method": __doc__.split("\n\n", 2)[2].strip() if __doc__ else ""}
    with _App(home, "runner") as runner:
        runner.start()
        with _App(home, "core", runner.base_url) as core, client_for("", "unused") as client:
            core.start()
            progress(f"plugin proxy: runner on {runner.base_url}, Core-like app on "
                     f"{core.base_url}")
            scenarios: dict[str, tuple[str, bytes | None, int]] = {
                "get": ("GET", None, 200), "post_json": ("POST", ITEM, 201)}
            results: dict[str, Any] = {}
            for name, (method, body, status) in scenarios.items():
                path = "/healthz" if method == "GET" else "/items"
                routes = {"direct": (runner, runner.base_url + path),
                          "proxied": (core, core.base_url + "/v1/plugins/demo" + path),
                          "httpx_forwarding": (core, core.base_url + "/httpx" + path)}
                if method == "GET":
                    routes["core_like_app_alone"] = (core, core.base_url + "/healthz")
                runs: dict[str, list[dict[str, Any]]] = {kind: [] for kind in routes}
                for i in range(rounds):
                    for kind, (server, url) in routes.items():
                        requests = [(method, url, body)] * n
                        runs[kind].append(bench.timed(
                            f"plugin proxy {name}: {kind} {method} {url} [round {i + 1}/"
                            f"{rounds}]", client, server, requests,
                            requests[:max(50, n // 10)], expect=status, retries=1))
                overheads = [p["p50_ms"] - d["p50_ms"]
                             for p, d in zip(runs["proxied"], runs["direct"], strict=True)]
                result: dict[str, Any] = {
                    kind: _median_round(r) for kind, r in runs.items()}
                result["overhead_p50_ms"] = round(statistics.median(overheads), 3)
                result["rounds_overhead_p50_ms"] = [round(x, 3) for x in overheads]
                result["overhead_p95_ms"] = round(
                    result["proxied"]["p95_ms"] - result["direct"]["p95_ms"], 3)
                result["httpx_overhead_p50_ms"] = round(statistics.median(
                    h["p50_ms"] - d["p50_ms"]
                    for h, d in zip(runs["httpx_forwarding"], runs["direct"], strict=True)), 3)
                progress(f"  => {name}: direct p50 {result['direct']['p50_ms']} ms, proxied "
                         f"{result['proxied']['p50_ms']} ms, overhead "
                         f"{result['overhead_p50_ms']} ms (httpx forwarding: "
                         f"{result['httpx_overhead_p50_ms']} ms)")
                bench.target(f"plugin proxy {name}: p50 over the runner's own latency, ms",
                             result, "overhead_p50_ms", "<=", TARGET_OVERHEAD_MS)
                results[name] = result
            out.update(results)

            progress(f"plugin proxy: streaming {stream_bytes // MIB} MiB each way")
            bench.quiet()
            size_mb = stream_bytes // MIB
            out["streaming_mb_per_s"] = {
                "upload_direct": _mb_per_s(client, "POST", runner.base_url + "/upload",
                                           stream_bytes),
                "upload_proxied": _mb_per_s(client, "POST", core.base_url +
                                            "/v1/plugins/demo/upload", stream_bytes),
                "download_direct": _mb_per_s(client, "GET", runner.base_url +
                                             f"/download?mb={size_mb}", stream_bytes),
                "download_proxied": _mb_per_s(client, "GET", core.base_url +
                                              f"/v1/plugins/demo/download?mb={size_mb}",
                                              stream_bytes),
                "note": "informational; one httpx client, 1 MiB blocks; no target",
            }
            progress(f"  {out['streaming_mb_per_s']}")
            out["core_like_rss_mib"] = round((core.rss() or 0) / MIB, 1)
    bench.doc["plugin_proxy"] = out


def _median_round(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The round with the median p50, with every round's p50 listed."""
    chosen = dict(sorted(runs, key=lambda r: r["p50_ms"])[len(runs) // 2])
    chosen["rounds_p50_ms"] = [r["p50_ms"] for r in runs]
    return chosen


def main(argv: list[str]) -> None:
    role, port = argv[0], int(argv[1])
    app = runner_app() if role == "runner" else core_app(argv[2])
    asyncio.run(_serve(app, port))


if __name__ == "__main__":
    main(sys.argv[1:])

"""The plugin proxy phase: a request through Core's runner proxy beside the same request
sent to the runner directly (issue 11: <= 1 ms p50 over the runner's own latency).

Judged: a real ``faceforge serve`` with a folder plugin (``benchproxy``) whose runner serves
HTTP on the port Core gives it; the plugin is enabled through the API and called at
``/v1/plugins/benchproxy/...`` with the install token (Core's whole stack: access log, auth,
body limit, routing, the registry's look-up, then :class:`kernel.plugin_proxy.RunnerProxy`).
The runner (``python -m tests.bench.plugin_proxy runner PORT``) is Starlette on Hypercorn:
``GET /healthz`` (a small JSON answer), ``POST /items`` (echoes a JSON body), ``POST
/upload`` (reads a body to its end), ``GET /download?mb=N`` (streams N MiB).

Informational: Core's own ``GET /v1/ping`` beside them (what any request costs Core); the
same against a Core-like app (``... core PORT RUNNER_URL``: Starlette on
Hypercorn with Core's access middleware, a principal in the scope and the kernel's error
handlers) whose ``/v1/plugins/benchproxy/{path}`` forwards through the proxy, ``/httpx/{path}``
through a plain ``httpx.AsyncClient`` (what httpx would cost) and ``/healthz`` answers itself
(the extra hop without forwarding); and streaming MB/s both ways, direct and proxied.

One keep-alive client sends sequential requests; each round measures direct then proxied
back to back; overhead = proxied p50 - direct p50 of the same round, median over rounds.
"""

from __future__ import annotations

import asyncio
import json
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
from tests.bench.server import BenchError, Server, cli

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from tests.bench.document import Bench

BODY = b'{"status":"ok","version":"0.1.0"}'
ITEM = b'{"display_name":"Ada Lovelace","tags":["math","poet"],"fields":{"born":1815}}'
MIB = 1024 * 1024
TARGET_OVERHEAD_MS = 1.0
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
REPO = Path(__file__).resolve().parents[2]
PLUGIN_ID = "benchproxy"
#: where Core mounts the plugin's routes; Core forwards the whole path, so the runner serves
#: its routes there too (and at its root, for the direct requests)
PREFIX = f"/v1/plugins/{PLUGIN_ID}"
SCENARIOS: dict[str, tuple[str, str, bytes | None, int]] = {
    "get": ("GET", "/healthz", None, 200), "post_json": ("POST", "/items", ITEM, 201)}
MANIFEST = {"id": PLUGIN_ID, "name": "Bench proxy", "version": "1.0.0", "core_compat": ">=0.1",
            "capabilities": ["api"], "permissions": [], "routes_prefix": PREFIX,
            "entrypoints": {"runner": {"argv": ["python", "runner.py"], "serves_http": True}}}
#: the folder plugin's runner: this module's runner app on the port Core gave it
RUNNER_PY = """\
import json, os, sys
sys.path.insert(0, {repo!r})
port = os.environ["FACEFORGE_PLUGIN_PORT"]
with open("runner.json.tmp", "w") as fh:
    json.dump({{"port": int(port), "pid": os.getpid()}}, fh)
os.replace("runner.json.tmp", "runner.json")
from tests.bench.plugin_proxy import main
main(["runner", port])
"""


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

    return Starlette(routes=[
        route for base in ("", PREFIX) for route in (
            Route(base + "/healthz", healthz), Route(base + "/items", items, methods=["POST"]),
            Route(base + "/upload", upload, methods=["POST"]),
            Route(base + "/download", download))])


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

    async def forward(request: Request) -> Response:  # as Core does: the whole path
        return await proxy.forward(request, runner_url, f"{PREFIX}/{request.path_params['path']}",
                                   prefix=PREFIX)

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
        Route(PREFIX + "/{path:path}", forward, methods=METHODS),
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
    out: dict[str, Any] = {"method": __doc__.split("\n\n", 1)[1].strip() if __doc__ else ""}
    with Server(home) as core:
        token = _install_plugin(home)
        core.start()
        with client_for(core.base_url, token) as client:
            runner_url, runner_pid = _enable(client, home, progress)
            runner = _Pid(runner_pid)
            progress(f"plugin proxy: faceforge serve on {core.base_url}, the plugin's runner "
                     f"on {runner_url}")
            out["core"] = {}
            for name, (method, path, body, status) in SCENARIOS.items():
                routes = {"direct": (runner, runner_url + path),
                          "proxied": (core, core.base_url + PREFIX + path)}
                if method == "GET":  # Core's own cost of a request, for the breakdown
                    routes["core_ping"] = (core, core.base_url + "/v1/ping")
                out["core"][name] = result = _compare(bench, client, routes, method, body,
                                                      status, n, rounds, f"Core {name}")
                bench.target(f"plugin proxy through faceforge serve, {name}: p50 over the "
                             f"runner's own latency, ms", result, "overhead_p50_ms", "<=",
                             TARGET_OVERHEAD_MS)

    # the same with a Core-like app: the proxy's own share, httpx beside it, streaming
    with _App(home, "runner") as runner_app, client_for("", "unused") as client:
        runner_app.start()
        with _App(home, "core", runner_app.base_url) as like:
            like.start()
            out["core_like"] = {}
            for name, (method, path, body, status) in SCENARIOS.items():
                routes = {"direct": (runner_app, runner_app.base_url + path),
                          "proxied": (like, like.base_url + PREFIX + path),
                          "httpx_forwarding": (like, like.base_url + "/httpx" + path)}
                if method == "GET":
                    routes["core_like_app_alone"] = (like, like.base_url + "/healthz")
                out["core_like"][name] = _compare(bench, client, routes, method, body,
                                                  status, n, rounds, f"Core-like {name}")
            progress(f"plugin proxy: streaming {stream_bytes // MIB} MiB each way")
            bench.quiet()
            size_mb = stream_bytes // MIB
            download = f"/download?mb={size_mb}"
            out["core_like"]["streaming_mb_per_s"] = {
                "upload_direct": _mb_per_s(client, "POST", runner_app.base_url + "/upload",
                                           stream_bytes),
                "upload_proxied": _mb_per_s(client, "POST", like.base_url + PREFIX +
                                            "/upload", stream_bytes),
                "download_direct": _mb_per_s(client, "GET", runner_app.base_url + download,
                                             stream_bytes),
                "download_proxied": _mb_per_s(client, "GET", like.base_url + PREFIX + download,
                                              stream_bytes),
                "note": "informational; one httpx client, 1 MiB blocks; no target",
            }
            progress(f"  {out['core_like']['streaming_mb_per_s']}")
            out["core_like"]["rss_mib"] = round((like.rss() or 0) / MIB, 1)
    bench.doc["plugin_proxy"] = out


def _compare(bench: Bench, client: httpx.Client, routes: dict[str, tuple[Any, str]],
             method: str, body: bytes | None, status: int, n: int, rounds: int,
             label: str) -> dict[str, Any]:
    """``rounds`` rounds, each measuring every route in turn; overhead = proxied p50 -
    direct p50 of the same round, median over the rounds."""
    runs: dict[str, list[dict[str, Any]]] = {kind: [] for kind in routes}
    for i in range(rounds):
        for kind, (server, url) in routes.items():
            requests = [(method, url, body)] * n
            runs[kind].append(bench.timed(
                f"{label}: {kind} {method} {url} [round {i + 1}/{rounds}]", client, server,
                requests, requests[:max(50, n // 10)], expect=status, retries=1))
    result: dict[str, Any] = {kind: _median_round(r) for kind, r in runs.items()}
    for kind in routes:
        if kind == "direct":
            continue
        extra = [r["p50_ms"] - d["p50_ms"] for r, d in zip(runs[kind], runs["direct"],
                                                           strict=True)]
        key = "overhead" if kind == "proxied" else f"{kind}_minus_direct"
        result[f"{key}_p50_ms"] = round(statistics.median(extra), 3)
        result[f"rounds_{key}_p50_ms"] = [round(x, 3) for x in extra]
    result["overhead_p95_ms"] = round(result["proxied"]["p95_ms"]
                                      - result["direct"]["p95_ms"], 3)
    progress = f"  => {label}: direct p50 {result['direct']['p50_ms']} ms, proxied " \
               f"{result['proxied']['p50_ms']} ms, overhead {result['overhead_p50_ms']} ms"
    for kind in routes:
        if kind not in ("direct", "proxied"):
            progress += f"; {kind} p50 {result[kind]['p50_ms']} ms"
    print(progress, file=sys.stderr, flush=True)
    return result


def _install_plugin(home: Path) -> str:
    """The bench plugin's folder under the home (before Core starts); the install token."""
    folder = home / "plugins" / PLUGIN_ID
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "plugin.json").write_text(json.dumps(MANIFEST), "utf-8")
    (folder / "runner.py").write_text(RUNNER_PY.format(repo=str(REPO)), "utf-8")
    return cli(home, "token")


def _enable(client: httpx.Client, home: Path,
            progress: Callable[[str], None]) -> tuple[str, int]:
    """Enable the plugin; once its runner answers: its URL and pid."""
    r = client.post(f"/v1/plugins/{PLUGIN_ID}/enable", json={"accept_permissions": []})
    if r.status_code != 200:
        raise BenchError(f"enabling the bench plugin: {r.status_code} {r.text[:500]}")
    found = home / "plugins" / PLUGIN_ID / "runner.json"
    deadline = time.perf_counter() + 60
    while time.perf_counter() < deadline:
        try:
            seen = json.loads(found.read_text("utf-8"))
            url = f"http://127.0.0.1:{seen['port']}"
            if (client.get(url + "/healthz").status_code == 200
                    and client.get(PREFIX + "/healthz").status_code == 200):
                return url, int(seen["pid"])
        except (OSError, ValueError, KeyError, httpx.TransportError):
            pass
        time.sleep(0.05)
    raise BenchError(f"the bench plugin's runner did not answer within 60 s: "
                     f"{client.get(f'/v1/plugins/{PLUGIN_ID}').text[:1000]}")


class _Pid:
    """What :meth:`Bench.timed` needs of a server it did not start: its pid."""

    def __init__(self, pid: int) -> None:
        self.pid = pid


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

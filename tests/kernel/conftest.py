"""Kernel-test fixtures: throwaway plugins importable by name, config files written before
start, a client that can read an endless response (SSE), and bounded polling."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import logging
import re
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from kernel.config import Settings
from kernel.services import Kernel

PLUGINS_DIR = Path(__file__).resolve().parents[1] / "plugins"
REPO_ROOT = Path(__file__).resolve().parents[2]

# tests/plugins is not collected (norecursedirs); its modules are imported by name.
if str(PLUGINS_DIR) not in sys.path:
    sys.path.insert(0, str(PLUGINS_DIR))


SAMPLE_DISTRIBUTION = "faceforge-sample-plugin"
SAMPLE_INSTALL_HINT = "pip install -e tests/plugins/sample_plugin"


def require_sample_plugin() -> ModuleType:
    """The sample third-party plugin, installed as a real distribution; fail (not skip)
    when it is missing, since the proof that plugins work by entry point depends on it."""
    try:
        metadata.distribution(SAMPLE_DISTRIBUTION)
        return importlib.import_module("faceforge_sample_plugin")
    except (metadata.PackageNotFoundError, ImportError):
        pytest.fail(f"the sample plugin package is not installed; run: {SAMPLE_INSTALL_HINT}",
                    pytrace=False)


@pytest.fixture(autouse=True)
def _close_log_handlers() -> Any:
    """Each app build (re)configures the global ``faceforge`` logger; do not let its file
    handlers outlive the test whose home they write into."""
    yield
    logger = logging.getLogger("faceforge")
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()


@pytest.fixture(autouse=True)
def _no_faceforge_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Code paths that read the real environment (the CLI) must not see the developer's."""
    for name in ("FACEFORGE_HOME", "FACEFORGE_PORT", "FACEFORGE_BIND",
                 "FACEFORGE_DISABLE_PLUGINS"):
        monkeypatch.delenv(name, raising=False)


def write_json(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


@pytest.fixture
def write_core_json(home: Path) -> Callable[[dict[str, Any]], Path]:
    """Write ``<home>/config/core.json`` by hand, as a user would before the first start."""
    return lambda data: write_json(home / "config" / "core.json", data)


def kernel_of(app: Starlette) -> Kernel:
    return app.state.kernel


def assert_envelope(response: httpx.Response, status: int, code: str | None = None) -> dict:
    """The exact error shape: ``{"error": {"code", "message", "details"}}`` and nothing else."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"code", "message", "details"}
    assert isinstance(error["code"], str) and re.fullmatch(r"[a-z_]+", error["code"])
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["details"], list)
    if code is not None:
        assert error["code"] == code
    return error


def anonymous(client: httpx.AsyncClient) -> httpx.AsyncClient:
    """A client without credentials on the same running app as ``client``."""
    return httpx.AsyncClient(transport=client._transport, base_url=client.base_url)


async def eventually(predicate: Callable[[], Any], *, timeout: float = 5.0,
                     what: str = "condition", interval: float = 0.005) -> Any:
    """Poll ``predicate`` (plain or async) every ``interval`` seconds until it is truthy;
    returns that value; fails the test after ``timeout`` seconds."""
    try:
        async with asyncio.timeout(timeout):
            while True:
                value = predicate()
                if isinstance(value, Awaitable):
                    value = await value
                if value:
                    return value
                await asyncio.sleep(interval)
    except TimeoutError:
        pytest.fail(f"timed out after {timeout}s waiting for {what}")


class StreamingASGITransport(httpx.AsyncBaseTransport):
    """Like ``httpx.ASGITransport``, but hands the body over as the app sends it.

    httpx's own transport returns only once the app has finished the response, which an
    event stream never does.  Closing the response tells the app the client went away.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = b"".join([chunk async for chunk in request.stream])  # type: ignore[union-attr]
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": request.method, "scheme": request.url.scheme,
            "path": request.url.path, "raw_path": request.url.raw_path.split(b"?")[0],
            "query_string": request.url.query, "root_path": "",
            "headers": [(k.lower(), v) for k, v in request.headers.raw],
            "server": ("testserver", 80), "client": ("127.0.0.1", 50000),
        }
        body_sent = False
        gone = asyncio.Event()
        started: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        chunks: asyncio.Queue[bytes | None] = asyncio.Queue()

        async def receive() -> dict[str, Any]:
            nonlocal body_sent
            if not body_sent:
                body_sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await gone.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                started.set_result(message)
            elif message["type"] == "http.response.body":
                if message.get("body"):
                    chunks.put_nowait(message["body"])
                if not message.get("more_body"):
                    chunks.put_nowait(None)

        async def run() -> None:
            try:
                await self.app(scope, receive, send)
            finally:
                chunks.put_nowait(None)
                if not started.done():
                    started.set_exception(RuntimeError("the app sent no response"))

        task = asyncio.create_task(run())
        start = await started

        class Body(httpx.AsyncByteStream):
            async def __aiter__(self) -> AsyncIterator[bytes]:
                while (chunk := await chunks.get()) is not None:
                    yield chunk

            async def aclose(self) -> None:
                gone.set()
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.wait_for(task, 5)

        return httpx.Response(start["status"], headers=start.get("headers", []), stream=Body())


@pytest.fixture
async def streaming(client: httpx.AsyncClient, app: Starlette,
                    settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """An authenticated client on the running ``app`` that can read endless responses."""
    async with httpx.AsyncClient(
        transport=StreamingASGITransport(app), base_url="http://testserver",
        headers={"Authorization": f"Bearer {settings.install_token}"},
    ) as c:
        yield c

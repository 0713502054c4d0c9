"""Cores for the SDK's tests: in process (the client over ``httpx.ASGITransport``) and served
on a real socket by Hypercorn in a thread (for the blocking client, streamed answers and
runner processes), and a TCP relay in front of one that drops connections on demand."""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
from hypercorn.asyncio.run import worker_serve
from hypercorn.config import Sockets
from hypercorn.utils import wrap_app
from starlette.applications import Starlette

from ff_plugin_sdk.client import AsyncFaceForge
from kernel.server import hypercorn_config, listen_socket

BOUND_SECONDS = 20.0


def blob(size: int, seed: int = 1) -> bytes:
    """``size`` bytes that do not repeat (each seed its own)."""
    out, block = bytearray(), hashlib.sha256(bytes([seed])).digest()
    while len(out) < size:
        block = hashlib.sha256(block).digest()
        out += block
    return bytes(out[:size])


def eventually(check: Callable[[], Any], what: str, timeout: float = BOUND_SECONDS) -> Any:
    """Poll ``check`` until it returns something true (bounded); its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} after {timeout:.0f}s")
        time.sleep(0.02)


@asynccontextmanager
async def in_process(app: Starlette, token: str | None,
                     **options: Any) -> AsyncIterator[AsyncFaceForge]:
    """The app with its lifespan running, and an SDK client talking to it in process."""
    transport = options.pop("transport", None) or httpx.ASGITransport(
        app=app, raise_app_exceptions=False)
    async with (app.router.lifespan_context(app),
                AsyncFaceForge(token=token, transport=transport, **options) as ff):
        yield ff


class Flaky(httpx.AsyncBaseTransport):
    """The real transport, after ``failures`` requests fail the way ``fail`` says."""

    def __init__(self, inner: httpx.AsyncBaseTransport, failures: int, fail: str) -> None:
        self.inner, self.failures, self.fail = inner, failures, fail
        self.seen: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(f"{request.method} {request.url.path}")
        if self.failures > 0:
            self.failures -= 1
            if self.fail == "refused":
                raise httpx.ConnectError("connection refused", request=request)
            if self.fail == "dropped":
                await self.inner.handle_async_request(request)  # it did reach Core
                raise httpx.RemoteProtocolError("server disconnected", request=request)
            return httpx.Response(503, json={"error": {"code": "busy", "message": "later"}},
                                  headers={"Retry-After": "0"})
        return await self.inner.handle_async_request(request)


def flaky(core: Any, failures: int, fail: str) -> Flaky:
    return Flaky(httpx.ASGITransport(app=core, raise_app_exceptions=False), failures, fail)


class Served:
    """``app`` served by Hypercorn on 127.0.0.1 (a free port) in a thread of its own."""

    def __init__(self, app: Starlette) -> None:
        self.app = app
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Served:
        sock = listen_socket("127.0.0.1", 0)
        self.port = sock.getsockname()[1]
        self._thread = threading.Thread(target=self._run, args=(sock,), daemon=True)
        self._thread.start()

        def healthy() -> bool:
            if self._failure is not None:
                raise AssertionError(f"the served Core failed: {self._failure!r}")
            try:
                return httpx.get(self.url + "/healthz", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        eventually(healthy, "healthy served Core")
        return self

    def _run(self, sock: Any) -> None:
        try:
            asyncio.run(self._serve(sock))
        except BaseException as exc:  # reported to the test's thread
            self._failure = exc

    async def _serve(self, sock: Any) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        config = hypercorn_config("127.0.0.1", self.port)
        config.graceful_timeout = 2.0
        stop = self._stop

        async def trigger() -> None:
            await stop.wait()
            await self.app.state.kernel.events.close_streams()

        try:
            await worker_serve(wrap_app(self.app, config.wsgi_max_body_size, "asgi"),
                               config, sockets=Sockets([], [sock], []),
                               shutdown_trigger=trigger)
        finally:
            sock.close()

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(BOUND_SECONDS)
            self._thread = None

    def __enter__(self) -> Served:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Relay:
    """A TCP relay to ``127.0.0.1:target``: :meth:`drop` closes every open connection,
    ``refuse`` closes new ones at once, :meth:`cut` lets a number of bytes more through
    one way and then closes the connection they went over."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.port = 0
        self.refuse = False
        self.connections = 0
        self._budget: dict[str, int | None] = {"up": None, "down": None}
        self._writers: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Relay:
        self._thread.start()
        server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._handle, "127.0.0.1", 0), self._loop).result()
        self.port = server.sockets[0].getsockname()[1]
        return self

    def __exit__(self, *exc: object) -> None:
        self.drop()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(BOUND_SECONDS)

    def drop(self) -> None:
        """Close every connection now open (as a network failure would)."""
        asyncio.run_coroutine_threadsafe(self._drop(), self._loop).result()

    def cut(self, direction: str, after: int) -> None:
        """After ``after`` more bytes ``up`` (to Core) or ``down``, close that connection."""
        self._loop.call_soon_threadsafe(self._budget.__setitem__, direction, after)

    async def _drop(self) -> None:
        for writer in list(self._writers):
            writer.close()

    async def _handle(self, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> None:
        if self.refuse:
            writer.close()
            return
        self.connections += 1
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        self._writers |= {writer, up_writer}

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter,
                       direction: str) -> None:
            try:
                while data := await source.read(65536):
                    budget = self._budget[direction]
                    if budget is not None and len(data) >= budget:
                        self._budget[direction] = None
                        sink.write(data[:budget])
                        await sink.drain()
                        break
                    if budget is not None:
                        self._budget[direction] = budget - len(data)
                    sink.write(data)
                    await sink.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                for end in (writer, up_writer):
                    end.close()
                    self._writers.discard(end)

        await asyncio.gather(pipe(reader, up_writer, "up"), pipe(up_reader, writer, "down"))

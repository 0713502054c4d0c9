"""Serving a Core with Hypercorn: the listening socket, signals, graceful shutdown."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import signal
import socket

import hypercorn.asyncio.tcp_server
from hypercorn.asyncio.run import worker_serve
from hypercorn.config import Config, Sockets
from hypercorn.utils import wrap_app
from starlette.applications import Starlette

from kernel.errors import StartupError

# Hypercorn reads a connection 64 KiB at a time; every read costs ~60 µs of Python on the
# way to the app, which made a large upload cost a core at ~400 MB/s.  Reading what the
# socket holds, up to 1 MiB, moves the same bytes in a few times fewer steps.
hypercorn.asyncio.tcp_server.MAX_RECV = 1 << 20

log = logging.getLogger("faceforge.server")
GRACEFUL_SECONDS = 5.0
BACKLOG = 100  # Hypercorn's default


def listen_socket(host: str, port: int) -> socket.socket:
    """Bind and listen on ``host:port`` (port 0: a free one chosen by the OS).

    Core serves on this very socket (see :func:`serve_app`): the port is never let go
    between choosing it and serving, so no other program can take it in between.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        if os.name == "posix":  # as Hypercorn does: a TIME_WAIT socket is no false alarm
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        elif hasattr(socket, "SO_EXCLUSIVEADDRUSE"):  # Windows: no one may bind over us
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_EXCLUSIVEADDRUSE, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
        sock.listen(BACKLOG)  # now: with SO_REUSEADDR a bound, idle socket does not hold it
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        if exc.errno in (errno.EADDRINUSE, getattr(errno, "WSAEADDRINUSE", -1)):
            raise StartupError(
                f"port {port} on {host} is already in use; stop the other program or pick "
                f"another port with --port (or FACEFORGE_PORT); --port 0 picks a free one"
            ) from exc
        raise StartupError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    return sock


def reserve_port(host: str, port: int) -> int:
    """A port that was free a moment ago, for a program that binds it itself: a plugin's
    runner serving HTTP, the benchmarks' bare app.  Core itself serves on
    :func:`listen_socket`'s socket."""
    with listen_socket(host, port) as sock:
        return int(sock.getsockname()[1])


def hypercorn_config(host: str, port: int) -> Config:
    config = Config()
    # Informational only: serve_app hands Hypercorn the socket, which it then does not bind.
    config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    config.backlog = BACKLOG
    config.accesslog = None  # the kernel writes its own access lines, with correlation ids
    config.errorlog = logging.getLogger("faceforge.hypercorn")
    config.graceful_timeout = GRACEFUL_SECONDS
    config.keep_alive_timeout = 75
    return config


async def serve_app(app: Starlette, config: Config, sock: socket.socket) -> None:
    """Serve on ``sock`` (from :func:`listen_socket`) until SIGINT/SIGTERM, then shut down
    gracefully; the socket is closed when serving ends."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # Windows: no loop signal handlers
            signal.signal(sig, lambda *_: loop.call_soon_threadsafe(stop.set))

    async def shutdown_trigger() -> None:
        await stop.wait()
        log.info("shutting down")
        # Open event streams and long polls would otherwise hold the graceful shutdown for
        # its full timeout.
        app.state.kernel.stopping.set()
        await app.state.kernel.events.close_streams()

    # hypercorn.asyncio.serve() would bind config.bind itself; worker_serve takes ready
    # sockets (Hypercorn's own multi-worker runner hands its workers sockets the same way).
    try:
        await worker_serve(wrap_app(app, config.wsgi_max_body_size, "asgi"),  # type: ignore[arg-type]
                           config, sockets=Sockets([], [sock], []),
                           shutdown_trigger=shutdown_trigger)
    finally:
        sock.close()

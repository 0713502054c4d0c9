"""Serving a Core with Hypercorn: port checks, signals, graceful shutdown."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import signal
import socket

from hypercorn.asyncio import serve
from hypercorn.config import Config
from starlette.applications import Starlette

from kernel.errors import StartupError

log = logging.getLogger("faceforge.server")
GRACEFUL_SECONDS = 5.0


def reserve_port(host: str, port: int) -> int:
    """Check that ``host:port`` can be bound; resolves port 0 to a free port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        if os.name == "posix":  # match Hypercorn, so a TIME_WAIT socket is no false alarm
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, getattr(errno, "WSAEADDRINUSE", -1)):
                raise StartupError(
                    f"port {port} on {host} is already in use; stop the other program or pick "
                    f"another port with --port (or FACEFORGE_PORT); --port 0 picks a free one"
                ) from exc
            raise StartupError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
        return int(sock.getsockname()[1])


def hypercorn_config(host: str, port: int) -> Config:
    config = Config()
    config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    config.accesslog = None  # the kernel writes its own access lines, with correlation ids
    config.errorlog = logging.getLogger("faceforge.hypercorn")
    config.graceful_timeout = GRACEFUL_SECONDS
    config.keep_alive_timeout = 75
    return config


async def serve_app(app: Starlette, config: Config) -> None:
    """Serve until SIGINT/SIGTERM, then shut down gracefully."""
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
        # Open event streams would otherwise hold the graceful shutdown for its full timeout.
        await app.state.kernel.events.close_streams()

    await serve(app, config, shutdown_trigger=shutdown_trigger)  # type: ignore[arg-type]

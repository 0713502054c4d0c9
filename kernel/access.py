"""The outermost middleware: correlation id in and out, one access log line, and the 500
envelope for anything unexpected (rendered here so it still carries the correlation id)."""

from __future__ import annotations

import logging
import time

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kernel import correlation
from kernel.envelope import handle_unexpected

log = logging.getLogger("faceforge.http")
_HEADER = correlation.HEADER.encode()


def log_access(method: str, path: str, status: int, elapsed_ms: float) -> None:
    """One access line, ``GET /v1/ping 200 1.2ms``, with status, method and path as context.

    Same record as ``log.info(...)`` would make, minus ``logging``'s walk up the stack for the
    caller's file and line (no handler shows them) and the %-formatting done again by each
    handler: the line is written on every request.
    """
    if log.isEnabledFor(logging.INFO):
        log.handle(log.makeRecord(
            log.name, logging.INFO, "", 0, f"{method} {path} {status} {elapsed_ms:.1f}ms", (),
            None, extra={"status": status, "method": method, "path": path}))


class AccessMiddleware:
    def __init__(self, app: ASGIApp, access_log: bool = True) -> None:
        self.app = app
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = None
        for key, value in scope["headers"]:
            if key == _HEADER:
                given = value.decode("latin-1")
                break
        cid = correlation.accept(given)
        token = correlation.correlation_id.set(cid)
        started = time.perf_counter()
        status = 500
        started_response = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, started_response
            if message["type"] == "http.response.start":
                started_response = True
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (_HEADER, cid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            if started_response:
                raise
            response = await handle_unexpected(Request(scope), exc)
            await response(scope, receive, send_with_id)
        finally:
            if self.access_log:
                log_access(scope["method"], scope["path"], status,
                           (time.perf_counter() - started) * 1000)
            correlation.correlation_id.reset(token)

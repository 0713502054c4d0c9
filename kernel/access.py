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
                log.info("%s %s %d %.1fms", scope["method"], scope["path"], status,
                         (time.perf_counter() - started) * 1000,
                         extra={"status": status, "method": scope["method"],
                                "path": scope["path"]})
            correlation.correlation_id.reset(token)

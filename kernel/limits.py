"""The request-body limit, on every route: refused as soon as it is known to be exceeded.

A declared ``Content-Length`` over the limit is answered before the route runs, not a byte
taken; a body without one (chunked) fails as soon as the bytes read pass the limit.  The
limit is the route's own (``ApiRoute.max_body_bytes``) or ``limits.max_body_bytes``.  The
failure is :class:`PayloadTooLarge`, rendered by the usual handler (raised from ``receive``
for a chunked body): the JSON envelope for the API, the error page for the UI.  Once a
response has started (a route that answers without reading its body) it is too late for a
413: ``receive`` then reports the client gone instead of raising, so the response ends
rather than failing mid-way.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kernel.envelope import handle_faceforge_error
from kernel.errors import PayloadTooLarge


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, default_limit: int) -> None:
        self.app = app
        self.default_limit = default_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        policy = scope.get("ff.route_policy")
        limit = (policy.max_body_bytes if policy is not None and policy.max_body_bytes
                 is not None else self.default_limit)
        declared = None
        for key, value in scope["headers"]:
            if key == b"content-length":
                declared = value
                break
        if declared is not None and declared.isdigit() and int(declared) > limit:
            # refused before the app runs, whatever the route does with its body (an event
            # stream may never read it, and would be under way before its first read)
            error = PayloadTooLarge(f"request body is {int(declared)} bytes; the limit is {limit}")
            response = await handle_faceforge_error(Request(scope, receive), error)
            await response(scope, receive, send)
            return
        size = 0
        started = ended = exceeded = False

        async def watched(message: Message) -> None:
            nonlocal started, ended
            if message["type"] == "http.response.start":
                started = True
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                ended = True
            await send(message)

        def refuse(why: str) -> Message:
            nonlocal exceeded
            exceeded = True
            if started:
                # too late for a 413 (a response that never read its body, such as an event
                # stream listening for the client going away): read no further, and end it
                return {"type": "http.disconnect"}
            raise PayloadTooLarge(why)

        async def limited() -> Message:
            nonlocal size
            message = await receive()
            if message["type"] == "http.request":
                size += len(message.get("body", b""))
                if size > limit:
                    return refuse(f"request body exceeds the limit of {limit} bytes")
            return message

        try:
            await self.app(scope, limited, watched)
        except Exception:
            if not (exceeded and started):
                raise
            # the limit was passed just as a response that never reads its body started (an
            # event stream): too late for a 413, so that response simply ends
            if not ended:
                await send({"type": "http.response.body", "body": b"", "more_body": False})

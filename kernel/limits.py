"""The request-body limit, on every route: refused as soon as it is known to be exceeded.

A declared ``Content-Length`` over the limit fails the first read, before any byte is taken;
a body without one (chunked) fails as soon as the bytes read pass the limit.  The limit is
the route's own (``ApiRoute.max_body_bytes``) or ``limits.max_body_bytes``.  The failure is
raised from ``receive`` as :class:`PayloadTooLarge`, so the usual handlers render it: the
JSON envelope for the API, the error page for the UI.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

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
                 else self.default_limit)
        declared = None
        for key, value in scope["headers"]:
            if key == b"content-length":
                declared = value
                break
        size = 0

        async def limited() -> Message:
            nonlocal size
            if declared is not None and declared.isdigit() and int(declared) > limit:
                raise PayloadTooLarge(
                    f"request body is {int(declared)} bytes; the limit is {limit}")
            message = await receive()
            if message["type"] == "http.request":
                size += len(message.get("body", b""))
                if size > limit:
                    raise PayloadTooLarge(f"request body exceeds the limit of {limit} bytes")
            return message

        await self.app(scope, limited, send)

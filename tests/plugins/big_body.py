"""Throwaway plugin: a route that declares a larger body limit than the default, as an
upload route does, and reads its body as a stream."""

import msgspec

from ff_plugin_sdk import ApiRoute, hookimpl

#: this route's own limit (the tests set a much smaller ``limits.max_body_bytes``)
BIG_LIMIT = 64 * 1024


class Received(msgspec.Struct, kw_only=True):
    bytes: int


async def upload(request) -> Received:
    """Count the body's bytes as they arrive."""
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
    return Received(bytes=size)


@hookimpl
def faceforge_routes(kernel):
    return [
        ApiRoute(path="/test/upload", endpoint=upload, scope="system:read", methods=["POST"],
                 response=Received, max_body_bytes=BIG_LIMIT),
    ]

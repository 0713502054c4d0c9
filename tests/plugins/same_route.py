"""Throwaway plugin: ``GET /v1/same``; register two instances to make them collide."""

from ff_plugin_sdk import ApiRoute, hookimpl


async def same(request):
    return {"ok": True}


class SameRoute:
    @hookimpl
    def faceforge_routes(self, kernel):
        return [ApiRoute(path="/same", endpoint=same, scope="system:read")]

"""Throwaway plugins declaring scopes and routes: valid ones, and each way to get it wrong."""

import msgspec

from ff_plugin_sdk import PUBLIC, ApiRoute, Scope, hookimpl


class Said(msgspec.Struct):
    text: str


async def say(request) -> Said:
    return Said(text="hi")


class Declares:
    """Declares ``notes:read`` and uses it; also one public route."""

    @hookimpl
    def faceforge_scopes(self):
        return [Scope(name="notes:read", description="read notes")]

    @hookimpl
    def faceforge_routes(self, kernel):
        return [ApiRoute(path="/notes", endpoint=say, scope="notes:read", response=Said),
                ApiRoute(path="/notes/public", endpoint=say, scope=PUBLIC, response=Said)]


class UsesUnknown:
    @hookimpl
    def faceforge_routes(self, kernel):
        return [ApiRoute(path="/oops", endpoint=say, scope="notes:raed", response=Said)]


class BadName:
    @hookimpl
    def faceforge_scopes(self):
        return [Scope(name="Notes Read")]


class TakesKernelScope:
    @hookimpl
    def faceforge_scopes(self):
        return [Scope(name="events:read", description="mine now")]


class Wraps:
    @hookimpl(wrapper=True)
    def faceforge_routes(self, kernel):
        return (yield)

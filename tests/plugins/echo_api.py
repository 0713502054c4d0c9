"""Throwaway plugin: small JSON routes for exercising decoding, errors and OpenAPI."""

import msgspec

from ff_plugin_sdk import ApiRoute, hookimpl


class Person(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: str
    age: int = 0


class Greeting(msgspec.Struct, kw_only=True):
    message: str


class Repeat(msgspec.Struct, kw_only=True):
    times: int = 1
    tags: list[str] = []


async def greet(request, body: Person) -> Greeting:
    """Greet a person."""
    return Greeting(message=f"hello {body.name} ({body.age})")


async def repeat(request, query: Repeat) -> dict:
    """Echo the query back."""
    return {"times": query.times, "tags": query.tags}


async def boom(request):
    """Fail the way a bug would."""
    raise RuntimeError("database password=hunter2 leaked at /srv/secret/path")


async def nothing(request) -> None:
    """Answer with no content."""


@hookimpl
def faceforge_routes(kernel):
    return [
        ApiRoute(path="/echo/greet", endpoint=greet, scope="system:read", methods=["POST"],
                 body=Person, response=Greeting),
        ApiRoute(path="/echo/repeat", endpoint=repeat, scope="system:read", query=Repeat),
        ApiRoute(path="/echo/boom", endpoint=boom, scope="system:read"),
        ApiRoute(path="/echo/things/{thing_id}", endpoint=nothing, scope="system:read",
                 methods=["DELETE"], status_code=204),
    ]

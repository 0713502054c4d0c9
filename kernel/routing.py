"""Turning a plugin's :class:`ApiRoute` into a Starlette route.

The wrapper decodes query and body with msgspec (422 naming the failing path), calls the
endpoint and encodes what it returns.  Plugins never touch JSON.  Who may call it is the
route's declared scope, enforced by :class:`kernel.auth.AuthMiddleware`.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ff_plugin_sdk.errors import validation_error
from ff_plugin_sdk.jsontext import NotJson, parse_json
from ff_plugin_sdk.types import ApiRoute
from kernel.auth import declare
from kernel.errors import BadRequest

# msgspec ends with " - at `$.a`", or " - at `key` in `$.a`" when a mapping key is wrong


@cache
def _list_fields(query_type: type) -> frozenset[str]:
    info = msgspec.inspect.type_info(query_type)
    names = set()
    for f in getattr(info, "fields", ()):
        ftype = f.type
        if isinstance(ftype, msgspec.inspect.UnionType):
            ftype = next((t for t in ftype.types if not isinstance(t, msgspec.inspect.NoneType)),
                         ftype)
        if isinstance(ftype, msgspec.inspect.ListType | msgspec.inspect.SetType):
            names.add(f.encode_name)
    return frozenset(names)


def decode_query(request: Request, query_type: type) -> Any:
    """Query string -> Struct; repeatable params become lists; unknown params are ignored."""
    params = request.query_params
    lists = _list_fields(query_type)
    raw: dict[str, Any] = {}
    for key in params:
        raw[key] = params.getlist(key) if key in lists else params[key]
    try:
        return msgspec.convert(raw, query_type, strict=False)
    except msgspec.ValidationError as exc:
        raise validation_error(exc, root="query") from exc


async def decode_body(request: Request, body_type: Any, required: bool = True) -> Any:
    """The JSON body as ``body_type`` (its size is bounded by :mod:`kernel.limits`); None
    for an empty body that is not ``required``."""
    data = await request.body()
    if not data.strip() and not required:
        return None
    ctype = request.headers.get("content-type", "application/json").split(";")[0].strip()
    if ctype not in ("application/json", "") and not ctype.endswith("+json"):
        raise BadRequest(f"expected an application/json body, got {ctype!r}",
                         code="unsupported_media_type", status=415)
    if not data.strip():
        raise BadRequest("the request needs a JSON body", code="invalid_json")
    try:
        return msgspec.json.decode(data, type=body_type)
    except RecursionError:  # [[[[... deeper than a parser follows
        raise BadRequest("malformed JSON: nested too deeply", code="invalid_json") from None
    except msgspec.ValidationError as exc:
        # a typed decode stops at the first wrong type, before seeing that ``[1,`` is
        # truncated: malformed JSON must still be a 400, whatever its first value
        try:
            parse_json(data)
        except NotJson as malformed:
            raise BadRequest(f"malformed JSON: {malformed}", code="invalid_json") from exc
        raise validation_error(exc) from exc
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:  # not UTF-8 is malformed too
        raise BadRequest(f"malformed JSON: {exc}", code="invalid_json") from exc


_encoder = msgspec.json.Encoder()


def render(result: Any, status: int) -> Response:
    if isinstance(result, Response):
        return result
    if result is None:
        return Response(status_code=204)
    return Response(_encoder.encode(result), status_code=status, media_type="application/json")


def build_route(api: ApiRoute, path: str, check: Callable[[], None] | None = None) -> Route:
    """Wrap ``api.endpoint`` with decoding and encoding; declares the route's policy
    (scope, body limit), which the auth and body-limit middleware enforce.  ``check`` runs
    first and may refuse the request (the route's plugin is disabled)."""
    endpoint = api.endpoint

    async def handle(request: Request) -> Response:
        if check is not None:
            check()
        kwargs: dict[str, Any] = {}
        if api.query is not None:
            kwargs["query"] = decode_query(request, api.query)
        if api.body is not None:
            kwargs["body"] = await decode_body(request, api.body, api.body_required)
        return render(await endpoint(request, **kwargs), api.status_code)

    route = Route(path, handle, methods=list(api.methods),
                  name=getattr(endpoint, "__name__", None))
    declare(route, api.scope, api.max_body_bytes, api.headers)
    return route


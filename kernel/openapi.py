"""OpenAPI 3.1 generated from the route table and the msgspec types, so it cannot drift."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import msgspec

from ff_plugin_sdk.types import PUBLIC, ApiRoute
from kernel.envelope import ErrorEnvelope

_PARAM = re.compile(r"{(\w+)(?::\w+)?}")
REF = "#/components/schemas/{name}"
_ERROR = {"$ref": "#/components/schemas/ErrorEnvelope"}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _query_parameters(query_type: Any, components: dict[str, Any]) -> list[dict[str, Any]]:
    (ref,), comps = msgspec.json.schema_components([query_type], ref_template=REF)
    name = ref["$ref"].rsplit("/", 1)[-1]
    struct = comps.pop(name)
    components.update(comps)
    required = set(struct.get("required", ()))
    return [
        {"name": key, "in": "query", "required": key in required, "schema": schema,
         **({"description": schema["description"]} if "description" in schema else {})}
        for key, schema in struct.get("properties", {}).items()
    ]


def _operation(plugin: str, path: str, method: str, route: ApiRoute,
               schemas: dict[Any, Any], components: dict[str, Any],
               public: bool) -> dict[str, Any]:
    params = [{"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
              for n in _PARAM.findall(path)]
    if route.query is not None:
        params += _query_parameters(route.query, components)
    responses: dict[str, Any] = {}
    status = str(route.status_code)
    if route.media_type:
        responses[status] = {"description": "OK", "content": {
            route.media_type: {"schema": {"type": "string"}}}}
    elif route.response is not None:
        responses[status] = {"description": "OK", "content": _json(schemas[route.response])}
    else:
        responses[status if route.status_code != 200 else "204"] = {"description": "No content"}
    if not public:
        responses["401"] = {"description": "Missing or invalid token", "content": _json(_ERROR)}
        responses["403"] = {"description": "Scope not granted", "content": _json(_ERROR)}
    if route.body is not None or route.query is not None:
        responses["422"] = {"description": "Invalid input", "content": _json(_ERROR)}
    responses["default"] = {"description": "Error", "content": _json(_ERROR)}
    op: dict[str, Any] = {
        "operationId": f"{method}_{path}".replace("/", "_").replace("{", "").replace("}", "")
        .replace("-", "_").replace(".", "_"),
        "summary": route.summary or (route.endpoint.__doc__ or "").strip().split("\n")[0],
        "tags": list(route.tags) or [plugin],
        "parameters": params,
        "responses": responses,
        "x-faceforge-scope": route.scope,
        "x-faceforge-plugin": plugin,
    }
    if public:
        op["security"] = []
    if route.body is not None:
        op["requestBody"] = {"required": route.body_required,
                             "content": _json(schemas[route.body])}
    elif route.raw_body is not None:
        op["requestBody"] = route.raw_body
    return op


def build_openapi(
    routes: Iterable[tuple[str, str, ApiRoute]], *, version: str,
) -> dict[str, Any]:
    """``routes`` are (plugin, full path, route) triples.  An operation's ``security`` comes
    from the route's declared scope, the same field the auth middleware enforces."""
    routes = list(routes)
    types = [ErrorEnvelope]
    for _, _, r in routes:
        types += [t for t in (r.body, r.response) if t is not None and t not in types]
    refs, components = msgspec.json.schema_components(types, ref_template=REF)
    schemas = dict(zip(types, refs, strict=True))
    paths: dict[str, dict[str, Any]] = {}
    for plugin, path, route in routes:
        doc_path = _PARAM.sub(r"{\1}", path)
        for method in route.methods:
            if method == "HEAD":
                continue
            paths.setdefault(doc_path, {})[method.lower()] = _operation(
                plugin, doc_path, method.lower(), route, schemas, components,
                route.scope == PUBLIC)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "FaceForge Core API",
            "version": version,
            "description": "Local-first asset manager for entities and their assets. "
                           "Authenticate with `Authorization: Bearer <install token>` "
                           "(`faceforge token`).",
        },
        "servers": [{"url": "/"}],
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": dict(sorted(components.items())),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "tokenHeader": {"type": "apiKey", "in": "header", "name": "X-FaceForge-Token"},
            },
        },
        "security": [{"bearer": []}, {"tokenHeader": []}],
    }

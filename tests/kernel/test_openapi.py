"""Meta-test: /openapi.json documents every /v1 route, every $ref resolves, and the docs
pages work offline (vendored assets only)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import echo_api
import eventful
import pytest
from starlette.routing import Route

from .conftest import anonymous, kernel_of


@pytest.fixture
async def app(make_app):
    # Routes with body, query and response types, on top of whatever is installed.
    return make_app(extra_plugins=[("echo", echo_api), ("eventful", eventful)])


@pytest.fixture
async def document(anon) -> dict[str, Any]:
    response = await anon.get("/openapi.json")
    assert response.status_code == 200
    return response.json()


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from refs(item)


def resolve(document: dict, ref: str) -> Any:
    assert ref.startswith("#/"), f"external reference {ref}"
    node: Any = document
    for part in ref[2:].split("/"):
        assert part in node, f"{ref} does not resolve"
        node = node[part]
    return node


def documented(path: str) -> str:
    """A route's path as OpenAPI writes it: ``{rest:path}`` -> ``{rest}``."""
    return re.sub(r"{(\w+):\w+}", r"{\1}", path)


def api_routes(app) -> list[Route]:
    return [r for r in app.routes if isinstance(r, Route) and r.path.startswith("/v1")]


async def test_document_is_openapi_3_1(document) -> None:
    assert document["openapi"].startswith("3.1")
    assert document["info"]["title"] and document["info"]["version"]


async def test_every_v1_route_is_documented_with_its_methods(app, document) -> None:
    routes = api_routes(app)
    assert any(r.path == "/v1/echo/greet" for r in routes)  # the walk sees plugin routes
    for route in routes:
        path = documented(route.path)
        assert path in document["paths"], f"{route.path} is not in /openapi.json"
        for method in route.methods - {"HEAD"}:
            assert method.lower() in document["paths"][path], f"{method} {route.path}"


async def test_nothing_is_documented_that_does_not_exist(app, document) -> None:
    served = {documented(r.path) for r in app.routes if isinstance(r, Route)}
    assert set(document["paths"]) <= served


async def test_every_body_type_has_a_resolvable_request_body(app, document) -> None:
    with_body = [(path, m) for _, path, r in kernel_of(app).api_routes if r.body is not None
                 for m in r.methods]
    assert ("/v1/echo/greet", "POST") in with_body
    for path, method in with_body:
        operation = document["paths"][path][method.lower()]
        schema = operation["requestBody"]["content"]["application/json"]["schema"]
        # a Struct is a reference; a free-form object (a plugin's settings) is inline
        target = resolve(document, schema["$ref"]) if "$ref" in schema else schema
        assert target["type"] == "object"


async def test_body_schema_matches_the_struct(document) -> None:
    operation = document["paths"]["/v1/echo/greet"]["post"]
    person = resolve(document, operation["requestBody"]["content"]["application/json"]
                     ["schema"]["$ref"])
    assert set(person["properties"]) == {"name", "age"}
    assert person["required"] == ["name"]
    assert operation["x-faceforge-scope"] == "system:read"


async def test_query_types_become_parameters(document) -> None:
    params = {p["name"]: p for p in document["paths"]["/v1/echo/repeat"]["get"]["parameters"]}
    assert set(params) == {"times", "tags"}
    assert all(p["in"] == "query" for p in params.values())
    path_params = document["paths"]["/v1/echo/things/{thing_id}"]["delete"]["parameters"]
    assert [(p["name"], p["in"], p["required"]) for p in path_params] == [
        ("thing_id", "path", True)]


async def test_every_ref_resolves(document) -> None:
    found = list(refs(document))
    assert "#/components/schemas/ErrorEnvelope" in found
    for ref in found:
        resolve(document, ref)


async def test_every_operation_documents_its_errors(document) -> None:
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            error = operation["responses"]["default"]["content"]["application/json"]["schema"]
            assert error == {"$ref": "#/components/schemas/ErrorEnvelope"}, f"{method} {path}"
            assert len(operation["responses"]) >= 2


async def test_operation_ids_are_unique(document) -> None:
    ids = [op["operationId"] for ops in document["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids))


async def test_health_is_documented_as_public(document) -> None:
    assert document["paths"]["/healthz"]["get"]["security"] == []
    assert "security" not in document["paths"]["/v1/ping"]["get"]


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_docs_pages_use_only_vendored_assets(client, page) -> None:
    async with anonymous(client) as anon:
        response = await anon.get(page)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/html")
        html = response.text
        assert not re.search(r"https?://", html), "the docs page must work offline"
        urls = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html)
        assert urls, "no script or stylesheet found"
        for url in urls:
            assert url.startswith("/static/"), url
            asset = await anon.get(url)
            assert asset.status_code == 200, url
            assert len(asset.content) > 1000, url
        assert "/openapi.json" in html

"""Scopes come from one registry that plugins extend; every route declares its scope or that
it is public, and both the auth middleware and the OpenAPI document read that declaration.
(Scope mistakes as load errors: test_plugins.py.)"""

from __future__ import annotations

from scoped_routes import Declares

from tests.conftest import running

from .conftest import assert_envelope, kernel_of


async def test_a_plugin_scope_guards_its_route(make_app, settings) -> None:
    app = make_app(extra_plugins=[("notes", Declares())])
    async with running(app, settings.install_token) as client:
        kernel = kernel_of(app)
        assert (await client.get("/v1/notes")).json() == {"text": "hi"}  # install token
        other = await kernel.scoped_tokens.issue("other", ["entities:read"])
        refused = await client.get("/v1/notes", headers={"Authorization": f"Bearer {other}"})
        assert "notes:read" in assert_envelope(refused, 403, "missing_scope")["message"]
        reader = await kernel.scoped_tokens.issue("reader", ["notes:read"])
        allowed = await client.get("/v1/notes", headers={"Authorization": f"Bearer {reader}"})
        assert allowed.status_code == 200


async def test_a_public_declaration_opens_the_route_and_the_document_says_so(
        make_app, settings) -> None:
    app = make_app(extra_plugins=[("notes", Declares())])
    async with running(app, None) as anon:
        assert (await anon.get("/v1/notes/public")).json() == {"text": "hi"}
        assert_envelope(await anon.get("/v1/notes"), 401, "unauthorized")
        paths = (await anon.get("/openapi.json")).json()["paths"]
    assert paths["/v1/notes/public"]["get"]["security"] == []
    assert "security" not in paths["/v1/notes"]["get"]  # the document's default: a token
    assert paths["/v1/notes"]["get"]["x-faceforge-scope"] == "notes:read"
    assert paths["/healthz"]["get"]["security"] == []


async def test_every_route_declares_its_access(app, client) -> None:
    # the OpenAPI document and the middleware read the same field: a route without a
    # declaration could not be mounted at all
    document = (await client.get("/openapi.json")).json()
    scopes = (await client.get("/v1/system/info")).json()["scopes"]
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            scope = operation["x-faceforge-scope"]
            if scope == "signed-in":  # any credential; the kernel's endpoint decides
                assert operation["x-faceforge-plugin"] == "kernel", (method, path)
                continue
            assert scope == "public" or scope in scopes, (method, path)
            assert (operation.get("security") == []) == (scope == "public"), (method, path)


async def test_unknown_paths_need_credentials(anon) -> None:
    assert_envelope(await anon.get("/v1/no-such-route"), 401, "unauthorized")
    assert (await anon.get("/ui/no-such-page")).status_code == 303

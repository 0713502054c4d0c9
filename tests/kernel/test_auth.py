"""Who may call what: the install token, public paths, token rotation, scopes, sessions."""

from __future__ import annotations

import pytest

import kernel.tokens as tokens
from ff_plugin_sdk import Conflict, ValidationFailed
from kernel.config import rotate_token
from tests.conftest import running

from .conftest import anonymous, assert_envelope, kernel_of


async def test_bearer_token_works(anon, settings) -> None:
    response = await anon.get("/v1/ping",
                              headers={"Authorization": f"Bearer {settings.install_token}"})
    assert response.status_code == 200
    assert response.json()["ok"] is True


async def test_bearer_scheme_is_case_insensitive(anon, settings) -> None:
    response = await anon.get("/v1/ping",
                              headers={"Authorization": f"bearer {settings.install_token}"})
    assert response.status_code == 200


async def test_x_faceforge_token_works(anon, settings) -> None:
    response = await anon.get("/v1/ping", headers={"X-FaceForge-Token": settings.install_token})
    assert response.status_code == 200


@pytest.mark.parametrize("headers", [
    {},
    {"Authorization": "Bearer not-the-token"},
    {"Authorization": "Basic dXNlcjpwYXNz"},
    {"X-FaceForge-Token": "not-the-token"},
    {"X-FaceForge-Token": ""},
])
async def test_missing_or_wrong_token_is_401(anon, headers) -> None:
    response = await anon.get("/v1/ping", headers=headers)
    error = assert_envelope(response, 401, "unauthorized")
    assert response.headers["www-authenticate"] == "Bearer"
    assert "faceforge token" in error["message"]


async def test_a_prefix_of_the_token_is_refused(anon, settings) -> None:
    response = await anon.get("/v1/ping",
                              headers={"Authorization": f"Bearer {settings.install_token[:-1]}"})
    assert response.status_code == 401


@pytest.mark.parametrize("path", ["/healthz", "/openapi.json", "/docs", "/redoc",
                                  "/static/kernel/vendor/swagger-ui-5.35.0/swagger-ui.css"])
async def test_public_paths_need_no_token(anon, path) -> None:
    response = await anon.get(path)
    assert response.status_code == 200, path


async def test_login_page_is_not_behind_the_login(anon) -> None:
    response = await anon.get("/ui/login")
    # Whatever the UI shell serves there, the kernel must not bounce it to the login.
    assert response.status_code != 401
    assert "location" not in response.headers


async def test_openapi_document_is_public_and_lists_the_api(anon) -> None:
    document = (await anon.get("/openapi.json")).json()
    assert "/v1/ping" in document["paths"]


async def test_ui_without_a_session_redirects_to_login(anon) -> None:
    response = await anon.get("/ui/somewhere?tab=2")
    assert response.status_code == 303
    assert response.headers["location"] == "/ui/login?next=%2Fui%2Fsomewhere%3Ftab%3D2"
    hx = await anon.get("/ui/somewhere", headers={"HX-Request": "true"})
    assert hx.status_code == 401
    assert hx.headers["hx-redirect"].startswith("/ui/login?next=")


# --- token rotation -----------------------------------------------------------------------


async def test_rotated_token_takes_effect_without_a_restart(app, anon, settings) -> None:
    old = settings.install_token
    assert (await anon.get("/v1/ping", headers={"X-FaceForge-Token": old})).status_code == 200

    new = rotate_token(settings.paths.config_file)
    store = kernel_of(app).tokens
    store._checked = float("-inf")  # the store re-reads at most once a second; skip the wait

    assert (await anon.get("/v1/ping", headers={"X-FaceForge-Token": old})).status_code == 401
    assert (await anon.get("/v1/ping", headers={"X-FaceForge-Token": new})).status_code == 200


async def test_token_store_rereads_at_most_once_a_second(app, settings, monkeypatch) -> None:
    store = kernel_of(app).tokens
    now = [store._checked]
    monkeypatch.setattr(tokens, "time", type("FakeTime", (), {"monotonic": lambda: now[0]}))
    new = rotate_token(settings.paths.config_file)

    now[0] += 0.5
    assert store.current() == settings.install_token  # not re-read yet
    now[0] += 0.6
    assert store.current() == new


async def test_half_written_core_json_keeps_the_old_token(app, settings) -> None:
    store = kernel_of(app).tokens
    settings.paths.config_file.write_text('{"auth": {"install_', encoding="utf-8")
    store._checked = float("-inf")
    assert store.current() == settings.install_token


# --- scopes -------------------------------------------------------------------------------


async def test_a_token_without_the_routes_scope_gets_403_naming_it(app, client, anon) -> None:
    # a real scoped token, as per-plugin tokens will be
    token = await kernel_of(app).scoped_tokens.issue("reader", ["system:read"])
    headers = {"Authorization": f"Bearer {token}"}

    assert (await anon.get("/v1/ping", headers=headers)).status_code == 200
    response = await anon.get("/v1/events", headers=headers)
    error = assert_envelope(response, 403, "missing_scope")
    assert "events:read" in error["message"]
    assert error["details"] == [{"missing_scope": "events:read"}]
    # the same route with the install token
    assert (await client.get("/v1/events")).status_code == 200


async def test_scoped_token_reads_but_cannot_write_entities(app, anon) -> None:
    token = await kernel_of(app).scoped_tokens.issue("viewer", ["entities:read"])
    headers = {"X-FaceForge-Token": token}
    assert (await anon.get("/v1/entities", headers=headers)).status_code == 200
    refused = await anon.post("/v1/entities", json={"display_name": "x"}, headers=headers)
    assert "entities:write" in assert_envelope(refused, 403, "missing_scope")["message"]
    assert (await anon.get("/v1/entities", headers=headers)).json()["items"] == []


async def test_a_revoked_scoped_token_stops_working(app, anon) -> None:
    kernel = kernel_of(app)
    token = await kernel.scoped_tokens.issue("short-lived", ["system:read"])
    headers = {"Authorization": f"Bearer {token}"}
    assert (await anon.get("/v1/ping", headers=headers)).status_code == 200
    assert await kernel.scoped_tokens.revoke("short-lived") is True
    assert_envelope(await anon.get("/v1/ping", headers=headers), 401, "unauthorized")
    assert await kernel.scoped_tokens.revoke("short-lived") is False


async def test_scoped_tokens_survive_a_restart(make_app, settings) -> None:
    app = make_app()
    async with running(app, None) as anon:
        token = await kernel_of(app).scoped_tokens.issue("kept", ["entities:read"])
    again = make_app()
    async with running(again, None) as anon:
        response = await anon.get("/v1/entities", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200


async def test_a_token_cannot_hold_an_unknown_scope(app, client) -> None:
    scoped = kernel_of(app).scoped_tokens
    with pytest.raises(ValidationFailed, match="unknown scope 'entities:destroy'"):
        await scoped.issue("bad", ["entities:read", "entities:destroy"])
    await scoped.issue("dup", ["system:read"])
    with pytest.raises(Conflict):
        await scoped.issue("dup", ["system:read"])


async def test_scopes_come_from_the_kernel_and_from_plugins(app, client) -> None:
    info = (await client.get("/v1/system/info")).json()
    assert info["scopes"]["events:read"]["plugin"] == "kernel"
    assert info["scopes"]["entities:write"]["plugin"] == "entities"


# --- UI sessions and CSRF -------------------------------------------------------------


async def test_session_cookie_authenticates_and_unsafe_requests_need_csrf(app, client) -> None:
    kernel = kernel_of(app)
    session_id, csrf = await kernel.sessions.create()
    assert session_id != kernel.settings.install_token
    async with anonymous(client) as browser:
        browser.cookies.set("ff_session", session_id)
        assert (await browser.get("/v1/ping")).status_code == 200

        refused = await browser.post("/v1/events/stream")
        assert_envelope(refused, 403, "csrf_failed")
        allowed = await browser.post("/v1/events/stream", headers={"X-CSRF-Token": csrf})
        assert allowed.status_code == 405  # past auth; the route itself is GET-only


async def test_rotating_the_token_ends_every_session(app, client, settings) -> None:
    kernel = kernel_of(app)
    session_id, _ = await kernel.sessions.create()
    async with anonymous(client) as browser:
        browser.cookies.set("ff_session", session_id)
        assert (await browser.get("/v1/ping")).status_code == 200
        rotate_token(settings.paths.config_file)
        kernel.tokens._checked = float("-inf")
        assert (await browser.get("/v1/ping")).status_code == 401


async def test_unknown_session_cookie_is_refused(anon) -> None:
    anon.cookies.set("ff_session", "made-up")
    assert (await anon.get("/v1/ping")).status_code == 401

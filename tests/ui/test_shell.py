"""The UI shell over HTTP: sign-in, sessions, CSRF, redirects, error pages and the nav."""

from __future__ import annotations

from urllib.parse import quote

import httpx

from ff_plugin_sdk import NavEntry, hookimpl
from kernel.config import rotate_token
from tests.conftest import running
from tests.ui.browsing import csrf_of, nav_labels, sign_in, tags

LOGIN_ERROR = "That token is not this install"


def login_url(target: str) -> str:
    return "/ui/login?next=" + quote(target, safe="")


def fresh(client: httpx.AsyncClient, **kwargs) -> httpx.AsyncClient:
    """Another browser on the same running Core (its own, empty cookie jar)."""
    return httpx.AsyncClient(transport=client._transport, base_url="http://testserver",
                             **kwargs)


async def entity_count(client: httpx.AsyncClient) -> int:
    r = await client.get("/v1/entities", params={"include_total": "true"})
    return r.json()["total"]


# -- landing and redirects to the login page ---------------------------------------------

async def test_root_leads_to_the_first_nav_page(ui):
    r = await ui.client.get("/")
    assert (r.status_code, r.headers["location"]) == (303, "/ui/")
    r = await ui.client.get("/ui/")
    assert (r.status_code, r.headers["location"]) == (303, "/ui/entities")


async def test_root_without_session_goes_to_login_and_back(anon, settings):
    r = await anon.get("/")
    assert (r.status_code, r.headers["location"]) == (303, login_url("/"))
    r = await anon.post("/ui/login", data={"token": settings.install_token, "next": "/"})
    assert (r.status_code, r.headers["location"]) == (303, "/")


async def test_pages_without_session_redirect_to_login(anon):
    for path in ("/ui/", "/ui/entities", "/ui/entities?q=ada&tag=x", "/ui/system",
                 "/ui/entities/new", "/ui/logout", "/ui/does-not-exist",
                 f"/ui/entities/{'0' * 64}"):
        r = await anon.get(path)
        assert r.status_code == 303, path
        assert r.headers["location"] == login_url(path)
        assert "json" not in r.headers.get("content-type", "")
        login = await anon.get(r.headers["location"])
        assert login.status_code == 200
        assert tags(login.text, "input", name="next")[0].attrs["value"] == path


async def test_forged_or_stale_cookie_is_no_session(anon):
    for cookie in ("ff_session=forged", "ff_session=", "other=1"):
        r = await anon.get("/ui/entities", headers={"Cookie": cookie})
        assert (r.status_code, r.headers["location"]) == (303, login_url("/ui/entities"))
        assert (await anon.get("/v1/entities", headers={"Cookie": cookie})).status_code == 401


async def test_form_post_without_session_redirects_and_creates_nothing(client, anon):
    r = await anon.post("/ui/entities/new", data={"display_name": "Sneaky"})
    assert (r.status_code, r.headers["location"]) == (303, login_url("/ui/entities/new"))
    assert await entity_count(client) == 0


async def test_htmx_request_without_session_gets_401_with_hx_redirect(anon):
    r = await anon.get("/ui/entities?q=a", headers={"HX-Request": "true"})
    assert r.status_code == 401
    assert r.headers["hx-redirect"] == login_url("/ui/entities?q=a")
    assert "json" not in r.headers.get("content-type", "")


async def test_public_paths_need_no_session(anon):
    for path in ("/ui/login", "/static/ui/app.css", "/healthz", "/openapi.json"):
        assert (await anon.get(path)).status_code == 200, path


# -- signing in --------------------------------------------------------------------------

async def test_wrong_token_shows_the_form_again_with_a_message(anon, settings):
    for token in ("wrong", "", "   ", settings.install_token + "x",
                  settings.install_token[:-1]):
        r = await anon.post("/ui/login", data={"token": token, "next": "/ui/system"})
        assert r.status_code == 401, token
        assert "text/html" in r.headers["content-type"]
        assert LOGIN_ERROR in r.text
        assert tags(r.text, "input", name="token")[0].attrs.get("aria-invalid") == "true"
        assert "set-cookie" not in r.headers
    r = await anon.post("/ui/login", data={"next": "/ui/system"})  # no token field at all
    assert r.status_code == 401
    assert not anon.cookies
    assert (await anon.get("/ui/system")).status_code == 303


async def test_right_token_sets_a_strict_httponly_session_cookie(anon, settings):
    r = await anon.post("/ui/login", data={"token": f" {settings.install_token} ",
                                           "next": "/ui/system"})
    assert (r.status_code, r.headers["location"]) == (303, "/ui/system")
    cookie = r.headers["set-cookie"]
    attrs = {part.strip().split("=", 1)[0].lower(): part.strip().partition("=")[2]
             for part in cookie.split(";")}
    value = attrs["ff_session"]
    assert value and value != settings.install_token
    assert settings.install_token not in cookie
    assert "httponly" in attrs
    assert attrs["samesite"].lower() == "strict"
    assert attrs["path"] == "/"
    page = await anon.get("/ui/system")
    assert page.status_code == 200
    assert "<main" in page.text and 'class="mainnav"' in page.text


async def test_session_cookie_is_secure_over_https(anon, settings):
    browser = httpx.AsyncClient(transport=anon._transport, base_url="https://testserver")
    r = await browser.post("/ui/login", data={"token": settings.install_token})
    assert r.status_code == 303
    assert "secure" in [p.strip().lower() for p in r.headers["set-cookie"].split(";")]

async def test_each_sign_in_is_a_new_session(anon, settings):
    first = await sign_in(anon, settings.install_token)
    cookie = anon.cookies["ff_session"]
    other = fresh(anon)
    second = await sign_in(other, settings.install_token)
    assert other.cookies["ff_session"] != cookie
    assert second.csrf != first.csrf


async def test_next_never_leaves_the_site(anon, settings):
    for target in ("https://evil.example/", "//evil", "//evil.example/ui/", "/\\evil",
                   "\\\\evil", "http:/evil", "javascript:alert(1)", "ui/entities", "",
                   "/\t/evil"):
        r = await anon.post("/ui/login", data={"token": settings.install_token,
                                               "next": target})
        assert (r.status_code, r.headers["location"]) == (303, "/ui/"), target
        r = await anon.get("/ui/login", params={"next": target})  # already signed in
        assert (r.status_code, r.headers["location"]) == (303, "/ui/"), target


async def test_signing_in_again_from_a_stale_login_page_works(ui, settings):
    old = ui.client.cookies["ff_session"]
    r = await ui.client.post("/ui/login", data={"token": settings.install_token,
                                                "next": "/ui/system"})
    assert (r.status_code, r.headers["location"]) == (303, "/ui/system")
    assert ui.client.cookies["ff_session"] != old
    assert (await ui.client.get("/ui/system")).status_code == 200

async def test_login_page_when_signed_in_goes_to_next(ui):
    r = await ui.client.get("/ui/login", params={"next": "/ui/system"})
    assert (r.status_code, r.headers["location"]) == (303, "/ui/system")


async def test_login_page_has_no_nav_and_no_csrf(anon):
    r = await anon.get("/ui/login")
    assert 'class="mainnav"' not in r.text
    assert "hx-headers" not in r.text
    assert tags(r.text, "form", action="/ui/login")


# -- CSRF --------------------------------------------------------------------------------

async def test_session_reads_the_api_without_a_csrf_token(ui):
    assert (await ui.client.get("/v1/entities")).status_code == 200


async def test_pages_carry_the_session_csrf_token(ui):
    page = await ui.client.get("/ui/entities/new")
    assert csrf_of(page.text) == ui.csrf
    body = tags(page.text, "body")[0]
    assert body.attrs["hx-headers"] == f'{{"X-CSRF-Token": "{ui.csrf}"}}'


async def test_form_post_without_or_with_a_wrong_csrf_token_is_403(ui, client):
    for extra in ({}, {"csrf_token": ""}, {"csrf_token": "forged"},
                  {"csrf_token": ui.csrf + "x"}):
        r = await ui.client.post("/ui/entities/new", data={"display_name": "Forged", **extra})
        assert r.status_code == 403, extra
        assert "text/html" in r.headers["content-type"]
    assert await entity_count(client) == 0
    r = await ui.client.post("/ui/entities/new",
                             data={"display_name": "Real", "csrf_token": ui.csrf})
    assert r.status_code == 303
    assert await entity_count(client) == 1


async def test_json_api_with_the_cookie_needs_the_csrf_header(ui, client):
    for headers in ({}, {"X-CSRF-Token": "forged"}, {"X-CSRF-Token": ""}):
        r = await ui.client.post("/v1/entities", json={"display_name": "Forged"},
                                 headers=headers)
        assert r.status_code == 403, headers
        assert r.json()["error"]["code"] == "csrf_failed"
    # the form field is honoured for /ui forms only, never for the API
    r = await ui.client.post("/v1/entities", data={"csrf_token": ui.csrf,
                                                   "display_name": "Forged"})
    assert r.status_code == 403
    assert await entity_count(client) == 0

    r = await ui.client.post("/v1/entities", json={"display_name": "Real"},
                             headers={"X-CSRF-Token": ui.csrf})
    assert r.status_code == 201
    url = f"/v1/entities/{r.json()['entity_id']}"
    assert (await ui.client.delete(url)).status_code == 403
    assert (await client.get(url)).status_code == 200
    assert (await ui.client.delete(url, headers={"X-CSRF-Token": ui.csrf})).status_code == 204


async def test_csrf_token_of_another_session_is_refused(ui, anon, settings):
    other = await sign_in(fresh(anon), settings.install_token)
    r = await ui.client.post("/v1/entities", json={"display_name": "x"},
                             headers={"X-CSRF-Token": other.csrf})
    assert r.status_code == 403


async def test_the_install_token_needs_no_csrf_token(client):
    r = await client.post("/v1/entities", json={"display_name": "Scripted"})
    assert r.status_code == 201


# -- signing out and token rotation ------------------------------------------------------

async def test_logout_ends_the_session(ui, anon):
    old = ui.client.cookies["ff_session"]
    r = await ui.client.post("/ui/logout", data={})
    assert r.status_code == 403  # no CSRF token: the session stays
    assert (await ui.client.get("/ui/system")).status_code == 200

    r = await ui.client.post("/ui/logout", data={"csrf_token": ui.csrf})
    assert (r.status_code, r.headers["location"]) == (303, "/ui/login")
    assert "ff_session" not in ui.client.cookies
    replay = fresh(anon, headers={"Cookie": f"ff_session={old}"})
    assert (await replay.get("/ui/system")).status_code == 303
    assert (await replay.get("/v1/entities")).status_code == 401


async def test_rotating_the_token_ends_sessions_and_the_old_token(app, ui, anon, settings):
    old_cookie = ui.client.cookies["ff_session"]
    new_token = rotate_token(settings.paths.config_file)
    app.state.kernel.tokens._checked = 0  # re-read now instead of within a second

    r = await ui.client.get("/ui/system")
    assert (r.status_code, r.headers["location"]) == (303, login_url("/ui/system"))
    replay = fresh(anon, headers={"Cookie": f"ff_session={old_cookie}"})
    assert (await replay.get("/v1/entities")).status_code == 401
    old = fresh(anon, headers={"Authorization": f"Bearer {settings.install_token}"})
    assert (await old.get("/v1/entities")).status_code == 401
    r = await fresh(anon).post("/ui/login", data={"token": settings.install_token})
    assert r.status_code == 401

    again = await sign_in(fresh(anon), new_token)
    assert (await again.client.get("/ui/system")).status_code == 200
    new = fresh(anon, headers={"Authorization": f"Bearer {new_token}"})
    assert (await new.get("/v1/entities")).status_code == 200


# -- error pages -------------------------------------------------------------------------

async def test_unknown_page_is_a_404_inside_the_layout(ui):
    r = await ui.client.get("/ui/does-not-exist")
    assert r.status_code == 404
    assert "text/html" in r.headers["content-type"]
    assert "<html" in r.text and "<main" in r.text
    assert ("/ui/entities", "Entities") in nav_labels(r.text)
    assert "Not found" in r.text
    assert "/ui/does-not-exist" in r.text


async def test_unknown_page_for_htmx_is_a_retargeted_fragment(ui):
    r = await ui.client.get("/ui/does-not-exist", headers={"HX-Request": "true"})
    assert r.status_code == 404
    assert "<html" not in r.text and "mainnav" not in r.text
    assert "Not found" in r.text
    assert r.headers["hx-retarget"] == "#main"


async def test_boosted_htmx_navigation_gets_the_whole_page(ui):
    r = await ui.client.get("/ui/does-not-exist",
                            headers={"HX-Request": "true", "HX-Boosted": "true"})
    assert r.status_code == 404
    assert "<html" in r.text


async def test_api_errors_stay_json(ui):
    r = await ui.client.get("/v1/does-not-exist")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"


async def test_wrong_method_on_a_page_is_an_html_405(ui):
    r = await ui.client.put("/ui/system", headers={"X-CSRF-Token": ui.csrf})
    assert r.status_code == 405
    assert "<main" in r.text


async def test_system_page_lists_plugins_and_routes(ui):
    r = await ui.client.get("/ui/system")
    assert r.status_code == 200
    assert "plugins_builtin.entities" in r.text
    assert "/v1/entities" in r.text


# -- navigation from the faceforge_ui_nav hook -------------------------------------------

class NavPlugin:
    @hookimpl
    def faceforge_ui_nav(self, kernel):
        return [NavEntry(label="Zebra", href="/ui/zebra", order=50)]


async def test_nav_is_built_from_the_hook(make_app, settings):
    app = make_app(extra_plugins=[("navtest", NavPlugin())])
    async with running(app, None) as browser:
        ui = await sign_in(browser, settings.install_token)
        page = await ui.client.get("/ui/system")
    nav = nav_labels(page.text)
    hrefs = [href for href, _ in nav]
    assert ("/ui/zebra", "Zebra") in nav
    # ordered by `order`: Entities (10) < Zebra (50) < System (900)
    assert hrefs.index("/ui/entities") < hrefs.index("/ui/zebra") < hrefs.index("/ui/system")
    current = [t.attrs["href"] for t in tags(page.text, "a") if t.attrs.get("aria-current")]
    assert current == ["/ui/system"]

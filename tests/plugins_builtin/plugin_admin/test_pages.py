"""The Plugins pages over HTTP, as a browser session uses them: the list with states,
reasons and runners; the consent screen and enabling through it; disabling (refused for a
plugin Core needs); the settings form with messages next to its fields; the rescan button;
each form without JavaScript (303 and a notice) and with htmx, behind the CSRF token."""

from __future__ import annotations

import json
import re
from html import unescape
from pathlib import Path
from typing import Any

import httpx
import pytest

from kernel.config import Settings
from tests.kernel.conftest import eventually, require_sample_plugin
from tests.ui.browsing import (
    SignedIn,
    htmx_links_without_href,
    nav_labels,
    page,
    post_form,
    sign_in,
    tags,
)

HTMX = {"HX-Request": "true"}
SAMPLE_PERMISSIONS = ["entities:read", "events:read"]
#: a runner that says something with markup in it, then waits to be stopped
RUNNER = """\
import time
print("runner up <b>bold</b> & ready", flush=True)
while True:
    time.sleep(1)
"""


@pytest.fixture
async def ui(anon: httpx.AsyncClient, settings: Settings) -> SignedIn:
    return await sign_in(anon, settings.install_token)


@pytest.fixture
def plugins_dir(home: Path) -> Path:
    folder = home / "plugins"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def manifest(plugin_id: str = "watcher", **changes: Any) -> dict[str, Any]:
    return {"id": plugin_id, "name": "Watcher", "version": "1.0.0", "core_compat": ">=0.1",
            "description": "Watches a folder.", "permissions": ["entities:read"], **changes}


def install(plugins_dir: Path, folder: str, content: dict[str, Any] | str,
            runner: str | None = None) -> Path:
    path = plugins_dir / folder
    path.mkdir(exist_ok=True)
    text = content if isinstance(content, str) else json.dumps(content)
    (path / "plugin.json").write_text(text, "utf-8")
    if runner is not None:
        (path / "runner.py").write_text(runner, "utf-8")
    return path


def row(html: str, plugin_id: str) -> str:
    """The list's table row of one plugin."""
    match = re.search(rf'<tr data-plugin="{re.escape(plugin_id)}".*?</tr>', html, re.S)
    assert match, f"no row for {plugin_id!r}"
    return match.group(0)


def text_of(html: str, element_id: str) -> str:
    match = re.search(rf'id="{element_id}"[^>]*>(.*?)</(?:p|div|pre|ul|dd)>', html, re.S)
    assert match, f"no #{element_id}"
    return unescape(re.sub(r"<[^>]+>", "", match.group(1))).strip()


async def plugin(client: httpx.AsyncClient, plugin_id: str) -> dict[str, Any]:
    response = await client.get(f"/v1/plugins/{plugin_id}")
    assert response.status_code == 200, response.text
    return response.json()


async def rescan(ui: SignedIn) -> str:
    """Press "Rescan plugins folder" without JavaScript; the list it lands on."""
    response = await post_form(ui, "/ui/plugins/rescan")
    assert response.status_code == 303, response.text
    return await page(ui, response.headers["location"])


# -- the list -----------------------------------------------------------------------------

async def test_the_list_shows_every_plugin_with_its_state_and_actions(ui, client) -> None:
    require_sample_plugin()
    html = await page(ui, "/ui/plugins")
    assert ("/ui/plugins", "Plugins") in nav_labels(html)
    assert htmx_links_without_href(html) == []
    for builtin in ("entities", "assets", "jobs", "relationships", "plugin_admin"):
        assert 'data-state="enabled"' in row(html, builtin)
    # Core cannot do without some: no Disable button, and the page says why
    entities = row(html, "entities")
    assert "Core needs it" in entities and "/disable" not in entities
    assert 'action="/ui/plugins/relationships/disable"' in row(html, "relationships")
    sample = row(html, "sample")
    assert 'data-state="disabled"' in sample and ">Sample</strong>" in sample
    assert "in process" in sample
    # a third-party plugin is enabled through its consent screen
    assert tags(sample, "a", href="/ui/plugins/sample/enable")
    assert not tags(sample, "form")


async def test_a_broken_folder_is_listed_in_error_with_its_reason(ui, client,
                                                                  plugins_dir) -> None:
    await page(ui, "/ui/plugins")
    install(plugins_dir, "broken", '{"id": "broken", "name": ')
    install(plugins_dir, "old", manifest("old", name="Old", core_compat=">=99"))
    html = await rescan(ui)
    assert text_of(html, "plugins-notice") == (
        "Rescanned the plugins folder: new: broken, Old (old).")
    broken = row(html, "broken")
    assert 'data-state="error"' in broken
    assert "plugin.json is not valid JSON: Expecting value at line 1" in unescape(broken)
    assert "Fix its plugin.json, then rescan." in broken
    assert "/enable" not in broken
    assert "needs FaceForge Core &gt;=99; this Core is" in row(html, "old")
    detail = await page(ui, "/ui/plugins/old")
    assert text_of(detail, "plugin-reason").startswith("Cannot be used:")
    assert "needs FaceForge Core >=99" in text_of(detail, "plugin-reason")
    # enabling it anyway (a stale page) is refused on the page, not with a 500
    refused = await post_form(ui, "/ui/plugins/old/enable", {"from": "detail"})
    assert refused.status_code == 409
    assert "cannot be enabled: needs FaceForge Core" in text_of(refused.text, "plugins-problem")
    assert (await plugin(client, "old"))["state"] == "error"
    # the folder removed: a second rescan says so
    (plugins_dir / "old" / "plugin.json").unlink()
    html = await rescan(ui)
    assert text_of(html, "plugins-notice") == "Rescanned the plugins folder: removed: old."
    assert 'data-plugin="old"' not in html


async def test_rescan_with_htmx_swaps_the_page_content_with_its_notice(ui,
                                                                       plugins_dir) -> None:
    install(plugins_dir, "watcher", manifest())
    response = await post_form(ui, "/ui/plugins/rescan", headers=HTMX)
    assert response.status_code == 200
    assert "<html" not in response.text
    assert text_of(response.text, "plugins-notice") == (
        "Rescanned the plugins folder: new: Watcher (watcher).")
    assert 'data-state="disabled"' in row(response.text, "watcher")
    again = await post_form(ui, "/ui/plugins/rescan", headers=HTMX)
    assert text_of(again.text, "plugins-notice") == (
        "Rescanned the plugins folder: nothing has changed.")


async def test_what_a_folder_manifest_says_is_shown_as_text(ui, plugins_dir) -> None:
    evil = "<script>alert(1)</script>"
    install(plugins_dir, "evil", manifest("evil", name=f"Evil {evil}",
                                          description="<img src=x onerror=alert(2)>"))
    install(plugins_dir, "worse", manifest("worse", permissions=[evil]))
    await rescan(ui)
    for url in ("/ui/plugins", "/ui/plugins/evil", "/ui/plugins/evil/enable",
                "/ui/plugins/worse"):
        html = await page(ui, url)
        assert "<script>alert" not in html and "<img src=x" not in html, url
    html = await page(ui, "/ui/plugins")
    assert "Evil &lt;script&gt;alert(1)&lt;/script&gt;" in row(html, "evil")
    assert "&lt;img src=x onerror=alert(2)&gt;" in row(html, "evil")
    assert "&#39;&lt;script&gt;alert(1)&lt;/script&gt;&#39; is neither an API scope" in row(
        html, "worse")


# -- consent and enabling -----------------------------------------------------------------

async def test_the_consent_screen_lists_what_the_plugin_asks_for(ui, client) -> None:
    require_sample_plugin()
    html = await page(ui, "/ui/plugins/sample/enable")
    assert htmx_links_without_href(html) == []
    assert "Enable Sample?" in html
    assert "runs inside FaceForge Core, with full access" in text_of(html,
                                                                     "consent-in-process")
    scopes = text_of(html, "consent-scopes")
    assert "entities:read — list, search and read entities" in scopes
    assert "events:read — read the event log" in scopes
    (form,) = tags(html, "form", action="/ui/plugins/sample/enable")
    assert form.attrs["method"] == "post" and form.attrs["hx-post"] == form.attrs["action"]
    assert sorted(t.attrs["value"] for t in tags(html, "input", name="accept_permissions")
                  ) == SAMPLE_PERMISSIONS
    assert re.search(r'<button type="submit" class="primary">Agree and enable</button>', html)
    assert tags(html, "a", href="/ui/plugins/sample")  # Cancel
    assert (await plugin(client, "sample"))["state"] == "disabled"  # showing it changes nothing


async def test_agreeing_enables_it_and_records_the_consent(ui, client) -> None:
    require_sample_plugin()
    response = await post_form(ui, "/ui/plugins/sample/enable", {
        "from": "consent", "accept_permissions": SAMPLE_PERMISSIONS})
    assert response.status_code == 303
    assert response.headers["location"] == "/ui/plugins/sample?notice=enabled"
    html = await page(ui, response.headers["location"])
    assert text_of(html, "plugins-notice") == "Sample is enabled."
    assert re.match(r"You agreed to 2 permissions for version 0\.1\.0 on \d{4}-\d\d-\d\d "
                    r"\d\d:\d\d UTC\.$", text_of(html, "plugin-consent"))
    info = await plugin(client, "sample")
    assert info["state"] == "enabled" and info["needs_consent"] == []
    assert (await client.get("/v1/plugins/sample/hello")).status_code == 200
    # enabled now: the list offers Disable
    assert 'action="/ui/plugins/sample/disable"' in row(await page(ui, "/ui/plugins"), "sample")


async def test_enabling_without_agreeing_shows_the_consent_screen(ui, client) -> None:
    require_sample_plugin()
    response = await post_form(ui, "/ui/plugins/sample/enable",
                               {"from": "consent", "accept_permissions": "entities:read"})
    assert response.status_code == 409
    assert "Enable Sample?" in response.text
    assert "asks for more than this screen showed" in text_of(response.text,
                                                              "plugins-problem")
    assert (await plugin(client, "sample"))["state"] == "disabled"


async def test_enabling_with_htmx_redirects_the_page(ui, client) -> None:
    require_sample_plugin()
    response = await post_form(ui, "/ui/plugins/sample/enable", {
        "from": "list", "accept_permissions": SAMPLE_PERMISSIONS}, headers=HTMX)
    assert response.status_code == 200
    assert response.headers["HX-Redirect"] == "/ui/plugins?notice=enabled&plugin=sample"
    html = await page(ui, response.headers["HX-Redirect"])
    assert text_of(html, "plugins-notice") == "Sample is enabled."


async def test_a_new_version_asking_for_more_asks_only_for_what_is_new(ui, client,
                                                                       plugins_dir) -> None:
    install(plugins_dir, "watcher", manifest())
    await rescan(ui)
    consent = await page(ui, "/ui/plugins/watcher/enable")
    assert "runs as a separate program" in text_of(consent, "consent-out-of-process")
    assert "consent-needs" not in consent
    response = await post_form(ui, "/ui/plugins/watcher/enable",
                               {"from": "consent", "accept_permissions": "entities:read"})
    assert response.status_code == 303
    assert (await plugin(client, "watcher"))["state"] == "enabled"

    install(plugins_dir, "watcher", manifest(version="2.0.0", permissions=[
        "entities:read", "network:example.org", "filesystem:/srv/photos"]))
    html = await rescan(ui)
    watcher = row(html, "watcher")
    assert 'data-state="disabled"' in watcher
    assert "version 2.0.0 asks for more than was agreed to" in watcher
    assert tags(watcher, "a", href="/ui/plugins/watcher/enable")
    detail = await page(ui, "/ui/plugins/watcher")
    assert "Version 2.0.0 asks for more: network:example.org, filesystem:/srv/photos" in \
        text_of(detail, "plugin-more")

    consent = await page(ui, "/ui/plugins/watcher/enable")
    assert "You agreed to what version 1.0.0 asked for" in text_of(consent, "consent-more")
    assert "consent-scopes" not in consent  # entities:read was agreed to already
    needs = text_of(consent, "consent-needs")
    assert "Connect to example.org over the network." in needs
    assert "Read and write files in /srv/photos, outside FaceForge's own folders." in needs
    assert sorted(t.attrs["value"] for t in tags(consent, "input", name="accept_permissions")
                  ) == ["filesystem:/srv/photos", "network:example.org"]
    response = await post_form(ui, "/ui/plugins/watcher/enable", {
        "from": "consent", "accept_permissions": ["filesystem:/srv/photos",
                                                  "network:example.org"]})
    assert response.status_code == 303
    info = await plugin(client, "watcher")
    assert info["state"] == "enabled" and info["consent"]["version"] == "2.0.0"


# -- disabling ----------------------------------------------------------------------------

async def test_disable_without_javascript_and_with_htmx(ui, client) -> None:
    response = await post_form(ui, "/ui/plugins/relationships/disable", {"from": "list"})
    assert response.status_code == 303
    assert response.headers["location"] == \
        "/ui/plugins?notice=disabled&plugin=relationships"
    html = await page(ui, response.headers["location"])
    assert text_of(html, "plugins-notice") == "Relationships is disabled."
    assert 'data-state="disabled"' in row(html, "relationships")
    assert (await client.get("/v1/relationships")).json()["error"]["code"] == \
        "plugin_disabled"
    # a built-in is enabled again without a consent screen
    assert tags(row(html, "relationships"), "form", action="/ui/plugins/relationships/enable")
    response = await post_form(ui, "/ui/plugins/relationships/enable", {"from": "detail"},
                               headers=HTMX)
    assert response.headers["HX-Redirect"] == "/ui/plugins/relationships?notice=enabled"
    response = await post_form(ui, "/ui/plugins/relationships/disable", {"from": "detail"},
                               headers=HTMX)
    assert response.headers["HX-Redirect"] == "/ui/plugins/relationships?notice=disabled"
    assert (await plugin(client, "relationships"))["state"] == "disabled"


@pytest.mark.parametrize("origin", ["list", "detail"])
async def test_a_plugin_core_needs_cannot_be_disabled(ui, client, origin) -> None:
    detail = await page(ui, "/ui/plugins/jobs")
    assert "Core needs it" in detail and "/disable" not in detail
    # a hand-made post is refused on the page it came from (and htmx gets the fragment)
    response = await post_form(ui, "/ui/plugins/jobs/disable", {"from": origin})
    assert response.status_code == 409
    assert text_of(response.text, "plugins-problem") == (
        "FaceForge cannot work without the 'jobs' plugin: it cannot be disabled")
    assert ('id="plugins"' in response.text) == (origin == "list")
    fragment = await post_form(ui, "/ui/plugins/jobs/disable", {"from": origin},
                               headers=HTMX)
    assert fragment.status_code == 409 and "<html" not in fragment.text
    assert "cannot be disabled" in text_of(fragment.text, "plugins-problem")
    assert (await plugin(client, "jobs"))["state"] == "enabled"


# -- one plugin ---------------------------------------------------------------------------

async def test_the_detail_page_explains_the_plugin(ui, plugins_dir) -> None:
    install(plugins_dir, "watcher", manifest(
        permissions=["entities:read", "nosuch:thing", "gpu", "network"],
        job_types=["watcher.scan"], capabilities=["jobs"]))
    await rescan(ui)
    html = await page(ui, "/ui/plugins/watcher")
    assert htmx_links_without_href(html) == []
    assert text_of(html, "plugin-description") == "Watches a folder."
    assert text_of(html, "plugin-job-types") == "watcher.scan"
    scopes = text_of(html, "plugin-scopes")
    assert "entities:read — list, search and read entities" in scopes
    assert "nosuch:thing — No installed plugin provides this permission" in scopes
    needs = text_of(html, "plugin-needs")
    assert "gpu — Use the graphics card (GPU)." in needs
    assert "network — Connect to any address on your network or the internet." in needs
    assert text_of(html, "plugin-consent") == "Not agreed to yet: enabling it asks first."
    assert text_of(html, "runner-idle") == (
        "Not running: it starts when the plugin is enabled.")
    assert text_of(html, "settings-none") == "This plugin has no settings."
    assert (await page(ui, "/ui/plugins/nosuch", status=404))


async def test_the_runner_status_and_log_tail_refresh_while_it_runs(ui, client,
                                                                    plugins_dir) -> None:
    install(plugins_dir, "watcher", manifest(
        capabilities=["runner"], entrypoints={"runner": {"argv": ["python", "runner.py"]}}),
        runner=RUNNER)
    await rescan(ui)
    response = await post_form(ui, "/ui/plugins/watcher/enable",
                               {"from": "consent", "accept_permissions": "entities:read"})
    assert response.status_code == 303

    async def logged() -> str | None:
        fragment = await page(ui, "/ui/plugins/watcher/runner", headers=HTMX)
        return fragment if "runner up" in fragment else None

    fragment = await eventually(logged, timeout=15, what="the runner's first log line")
    assert fragment.lstrip().startswith('<section class="card" id="runner"')
    assert "runner up &lt;b&gt;bold&lt;/b&gt; &amp; ready" in fragment
    assert 'data-state="running"' in fragment
    (refresh,) = tags(fragment, "a", href="/ui/plugins/watcher/runner")
    assert refresh.attrs["hx-trigger"] == "click, every 3s"
    html = await page(ui, "/ui/plugins")
    assert 'data-state="running"' in row(html, "watcher")
    # without JavaScript the Refresh link shows the whole page again
    response = await ui.client.get("/ui/plugins/watcher/runner")
    assert response.status_code == 303
    assert response.headers["location"] == "/ui/plugins/watcher#runner"

    await post_form(ui, "/ui/plugins/watcher/disable", {"from": "detail"})
    fragment = await page(ui, "/ui/plugins/watcher/runner", headers=HTMX)
    assert 'data-state="stopped"' in fragment
    (refresh,) = tags(fragment, "a", href="/ui/plugins/watcher/runner")
    assert refresh.attrs["hx-trigger"] == "click"  # stopped: no more polling


# -- settings -----------------------------------------------------------------------------

async def test_the_settings_form_is_filled_in_from_the_config_and_defaults(ui, client) -> None:
    require_sample_plugin()
    html = await page(ui, "/ui/plugins/sample")
    (form,) = tags(html, "form", action="/ui/plugins/sample/settings")
    assert form.attrs["hx-post"] == form.attrs["action"]
    assert form.attrs["hx-target"] == "#settings"
    assert tags(html, "input", name="greeting")[0].attrs["value"] == "Hello"  # the default
    assert tags(html, "input", name="csrf_token", value=ui.csrf)
    r = await client.put("/v1/plugins/sample/config", json={"greeting": "Hey"})
    assert r.status_code == 200
    html = await page(ui, "/ui/plugins/sample")
    assert tags(html, "input", name="greeting")[0].attrs["value"] == "Hey"


async def test_invalid_settings_are_marked_at_their_fields_and_kept(ui, client) -> None:
    require_sample_plugin()
    long = "x" * 41
    response = await post_form(ui, "/ui/plugins/sample/settings",
                               {"greeting": long, "greeting_delay_seconds": "99"})
    assert response.status_code == 422
    html = response.text
    assert "<html" in html
    assert text_of(html, "settings-failed") == (
        "Nothing was saved: correct what is marked below.")
    assert text_of(html, "cfg-greeting-error") == "must be at most 40 characters long"
    assert text_of(html, "cfg-greeting_delay_seconds-error") == "must be at most 60"
    assert tags(html, "input", name="greeting")[0].attrs["value"] == long
    assert tags(html, "input", name="greeting_delay_seconds")[0].attrs["value"] == "99"
    assert tags(html, "input", name="greeting")[0].attrs["aria-invalid"] == "true"
    # text where a number goes: its own message, not a second one from the schema
    response = await post_form(ui, "/ui/plugins/sample/settings",
                               {"greeting": "Hi", "greeting_delay_seconds": "soon"},
                               headers=HTMX)
    assert response.status_code == 422
    assert response.text.lstrip().startswith('<section class="card" id="settings"')
    assert text_of(response.text, "cfg-greeting_delay_seconds-error") == "must be a number"
    assert (await client.get("/v1/plugins/sample/config")).json() == {}


async def test_valid_settings_are_saved(ui, client) -> None:
    require_sample_plugin()
    response = await post_form(ui, "/ui/plugins/sample/settings",
                               {"greeting": "Good evening", "greeting_delay_seconds": "0.5"})
    assert response.status_code == 303
    assert response.headers["location"] == "/ui/plugins/sample?notice=saved#settings"
    assert (await client.get("/v1/plugins/sample/config")).json() == {
        "greeting": "Good evening", "greeting_delay_seconds": 0.5}
    html = await page(ui, response.headers["location"])
    assert text_of(html, "plugins-notice") == "Saved."
    assert tags(html, "input", name="greeting")[0].attrs["value"] == "Good evening"
    # with htmx the settings card comes back saying so
    response = await post_form(ui, "/ui/plugins/sample/settings",
                               {"greeting": "Morning", "greeting_delay_seconds": ""},
                               headers=HTMX)
    assert response.status_code == 200
    assert "<html" not in response.text
    assert text_of(response.text, "settings-saved") == "Saved."
    assert tags(response.text, "input", name="greeting")[0].attrs["value"] == "Morning"
    assert (await client.get("/v1/plugins/sample/config")).json() == {"greeting": "Morning"}


async def test_nested_objects_arrays_and_choices_are_saved_as_typed_json(ui, client,
                                                                         plugins_dir) -> None:
    schema = {"type": "object", "required": ["folder"], "additionalProperties": False,
              "properties": {
                  "folder": {"type": "string", "title": "Folder"},
                  "fast": {"type": "boolean"},
                  "mode": {"enum": ["quick", "thorough"]},
                  "tags": {"type": "array", "items": {"type": "string"}},
                  "training": {"type": "object", "properties": {
                      "steps": {"type": "integer", "minimum": 1},
                      "rate": {"type": "number"}}}}}
    install(plugins_dir, "watcher", manifest(config_schema=schema))
    await rescan(ui)
    html = await page(ui, "/ui/plugins/watcher")
    assert tags(html, "input", name="training.steps", type="number")
    assert tags(html, "select", name="mode") and tags(html, "input", name="tags[0]")
    form = {"folder": "/srv/in", "fast": ["false", "true"], "mode": "thorough",
            "tags": "", "tags[0]": "a", "tags[1]": "", "training.steps": "0",
            "training.rate": "0.5"}
    refused = await post_form(ui, "/ui/plugins/watcher/settings", form)
    assert refused.status_code == 422
    assert text_of(refused.text, "cfg-training.steps-error") == "must be at least 1"
    assert tags(refused.text, "input", name="training.rate")[0].attrs["value"] == "0.5"
    saved = await post_form(ui, "/ui/plugins/watcher/settings",
                            form | {"training.steps": "300"})
    assert saved.status_code == 303
    assert (await client.get("/v1/plugins/watcher/config")).json() == {
        "folder": "/srv/in", "fast": True, "mode": "thorough", "tags": ["a"],
        "training": {"steps": 300, "rate": 0.5}}
    # a required field left empty is marked, nothing is saved
    refused = await post_form(ui, "/ui/plugins/watcher/settings", form | {"folder": ""})
    assert text_of(refused.text, "cfg-folder-error") == "is required"
    assert (await client.get("/v1/plugins/watcher/config")).json()["folder"] == "/srv/in"


# -- CSRF ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("url", "data"), [
    ("/ui/plugins/sample/enable", {"accept_permissions": SAMPLE_PERMISSIONS}),
    ("/ui/plugins/relationships/disable", {}),
    ("/ui/plugins/sample/settings", {"greeting": "Stolen"}),
    ("/ui/plugins/rescan", {}),
])
async def test_every_form_needs_the_csrf_token(ui, client, url, data) -> None:
    require_sample_plugin()
    for token in ({}, {"csrf_token": "wrong"}):
        response = await ui.client.post(url, data={**data, **token})
        assert response.status_code == 403, url
    assert (await plugin(client, "sample"))["state"] == "disabled"
    assert (await plugin(client, "relationships"))["state"] == "enabled"
    assert (await client.get("/v1/plugins/sample/config")).json() == {}

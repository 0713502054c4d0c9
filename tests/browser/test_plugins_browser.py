"""The Plugins page in a real browser: enable the sample plugin through its consent screen,
change its greeting in the settings form, and see the new greeting on an entity's Sample
tab."""

from __future__ import annotations

import re
import secrets

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.browser.test_entities_browser import loaded, sign_in

pytestmark = pytest.mark.browser


def test_enable_configure_and_use_the_sample_plugin(
        page: Page, live_server: tuple[str, str], api: httpx.Client,
        external_requests: list[str]) -> None:
    base, token = live_server
    js_errors: list[str] = []
    page.on("pageerror", lambda exc: js_errors.append(str(exc)))
    run = secrets.token_hex(3)
    greeting = f"Bonjour {run}"
    r = api.post("/v1/entities", json={"display_name": f"Ada {run}"})
    assert r.status_code == 201, r.text
    entity_id = r.json()["entity_id"]
    assert api.get("/v1/plugins/sample").json()["state"] == "disabled"
    try:
        sign_in(page, base, token)
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Plugins").click()
        expect(page).to_have_url(re.compile(r"/ui/plugins$"))
        expect(page.get_by_role("heading", name="Plugins", exact=True)).to_be_visible()
        sample = page.locator('tr[data-plugin="sample"]')
        expect(sample.locator(".plugin-state")).to_have_text("disabled")
        expect(page.locator('tr[data-plugin="entities"]')).to_contain_text("Core needs it")

        # the consent screen: what it asks for, and that it runs inside Core
        sample.get_by_role("link", name="Enable Sample").click()
        expect(page.get_by_role("heading", name="Enable Sample?")).to_be_visible()
        expect(page.locator("#consent-in-process")).to_contain_text(
            "runs inside FaceForge Core, with full access")
        scopes = page.locator("#consent-scopes")
        expect(scopes).to_contain_text("entities:read — list, search and read entities")
        expect(scopes).to_contain_text("events:read")
        loaded(page)
        page.get_by_role("button", name="Agree and enable").click()
        expect(page).to_have_url(re.compile(r"/ui/plugins/sample\?notice=enabled$"))
        expect(page.locator("#plugins-notice")).to_have_text("Sample is enabled.")
        expect(page.locator("#plugin-name .plugin-state")).to_have_text("enabled")
        expect(page.locator("#plugin-consent")).to_contain_text(
            "You agreed to 2 permissions for version 0.1.0")

        # its settings: a greeting too long is refused at its field, then a good one saved
        loaded(page)
        field = page.get_by_label("Greeting", exact=True)
        expect(field).to_have_value("Hello")
        field.fill("")
        field.fill("x" * 40 + "y")
        # maxlength stops the typing at 40: what reaches Core is within bounds
        expect(field).to_have_value("x" * 40)
        delay = page.get_by_label("Delay per event (seconds)")
        delay.fill("61")
        page.get_by_role("button", name="Save settings").click()
        expect(page.locator("#cfg-greeting_delay_seconds-error")).to_have_text(
            "must be at most 60")
        expect(page.get_by_label("Delay per event (seconds)")).to_have_value("61")
        expect(page).to_have_url(re.compile(r"/ui/plugins/sample\?notice=enabled$"))
        page.get_by_label("Delay per event (seconds)").fill("0")
        page.get_by_label("Greeting", exact=True).fill(greeting)
        page.get_by_role("button", name="Save settings").click()
        expect(page.locator("#settings-saved")).to_have_text("Saved.")
        assert api.get("/v1/plugins/sample/config").json() == {
            "greeting": greeting, "greeting_delay_seconds": 0}

        # the entity's Sample tab says the new greeting
        page.goto(f"{base}/ui/entities/{entity_id}")
        loaded(page)
        page.get_by_role("tab", name="Sample").click()
        expect(page).to_have_url(re.compile(rf"/ui/entities/{entity_id}\?tab=sample$"))
        expect(page.get_by_text(f"{greeting} from the sample plugin, Ada {run}!")).to_be_visible()
        assert js_errors == []
        assert external_requests == []
    finally:
        # the server is shared by the browser tests: leave the plugin as it was
        api.post("/v1/plugins/sample/disable")
        api.put("/v1/plugins/sample/config", json={})
        api.delete(f"/v1/entities/{entity_id}")

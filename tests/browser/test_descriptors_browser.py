"""The Descriptors tab in a real headless Chromium against a real ``faceforge serve``."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.browser.test_entities_browser import loaded, sign_in

pytestmark = pytest.mark.browser


def choose_key(page: Page, key: str) -> None:
    """Type a key and press Enter: htmx swaps in the value form for it."""
    page.get_by_label("Key").fill(key)
    page.get_by_label("Key").press("Enter")
    expect(page.locator(f'#descriptor-value-form[data-key="{key}"]')).to_be_visible()


def test_descriptor_history_journey(page: Page, live_server: tuple[str, str], api: httpx.Client,
                                    external_requests: list[str]) -> None:
    base, token = live_server
    js_errors: list[str] = []
    page.on("pageerror", lambda exc: js_errors.append(str(exc)))
    r = api.post("/v1/entities", json={"display_name": "Descriptor Person"})
    assert r.status_code == 201, r.text
    entity_id = r.json()["entity_id"]

    # Open the entity, then its Descriptors tab (swapped in place): nothing there yet.
    sign_in(page, base, token)
    page.goto(f"{base}/ui/entities/{entity_id}")
    loaded(page)
    page.get_by_role("tab", name="Descriptors").click()
    expect(page).to_have_url(re.compile(rf"/ui/entities/{entity_id}\?tab=descriptors$"))
    expect(page.locator("#descriptors-empty")).to_have_text("No descriptors yet.")

    # The first address, 2010 to 2014.
    choose_key(page, "address")
    page.get_by_label("Value", exact=True).fill("1 Old Road")
    page.get_by_label("Valid from").fill("2010-01-01")
    page.get_by_label("Valid to").fill("2014-12-31")
    page.get_by_role("button", name="Add").click()
    expect(page).to_have_url(re.compile(r"\?tab=descriptors&notice=added$"))
    expect(page.locator("#descriptors-notice")).to_have_text("Value added.")
    loaded(page)

    # The second, from 2015 on, through the group's own "Add a value" link.
    group = page.locator('section.descriptor-group[data-key="address"]')
    group.get_by_role("link", name="Add a value").click()
    expect(page.locator('#descriptor-value-form[data-key="address"]')).to_be_visible()
    page.get_by_label("Value", exact=True).fill("2 New Street")
    page.get_by_label("Valid from").fill("2015-01-01")
    page.get_by_role("button", name="Add").click()
    expect(page).to_have_url(re.compile(r"\?tab=descriptors&notice=added$"))
    loaded(page)

    # The current one, and the history.
    current = group.locator('[data-list="current"] .descriptor-value')
    past = group.locator('[data-list="past"] .descriptor-value')
    expect(current).to_have_text(["2 New Street"])
    expect(group.locator('[data-list="current"] .descriptor-validity')).to_have_text(
        "since 2015-01-01")
    expect(past).to_have_text(["1 Old Road"])
    expect(group.locator('[data-list="past"] .descriptor-validity')).to_have_text(
        "2010-01-01 – 2014-12-31")

    # Days out of order are refused next to the input, in place; what was typed stays.
    page.evaluate("window.__marker = 1")
    choose_key(page, "address")
    page.get_by_label("Value", exact=True).fill("3 Wrong Way")
    page.get_by_label("Valid from").fill("2020-01-01")
    page.get_by_label("Valid to").fill("2019-01-01")
    page.get_by_role("button", name="Add").click()
    expect(page.locator("#descriptor-valid_to-error")).to_contain_text("is after valid_to")
    expect(page.get_by_label("Valid to")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Value", exact=True)).to_have_value("3 Wrong Way")
    assert page.evaluate("window.__marker") == 1, "the refusal reloaded the page"

    # Delete the old address: only the new one is left.
    past_item = group.locator('[data-list="past"] .descriptor')
    past_item.get_by_role("button", name="Delete").click()
    expect(page).to_have_url(re.compile(r"\?tab=descriptors&notice=deleted$"))
    expect(page.locator("#descriptors-notice")).to_have_text("Value deleted.")
    expect(current).to_have_text(["2 New Street"])
    expect(past).to_have_count(0)
    listed = api.get(f"/v1/entities/{entity_id}/descriptors").json()["items"]
    assert [d["value"] for d in listed] == ["2 New Street"]

    assert js_errors == []
    assert external_requests == [], f"the UI tried to load from outside: {external_requests}"

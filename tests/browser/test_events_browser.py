"""The Events page shows new events as they happen, without a reload."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.browser.test_entities_browser import loaded, sign_in

pytestmark = pytest.mark.browser


def test_events_page_shows_new_events_live(page: Page, live_server: tuple[str, str],
                                           external_requests: list[str]) -> None:
    base, token = live_server
    sign_in(page, base, token)
    page.get_by_role("link", name="Events").click()
    expect(page.get_by_role("heading", name="Events")).to_be_visible()
    loaded(page)
    page.evaluate("window.__marker = 1")

    # a change made by another tool, over the API
    created = httpx.post(f"{base}/v1/entities", json={"display_name": "Live Lovelace"},
                         headers={"Authorization": f"Bearer {token}"}).json()
    row = page.locator("tr", has_text="Live Lovelace")
    expect(row).to_be_visible(timeout=10_000)  # the page polls every 3 s
    expect(row).to_contain_text("entity.created")
    assert page.evaluate("window.__marker") == 1, "the page reloaded instead of updating"

    row.get_by_role("link", name="Live Lovelace").click()
    expect(page).to_have_url(f"{base}/ui/entities/{created['entity_id']}")
    assert external_requests == []

"""The Relationships tab in a real headless Chromium against a real ``faceforge serve``:
add a relationship with the type suggestions and the entity search, see it on both entities
with each one's label, be refused a duplicate inline, remove it."""

from __future__ import annotations

import os
import re

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.browser.test_entities_browser import loaded, sign_in

pytestmark = pytest.mark.browser


def create_entity(api: httpx.Client, name: str) -> str:
    r = api.post("/v1/entities", json={"display_name": name})
    assert r.status_code == 201, r.text
    return r.json()["entity_id"]


def settled(page: Page) -> None:
    """htmx wires up swapped-in content after its settle delay: wait for it."""
    page.wait_for_function("() => !document.querySelector('.htmx-swapping, .htmx-settling')")


def test_relationships_journey(page: Page, live_server: tuple[str, str], api: httpx.Client,
                               external_requests: list[str]) -> None:
    base, token = live_server
    js_errors: list[str] = []
    page.on("pageerror", lambda exc: js_errors.append(str(exc)))
    word = "r" + os.urandom(4).hex()  # the server is shared: a name only this test uses
    ada = create_entity(api, f"Ada {word}")
    byron = create_entity(api, f"Byron {word}")

    # The tab swaps in with htmx, empty.
    sign_in(page, base, token)
    page.goto(f"{base}/ui/entities/{ada}")
    loaded(page)
    page.evaluate("window.__marker = 1")
    page.get_by_role("tab", name="Relationships").click()
    expect(page).to_have_url(re.compile(rf"/ui/entities/{ada}\?tab=relationships$"))
    panel = page.locator("#tab-panel")
    expect(panel.locator("#relationships-empty")).to_have_text("No relationships yet.")
    settled(page)

    # Typing a type suggests registered ones; choosing one fills the field.
    page.get_by_label("Type", exact=True).press_sequentially("ch", delay=30)
    suggestion = page.locator('#relation-type-suggestions button[data-type="child_of"]')
    expect(suggestion).to_be_visible()
    suggestion.click()
    expect(page.get_by_label("Type", exact=True)).to_have_value("child_of")

    # Typing a name offers matching entities; choose Byron.
    page.get_by_label("Other entity").press_sequentially(f"byron {word}", delay=30)
    option = page.locator(f'#relationship-candidates [data-entity-id="{byron}"]')
    expect(option).to_contain_text(f"Byron {word}")
    option.click()
    expect(option.locator("input")).to_be_checked()
    page.get_by_label("From").fill("1815-12-10")
    assert page.evaluate("window.__marker") == 1, "the searches reloaded the page"

    page.get_by_role("button", name="Add relationship").click()
    expect(page).to_have_url(re.compile(rf"/ui/entities/{ada}\?tab=relationships"
                                        r"&notice=added$"))
    expect(page.locator("#relationships-notice")).to_have_text("Relationship added.")
    row = page.locator("tr[data-relationship-id]")
    expect(row).to_have_count(1)
    expect(row.locator(".rel-label")).to_have_text("child of")
    expect(row).to_contain_text("1815-12-10")

    # The same fact again is refused in the form, which keeps what was typed.
    loaded(page)
    settled(page)
    page.get_by_label(f"other → Ada {word}").check()
    page.get_by_label("Type", exact=True).fill("parent_of")
    page.get_by_label("Other entity").press_sequentially(f"byron {word}", delay=30)
    expect(option).to_be_visible()
    option.click()
    page.get_by_role("button", name="Add relationship").click()
    expect(page.locator("#relationship-error")).to_contain_text("exists already")
    expect(page.get_by_label("Type", exact=True)).to_have_value("parent_of")
    expect(page.locator("tr[data-relationship-id]")).to_have_count(1)

    # Byron's tab shows it from his side; the link leads there.
    row.get_by_role("link", name=f"Byron {word}").click()
    expect(page).to_have_url(re.compile(rf"/ui/entities/{byron}$"))
    page.get_by_role("tab", name="Relationships").click()
    byron_row = page.locator("tr[data-relationship-id]")
    expect(byron_row.locator(".rel-label")).to_have_text("parent of")
    expect(byron_row.get_by_role("link", name=f"Ada {word}")).to_have_attribute(
        "href", f"/ui/entities/{ada}")

    # Remove it: gone from both entities.
    byron_row.get_by_role("button", name=re.compile("^Remove")).click()
    expect(page).to_have_url(re.compile(r"\?tab=relationships&notice=removed$"))
    expect(page.locator("#relationships-notice")).to_have_text("Relationship removed.")
    expect(page.locator("tr[data-relationship-id]")).to_have_count(0)
    page.goto(f"{base}/ui/entities/{ada}?tab=relationships")
    expect(page.locator("#relationships-empty")).to_be_visible()

    assert js_errors == []
    assert external_requests == []

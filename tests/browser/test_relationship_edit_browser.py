"""Editing a relationship, and adding one of a new type with its inverse, in a real headless
Chromium against a real ``faceforge serve``."""

from __future__ import annotations

import os
import re

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.browser.test_entities_browser import loaded, sign_in
from tests.browser.test_relationships_browser import create_entity, settled

pytestmark = pytest.mark.browser


def open_tab(page: Page, base: str, entity_id: str) -> None:
    page.goto(f"{base}/ui/entities/{entity_id}?tab=relationships")
    loaded(page)
    settled(page)


def test_edit_a_relationship_in_the_tab(page: Page, live_server: tuple[str, str],
                                        api: httpx.Client,
                                        external_requests: list[str]) -> None:
    base, token = live_server
    js_errors: list[str] = []
    page.on("pageerror", lambda exc: js_errors.append(str(exc)))
    word = "e" + os.urandom(4).hex()  # the server is shared: names only this test uses
    ada = create_entity(api, f"Ada {word}")
    byron = create_entity(api, f"Byron {word}")
    r = api.post("/v1/relationships", json={
        "from_entity_id": byron, "to_entity_id": ada, "type": "parent_of",
        "valid_from": "1815-12-10", "fields": {"note": "first"}})
    assert r.status_code == 201, r.text
    relationship_id = r.json()["relationship_id"]

    sign_in(page, base, token)
    open_tab(page, base, ada)
    page.evaluate("window.__marker = 1")

    # Edit opens a form in the tab, filled in with what is stored.
    page.get_by_role("button", name=f"Edit child of Byron {word}").click()
    form = page.locator("#relationship-edit")
    expect(form).to_be_visible()
    expect(page.locator("#relationship-edit-ends")).to_have_text(
        f"From Byron {word} to Ada {word}")
    expect(form.get_by_label("Type")).to_have_value("parent_of")
    expect(form.get_by_label("From")).to_have_value("1815-12-10")
    expect(form.get_by_label("Fields")).to_have_value("note: first")

    # A bad date is refused next to its input; everything typed stays.
    form.get_by_label("Type").fill("guardian of")
    form.get_by_label("Until").fill("1810-01-01")
    form.get_by_label("Fields").fill("note: second\nplace: London")
    form.get_by_role("button", name="Save changes").click()
    expect(page.locator("#edit-valid_to-error")).to_have_text(
        "The end must not be before the start.")
    form = page.locator("#relationship-edit")
    expect(form.get_by_label("Until")).to_have_attribute("aria-invalid", "true")
    expect(form.get_by_label("Type")).to_have_value("guardian of")
    expect(form.get_by_label("Fields")).to_have_value("note: second\nplace: London")
    assert page.evaluate("window.__marker") == 1, "the refused save reloaded the page"

    # Fixed, it saves and the tab shows the change.
    form.get_by_label("Until").fill("1824-04-19")
    form.get_by_role("button", name="Save changes").click()
    expect(page).to_have_url(re.compile(rf"/ui/entities/{ada}\?tab=relationships"
                                        r"&notice=updated$"))
    expect(page.locator("#relationships-notice")).to_have_text("Relationship updated.")
    row = page.locator(f'tr[data-relationship-id="{relationship_id}"]')
    expect(row.locator(".rel-label")).to_have_text("ward of")
    expect(row).to_contain_text("1815-12-10 – 1824-04-19")
    expect(row).to_contain_text("place: London")

    # Removed by someone else while the form is open: saving says so.
    loaded(page)
    settled(page)
    row.get_by_role("button", name=re.compile("^Edit")).click()
    expect(page.locator("#relationship-edit")).to_be_visible()
    assert api.delete(f"/v1/relationships/{relationship_id}").status_code == 204
    page.get_by_role("button", name="Save changes").click()
    expect(page.locator("#relationship-gone")).to_contain_text("no longer there")
    page.get_by_role("link", name="Back to the relationships").click()
    expect(page.locator("#relationships-empty")).to_be_visible()

    assert js_errors == []
    assert external_requests == []


def test_add_a_relationship_of_a_new_type_with_its_inverse(
        page: Page, live_server: tuple[str, str], api: httpx.Client,
        external_requests: list[str]) -> None:
    base, token = live_server
    js_errors: list[str] = []
    page.on("pageerror", lambda exc: js_errors.append(str(exc)))
    word = "n" + os.urandom(4).hex()
    ada = create_entity(api, f"Ada {word}")
    mary = create_entity(api, f"Mary {word}")
    sign_in(page, base, token)
    open_tab(page, base, ada)

    # The inverse inputs show once the typed type is one the list does not have.
    inverse = page.get_by_label("Inverse")
    expect(inverse).to_be_hidden()
    page.get_by_label("Type", exact=True).press_sequentially(f"patron {word} of", delay=20)
    expect(page.locator("#new-type-hint")).to_have_text(
        f"“patron {word} of” is a new type: it is added to the list.")
    expect(inverse).to_be_visible()
    page.get_by_label("Other entity").press_sequentially(f"mary {word}", delay=20)
    page.locator(f'#relationship-candidates [data-entity-id="{mary}"]').click()

    # An inverse that is another type already is refused inline, keeping what was typed.
    inverse.fill("child of")
    page.get_by_role("button", name="Add relationship").click()
    expect(page.locator("#inverse-error")).to_have_text(
        "“child_of” is already a relation type: choose another name for the inverse.")
    expect(page.get_by_label("Inverse")).to_have_value("child of")

    page.get_by_label("Inverse").fill(f"protege {word} of")
    page.get_by_role("button", name="Add relationship").click()
    expect(page).to_have_url(re.compile(r"&notice=added$"))
    expect(page.locator("tr[data-relationship-id] .rel-label")).to_have_text(
        f"patron {word} of")
    # Mary's side reads it by the inverse given.
    page.get_by_role("link", name=f"Mary {word}").click()
    page.get_by_role("tab", name="Relationships").click()
    expect(page.locator("tr[data-relationship-id] .rel-label")).to_have_text(
        f"protege {word} of")

    # A type that exists hides the inputs again.
    settled(page)
    page.get_by_label("Type", exact=True).press_sequentially("parent of", delay=20)
    expect(page.locator('#relation-type-suggestions button[data-type="parent_of"]')
           ).to_be_visible()
    expect(page.get_by_label("Inverse")).to_be_hidden()

    assert js_errors == []
    assert external_requests == []

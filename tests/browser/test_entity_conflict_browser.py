"""The edit form in a real browser when someone else saves the entity meanwhile: the page says
so, shows the current values and what was typed, and a second save lands."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.test_entities_browser import loaded, sign_in

pytestmark = pytest.mark.browser


@pytest.fixture
def api(live_server: tuple[str, str]) -> Iterator[httpx.Client]:
    """The other writer: an API client on the same server as the browser."""
    base, token = live_server
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}) as client:
        yield client


def create(api: httpx.Client, name: str, **body: Any) -> dict[str, Any]:
    r = api.post("/v1/entities", json={"display_name": name, **body})
    assert r.status_code == 201, r.text
    return r.json()


def change(api: httpx.Client, entity_id: str, **body: Any) -> dict[str, Any]:
    r = api.patch(f"/v1/entities/{entity_id}", json=body)
    assert r.status_code == 200, r.text
    return r.json()


def test_a_conflicting_edit_is_shown_and_the_second_save_lands(
        page: Page, live_server: tuple[str, str], api: httpx.Client,
        external_requests: list[str]) -> None:
    base, token = live_server
    js_errors: list[str] = []
    page.on("pageerror", lambda exc: js_errors.append(str(exc)))
    entity = create(api, "Conflict Ada", tags=["conflict-math"], fields={"born": 1815})
    entity_id = entity["entity_id"]
    edit_url = f"{base}/ui/entities/{entity_id}/edit"

    sign_in(page, base, token)
    page.goto(edit_url)
    loaded(page)
    expect(page.get_by_role("heading", name="Edit entity")).to_be_visible()
    expect(page.locator("#edit-conflict")).to_have_count(0)
    page.get_by_label("Name").fill("Conflict Ada (mine)")
    page.get_by_label("Tags").fill("conflict-mine")

    # meanwhile someone else saves through the API
    theirs = change(api, entity_id, display_name="Conflict Ada King",
                    tags=["conflict-poet"], fields={"city": "Paris"})

    page.get_by_role("button", name="Save").click()
    alert = page.locator("#edit-conflict")
    expect(alert).to_be_visible()
    expect(alert).to_have_attribute("role", "alert")
    expect(alert).to_contain_text("This entity was changed since you opened the form.")
    expect(alert).to_contain_text("Your changes were not saved")
    # the form now shows what is saved, not what was typed
    expect(page.get_by_label("Name")).to_have_value("Conflict Ada King")
    expect(page.get_by_label("Tags")).to_have_value("conflict-poet")
    expect(page.get_by_label("Fields")).to_have_value("born: 1815\ncity: Paris")
    expect(page).to_have_url(re.compile(rf"/ui/entities/{entity_id}/edit$"))
    # what was typed is one click away
    typed = alert.locator("details")
    expect(typed.locator("dl")).not_to_be_visible()
    typed.get_by_text("What you had typed").click()
    expect(typed.locator("dl")).to_be_visible()
    expect(typed).to_contain_text("Conflict Ada (mine)")
    expect(typed).to_contain_text("conflict-mine")
    # nothing was overwritten
    assert api.get(f"/v1/entities/{entity_id}").json() == theirs

    # make the change again on top of theirs: this time it is saved
    page.get_by_label("Name").fill("Conflict Ada King (mine)")
    page.get_by_role("button", name="Save").click()
    expect(page).to_have_url(re.compile(rf"/ui/entities/{entity_id}\?notice=saved$"))
    expect(page.get_by_role("status")).to_have_text("Changes saved.")
    expect(page.locator("#entity-name")).to_have_text("Conflict Ada King (mine)")
    saved = api.get(f"/v1/entities/{entity_id}").json()
    assert saved["display_name"] == "Conflict Ada King (mine)"
    assert saved["tags"] == ["conflict-poet"]
    assert saved["fields"] == {"born": 1815, "city": "Paris"}
    assert saved["version"] == theirs["version"] + 1

    assert js_errors == []
    assert external_requests == [], f"the UI tried to load from outside: {external_requests}"


def test_an_edit_nobody_else_touched_saves_first_time(
        page: Page, live_server: tuple[str, str], api: httpx.Client) -> None:
    base, token = live_server
    entity = create(api, "Quiet Grace")
    sign_in(page, base, token)
    page.goto(f"{base}/ui/entities/{entity['entity_id']}/edit")
    loaded(page)
    page.get_by_label("Name").fill("Quiet Grace Hopper")
    page.get_by_role("button", name="Save").click()
    expect(page).to_have_url(re.compile(rf"/ui/entities/{entity['entity_id']}\?notice=saved$"))
    expect(page.locator("#entity-name")).to_have_text("Quiet Grace Hopper")
    assert api.get(f"/v1/entities/{entity['entity_id']}").json()["version"] == 2


def test_the_conflict_is_shown_without_javascript_too(
        browser: Browser, live_server: tuple[str, str], api: httpx.Client) -> None:
    base, token = live_server
    entity = create(api, "NoJS Ada")
    context = browser.new_context(java_script_enabled=False)
    context.set_default_timeout(10_000)
    try:
        page = context.new_page()
        sign_in(page, base, token)
        page.goto(f"{base}/ui/entities/{entity['entity_id']}/edit")
        page.get_by_label("Name").fill("NoJS Ada (mine)")
        theirs = change(api, entity["entity_id"], display_name="NoJS Ada King")

        page.get_by_role("button", name="Save").click()
        expect(page.locator("#edit-conflict")).to_contain_text(
            "This entity was changed since you opened the form.")
        expect(page.get_by_label("Name")).to_have_value("NoJS Ada King")
        assert api.get(f"/v1/entities/{entity['entity_id']}").json() == theirs

        page.get_by_role("button", name="Save").click()
        expect(page).to_have_url(re.compile(r"\?notice=saved$"))
        expect(page.locator("#entity-name")).to_have_text("NoJS Ada King")
    finally:
        context.close()

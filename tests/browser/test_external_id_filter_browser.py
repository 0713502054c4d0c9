"""The Entities page's "External id" filter in a real headless Chromium: it narrows the
list without a reload, survives one (the address bar keeps it), and a malformed value is
explained on the page."""

from __future__ import annotations

import os
import re

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.browser.test_entities_browser import loaded, sign_in
from tests.browser.test_entity_filters_browser import names_shown

pytestmark = pytest.mark.browser


def test_external_id_filter(page: Page, live_server: tuple[str, str], api: httpx.Client,
                            external_requests: list[str]) -> None:
    base, token = live_server
    js_errors: list[str] = []
    page.on("pageerror", lambda exc: js_errors.append(str(exc)))
    word = os.urandom(4).hex()  # the server is shared: ids only this test uses
    for name, ids in ((f"Ada {word}", {"stash": f"{word}1"}),
                      (f"Grace {word}", {"stash": f"{word}12", "tpdb": f"{word}1"})):
        r = api.post("/v1/entities", json={"display_name": name, "external_ids": ids})
        assert r.status_code == 201, r.text
    sign_in(page, base, token)
    loaded(page)
    page.evaluate("window.__marker = 1")

    box = page.get_by_label("External id")
    box.fill(f"tpdb:{word}1")
    box.press("Tab")
    expect(page).to_have_url(re.compile(rf"[?&]external_id=tpdb%3A{word}1(&|$)"))
    expect(page.locator("#result-count")).to_have_text(re.compile(r"^\s*1 entity\s*$"))
    assert names_shown(page) == [f"Grace {word}"]
    assert page.evaluate("window.__marker") == 1, "filtering reloaded the page"

    # a reload (or a bookmark) keeps the filter and shows it in the box
    page.reload()
    loaded(page)
    expect(page.get_by_label("External id")).to_have_value(f"tpdb:{word}1")
    expect(page.locator("tr[data-entity-id]")).to_have_count(1)
    assert names_shown(page) == [f"Grace {word}"]

    # a value without a colon is explained instead of listing nothing silently
    page.get_by_label("External id").fill(f"stash{word}")
    page.get_by_label("External id").press("Tab")
    expect(page.locator("#external-id-error")).to_have_text(
        "Write the external id as namespace:id, such as stash:1234.")
    expect(page.locator("tr[data-entity-id]")).to_have_count(0)
    expect(page.get_by_text("No results: fix the external id.")).to_be_visible()

    page.get_by_label("External id").fill(f"stash:{word}1")
    page.get_by_label("External id").press("Tab")
    expect(page.locator("#external-id-error")).to_have_count(0)
    expect(page.locator("tr[data-entity-id]")).to_have_count(1)
    assert names_shown(page) == [f"Ada {word}"]

    assert js_errors == []
    assert external_requests == []

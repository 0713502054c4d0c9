"""Tag filter, sort order and pagination on the Entities page, in a real browser."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.browser.test_entities_browser import loaded, sign_in

pytestmark = pytest.mark.browser
PAGE_SIZE = 48  # plugins_builtin.entities.ui.PAGE_SIZE


def seed(base: str, token: str, names: list[str], tags: list[str]) -> None:
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}) as api:
        for name in names:
            assert api.post("/v1/entities", json={"display_name": name,
                                                  "tags": tags}).status_code == 201


def names_shown(page: Page) -> list[str]:
    return page.locator("tr[data-entity-id] td:first-child").all_inner_texts()


def test_tag_filter_sort_and_next_page(page: Page, live_server: tuple[str, str],
                                       external_requests: list[str]) -> None:
    base, token = live_server
    seed(base, token, ["Mid Filtertest", "Zeta Filtertest", "Alpha Filtertest"],
         ["filtertest-sort"])
    seed(base, token, [f"Pager {i:02d}" for i in range(PAGE_SIZE + 2)], ["filtertest-pager"])
    sign_in(page, base, token)
    loaded(page)
    page.evaluate("window.__marker = 1")

    # the tag filter applies when the field is left, without reloading the page
    page.get_by_label("Tags").fill("Filtertest-Sort")
    page.get_by_label("Tags").press("Tab")
    expect(page).to_have_url(re.compile(r"[?&]tag=Filtertest-Sort(&|$)"))
    expect(page.locator("#result-count")).to_have_text(re.compile(r"^\s*3 entities\s*$"))
    expect(page.locator("tr[data-entity-id]")).to_have_count(3)
    assert names_shown(page) == ["Alpha Filtertest", "Zeta Filtertest", "Mid Filtertest"]

    page.get_by_label("Sort").select_option("display_name:asc")
    expect(page).to_have_url(re.compile(r"[?&]sort=display_name%3Aasc(&|$)"))
    expect(page.locator("tr[data-entity-id]").first).to_contain_text("Alpha Filtertest")
    assert names_shown(page) == ["Alpha Filtertest", "Mid Filtertest", "Zeta Filtertest"]
    page.get_by_label("Sort").select_option("display_name:desc")
    expect(page.locator("tr[data-entity-id]").first).to_contain_text("Zeta Filtertest")
    assert page.evaluate("window.__marker") == 1, "filtering reloaded the page"

    # a filter over more than one page: Next page shows the rest, First page goes back
    page.get_by_label("Tags").fill("filtertest-pager")
    page.get_by_label("Tags").press("Tab")
    expect(page.locator("#result-count")).to_have_text(re.compile(rf"^\s*{PAGE_SIZE + 2} "))
    expect(page.locator("tr[data-entity-id]")).to_have_count(PAGE_SIZE)
    first_page = names_shown(page)
    assert first_page == [f"Pager {i:02d}" for i in range(PAGE_SIZE + 1, 1, -1)]

    page.get_by_role("link", name="Next page").click()
    expect(page.locator("tr[data-entity-id]")).to_have_count(2)
    assert names_shown(page) == ["Pager 01", "Pager 00"]
    expect(page).to_have_url(re.compile(r"[?&]cursor="))
    expect(page.get_by_role("link", name="Next page")).to_have_count(0)
    page.get_by_role("link", name="First page").click()
    expect(page.locator("tr[data-entity-id]")).to_have_count(PAGE_SIZE)
    assert page.evaluate("window.__marker") == 1, "paging reloaded the page"
    assert external_requests == []

"""The Assets grid in a real headless Chromium against a real ``faceforge serve`` with its
thumbnails plugin: 256 px thumbnails load only as they scroll into view; select several
(click, shift-click, keyboard, select all), link them to an entity through the picker, delete
some after confirming — and the same with JavaScript off."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.test_assets_browser import png_image
from tests.browser.test_entities_browser import loaded, sign_in

pytestmark = pytest.mark.browser

#: narrow, so that 24 items make a grid far taller than the screen plus the distance at
#: which Chromium starts loading a lazy image (1,250 px on a fast network)
PHONE = {"width": 420, "height": 720}
IMAGES = 24
THUMBNAILS_TIMEOUT = 30.0


@pytest.fixture
def unique() -> str:
    return "g" + os.urandom(4).hex()


def wait_until(check: Callable[[], Any], what: str, timeout: float = THUMBNAILS_TIMEOUT) -> Any:
    """Poll ``check`` until it returns something true, or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.1)  # bounded poll of the server's state (no event to wait on over HTTP)


def upload_images(api: httpx.Client, unique: str, count: int) -> dict[str, str]:
    """Upload ``count`` real PNGs; wait for the thumbnails plugin; {asset id: 256 px id}."""
    ids = []
    for i in range(count):
        r = api.post("/v1/assets/upload",
                     files={"file": (f"shot-{unique}-{i:02}.png", png_image(600, 400))})
        assert r.status_code == 201, r.text
        ids.append(r.json()["asset_id"])

    def thumbnails() -> dict[str, str] | None:
        found = {}
        for asset_id in ids:
            recorded = api.get(f"/v1/assets/{asset_id}").json()["plugin_data"].get("thumbnails")
            assert not (recorded or {}).get("error"), recorded
            if not recorded:
                return None
            found[asset_id] = recorded["256"]
        return found

    return wait_until(thumbnails, f"the thumbnails of {count} images")


def create_entity(api: httpx.Client, name: str) -> str:
    r = api.post("/v1/entities", json={"display_name": name})
    assert r.status_code == 201, r.text
    return r.json()["entity_id"]


def linked(api: httpx.Client, entity_id: str) -> dict[str, str | None]:
    items = api.get(f"/v1/entities/{entity_id}/assets", params={"limit": 100}).json()["items"]
    return {a["asset_id"]: a["role"] for a in items}


def thumbnail_loaded(page: Page, item: Any) -> None:
    page.wait_for_function("img => img.complete && img.naturalWidth === 256",
                           arg=item.locator("img").element_handle())


@pytest.mark.parametrize("viewport", [PHONE])
def test_gallery_lazy_thumbnails_select_link_delete(
        page: Page, live_server: tuple[str, str], api: httpx.Client, unique: str,
        external_requests: list[str]) -> None:
    base, token = live_server
    js_errors: list[str] = []
    page.on("pageerror", lambda exc: js_errors.append(str(exc)))
    thumbs = upload_images(api, unique, IMAGES)
    newest_first = list(thumbs)[::-1]
    entity_id = create_entity(api, f"Gallery Ada {unique}")
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))

    sign_in(page, base, token)
    page.goto(f"{base}/ui/assets?q={unique}")
    loaded(page)
    items = page.locator("#results .asset-gallery .item")
    expect(items).to_have_count(IMAGES)
    assert items.evaluate_all("els => els.map(e => e.dataset.assetId)") == newest_first

    # each picture is the 256 px thumbnail, lazily; the last ones wait for a scroll
    first, last = items.first, items.last
    for item, asset_id in ((first, newest_first[0]), (last, newest_first[-1])):
        img = item.locator("img")
        expect(img).to_have_attribute("src", f"/v1/assets/{thumbs[asset_id]}/download?inline=true")
        expect(img).to_have_attribute("loading", "lazy")
        expect(img).to_have_attribute("decoding", "async")
    thumbnail_loaded(page, first)
    last_url = f"/v1/assets/{thumbs[newest_first[-1]]}/download"
    assert not [url for url in requested if last_url in url], "loaded before it was scrolled to"
    assert not [url for url in requested if f"/v1/assets/{newest_first[-1]}/download" in url]
    last.scroll_into_view_if_needed()
    thumbnail_loaded(page, last)
    assert [url for url in requested if last_url in url]
    page.evaluate("window.scrollTo(0, 0)")

    # select: a click, a shift-click for the range, the keyboard; the bar counts
    bar = page.locator("#bulk-bar")
    count = page.locator("#selected-count")
    expect(bar).to_be_hidden()
    boxes = page.locator("#results input.pick")
    boxes.nth(0).check()
    expect(bar).to_be_visible()
    expect(count).to_have_text("1 selected")
    boxes.nth(3).click(modifiers=["Shift"])
    expect(count).to_have_text("4 selected")
    boxes.nth(5).focus()
    page.keyboard.press("Space")
    expect(count).to_have_text("5 selected")
    chosen = [newest_first[i] for i in (0, 1, 2, 3, 5)]
    assert boxes.evaluate_all("els => els.filter(e => e.checked).map(e => e.value)") == chosen
    select_all = page.get_by_label("Select all on this page")
    select_all.check()
    expect(count).to_have_text(f"{IMAGES} selected")
    select_all.uncheck()
    expect(bar).to_be_hidden()
    for i in (0, 1, 2, 3, 5):
        boxes.nth(i).check()
    expect(count).to_have_text("5 selected")

    # link them: the picker lists matching entities as one types; Enter stays on the page
    bar.get_by_text("Link to entity…").click()
    search = page.get_by_label("Find the entity")
    search.fill(f"Gallery Ada {unique}")
    option = page.locator(f'#entity-candidates [data-entity-id="{entity_id}"]')
    expect(option).to_be_visible()
    expect(option.get_by_role("radio")).to_be_checked()
    search.press("Enter")
    expect(page).to_have_url(re.compile(rf"/ui/assets\?q={unique}$"))
    bar.get_by_label("Role").fill("gallery")
    bar.get_by_role("button", name="Link", exact=True).click()
    expect(page.locator("#bulk-notice")).to_have_text(
        f"Linked 5 assets to Gallery Ada {unique}.")
    expect(page).to_have_url(re.compile(rf"[?&]q={unique}&notice=linked"))
    assert linked(api, entity_id) == {asset_id: "gallery" for asset_id in chosen}

    # delete two, after confirming
    expect(bar).to_be_hidden()
    boxes.nth(0).check()
    boxes.nth(1).check()
    expect(count).to_have_text("2 selected")
    bar.get_by_role("button", name="Delete…").click()
    expect(page.get_by_role("heading", name="Delete 2 assets?")).to_be_visible()
    expect(page.locator("#selected-assets li")).to_have_count(2)
    page.get_by_role("button", name="Delete 2 assets").click()
    expect(page.locator("#bulk-notice")).to_have_text("Deleted 2 assets.")
    expect(items).to_have_count(IMAGES - 2)
    for asset_id in newest_first[:2]:
        assert api.get(f"/v1/assets/{asset_id}").status_code == 404
    assert set(linked(api, entity_id)) == set(chosen[2:])

    assert js_errors == []
    assert external_requests == [], f"the UI tried to load from outside: {external_requests}"


def test_select_and_link_without_javascript(browser: Browser, live_server: tuple[str, str],
                                            api: httpx.Client, unique: str) -> None:
    base, token = live_server
    ids = []
    for i in range(3):
        r = api.post("/v1/assets/upload", files={"file": (f"plain-{unique}-{i}.txt",
                                                          f"{unique} {i}".encode())})
        assert r.status_code == 201, r.text
        ids.append(r.json()["asset_id"])
    entity_id = create_entity(api, f"No script Ada {unique}")
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        sign_in(page, base, token)
        page.goto(f"{base}/ui/assets?q={unique}&view=list")
        expect(page.locator("#bulk-bar")).to_be_visible()  # nothing hides it
        page.get_by_label(f"Select plain-{unique}-0.txt").check()
        page.get_by_label(f"Select plain-{unique}-2.txt").check()
        page.get_by_text("Link to entity…").click()
        page.get_by_label("Find the entity").fill(f"No script Ada {unique}")
        page.get_by_role("button", name="Find").click()
        expect(page.get_by_role("heading", name="Link 2 assets to an entity")).to_be_visible()
        page.get_by_role("radio", name=re.compile(f"No script Ada {unique}")).check()
        page.get_by_role("button", name="Link", exact=True).click()
        expect(page.locator("#bulk-notice")).to_have_text(
            f"Linked 2 assets to No script Ada {unique}.")
        expect(page).to_have_url(re.compile(r"view=list"))
    finally:
        context.close()
    assert linked(api, entity_id) == {ids[0]: None, ids[2]: None}

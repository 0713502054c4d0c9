"""The Attachments tab and the Assets pages in a real headless Chromium against a real
``faceforge serve``: upload several files with progress bars, see them listed, download one,
set a thumbnail, unlink, link back, filter the Assets page, edit and delete an asset."""

from __future__ import annotations

import os
import re
import struct
import zlib
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.test_entities_browser import loaded, sign_in

pytestmark = pytest.mark.browser



def settled(page: Page) -> None:
    """Wait for htmx to finish a swap: it wires up the swapped-in form only after its settle
    delay, and a change made before that is not sent."""
    page.wait_for_function("() => !document.querySelector('.htmx-swapping, .htmx-settling')")

def png_image(width: int = 24, height: int = 16) -> bytes:
    """A real PNG the browser can draw; a random colour makes its bytes (its id) new."""
    colour = os.urandom(3)
    raw = b"".join(b"\x00" + colour * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))

    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


@pytest.fixture
def unique() -> str:
    """A word no other test's file names hold (the server is shared by the session)."""
    return "u" + os.urandom(4).hex()


def create_entity(api: httpx.Client, name: str) -> str:
    r = api.post("/v1/entities", json={"display_name": name})
    assert r.status_code == 201, r.text
    return r.json()["entity_id"]


def test_attachments_journey(page: Page, live_server: tuple[str, str], api: httpx.Client,
                             unique: str, tmp_path: Path,
                             external_requests: list[str]) -> None:
    base, token = live_server
    js_errors: list[str] = []
    page.on("pageerror", lambda exc: js_errors.append(str(exc)))
    entity_id = create_entity(api, f"Attach Ada {unique}")
    image_name, notes_name = f"face-{unique}.png", f"notes-{unique}.txt"
    image, notes = png_image(), f"notes for {unique}\n".encode() * 2000
    (tmp_path / image_name).write_bytes(image)
    (tmp_path / notes_name).write_bytes(notes)

    # The Attachments tab swaps in with htmx; its uploader script comes with it.
    sign_in(page, base, token)
    page.goto(f"{base}/ui/entities/{entity_id}")
    loaded(page)
    page.evaluate("window.__marker = 1")
    page.get_by_role("tab", name="Attachments").click()
    expect(page).to_have_url(re.compile(rf"/ui/entities/{entity_id}\?tab=attachments$"))
    panel = page.locator("#tab-panel")
    expect(panel.locator("#attachments-empty")).to_have_text("No attachments yet.")
    expect(page.locator("#attachment-upload")).to_have_attribute("data-uploader-state", "ready")

    # Two files at once through the Uppy Dashboard (tus): both finish, the list refreshes.
    page.locator("#attachment-upload-dashboard input[type=file]").first.set_input_files(
        [tmp_path / image_name, tmp_path / notes_name])
    page.get_by_label("Role").fill("reference")
    page.get_by_role("button", name=re.compile(r"^Upload 2 files")).click()
    items = page.locator(".uppy-Dashboard-Item")
    expect(items).to_have_count(2)
    expect(page.locator(".uppy-Dashboard-Item.is-complete")).to_have_count(2)
    listing = page.locator("#attachment-list")
    # a few go up at once, so they are linked in the order they finished
    expect(listing.locator("tr[data-asset-id] .asset-name")).to_have_count(2)
    assert sorted(listing.locator("tr[data-asset-id] .asset-name").all_inner_texts()) == \
        [image_name, notes_name]
    assert page.evaluate("window.__marker") == 1, "the upload reloaded the page"
    image_row = listing.locator("tr", has_text=image_name)
    notes_row = listing.locator("tr", has_text=notes_name)
    expect(notes_row).to_contain_text("doc.text")
    expect(notes_row).to_contain_text("reference")
    expect(notes_row).to_contain_text(f"{len(notes) / 1000:.1f} kB")
    thumb = image_row.locator("img")
    expect(thumb).to_have_attribute("loading", "lazy")
    page.wait_for_function("img => img.complete && img.naturalWidth === 24",
                           arg=thumb.element_handle())
    linked = sorted(api.get(f"/v1/entities/{entity_id}/assets").json()["items"],
                    key=lambda a: a["filename"])
    assert [(a["filename"], a["role"]) for a in linked] == [(image_name, "reference"),
                                                            (notes_name, "reference")]

    # Download gives back the very bytes.
    with page.expect_download() as info:
        notes_row.get_by_role("link", name=f"Download {notes_name}").click()
    download = info.value
    assert download.suggested_filename == notes_name
    assert Path(download.path()).read_bytes() == notes

    # Only the image can be the primary thumbnail.
    expect(notes_row.get_by_role("button", name=re.compile("Set as thumbnail"))).to_have_count(0)
    image_row.get_by_role("button", name=re.compile("Set as thumbnail")).click()
    expect(page.locator("#attachments-notice")).to_have_text("Primary thumbnail set.")
    expect(listing.locator("tr", has_text=image_name)).to_contain_text("Primary thumbnail")
    assert api.get(f"/v1/entities/{entity_id}").json()["primary_thumbnail_asset_id"] == \
        linked[0]["asset_id"]

    # Filter by kind, in place.
    loaded(page)
    page.evaluate("window.__marker = 2")
    page.locator("#attachment-kind").select_option("doc.text")
    expect(page).to_have_url(re.compile(r"[?&]kind=doc\.text(&|$)"))
    expect(listing.locator("tr[data-asset-id] .asset-name")).to_have_text([notes_name])
    assert page.evaluate("window.__marker") == 2, "the kind filter reloaded the page"
    settled(page)
    page.locator("#attachment-kind").select_option("")
    expect(listing.locator("tr[data-asset-id]")).to_have_count(2)

    # Unlink the notes: gone from the tab, still an asset.
    listing.locator("tr", has_text=notes_name).get_by_role(
        "button", name=f"Unlink {notes_name}").click()
    expect(page.locator("#attachments-notice")).to_contain_text("Asset unlinked.")
    expect(listing.locator("tr[data-asset-id] .asset-name")).to_have_text([image_name])

    # Link it back by searching its name.
    loaded(page)
    page.get_by_label("File name or asset id").fill(f"notes-{unique}")
    candidate = page.locator("#link-candidates li", has_text=notes_name)
    expect(candidate).to_be_visible()
    candidate.get_by_role("textbox").fill("transcript")
    candidate.get_by_role("button", name=f"Link {notes_name}").click()
    expect(page.locator("#attachments-notice")).to_have_text("Asset linked.")
    expect(listing.locator("tr", has_text=notes_name)).to_contain_text("transcript")

    # The Assets page shows both (a grid); the filters narrow it in place.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Assets").click()
    expect(page.get_by_role("heading", name="Assets", exact=True)).to_be_visible()
    loaded(page)
    page.evaluate("window.__marker = 3")
    filters = page.locator("#asset-filters")
    filters.get_by_label("File name").fill(unique)
    expect(page).to_have_url(re.compile(rf"[?&]q={unique}(&|$)"))
    results = page.locator("#results")
    expect(results.locator(".gallery .item[data-asset-id]")).to_have_count(2)
    # each step waits for its own answer (the URL it pushes), not for a count an earlier
    # answer may also have
    filters.get_by_label("Kind").select_option("image.original")
    expect(page).to_have_url(re.compile(r"[?&]kind=image\.original(&|$)"))
    expect(results.locator("[data-asset-id]")).to_have_count(1)
    expect(results.locator("[data-asset-id]")).to_contain_text(image_name)
    filters.get_by_label("Kind").select_option("")
    filters.get_by_label("Type").select_option("text/")
    expect(page).to_have_url(re.compile(r"^[^#]*[?&]mime=text%2F(&|$)(?!.*kind=)"))
    expect(results.locator("[data-asset-id]")).to_have_count(1)
    expect(results.locator("[data-asset-id]")).to_contain_text(notes_name)
    assert page.evaluate("window.__marker") == 3, "filtering reloaded the page"
    page.get_by_role("group", name="View").get_by_role("link", name="List").click()
    expect(results.locator("tr[data-asset-id]")).to_have_count(1)
    filters.get_by_label("Type").select_option("")  # the list stays while filtering
    expect(results.locator("tr[data-asset-id]")).to_have_count(2)
    expect(page).to_have_url(re.compile(r"[?&]view=list(&|$)"))
    filters.get_by_label("Type").select_option("text/")
    expect(results.locator("tr[data-asset-id]")).to_have_count(1)

    # The asset's page: record, linked entity; rename it, then delete it.
    results.get_by_role("link", name=notes_name).click()
    expect(page.locator("#asset-name")).to_have_text(notes_name)
    expect(page.locator("#asset-record")).to_contain_text(linked[1]["asset_id"])
    expect(page.locator("#linked-entities a")).to_have_text(f"Attach Ada {unique}")
    expect(page.locator("#linked-entities .link-role")).to_have_text("transcript")
    page.get_by_label("File name").fill(f"renamed-{unique}.txt")
    page.get_by_label("User metadata").fill('{"source": "browser"}')
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_have_text("Changes saved.")
    expect(page.locator("#asset-name")).to_have_text(f"renamed-{unique}.txt")
    expect(page.locator("#user-metadata")).to_contain_text('"source": "browser"')
    page.locator("main").get_by_role("link", name="Delete").click()
    expect(page.get_by_role("heading", name=f"Delete “renamed-{unique}.txt”?")).to_be_visible()
    page.get_by_role("button", name="Delete").click()
    expect(page).to_have_url(re.compile(r"/ui/assets\?notice=deleted$"))
    expect(page.get_by_role("status")).to_contain_text("Asset deleted.")
    assert api.get(f"/v1/entities/{entity_id}/assets").json()["items"][0]["filename"] == \
        image_name
    assert len(api.get(f"/v1/entities/{entity_id}/assets").json()["items"]) == 1

    assert js_errors == []
    assert external_requests == [], f"the UI tried to load from outside: {external_requests}"


def test_a_failed_upload_says_why_and_the_others_still_land(
        page: Page, live_server: tuple[str, str], api: httpx.Client, unique: str,
        tmp_path: Path) -> None:
    base, token = live_server
    entity_id = create_entity(api, f"Upload errors {unique}")
    good = tmp_path / f"good-{unique}.txt"
    good.write_bytes(f"good {unique}".encode())
    sign_in(page, base, token)
    page.goto(f"{base}/ui/entities/{entity_id}?tab=attachments")
    loaded(page)
    # the entity is deleted behind the page's back: the API refuses to link to it
    assert api.delete(f"/v1/entities/{entity_id}").status_code == 204
    expect(page.locator("#attachment-upload")).to_have_attribute("data-uploader-state", "ready")
    page.locator("#attachment-upload-dashboard input[type=file]").first.set_input_files([good])
    page.get_by_role("button", name=re.compile(r"^Upload 1 file")).click()
    expect(page.locator(".uppy-Dashboard-Item.is-error")).to_have_count(1)
    expect(page.locator("#attachment-upload-error")).to_contain_text("no entity with id")
    expect(page.get_by_role("button", name="Retry upload")).to_be_visible()


def test_upload_without_javascript(browser: Browser, live_server: tuple[str, str],
                                   api: httpx.Client, unique: str, tmp_path: Path) -> None:
    base, token = live_server
    entity_id = create_entity(api, f"No script {unique}")
    path = tmp_path / f"plain-{unique}.txt"
    path.write_bytes(f"posted without script {unique}".encode())
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        sign_in(page, base, token)
        page.goto(f"{base}/ui/entities/{entity_id}?tab=attachments")
        page.get_by_label("Files", exact=True).set_input_files([path])
        page.locator("#upload-kind").select_option("doc.text")
        page.get_by_role("button", name="Upload").click()
        expect(page).to_have_url(re.compile(r"\?tab=attachments&notice=uploaded$"))
        expect(page.locator("#attachments-notice")).to_have_text("Upload finished.")
        expect(page.locator("#attachment-list")).to_contain_text(path.name)
    finally:
        context.close()
    (item,) = api.get(f"/v1/entities/{entity_id}/assets").json()["items"]
    assert (item["filename"], item["kind"]) == (path.name, "doc.text")

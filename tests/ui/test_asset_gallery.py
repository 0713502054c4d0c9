"""The Assets page as a grid over HTTP: thumbnails (the 256 px one, a small image itself, a
type tile), the type filter, hidden thumbnails, and select-many: link to an entity, delete —
with their errors and CSRF.

The thumbnail and metadata plugins are off: a test sets what they would write
(``plugin_data.thumbnails`` through the API, dimensions through the store), so a page never
changes while it is read.
"""

from __future__ import annotations

import re
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from starlette.applications import Starlette

from kernel.config import Settings, load_settings
from tests.media import png_bytes
from tests.ui.asset_pages import (
    MP3,
    MP4,
    PDF,
    QUIET,
    UNKNOWN_ID,
    asset_ids,
    create_entity,
    download,
    set_thumbnails,
    upload,
)
from tests.ui.browsing import SignedIn, entity_ids, htmx_links_without_href, page, post_form, tags

LIST_PAGE = 48  # plugins_builtin.assets.ui.LIST_PAGE
MAX_BULK = 500  # plugins_builtin.assets.ui.MAX_BULK


@pytest.fixture
def settings(home: Path) -> Settings:
    return load_settings(home, env=QUIET)


@pytest.fixture
def store(app: Starlette, client: httpx.AsyncClient) -> Any:
    """The assets plugin's store in the running Core (to set what extraction would)."""
    return app.state.kernel.services["assets.store"]


def item(html: str, asset_id: str) -> str:
    """One grid item's markup."""
    return html.split(f'data-asset-id="{asset_id}"', 1)[1].split('<div class="item"', 1)[0]


def flash(html: str) -> str:
    match = re.search(r'<p class="flash" role="status" id="bulk-notice">([^<]*)</p>', html)
    assert match, "no notice on the page"
    return unescape(match.group(1))


def notice_query(location: str) -> dict[str, list[str]]:
    parts = urlsplit(location)
    assert parts.path == "/ui/assets"
    return parse_qs(parts.query)


async def linked(client: httpx.AsyncClient, entity_id: str) -> list[tuple[str, str | None]]:
    items = (await client.get(f"/v1/entities/{entity_id}/assets")).json()["items"]
    return [(a["asset_id"], a["role"]) for a in items]


async def is_deleted(client: httpx.AsyncClient, asset_id: str) -> bool:
    return (await client.get(f"/v1/assets/{asset_id}")).status_code == 404


# -- the grid ----------------------------------------------------------------------------

async def test_the_grid_is_the_default_and_draws_thumbnails(ui: SignedIn, client, store):
    photo = await upload(client, "photo.png", png_bytes(1_200_000))
    thumb = await upload(client, "photo-256.png", kind="image.thumbnail",
                         derived_from_asset_id=photo)
    await set_thumbnails(client, photo, {"256": thumb, "1024": thumb})
    await store.set_extracted(photo, {}, width=4000, height=3000)
    small = await upload(client, "small.png")
    large = await upload(client, "large.png", png_bytes(1_200_000))  # no thumbnail yet
    broken = await upload(client, "broken.png")
    await set_thumbnails(client, broken, {"error": "not an image Pillow can read"})
    notes = await upload(client, "notes.txt", b"notes\n")
    song = await upload(client, "song.mp3", MP3)
    clip = await upload(client, "clip.mp4", MP4)
    lora = await upload(client, "style.safetensors", b"\x08" + bytes(40))
    paper = await upload(client, "paper.pdf", PDF)

    html = await page(ui, "/ui/assets")
    assert 'class="gallery asset-gallery"' in html and "<table" not in html
    # the thumbnail itself is not shown: its image is
    assert asset_ids(html) == [paper, lora, clip, song, notes, broken, large, small, photo]
    (img,) = tags(item(html, photo), "img")
    assert img.attrs == {"src": download(thumb), "alt": "", "loading": "lazy",
                         "decoding": "async", "width": "256", "height": "192"}
    (img,) = tags(item(html, small), "img")
    assert (img.attrs["src"], img.attrs["loading"]) == (download(small), "lazy")
    # a big image without a thumbnail, and one that could not be read, are tiles
    for asset_id in (large, broken):
        assert tags(item(html, asset_id), "img") == []
        assert "tile-image" in item(html, asset_id) and ">PNG<" in item(html, asset_id)
    assert 'title="No thumbnail: not an image Pillow can read"' in item(html, broken)
    for asset_id, family, label in ((notes, "text", "TXT"), (song, "audio", "MP3"),
                                    (clip, "video", "MP4"), (lora, "model", "SAFE"),
                                    (paper, "document", "PDF")):
        tile = item(html, asset_id)
        assert f"tile-{family}" in tile and f">{label}<" in tile, asset_id
        assert tags(tile, "svg", **{"class": "type-icon"})
    # each item: a labelled checkbox and a link to its page
    for asset_id in asset_ids(html):
        (box,) = tags(item(html, asset_id), "input", type="checkbox")
        assert (box.attrs["name"], box.attrs["value"]) == ("asset_id", asset_id)
        assert box.attrs["aria-label"].startswith("Select ")
        assert tags(item(html, asset_id), "a", href=f"/ui/assets/{asset_id}")

    # the list view keeps working, with the same checkboxes
    listing = await page(ui, "/ui/assets?view=list")
    assert "<table" in listing and 'class="gallery' not in listing
    assert [t.attrs["value"] for t in tags(listing, "input", name="asset_id")] == \
        asset_ids(listing)
    assert tags(listing, "a", href="/ui/assets", **{"aria-current": "true"}) == [] and \
        tags(listing, "a", href="/ui/assets?view=list", **{"aria-current": "true"})


async def test_thumbnails_are_shown_on_request_or_by_kind(ui, client):
    photo = await upload(client, "photo.png")
    thumb = await upload(client, "photo-256.png", kind="image.thumbnail",
                         derived_from_asset_id=photo)
    assert asset_ids(await page(ui, "/ui/assets")) == [photo]
    html = await page(ui, "/ui/assets?derived=1")
    assert asset_ids(html) == [thumb, photo]
    assert tags(html, "input", id="derived", checked="")
    assert asset_ids(await page(ui, "/ui/assets?kind=image.thumbnail")) == [thumb]
    # the toggle is kept by the view switch and the pager
    assert tags(html, "a", href="/ui/assets?view=list&derived=1")


async def test_hidden_thumbnails_do_not_shorten_pages(ui, client):
    """Every image has thumbnails after it: a page is still a full page of images."""
    originals = []
    for i in range(LIST_PAGE + 3):
        originals.append(await upload(client, f"n{i:02}.txt", f"n{i}".encode()))
        await upload(client, f"t{i:02}.png", kind="image.thumbnail")
    newest_first = originals[::-1]
    html = await page(ui, "/ui/assets")
    assert asset_ids(html) == newest_first[:LIST_PAGE]
    (next_link,) = [unescape(t.attrs["href"]) for t in tags(html, "a", rel="next")]
    html = await page(ui, next_link)
    assert asset_ids(html) == newest_first[LIST_PAGE:]
    assert not tags(html, "a", rel="next")


async def test_type_filter_is_a_select_of_families(ui, client):
    photo = await upload(client, "photo.png")
    song = await upload(client, "song.mp3", MP3)
    notes = await upload(client, "notes.txt", b"notes\n")
    html = await page(ui, "/ui/assets")
    (select,) = tags(html, "select", id="mime")
    assert select.attrs["name"] == "mime"
    values = [t.attrs["value"] for t in tags(html.split('id="mime"', 1)[1].split("</select>")[0],
                                               "option")]
    assert values[:5] == ["", "image/", "video/", "audio/", "text/"]
    for value, shown in (("image/", [photo]), ("audio/", [song]), ("text/", [notes]),
                         ("video/", [])):
        html = await page(ui, f"/ui/assets?mime={value}")
        assert asset_ids(html) == shown, value
        assert tags(html, "option", value=value, selected="")
    # a whole type typed into the URL stays selected
    html = await page(ui, "/ui/assets?mime=audio/mpeg")
    assert asset_ids(html) == [song] and tags(html, "option", value="audio/mpeg", selected="")


async def test_filters_answer_htmx_with_the_results_only(ui, client):
    photo = await upload(client, "photo.png")
    await upload(client, "notes.txt", b"notes\n")
    html = await page(ui, "/ui/assets?mime=image/", headers={"HX-Request": "true"})
    assert "<html" not in html and 'id="asset-filters"' not in html
    assert asset_ids(html) == [photo] and 'id="asset-selection"' in html
    full = await page(ui, "/ui/assets")
    (form,) = tags(full, "form", id="asset-filters")
    assert form.attrs["hx-sync"] == "this:replace"
    assert "change from:#mime" in form.attrs["hx-trigger"]
    assert "change from:#derived" in form.attrs["hx-trigger"]
    assert tags(full, "script", src="/static/assets/gallery.js")
    assert htmx_links_without_href(full) == []


async def test_deleted_assets_have_no_checkbox(ui, client):
    gone = await upload(client, "gone.txt", b"gone\n")
    assert (await client.delete(f"/v1/assets/{gone}")).status_code == 204
    html = await page(ui, "/ui/assets?state=deleted")
    assert asset_ids(html) == [gone]
    assert tags(html, "input", name="asset_id") == [] and 'id="bulk-bar"' not in html


# -- select many: link to an entity ------------------------------------------------------

async def test_link_the_selection_to_an_entity(ui, client):
    ada = await create_entity(client, "Ada Lovelace", tags=["math"])
    await create_entity(client, "Grace Hopper")
    chosen = [await upload(client, f"face-{i}.png") for i in range(3)]
    other = await upload(client, "other.png")
    html = await page(ui, "/ui/assets?q=face")
    (form,) = tags(html, "form", id="asset-selection")
    assert (form.attrs["method"], form.attrs["action"]) == ("post", "/ui/assets/bulk/link")
    back = tags(html, "input", name="back")[0].attrs["value"]
    assert back == "/ui/assets?q=face"
    assert tags(html, "button", formaction="/ui/assets/bulk/delete")
    assert tags(html, "button", name="action", value="link")

    # without JavaScript "Find" shows the picker for the selection
    form_data: dict[str, Any] = {"asset_id": chosen, "back": back, "entity_q": "ada"}
    r = await post_form(ui, "/ui/assets/bulk/link", form_data)
    assert r.status_code == 200 and "<html" in r.text
    assert "Link 3 assets to an entity" in r.text
    assert [t.attrs["value"] for t in tags(r.text, "input", name="asset_id")] == chosen
    assert entity_ids(r.text.split('id="entity-candidates"', 1)[1]) == [ada]
    assert tags(r.text, "input", type="radio", value=ada, checked="")
    # the live search (htmx) answers the candidates only, with or without a selection
    r = await post_form(ui, "/ui/assets/bulk/link", {"entity_q": "grace"},
                        headers={"HX-Request": "true"})
    assert r.status_code == 200 and "<html" not in r.text
    assert r.text.strip().startswith('<fieldset class="entity-candidates"')
    assert "Grace Hopper" in r.text and "Ada" not in r.text
    r = await post_form(ui, "/ui/assets/bulk/link", {"entity_q": "nobody"},
                        headers={"HX-Request": "true"})
    assert "No entity matches “nobody”." in unescape(r.text)
    r = await post_form(ui, "/ui/assets/bulk/link", {"entity_q": ada.upper()},
                        headers={"HX-Request": "true"})
    assert entity_ids(r.text) == [ada]

    r = await post_form(ui, "/ui/assets/bulk/link", form_data | {
        "action": "link", "entity_id": ada, "role": "reference"})
    assert r.status_code == 303
    assert notice_query(r.headers["location"]) == {
        "q": ["face"], "notice": ["linked"], "n": ["3"], "to": [ada]}
    html = await page(ui, r.headers["location"])
    assert flash(html) == "Linked 3 assets to Ada Lovelace."
    assert asset_ids(html) == chosen[::-1]  # back on the same filtered page
    assert sorted(await linked(client, ada)) == sorted((a, "reference") for a in chosen)
    assert await linked(client, ada) and other not in [a for a, _ in await linked(client, ada)]


async def test_linking_says_what_went_wrong(ui, client):
    ada = await create_entity(client, "Ada")
    face, notes = await upload(client, "face.png"), await upload(client, "notes.txt", b"n\n")
    selection = {"asset_id": [face, notes], "back": "/ui/assets"}
    link = "/ui/assets/bulk/link"

    # no entity chosen
    r = await post_form(ui, link, selection | {"action": "link"})
    assert r.status_code == 422 and "Choose the entity to link to." in r.text
    # the entity was deleted since it was listed
    gone = await create_entity(client, "Gone")
    assert (await client.delete(f"/v1/entities/{gone}")).status_code == 204
    for entity_id in (gone, UNKNOWN_ID, "not-an-id"):
        r = await post_form(ui, link, selection | {"action": "link", "entity_id": entity_id})
        assert r.status_code == 422 and "That entity no longer exists" in r.text, entity_id
        assert [t.attrs["value"] for t in tags(r.text, "input", name="asset_id")] == \
            [face, notes]  # the selection is kept for another try
    # nothing, or nonsense, selected
    for data, why in (({}, "Select at least one asset first."),
                      ({"asset_id": "nope"}, "is not an asset id"),
                      ({"asset_id": [f"{i:064x}" for i in range(MAX_BULK + 1)]},
                       f"Select at most {MAX_BULK} assets")):
        r = await post_form(ui, link, data | {"action": "link", "entity_id": ada})
        assert r.status_code == 422 and why in r.text and "<main" in r.text, why
    r = await post_form(ui, link, selection | {"action": "link", "entity_id": ada,
                                                "role": "r" * 101})
    assert r.status_code == 422 and "at most 100 characters" in r.text
    assert await linked(client, ada) == []

    # an asset deleted after it was selected is counted, the others linked
    assert (await client.delete(f"/v1/assets/{notes}")).status_code == 204
    r = await post_form(ui, link, selection | {"action": "link", "entity_id": ada})
    assert r.status_code == 303
    assert flash(await page(ui, r.headers["location"])) == (
        "Linked 1 asset to Ada. 1 selected asset could not be linked: it was deleted "
        "meanwhile.")
    assert await linked(client, ada) == [(face, None)]


# -- select many: delete -----------------------------------------------------------------

async def test_delete_the_selection_after_confirming(ui, client):
    ada = await create_entity(client, "Ada")
    chosen = [await upload(client, f"n{i}.txt", f"n{i}".encode(), entity_id=ada)
              for i in range(3)]
    kept = await upload(client, "kept.txt", b"kept\n")
    back = "/ui/assets?view=list&evil=https://example.com"
    r = await post_form(ui, "/ui/assets/bulk/delete", {"asset_id": chosen, "back": back})
    assert r.status_code == 200
    assert "Delete 3 assets?" in r.text and asset_ids(r.text) == chosen
    assert "linked to 1" in r.text
    assert tags(r.text, "button", name="action", value="delete")
    assert "Delete 3 assets" in r.text.split('value="delete"', 1)[1].split("</button>", 1)[0]
    assert tags(r.text, "a", href="/ui/assets?view=list")  # Cancel: back, filters only
    for asset_id in chosen:
        assert not await is_deleted(client, asset_id)  # asking deletes nothing

    r = await post_form(ui, "/ui/assets/bulk/delete",
                        {"asset_id": chosen, "back": back, "action": "delete"})
    assert r.status_code == 303
    assert notice_query(r.headers["location"]) == {
        "view": ["list"], "notice": ["deleted-many"], "n": ["3"]}
    html = await page(ui, r.headers["location"])
    assert flash(html) == "Deleted 3 assets."
    assert asset_ids(html) == [kept]
    for asset_id in chosen:
        assert await is_deleted(client, asset_id)
    assert await linked(client, ada) == []


async def test_deleting_assets_already_deleted_is_reported_not_an_error(ui, client):
    one, two = await upload(client, "one.txt", b"1"), await upload(client, "two.txt", b"2")
    assert (await client.delete(f"/v1/assets/{two}")).status_code == 204
    r = await post_form(ui, "/ui/assets/bulk/delete", {"asset_id": [one, two]})
    assert r.status_code == 200 and "Delete 1 asset?" in r.text
    assert "1 other selected asset was already deleted." in r.text
    assert asset_ids(r.text) == [one]
    # both posted anyway (deleted meanwhile in another tab): one deleted, one counted
    r = await post_form(ui, "/ui/assets/bulk/delete",
                        {"asset_id": [one, two, UNKNOWN_ID], "action": "delete"})
    assert r.status_code == 303
    assert flash(await page(ui, r.headers["location"])) == \
        "Deleted 1 asset. 2 others were already deleted."
    r = await post_form(ui, "/ui/assets/bulk/delete", {"asset_id": [one, two]})
    assert r.status_code == 200 and "Nothing to delete" in r.text
    r = await post_form(ui, "/ui/assets/bulk/delete", {"action": "delete"})
    assert r.status_code == 422 and "Select at least one asset first." in r.text


async def test_bulk_posts_need_the_csrf_token(ui, client):
    ada = await create_entity(client, "Ada")
    notes = await upload(client, "notes.txt", b"notes\n")
    posts = [("/ui/assets/bulk/link", {"asset_id": notes, "entity_id": ada, "action": "link"}),
             ("/ui/assets/bulk/delete", {"asset_id": notes, "action": "delete"})]
    for url, data in posts:
        for token in (None, "wrong"):
            form = data | ({"csrf_token": token} if token else {})
            r = await ui.client.post(url, data=form)
            assert r.status_code == 403 and "<main" in r.text, (url, token)
        r = await ui.client.post(url, data=data, headers={"X-CSRF-Token": "wrong"})
        assert r.status_code == 403, url
    assert await linked(client, ada) == [] and not await is_deleted(client, notes)
    # with the header (what htmx sends), as with the field
    r = await ui.client.post("/ui/assets/bulk/delete", data=posts[1][1],
                             headers={"X-CSRF-Token": ui.csrf})
    assert r.status_code == 303 and await is_deleted(client, notes)


async def test_bulk_routes_only_take_posts(ui):
    for url in ("/ui/assets/bulk/link", "/ui/assets/bulk/delete"):
        r = await ui.client.get(url)
        assert r.status_code in (404, 405) and "<main" in r.text, url


# -- the entities gallery ----------------------------------------------------------------

async def test_entity_cards_load_their_thumbnail_lazily(ui, client):
    face = await upload(client, "face.png")
    ada = await create_entity(client, "Ada", primary_thumbnail_asset_id=face)
    html = await page(ui, "/ui/entities?view=gallery")
    card = html.split(f'data-entity-id="{ada}"', 1)[1]
    img = tags(card, "img")[0]
    assert img.attrs["src"] == f"/v1/assets/{face}/download"
    assert (img.attrs["loading"], img.attrs["decoding"]) == ("lazy", "async")
    assert (img.attrs["width"], img.attrs["height"]) == ("256", "256")

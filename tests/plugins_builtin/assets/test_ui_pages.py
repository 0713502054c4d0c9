"""The Assets pages and the entity Attachments tab over HTTP, as a signed-in browser sees
them: lists and filters, fragments for htmx, the asset detail page, edits, deletes, uploads,
links and thumbnails, and CSRF on every post."""

from __future__ import annotations

import re
from html import unescape
from typing import Any

import httpx
import pytest

from kernel.config import Settings
from tests.media import png_bytes
from tests.ui.browsing import (
    SignedIn,
    htmx_links_without_href,
    page,
    post_form,
    sign_in,
    tags,
)

UNKNOWN_ID = "0" * 64
TAB_PAGE = 24  # plugins_builtin.assets.ui.TAB_PAGE
LIST_PAGE = 48


@pytest.fixture
async def ui(anon: httpx.AsyncClient, settings: Settings) -> SignedIn:
    """``anon`` signed in through the login form (cookie session, no token header)."""
    return await sign_in(anon, settings.install_token)


async def create_entity(client: httpx.AsyncClient, name: str) -> str:
    r = await client.post("/v1/entities", json={"display_name": name})
    assert r.status_code == 201, r.text
    return r.json()["entity_id"]


async def upload(client: httpx.AsyncClient, name: str, data: bytes | None = None,
                 **fields: Any) -> dict:
    """Upload through the API (install token); ``data`` defaults to a fresh PNG."""
    r = await client.post("/v1/assets/upload", files={"file": (name, data or png_bytes())},
                          data=fields)
    assert r.status_code in (200, 201), r.text
    return r.json()



def asset_ids(html: str) -> list[str]:
    """Assets shown in a list, gallery or the Attachments table, in page order."""
    return [t.attrs["data-asset-id"] for t in tags(html) if "data-asset-id" in t.attrs]


def attachment_list(html: str) -> str:
    return html.split('id="attachment-list"', 1)[1].split("</section>", 1)[0]


def candidates(html: str) -> list[str]:
    return [t.attrs["data-candidate-id"] for t in tags(html) if "data-candidate-id" in t.attrs]


def notice(html: str) -> str | None:
    match = re.search(r'<p class="flash" role="status"[^>]*>([^<]*)</p>', html)
    return match.group(1) if match else None


# -- the Assets list ---------------------------------------------------------------------

async def test_assets_page_lists_newest_first_with_previews(ui, client):
    image = await upload(client, "face.png")
    text = await upload(client, "notes.txt", b"some notes\n")
    html = await page(ui, "/ui/assets")
    assert "<html" in html and 'id="results"' in html
    assert asset_ids(html) == [text["asset_id"], image["asset_id"]]
    assert ("/ui/assets", "Assets") in re.findall(
        r'<a href="([^"]+)" aria-current="page">([^<]+)</a>', html)
    (img,) = tags(html, "img")
    assert img.attrs["src"] == f"/v1/assets/{image['asset_id']}/download?inline=true"
    assert img.attrs["loading"] == "lazy"
    assert tags(html, "a", href=f"/ui/assets/{text['asset_id']}")
    assert "doc.text" in html and "image.original" in html
    assert "11 Bytes" in html  # sizes are human-readable
    gallery = await page(ui, "/ui/assets?view=gallery")
    assert 'class="gallery asset-gallery"' in gallery and "<table" not in gallery
    assert asset_ids(gallery) == [text["asset_id"], image["asset_id"]]


async def test_empty_assets_page_says_how_to_add_some(ui):
    html = await page(ui, "/ui/assets")
    assert asset_ids(html) == [] and "No assets yet" in html


async def test_filters(ui, client):
    ada = await create_entity(client, "Ada")
    face = await upload(client, "Face.PNG", entity_id=ada)
    notes = await upload(client, "notes.txt", b"notes\n", entity_id=ada)
    lora = await upload(client, "style.safetensors", b"weights")
    gone = await upload(client, "gone.txt", b"gone\n")
    assert (await client.delete(f"/v1/assets/{gone['asset_id']}")).status_code == 204

    async def shown(query: str) -> list[str]:
        return asset_ids(await page(ui, "/ui/assets?" + query))

    assert await shown("kind=model.lora") == [lora["asset_id"]]
    assert await shown("mime=image/") == [face["asset_id"]]
    assert await shown("mime=text/") == [notes["asset_id"]]
    assert await shown("q=face") == [face["asset_id"]]  # any case
    assert await shown(f"entity={ada}") == [notes["asset_id"], face["asset_id"]]
    assert await shown(f"entity={ada}&kind=doc.text") == [notes["asset_id"]]
    assert await shown("state=deleted") == [gone["asset_id"]]
    assert await shown("state=all") == [gone["asset_id"], lora["asset_id"],
                                        notes["asset_id"], face["asset_id"]]
    html = await page(ui, "/ui/assets?q=nothing-like-this")
    assert asset_ids(html) == [] and "Nothing matches these filters" in html
    # the entity filter names the entity; the form keeps every value
    html = await page(ui, f"/ui/assets?entity={ada}&kind=doc.text&q=no&mime=text/")
    assert tags(html, "a", href=f"/ui/entities/{ada}")
    assert tags(html, "option", value="doc.text", selected="")
    assert tags(html, "input", name="q")[0].attrs["value"] == "no"
    assert tags(html, "option", value="text/", selected="")
    assert tags(html, "input", name="entity")[0].attrs["value"] == ada


async def test_bad_filters_are_explained_and_ignored(ui, client):
    face = await upload(client, "face.png")
    for query, field in (("entity=not-an-id", "entity"), ("kind=Not+A+Kind", "kind")):
        html = await page(ui, "/ui/assets?" + query)
        assert asset_ids(html) == [face["asset_id"]]
        assert re.search(rf'id="{field}-error">[^<]*This filter is ignored', html)
    # unknown state and view fall back to the defaults
    assert asset_ids(await page(ui, "/ui/assets?state=sideways&view=3d")) == [face["asset_id"]]


async def test_htmx_filter_returns_only_the_results_block(ui, client):
    face = await upload(client, "face.png")
    await upload(client, "notes.txt", b"notes\n")
    html = await page(ui, "/ui/assets?q=face", headers={"HX-Request": "true"})
    assert "<html" not in html and 'role="search"' not in html and 'id="results"' not in html
    assert asset_ids(html) == [face["asset_id"]]
    assert html.strip() in await page(ui, "/ui/assets?q=face")


async def test_paging_shows_every_asset_once(ui, client):
    made = [(await upload(client, f"file-{i:02}.txt", f"file {i}".encode()))["asset_id"]
            for i in range(LIST_PAGE + 2)]
    html = await page(ui, "/ui/assets")
    first = asset_ids(html)
    assert first == made[::-1][:LIST_PAGE]
    (next_link,) = [unescape(t.attrs["href"]) for t in tags(html, "a", rel="next")]
    assert "cursor=" in next_link
    html = await page(ui, next_link)
    assert asset_ids(html) == made[::-1][LIST_PAGE:]
    assert not tags(html, "a", rel="next")
    (first_page,) = re.findall(r'<a class="button" href="([^"]+)"[^>]*>First page</a>', html)
    assert asset_ids(await page(ui, unescape(first_page))) == first
    # a cursor from elsewhere starts over instead of failing
    assert asset_ids(await page(ui, "/ui/assets?cursor=garbage")) == first


async def test_every_htmx_link_has_a_real_href(ui, client):
    ada = await create_entity(client, "Ada")
    for i in range(TAB_PAGE + 1):
        await upload(client, f"file-{i:02}.txt", f"file {i}".encode(), entity_id=ada)
    face = await upload(client, "face.png", entity_id=ada)
    derived = await upload(client, "thumb.png", derived_from_asset_id=face["asset_id"])
    tab = f"/ui/entities/{ada}?tab=attachments"
    html = await page(ui, tab)
    next_tab = unescape(tags(html, "a", rel="next")[0].attrs["href"])
    pages = [
        await page(ui, "/ui/assets"), await page(ui, "/ui/assets?view=gallery&q=file"),
        await page(ui, f"/ui/assets?entity={ada}&kind=doc.text&state=all"),
        await page(ui, f"/ui/assets/{face['asset_id']}"),
        await page(ui, f"/ui/assets/{derived['asset_id']}"), html, await page(ui, next_tab),
        await page(ui, tab + "&link_q=face"),
    ]
    for html in pages:
        assert htmx_links_without_href(html) == []
    assert sum("hx-get" in t.attrs for html in pages for t in tags(html)) > 10
    hrefs = {unescape(t.attrs["href"]) for html in pages for t in tags(html, "a")
             if t.attrs.get("href", "").startswith(("/ui/", "/v1/"))}
    for href in hrefs:
        r = await ui.client.get(href)
        assert r.status_code in (200, 303), (href, r.status_code)


# -- the asset detail page ---------------------------------------------------------------

async def test_detail_shows_the_record_links_and_derived_assets(ui, client):
    ada = await create_entity(client, "Ada <Lovelace>")
    grace = await create_entity(client, "Grace")
    face = await upload(client, "face.png", entity_id=[ada, grace],
                        meta='{"source": "camera", "iso": 200}')
    thumb = await upload(client, "face-small.png", derived_from_asset_id=face["asset_id"])
    html = await page(ui, f"/ui/assets/{face['asset_id']}")
    record = html.split('id="asset-record"', 1)[1].split("</dl>", 1)[0]
    for shown in ("image.original", "face.png", "image/png", "256 Bytes",
                  face["asset_id"], "fs", face["created_at"], face["updated_at"]):
        assert shown in record, shown
    assert "Ada &lt;Lovelace&gt;" in html and "<Lovelace>" not in html
    linked = html.split('id="linked-entities"', 1)[1].split("</ul>", 1)[0]
    assert re.findall(r'<a href="/ui/entities/([0-9a-f]{64})\?tab=attachments">', linked) == \
        [ada, grace]
    assert tags(html, "a", href=f"/ui/assets/{thumb['asset_id']}")
    assert tags(html, "a", href=f"/v1/assets/{face['asset_id']}/download",
                download="face.png")
    metadata = unescape(html.split('id="user-metadata"', 1)[1].split("</pre>", 1)[0])
    assert '"source": "camera"' in metadata and '"iso": 200' in metadata
    # the derived asset links back to its source
    html = await page(ui, f"/ui/assets/{thumb['asset_id']}")
    derived_from = html.split("<dt>Derived from</dt>", 1)[1].split("</dd>", 1)[0]
    assert f'href="/ui/assets/{face["asset_id"]}"' in derived_from
    assert "Not linked to any entity" in html


async def test_only_harmless_types_are_offered_to_open_in_the_browser(ui, client):
    """Opened inline, HTML or SVG would run script on this origin, with the session."""
    for name, data, offered in (("face.png", None, True), ("page.html", b"<script>1</script>",
                                                          False),
                                ("logo.svg", b'<svg xmlns="http://www.w3.org/2000/svg"/>',
                                 False), ("notes.txt", b"plain", True)):
        asset = await upload(client, name, data)
        html = await page(ui, f"/ui/assets/{asset['asset_id']}")
        inline = f"/v1/assets/{asset['asset_id']}/download?inline=true"
        assert bool(tags(html, "a", href=inline)) is offered, name
        assert tags(html, "a", href=f"/v1/assets/{asset['asset_id']}/download")


async def test_unknown_asset_is_a_404_page(ui):
    for url in (f"/ui/assets/{UNKNOWN_ID}", "/ui/assets/abc",
                f"/ui/assets/{UNKNOWN_ID}/delete"):
        html = await page(ui, url, status=404)
        assert "<main" in html and "Not found" in html
    r = await ui.client.get(f"/ui/assets/{UNKNOWN_ID}", headers={"HX-Request": "true"})
    assert r.status_code == 404 and r.headers["hx-retarget"] == "#main"
    for action in ("edit", "delete"):
        r = await post_form(ui, f"/ui/assets/{UNKNOWN_ID}/{action}",
                            {"kind": "file", "filename": "x"})
        assert r.status_code == 404, action


async def test_edit_kind_and_filename(ui, client):
    notes = await upload(client, "notes.txt", b"notes\n")
    url = f"/ui/assets/{notes['asset_id']}"
    html = await page(ui, url)
    assert tags(html, "input", name="filename")[0].attrs["value"] == "notes.txt"
    assert tags(html, "input", name="version")[0].attrs["value"] == "1"
    r = await post_form(ui, url + "/edit", {"kind": "doc.readme", "filename": " README.txt ",
                                            "version": "1"})
    assert (r.status_code, r.headers["location"]) == (303, url + "?notice=saved")
    asset = (await client.get(f"/v1/assets/{notes['asset_id']}")).json()
    assert (asset["kind"], asset["filename"]) == ("doc.readme", "README.txt")
    assert notice(await page(ui, r.headers["location"])) == "Changes saved."
    # saving unchanged values writes nothing
    r = await post_form(ui, url + "/edit", {"kind": "doc.readme", "filename": "README.txt",
                                            "version": "2"})
    assert r.status_code == 303
    assert (await client.get(f"/v1/assets/{notes['asset_id']}")).json()["version"] == 2


async def test_bad_edits_show_inline_errors_and_change_nothing(ui, client):
    notes = await upload(client, "notes.txt", b"notes\n")
    url = f"/ui/assets/{notes['asset_id']}/edit"
    r = await post_form(ui, url, {"kind": "Not A Kind", "filename": "  ", "version": "1"})
    assert r.status_code == 422 and "<html" in r.text
    assert "dotted lowercase words" in r.text and "A file name is required." in r.text
    assert tags(r.text, "input", name="kind")[0].attrs["value"] == "Not A Kind"
    assert tags(r.text, "input", name="kind")[0].attrs["aria-invalid"] == "true"
    r = await post_form(ui, url, {"kind": "file", "filename": "a\x01b"},
                        headers={"HX-Request": "true"})
    assert r.status_code == 422
    assert "<html" not in r.text and "control characters" in r.text  # the form block only
    r = await post_form(ui, url, {"kind": "file", "filename": "x" * 256})
    assert r.status_code == 422 and "at most 255" in r.text
    assert (await client.get(f"/v1/assets/{notes['asset_id']}")).json()["version"] == 1


async def test_edit_user_metadata_as_json(ui, client):
    notes = await upload(client, "notes.txt", b"notes\n", meta='{"source": "scan", "page": 3}')
    url = f"/ui/assets/{notes['asset_id']}"
    shown = tags(await page(ui, url), "textarea", name="user_metadata")[0]
    assert shown.attrs["id"] == "edit-metadata"
    # the object as edited replaces the old one: "page" is removed, "lang" added
    r = await post_form(ui, url + "/edit", {"kind": "file", "filename": "notes.txt",
                                            "user_metadata": '{"source": "scan", "lang": "en"}',
                                            "version": "1"})
    assert r.status_code == 303
    asset = (await client.get(f"/v1/assets/{notes['asset_id']}")).json()
    assert asset["user_metadata"] == {"source": "scan", "lang": "en"}
    for bad, why in (("[1, 2]", "JSON object"), ("{oops", "not valid JSON")):
        r = await post_form(ui, url + "/edit", {"kind": "file", "filename": "notes.txt",
                                                "user_metadata": bad, "version": "2"})
        assert r.status_code == 422 and why in r.text
        assert tags(r.text, "textarea", name="user_metadata")[0].attrs["aria-invalid"] == "true"
    after = (await client.get(f"/v1/assets/{notes['asset_id']}")).json()
    assert (after["user_metadata"], after["version"]) == ({"source": "scan", "lang": "en"}, 2)


async def test_an_edit_made_meanwhile_is_not_overwritten(ui, client):
    notes = await upload(client, "notes.txt", b"notes\n")
    r = await client.patch(f"/v1/assets/{notes['asset_id']}", json={"filename": "theirs.txt"})
    assert r.status_code == 200
    r = await post_form(ui, f"/ui/assets/{notes['asset_id']}/edit",
                        {"kind": "file", "filename": "mine.txt", "version": "1"},
                        headers={"HX-Request": "true"})
    assert r.status_code == 409 and 'id="edit-conflict"' in r.text
    assert tags(r.text, "input", name="filename")[0].attrs["value"] == "theirs.txt"
    assert tags(r.text, "input", name="version")[0].attrs["value"] == "2"
    assert (await client.get(f"/v1/assets/{notes['asset_id']}")).json()["filename"] == \
        "theirs.txt"


async def test_htmx_edit_redirects_with_hx_redirect(ui, client):
    notes = await upload(client, "notes.txt", b"notes\n")
    url = f"/ui/assets/{notes['asset_id']}"
    r = await ui.client.post(url + "/edit", data={"kind": "file", "filename": "n.txt"},
                             headers={"HX-Request": "true", "X-CSRF-Token": ui.csrf})
    assert (r.status_code, r.headers["hx-redirect"]) == (200, url + "?notice=saved")


async def test_delete_asks_then_deletes(ui, client):
    ada = await create_entity(client, "Ada")
    notes = await upload(client, "notes.txt", b"notes\n", entity_id=ada)
    url = f"/ui/assets/{notes['asset_id']}"
    html = await page(ui, url + "/delete")
    assert "Delete “notes.txt”?" in html
    assert tags(html, "form", action=url + "/delete", method="post")
    assert asset_ids(await page(ui, "/ui/assets")) == [notes["asset_id"]]
    r = await post_form(ui, url + "/delete")
    assert (r.status_code, r.headers["location"]) == (303, "/ui/assets?notice=deleted")
    html = await page(ui, r.headers["location"])
    assert "Asset deleted." in html and asset_ids(html) == []
    assert asset_ids(await page(ui, "/ui/assets?state=deleted")) == [notes["asset_id"]]
    # the deleted asset's page says so and offers no edits; it left the entity's tab
    html = await page(ui, url)
    assert "This asset was deleted" in html and not tags(html, "form", action=url + "/edit")
    assert asset_ids(await page(ui, f"/ui/entities/{ada}?tab=attachments")) == []
    assert (await post_form(ui, url + "/delete")).status_code == 404


async def test_posts_need_the_csrf_token(ui, client):
    ada = await create_entity(client, "Ada")
    notes = await upload(client, "notes.txt", b"notes\n", entity_id=ada)
    asset = notes["asset_id"]
    posts = [
        (f"/ui/assets/{asset}/edit", {"kind": "file", "filename": "x.txt"}),
        (f"/ui/assets/{asset}/delete", {"confirm": "yes"}),
        (f"/ui/entities/{ada}/attachments/unlink", {"asset_id": asset}),
        (f"/ui/entities/{ada}/attachments/link", {"asset_id": asset}),
        (f"/ui/entities/{ada}/attachments/thumbnail", {"clear": "1"}),
    ]
    for url, data in posts:
        for token in (None, "wrong"):
            form = data | ({"csrf_token": token} if token else {})
            r = await ui.client.post(url, data=form)
            assert r.status_code == 403, (url, token, r.status_code)
            assert "<main" in r.text  # an error page, not JSON
        r = await ui.client.post(url, data=data, headers={"X-CSRF-Token": "wrong"})
        assert r.status_code == 403, url
    r = await ui.client.post(f"/ui/entities/{ada}/attachments/upload",
                             files={"file": ("a.txt", b"a")})
    assert r.status_code == 403
    got = (await client.get(f"/v1/assets/{asset}")).json()
    assert (got["filename"], got["version"], got["linked_entity_ids"]) == \
        ("notes.txt", 1, [ada])
    assert (await client.get("/v1/assets")).json()["items"][0]["asset_id"] == asset


# -- the Attachments tab -----------------------------------------------------------------

async def test_tab_lists_the_entitys_assets(ui, client):
    ada = await create_entity(client, "Ada")
    other = await create_entity(client, "Grace")
    face = await upload(client, "face.png", entity_id=ada, role="portrait")
    notes = await upload(client, "notes.txt", b"x" * 2500, entity_id=ada)
    await upload(client, "elsewhere.txt", b"elsewhere", entity_id=other)
    html = await page(ui, f"/ui/entities/{ada}?tab=attachments")
    assert tags(html, "a", role="tab", data_tab="attachments")[0].attrs["aria-selected"] == \
        "true"
    listing = attachment_list(html)
    assert asset_ids(listing) == [face["asset_id"], notes["asset_id"]]  # link order
    assert "portrait" in listing and "2.5 kB" in listing and "doc.text" in listing
    (img,) = tags(listing, "img")
    assert img.attrs == {"src": f"/v1/assets/{face['asset_id']}/download?inline=true",
                         "alt": "", "loading": "lazy", "decoding": "async",
                         "width": "256", "height": "256"}
    assert tags(listing, "a", href=f"/v1/assets/{notes['asset_id']}/download",
                download="notes.txt")
    assert tags(listing, "a", href=f"/ui/assets/{face['asset_id']}")
    # only images can become the thumbnail
    thumb_forms = [t for t in tags(listing, "input", name="asset_id")]
    assert len(thumb_forms) == 3  # thumbnail(face) + unlink x 2
    # the upload form sends with tus (Uppy) with JavaScript and posts to the UI route without
    (form,) = tags(html, "form", id="attachment-upload")
    assert form.attrs["data-tus-endpoint"] == "/v1/uploads"
    assert form.attrs["action"] == f"/ui/entities/{ada}/attachments/upload"
    assert form.attrs["enctype"] == "multipart/form-data"
    assert tags(html, "input", type="file", name="file", multiple="")
    assert tags(html, "script", src="/static/assets/uploads.js")


async def test_tab_filters_by_kind_and_pages(ui, client):
    ada = await create_entity(client, "Ada")
    texts = [(await upload(client, f"n{i:02}.txt", f"n{i}".encode(), entity_id=ada))
             ["asset_id"] for i in range(TAB_PAGE + 1)]
    face = await upload(client, "face.png", entity_id=ada)
    url = f"/ui/entities/{ada}?tab=attachments"
    html = await page(ui, url + "&kind=image.original")
    assert asset_ids(attachment_list(html)) == [face["asset_id"]]
    assert tags(html, "option", value="image.original", selected="")
    html = await page(ui, url + "&kind=model.lora")
    assert asset_ids(attachment_list(html)) == [] and "No model.lora attachments." in html
    html = await page(ui, url)
    assert asset_ids(attachment_list(html)) == texts[:TAB_PAGE]
    (next_link,) = tags(html, "a", rel="next")
    assert next_link.attrs["hx-select"] == "#attachment-list"
    html = await page(ui, unescape(next_link.attrs["href"]))
    assert asset_ids(attachment_list(html)) == [texts[-1], face["asset_id"]]
    assert re.search(r">First page</a>", html)
    assert asset_ids(attachment_list(await page(ui, url + "&cursor=junk"))) == \
        texts[:TAB_PAGE]


async def test_tab_fragment_for_htmx(ui, client):
    ada = await create_entity(client, "Ada")
    face = await upload(client, "face.png", entity_id=ada)
    url = f"/ui/entities/{ada}?tab=attachments&kind=image.original"
    fragment = await page(ui, url, headers={"HX-Request": "true"})
    assert "<html" not in fragment and 'role="tablist"' not in fragment
    assert 'id="attachment-list"' in fragment and asset_ids(fragment) == [face["asset_id"]]
    assert fragment.strip() in await page(ui, url)


async def test_upload_without_javascript(ui, client):
    ada = await create_entity(client, "Ada")
    image = png_bytes()
    r = await ui.client.post(
        f"/ui/entities/{ada}/attachments/upload",
        data={"csrf_token": ui.csrf, "kind": "", "role": "reference"},
        files=[("file", ("face.png", image, "image/png")),
               ("file", ("notes.txt", b"my notes\n", "text/plain"))])
    assert (r.status_code, r.headers["location"]) == (
        303, f"/ui/entities/{ada}?tab=attachments&notice=uploaded")
    html = await page(ui, r.headers["location"])
    assert notice(html) == "Upload finished."
    items = (await client.get(f"/v1/entities/{ada}/assets")).json()["items"]
    assert [(a["filename"], a["kind"], a["role"], a["size"]) for a in items] == [
        ("face.png", "image.original", "reference", len(image)),
        ("notes.txt", "doc.text", "reference", 9)]
    assert (await client.get(f"/v1/assets/{items[1]['asset_id']}/download")).content == \
        b"my notes\n"
    assert asset_ids(attachment_list(html)) == [a["asset_id"] for a in items]
    # a chosen kind applies to every file; the same bytes again are the same asset
    r = await ui.client.post(f"/ui/entities/{ada}/attachments/upload",
                             data={"csrf_token": ui.csrf, "kind": "file"},
                             files=[("file", ("again.txt", b"my notes\n", "text/plain"))])
    assert r.status_code == 303
    items = (await client.get(f"/v1/entities/{ada}/assets")).json()["items"]
    assert len(items) == 2 and items[1]["kind"] == "file"


async def test_upload_without_javascript_refuses_bad_forms(ui, client):
    ada = await create_entity(client, "Ada")
    url = f"/ui/entities/{ada}/attachments/upload"
    r = await ui.client.post(url, data={"csrf_token": ui.csrf},
                             files=[("file", ("", b"", "application/octet-stream"))])
    assert r.status_code == 422 and "choose at least one file" in r.text
    r = await ui.client.post(url, data={"csrf_token": ui.csrf, "kind": "Bad Kind"},
                             files=[("file", ("a.txt", b"a", "text/plain"))])
    assert r.status_code == 422 and "<main" in r.text
    r = await ui.client.post(f"/ui/entities/{UNKNOWN_ID}/attachments/upload",
                             data={"csrf_token": ui.csrf},
                             files=[("file", ("a.txt", b"a", "text/plain"))])
    assert r.status_code == 404
    assert (await client.get("/v1/assets")).json()["items"] == []


async def test_api_upload_with_the_session_cookie_needs_the_csrf_header(ui, client):
    """What uploads.js does: the session cookie plus the X-CSRF-Token header."""
    ada = await create_entity(client, "Ada")
    files = {"file": ("face.png", png_bytes())}
    r = await ui.client.post("/v1/assets/upload", files=files, data={"entity_id": ada})
    assert r.status_code == 403 and r.json()["error"]["code"] == "csrf_failed"
    r = await ui.client.post("/v1/assets/upload", files=files, data={"entity_id": ada},
                             headers={"X-CSRF-Token": ui.csrf})
    assert r.status_code == 201, r.text
    assert r.json()["linked_entity_ids"] == [ada]
    js = await ui.client.get("/static/assets/uploads.js")
    assert js.status_code == 200 and "X-CSRF-Token" in js.text


async def test_link_an_existing_asset_by_name_or_id(ui, client):
    ada = await create_entity(client, "Ada")
    face = await upload(client, "face.png")
    notes = await upload(client, "notes.txt", b"notes\n")
    url = f"/ui/entities/{ada}?tab=attachments"
    assert candidates(await page(ui, url + "&link_q=FACE")) == [face["asset_id"]]
    assert candidates(await page(ui, url + f"&link_q={notes['asset_id'].upper()}")) == \
        [notes["asset_id"]]
    html = await page(ui, url + f"&link_q={UNKNOWN_ID}")
    assert candidates(html) == [] and "No asset matches" in html
    fragment = await page(ui, url + "&link_q=face", headers={"HX-Request": "true"})
    assert 'id="link-candidates"' in fragment and "<html" not in fragment

    r = await post_form(ui, f"/ui/entities/{ada}/attachments/link",
                        {"asset_id": face["asset_id"], "role": "portrait"})
    assert (r.status_code, r.headers["location"]) == (
        303, f"/ui/entities/{ada}?tab=attachments&notice=linked")
    items = (await client.get(f"/v1/entities/{ada}/assets")).json()["items"]
    assert [(a["asset_id"], a["role"]) for a in items] == [(face["asset_id"], "portrait")]
    html = await page(ui, url + "&link_q=face&notice=linked")
    assert notice(html) == "Asset linked." and "Already linked" in html
    assert asset_ids(attachment_list(html)) == [face["asset_id"]]
    # an unknown asset, a bad id or a long role is refused
    for data, status in (({"asset_id": UNKNOWN_ID}, 404), ({"asset_id": "nope"}, 404),
                         ({"asset_id": notes["asset_id"], "role": "r" * 101}, 422)):
        r = await post_form(ui, f"/ui/entities/{ada}/attachments/link", data)
        assert r.status_code == status, data


async def test_unlink(ui, client):
    ada = await create_entity(client, "Ada")
    notes = await upload(client, "notes.txt", b"notes\n", entity_id=ada)
    r = await post_form(ui, f"/ui/entities/{ada}/attachments/unlink",
                        {"asset_id": notes["asset_id"]})
    assert (r.status_code, r.headers["location"]) == (
        303, f"/ui/entities/{ada}?tab=attachments&notice=unlinked")
    html = await page(ui, r.headers["location"])
    assert asset_ids(attachment_list(html)) == [] and "No attachments yet." in html
    assert notice(html).startswith("Asset unlinked.")
    # the asset itself stays
    assert (await client.get(f"/v1/assets/{notes['asset_id']}")).json()["linked_entity_ids"] \
        == []
    r = await post_form(ui, f"/ui/entities/{ada}/attachments/unlink",
                        {"asset_id": notes["asset_id"]})
    assert r.status_code == 404


async def test_set_and_clear_the_primary_thumbnail(ui, client):
    ada = await create_entity(client, "Ada")
    face = await upload(client, "face.png", entity_id=ada)
    notes = await upload(client, "notes.txt", b"notes\n", entity_id=ada)
    url = f"/ui/entities/{ada}/attachments/thumbnail"
    r = await post_form(ui, url, {"asset_id": notes["asset_id"]})
    assert r.status_code == 422 and "only an image" in r.text
    r = await post_form(ui, url, {"asset_id": face["asset_id"]})
    assert (r.status_code, r.headers["location"]) == (
        303, f"/ui/entities/{ada}?tab=attachments&notice=thumbnail")
    entity = (await client.get(f"/v1/entities/{ada}")).json()
    assert entity["primary_thumbnail_asset_id"] == face["asset_id"]
    html = await page(ui, r.headers["location"])
    assert notice(html) == "Primary thumbnail set."
    row = attachment_list(html).split(f'data-asset-id="{face["asset_id"]}"', 1)[1]
    row = row.split("</tr>", 1)[0]
    assert "Primary thumbnail" in row and "Remove thumbnail" in row
    assert "Set as thumbnail" not in row
    # the entities gallery shows it
    gallery = await page(ui, "/ui/entities?view=gallery")
    assert tags(gallery, "img", src=f"/v1/assets/{face['asset_id']}/download")
    r = await post_form(ui, url, {"clear": "1"})
    assert r.status_code == 303
    assert (await client.get(f"/v1/entities/{ada}")).json()["primary_thumbnail_asset_id"] \
        is None


async def test_a_deleted_entity_shows_its_attachments_read_only(ui, client):
    ada = await create_entity(client, "Ada")
    notes = await upload(client, "notes.txt", b"notes\n", entity_id=ada)
    assert (await client.delete(f"/v1/entities/{ada}")).status_code == 204
    html = await page(ui, f"/ui/entities/{ada}?tab=attachments")
    assert asset_ids(attachment_list(html)) == [notes["asset_id"]]
    assert not tags(html, "form", id="attachment-upload")
    assert not tags(html, "form", action=f"/ui/entities/{ada}/attachments/unlink")
    r = await post_form(ui, f"/ui/entities/{ada}/attachments/unlink",
                        {"asset_id": notes["asset_id"]})
    assert r.status_code == 404

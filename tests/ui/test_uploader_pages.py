"""The drag-and-drop uploader's HTML over HTTP (templates/assets/_uploader.html): what the
Attachments tab and the Assets page give uploads.js (tus endpoint, session CSRF token, entity,
kinds, what to refresh), the no-JavaScript form that still posts to the UI route, and the
vendored Uppy loaded only where the uploader is.  The browser side is
tests/browser/test_uppy_uploads.py."""

from __future__ import annotations

import hashlib
import json
from html import unescape

import httpx

from plugins_builtin.assets.ui import kind_names
from tests.media import png_bytes
from tests.ui.browsing import SignedIn, page, tags

UPPY = "/static/assets/vendor/uppy-6.0.1/"
VENDOR_JSON = "plugins_builtin/assets/static/vendor/vendor.json"


async def create_entity(client: httpx.AsyncClient, name: str) -> str:
    r = await client.post("/v1/entities", json={"display_name": name})
    assert r.status_code == 201, r.text
    return r.json()["entity_id"]


def uploader_form(html: str, form_id: str) -> dict[str, str]:
    (form,) = tags(html, "form", id=form_id)
    return form.attrs


def uppy_loaded(html: str) -> bool:
    return bool(tags(html, "link", href=UPPY + "uppy.min.css")
                or UPPY + "uppy.min.js" in html)


def options(html: str, select_id: str) -> list[str]:
    block = html.split(f'id="{select_id}"', 1)[1].split("</select>", 1)[0]
    return [t.attrs["value"] for t in tags(block, "option")]


async def test_attachments_tab_uploads_with_tus_to_its_entity(ui: SignedIn, client):
    ada = await create_entity(client, "Ada")
    html = await page(ui, f"/ui/entities/{ada}?tab=attachments")
    form = uploader_form(html, "attachment-upload")
    assert form["data-tus-endpoint"] == "/v1/uploads"
    assert form["data-csrf-token"] == ui.csrf
    assert form["data-entity-id"] == ada
    assert form["data-uppy-script"] == UPPY + "uppy.min.js"
    # when uploads finish, the attachment list is fetched from its data-url and swapped whole
    assert (form["data-refresh-target"], form["data-refresh-swap"]) == ("#attachment-list",
                                                                          "outer")
    assert tags(html, "section", id="attachment-list")[0].attrs["data-url"] == \
        f"/ui/entities/{ada}?tab=attachments"
    assert "hidden" not in form  # shown with or without JavaScript
    assert tags(html, "div", id="attachment-upload-dashboard", hidden="")
    # the entity is the tab's: no field for it; kind and role are chosen in the form
    assert not tags(html, "input", name="entity_id")
    assert options(html, "upload-kind") == ["", *kind_names()]
    assert tags(html, "input", id="upload-role", name="role", maxlength="100")
    assert uppy_loaded(html) and tags(html, "script", src="/static/assets/uploads.js")
    assert tags(html, "link", href="/static/assets/uploader.css")


async def test_without_javascript_the_same_form_posts_to_the_ui_route(ui: SignedIn, client):
    ada = await create_entity(client, "Ada")
    html = await page(ui, f"/ui/entities/{ada}?tab=attachments")
    form = uploader_form(html, "attachment-upload")
    assert (form["method"], form["action"], form["enctype"]) == (
        "post", f"/ui/entities/{ada}/attachments/upload", "multipart/form-data")
    # the fallback's own parts, hidden by uploads.js once the Dashboard is mounted
    (files,) = tags(html, "input", type="file", name="file")
    assert {"multiple", "required"} <= files.attrs.keys()
    assert tags(html, "div", **{"class": "grow upload-fallback"})
    assert tags(html, "button", type="submit", **{"class": "primary upload-fallback"})
    # posting what the form holds (its hidden token, a kind, a role) stores the file
    (token,) = tags(html.split('id="attachment-upload"', 1)[1], "input", name="csrf_token")[:1]
    image = png_bytes()
    r = await ui.client.post(form["action"], data={"csrf_token": token.attrs["value"],
                                                   "kind": "image.reference", "role": "ref"},
                             files=[("file", ("face.png", image, "image/png"))])
    assert r.status_code == 303, r.text
    (item,) = (await client.get(f"/v1/entities/{ada}/assets")).json()["items"]
    assert (item["kind"], item["role"], item["asset_id"]) == (
        "image.reference", "ref", hashlib.sha256(image).hexdigest())


async def test_assets_page_has_an_uploader_with_an_entity_field(ui: SignedIn):
    html = await page(ui, "/ui/assets")
    form = uploader_form(html, "asset-upload")
    assert form["data-tus-endpoint"] == "/v1/uploads"
    assert form["data-csrf-token"] == ui.csrf
    assert form["data-entity-id"] == ""
    assert (form["data-refresh-target"], form["data-refresh-swap"]) == ("#results", "inner")
    assert tags(html, "div", id="results")
    # no UI route takes an upload without an entity: the form waits for JavaScript
    assert "hidden" in form and "action" not in form
    assert "Uploading here needs JavaScript" in unescape(html)
    (entity,) = tags(html, "input", id="asset-upload-entity")
    assert (entity.attrs["name"], entity.attrs["pattern"]) == ("entity_id", "[0-9a-fA-F]{64}")
    assert not tags(html, "input", type="file", name="file")
    assert uppy_loaded(html)
    # its labels do not take the filters' names (a label names one field)
    labels = [t.attrs["for"] for t in tags(html, "label")]
    assert len(labels) == len(set(labels))
    assert "Upload as" in html and ">Kind<" in html


async def test_htmx_fragments_do_not_carry_a_second_uploader(ui: SignedIn):
    fragment = await page(ui, "/ui/assets?q=x", headers={"HX-Request": "true"})
    assert not tags(fragment, "form", id="asset-upload") and not uppy_loaded(fragment)


async def test_a_deleted_entity_has_no_uploader(ui: SignedIn, client):
    ada = await create_entity(client, "Ada")
    assert (await client.delete(f"/v1/entities/{ada}")).status_code == 204
    html = await page(ui, f"/ui/entities/{ada}?tab=attachments")
    assert not tags(html, "form", data_uploader="") and not uppy_loaded(html)


async def test_pages_without_the_uploader_do_not_load_uppy(ui: SignedIn, client):
    ada = await create_entity(client, "Ada")
    for url in ("/ui/entities", f"/ui/entities/{ada}"):
        assert not uppy_loaded(await page(ui, url)), url


async def test_the_vendored_files_are_served_as_pinned(ui: SignedIn):
    with open(VENDOR_JSON, encoding="utf-8") as f:
        pinned = json.load(f)["files"]
    for name in ("uppy.min.js", "uppy.min.css"):
        r = await ui.client.get(UPPY + name)
        assert r.status_code == 200, name
        assert hashlib.sha256(r.content).hexdigest() == pinned[f"uppy-6.0.1/{name}"]["sha256"]
    js = await ui.client.get("/static/assets/uploads.js")
    assert js.status_code == 200 and "X-CSRF-Token" in js.text and "Uppy.Tus" in js.text

"""The entities pages over HTTP, as a signed-in browser sees them."""

from __future__ import annotations

import re
from html import unescape as html_unescape
from typing import Any

import httpx

from ff_plugin_sdk import EntityTab, hookimpl
from tests.conftest import running
from tests.media import upload_image
from tests.ui.browsing import (
    entity_ids,
    htmx_links_without_href,
    page,
    post_form,
    sign_in,
    tags,
)

UNKNOWN_ID = "0" * 64


async def create(client: httpx.AsyncClient, name: str, **body: Any) -> dict:
    r = await client.post("/v1/entities", json={"display_name": name, **body})
    assert r.status_code == 201, r.text
    return r.json()



def shown_names(html: str) -> list[str]:
    """Names in the list view's table, in order."""
    return re.findall(r'<td><a href="/ui/entities/[0-9a-f]{64}">([^<]*)</a></td>', html)


def field_error(html: str, field: str) -> str | None:
    match = re.search(rf'<p class="field-error" id="{field}-error">([^<]*)</p>', html)
    return match.group(1) if match else None


def input_value(html: str, name: str) -> str:
    return tags(html, "input", name=name)[0].attrs.get("value", "")


def textarea(html: str, name: str) -> str:
    match = re.search(rf'<textarea id="{name}" name="{name}"[^>]*>(.*?)</textarea>', html,
                      re.S)
    assert match, f"no textarea {name}"
    return match.group(1)


# -- list --------------------------------------------------------------------------------

async def test_list_shows_entities_newest_first(ui, client):
    await create(client, "Ada Lovelace", tags=["math"], aliases=["Countess"])
    await create(client, "Grace Hopper")
    html = await page(ui, "/ui/entities")
    assert "<html" in html and 'id="results"' in html
    assert shown_names(html) == ["Grace Hopper", "Ada Lovelace"]
    assert "Countess" in html and '<span class="tag">math</span>' in html
    assert ("/ui/entities", "Entities") in re.findall(
        r'<a href="([^"]+)" aria-current="page">([^<]+)</a>', html)


async def test_empty_list_invites_to_create(ui):
    html = await page(ui, "/ui/entities")
    assert "No entities yet" in html
    assert tags(html, "a", href="/ui/entities/new")


async def test_search_filters_the_list(ui, client):
    await create(client, "Ada Lovelace")
    await create(client, "Zoë Saldaña")
    await create(client, "Grace Hopper", fields={"city": "New York"})
    assert shown_names(await page(ui, "/ui/entities?q=lov")) == ["Ada Lovelace"]
    assert shown_names(await page(ui, "/ui/entities?q=zoe")) == ["Zoë Saldaña"]
    assert shown_names(await page(ui, "/ui/entities?q=york")) == ["Grace Hopper"]
    html = await page(ui, "/ui/entities?q=nobody")
    assert shown_names(html) == [] and "Nothing matches this search" in html
    html = await page(ui, "/ui/entities", params={"q": 'NEAR( "*'})
    assert shown_names(html) == []
    # the search box keeps what was typed
    assert input_value(await page(ui, "/ui/entities?q=lov"), "q") == "lov"


async def test_htmx_search_returns_only_the_results_block(ui, client):
    await create(client, "Ada Lovelace")
    await create(client, "Grace Hopper")
    html = await page(ui, "/ui/entities?q=grace", headers={"HX-Request": "true"})
    assert "<html" not in html and "<main" not in html
    assert 'role="search"' not in html and 'id="results"' not in html
    assert shown_names(html) == ["Grace Hopper"]
    assert "1 entity" in html
    full = await page(ui, "/ui/entities?q=grace")
    assert html.strip() in full  # the fragment is the page's block, not a copy


async def test_gallery_shows_a_placeholder_without_thumbnail(ui, client):
    plain = await create(client, "ada")
    image = await upload_image(client)
    pictured = await create(client, "Grace", primary_thumbnail_asset_id=image)
    html = await page(ui, "/ui/entities?view=gallery")
    assert 'class="gallery"' in html and "<table" not in html
    assert entity_ids(html) == [pictured["entity_id"], plain["entity_id"]]
    imgs = [t.attrs["src"] for t in tags(html, "img")]
    assert imgs == [f"/v1/assets/{image}/download"]
    card = html.split(f'data-entity-id="{plain["entity_id"]}"', 1)[1].split("</a>", 1)[0]
    assert "<img" not in card
    assert '<span aria-hidden="true">A</span>' in card
    # switching views keeps the search
    html = await page(ui, "/ui/entities?view=gallery&q=ada")
    assert entity_ids(html) == [plain["entity_id"]]
    assert tags(html, "a", href="/ui/entities?q=ada&sort=created_at%3Adesc&view=list"
                                "&state=active")


async def test_tag_filter(ui, client):
    await create(client, "Both", tags=["Actor", "sdxl"])
    await create(client, "Actor only", tags=["actor"])
    await create(client, "Untagged")
    assert shown_names(await page(ui, "/ui/entities?tag=actor")) == ["Actor only", "Both"]
    assert shown_names(await page(ui, "/ui/entities?tag=ACTOR,+sdxl")) == ["Both"]
    assert shown_names(await page(ui, "/ui/entities?tag=actor&tag=sdxl")) == ["Both"]
    html = await page(ui, "/ui/entities?tag=nope")
    assert shown_names(html) == [] and "Nothing matches" in html
    # known tags are offered as suggestions
    assert {t.attrs["value"].casefold() for t in tags(html, "option")
            if t.attrs.get("value") in ("actor", "Actor", "sdxl")} == {"actor", "sdxl"}


async def test_sort(ui, client):
    for name in ("bravo", "Alpha", "charlie"):
        await create(client, name)
    assert shown_names(await page(ui, "/ui/entities?sort=display_name:asc")) == \
        ["Alpha", "bravo", "charlie"]
    assert shown_names(await page(ui, "/ui/entities?sort=display_name:desc")) == \
        ["charlie", "bravo", "Alpha"]
    assert shown_names(await page(ui, "/ui/entities?sort=created_at:asc")) == \
        ["bravo", "Alpha", "charlie"]
    html = await page(ui, "/ui/entities?sort=display_name:asc")
    assert tags(html, "option", value="display_name:asc", selected="")
    # an unknown sort falls back to newest first instead of failing
    for bad in ("entity_id:asc", "display_name:sideways", "garbage"):
        assert shown_names(await page(ui, f"/ui/entities?sort={bad}")) == \
            ["charlie", "Alpha", "bravo"]


async def test_deleted_filter(ui, client):
    keep = await create(client, "Keep")
    gone = await create(client, "Gone")
    await client.delete(f"/v1/entities/{gone['entity_id']}")
    assert entity_ids(await page(ui, "/ui/entities")) == [keep["entity_id"]]
    html = await page(ui, "/ui/entities?state=deleted")
    assert entity_ids(html) == [gone["entity_id"]]
    assert "1 entity deleted" in html
    await client.post(f"/v1/entities/{gone['entity_id']}/restore")
    assert "No deleted entities" in await page(ui, "/ui/entities?state=deleted")


async def test_pagination_shows_every_entity_once(ui, client):
    made = [(await create(client, f"Person {i:02}"))["entity_id"] for i in range(50)]
    html = await page(ui, "/ui/entities")
    first = entity_ids(html)
    assert len(first) == 48
    assert first == made[::-1][:48]
    (next_link,) = [t.attrs["href"] for t in tags(html, "a", rel="next")]
    assert "cursor=" in next_link
    html = await page(ui, next_link)
    rest = entity_ids(html)
    assert rest == made[::-1][48:]
    assert not tags(html, "a", rel="next")
    (first_page,) = re.findall(r'<a class="button" href="([^"]+)"[^>]*>First page</a>', html)
    assert entity_ids(await page(ui, first_page.replace("&amp;", "&"))) == first


async def test_stale_cursor_starts_over_instead_of_failing(ui, client):
    for i in range(50):
        await create(client, f"Person {i:02}")
    html = await page(ui, "/ui/entities")
    cursor = re.search(r"cursor=([^&\"]+)", tags(html, "a", rel="next")[0].attrs["href"])
    html = await page(ui, f"/ui/entities?sort=display_name:asc&cursor={cursor.group(1)}")
    assert shown_names(html)[:2] == ["Person 00", "Person 01"]
    html = await page(ui, "/ui/entities?cursor=garbage")
    assert len(entity_ids(html)) == 48


async def test_every_htmx_link_has_a_real_href(ui, client):
    entity = None
    for i in range(50):
        entity = await create(client, f"Person {i:02}", tags=["t"])
    html = await page(ui, "/ui/entities")
    next_link = tags(html, "a", rel="next")[0].attrs["href"]
    pages = [
        html, await page(ui, "/ui/entities?view=gallery&q=person&tag=t"),
        await page(ui, next_link),  # has "First page" too
        await page(ui, f"/ui/entities/{entity['entity_id']}"),
        await page(ui, f"/ui/entities/{entity['entity_id']}?tab=overview"),
    ]
    for html in pages:
        assert [t for t in tags(html) if "hx-get" in t.attrs], "no htmx links to check"
        assert htmx_links_without_href(html) == []
    # and every link a page offers actually answers
    hrefs = {t.attrs["href"] for html in pages for t in tags(html, "a")
             if t.attrs.get("href", "").startswith("/ui/")}
    for href in hrefs:
        r = await ui.client.get(href)
        assert r.status_code in (200, 303), (href, r.status_code)


# -- create ------------------------------------------------------------------------------

async def test_new_form(ui):
    html = await page(ui, "/ui/entities/new")
    (form,) = tags(html, "form", action="/ui/entities/new")
    assert form.attrs["method"] == "post"
    assert input_value(html, "display_name") == ""


async def test_create_with_a_blank_name_shows_an_inline_error(ui, client):
    for name in ("", "   "):
        r = await post_form(ui, "/ui/entities/new", {
            "display_name": name, "aliases": "Countess", "tags": "math",
            "fields": "born: 1815"})
        assert r.status_code == 422
        assert field_error(r.text, "display_name") == "A name is required."
        assert tags(r.text, "input", name="display_name")[0].attrs["aria-invalid"] == "true"
        # what was typed is kept
        assert input_value(r.text, "aliases") == "Countess"
        assert textarea(r.text, "fields") == "born: 1815"
        assert "<html" in r.text
    r = await post_form(ui, "/ui/entities/new", {})  # no name field at all
    assert field_error(r.text, "display_name") == "A name is required."
    total = (await client.get("/v1/entities", params={"include_total": "true"})).json()
    assert total["total"] == 0


async def test_create_with_bad_fields_shows_an_inline_error(ui, client):
    r = await post_form(ui, "/ui/entities/new", {"display_name": "Ada",
                                                 "fields": "born: 1815\nno colon here"})
    assert r.status_code == 422
    assert "line 2" in field_error(r.text, "fields")
    assert field_error(r.text, "display_name") is None
    r = await post_form(ui, "/ui/entities/new", {"display_name": "x" * 501})
    assert r.status_code == 422
    assert field_error(r.text, "display_name")
    r = await post_form(ui, "/ui/entities/new", {"display_name": "Ada", "tags": "t" * 201})
    assert r.status_code == 422
    assert field_error(r.text, "tags")
    assert (await client.get("/v1/entities")).json()["items"] == []


async def test_htmx_create_error_returns_the_form_block(ui):
    r = await post_form(ui, "/ui/entities/new", {"display_name": ""},
                        headers={"HX-Request": "true"})
    assert r.status_code == 422
    assert "<html" not in r.text
    assert field_error(r.text, "display_name") == "A name is required."


async def test_create_redirects_to_the_detail_page(ui, client):
    r = await post_form(ui, "/ui/entities/new", {
        "display_name": " Ada Lovelace ", "aliases": "Countess, ada l\nCOUNTESS",
        "tags": "math, poet", "fields": "born: 1815\ncity: London\nalive: false"})
    assert r.status_code == 303
    match = re.fullmatch(r"/ui/entities/([0-9a-f]{64})\?notice=created",
                         r.headers["location"])
    assert match
    entity = (await client.get(f"/v1/entities/{match.group(1)}")).json()
    assert entity["display_name"] == "Ada Lovelace"
    assert entity["aliases"] == ["Countess", "ada l"]
    assert entity["tags"] == ["math", "poet"]
    assert entity["fields"] == {"born": 1815, "city": "London", "alive": False}

    html = await page(ui, r.headers["location"])
    assert re.search(r'<h1 id="entity-name">Ada Lovelace</h1>', html)
    assert "Entity created." in html
    fields = html.split('id="entity-fields"', 1)[1].split("</dl>", 1)[0]
    assert "<dt>born</dt><dd>1815</dd>" in fields
    assert "<dt>city</dt><dd>London</dd>" in fields


async def test_htmx_create_redirects_with_hx_redirect(ui, client):
    r = await post_form(ui, "/ui/entities/new", {"display_name": "Ada"},
                        headers={"HX-Request": "true"})
    assert r.status_code == 200
    assert re.fullmatch(r"/ui/entities/[0-9a-f]{64}\?notice=created", r.headers["hx-redirect"])


async def test_names_are_escaped(ui, client):
    entity = await create(client, "<script>alert(1)</script>", tags=['"><b>'])
    for url in ("/ui/entities", f"/ui/entities/{entity['entity_id']}",
                f"/ui/entities/{entity['entity_id']}/edit"):
        html = await page(ui, url)
        assert "<script>alert" not in html and '"><b>' not in html, url
        assert "&lt;script&gt;" in html


# -- detail, edit, delete, restore -------------------------------------------------------

async def test_edit_form_is_prefilled_and_saves(ui, client):
    entity = await create(client, "Ada", aliases=["Countess", "A. L."], tags=["math"],
                          fields={"born": 1815, "city": "London", "langs": ["en", "fr"]},
                          plugin_data={"trainer": {"steps": 1}})
    url = f"/ui/entities/{entity['entity_id']}/edit"
    html = await page(ui, url)
    assert input_value(html, "display_name") == "Ada"
    assert input_value(html, "aliases") == "Countess, A. L."
    assert input_value(html, "tags") == "math"
    assert textarea(html, "fields").splitlines() == [
        "born: 1815", "city: London", 'langs: [&#34;en&#34;,&#34;fr&#34;]']

    r = await post_form(ui, url, {"display_name": "Ada Lovelace", "aliases": "Countess",
                                  "tags": "math, poet",
                                  "fields": 'born: 1815\nlangs: ["en","fr"]'})
    assert (r.status_code, r.headers["location"]) == (
        303, f"/ui/entities/{entity['entity_id']}?notice=saved")
    saved = (await client.get(f"/v1/entities/{entity['entity_id']}")).json()
    assert saved["display_name"] == "Ada Lovelace"
    assert saved["aliases"] == ["Countess"]
    assert saved["tags"] == ["math", "poet"]
    assert saved["fields"] == {"born": 1815, "langs": ["en", "fr"]}  # city removed
    assert saved["plugin_data"] == {"trainer": {"steps": 1}}  # not on the form: kept
    html = await page(ui, r.headers["location"])
    assert "Changes saved." in html and "Ada Lovelace" in html


async def test_saving_the_edit_form_unchanged_keeps_every_field(ui, client):
    fields = {"code": "1815", "flag": "true", "note": "null", "zip": "02134",
              "bio": "line one\nline two", "padded": "  x  ", "empty": "", "quote": '"q"',
              "year": 1815, "alive": False, "langs": ["en"], "city": "London",
              "odd": "a\u2028b\x0cc"}
    entity = await create(client, "Ada", fields=fields)
    url = f"/ui/entities/{entity['entity_id']}/edit"
    html = await page(ui, url)
    form_text = html_unescape(textarea(html, "fields")).replace("\n", "\r\n")  # as sent
    r = await post_form(ui, url, {"display_name": "Ada", "fields": form_text})
    assert r.status_code == 303, r.text
    assert (await client.get(f"/v1/entities/{entity['entity_id']}")).json() == entity


async def test_edit_with_a_blank_name_changes_nothing(ui, client):
    entity = await create(client, "Ada")
    r = await post_form(ui, f"/ui/entities/{entity['entity_id']}/edit",
                        {"display_name": " ", "tags": "x"})
    assert r.status_code == 422
    assert field_error(r.text, "display_name") == "A name is required."
    assert (await client.get(f"/v1/entities/{entity['entity_id']}")).json() == entity


async def test_delete_asks_then_deletes_and_restore_brings_it_back(ui, client):
    entity = await create(client, "Ada")
    eid = entity["entity_id"]
    html = await page(ui, f"/ui/entities/{eid}/delete")
    assert "Delete “Ada”?" in html
    (form,) = tags(html, "form", action=f"/ui/entities/{eid}/delete")
    assert form.attrs["method"] == "post"
    assert (await client.get(f"/v1/entities/{eid}")).status_code == 200  # asking is not doing

    r = await post_form(ui, f"/ui/entities/{eid}/delete")
    assert r.status_code == 303
    html = await page(ui, r.headers["location"])
    assert "Entity deleted." in html and entity_ids(html) == []
    assert entity_ids(await page(ui, "/ui/entities?state=deleted")) == [eid]
    assert (await client.get(f"/v1/entities/{eid}")).status_code == 404

    detail = await page(ui, f"/ui/entities/{eid}")
    assert "This entity was deleted" in detail
    assert tags(detail, "form", action=f"/ui/entities/{eid}/restore")
    assert not tags(detail, "a", href=f"/ui/entities/{eid}/edit")
    await page(ui, f"/ui/entities/{eid}/edit", status=404)
    await page(ui, f"/ui/entities/{eid}/delete", status=404)
    assert (await post_form(ui, f"/ui/entities/{eid}/delete")).status_code == 404

    r = await post_form(ui, f"/ui/entities/{eid}/restore")
    assert (r.status_code, r.headers["location"]) == (
        303, f"/ui/entities/{eid}?notice=restored")
    assert "Entity restored." in await page(ui, r.headers["location"])
    assert entity_ids(await page(ui, "/ui/entities")) == [eid]
    assert entity_ids(await page(ui, "/ui/entities?state=deleted")) == []


async def test_detail_lists_the_tabs_and_overview_renders(ui, client, app):
    entity = await create(client, "Ada", tags=["math"], fields={"born": 1815})
    html = await page(ui, f"/ui/entities/{entity['entity_id']}")
    tabs = [(t.attrs["data-tab"], t.attrs["aria-selected"]) for t in tags(html, "a", role="tab")]
    kernel_tabs = app.state.kernel.entity_tabs
    assert [t for t, _ in tabs] == [t.id for t in kernel_tabs]
    assert "overview" in dict(tabs)
    assert [t for t, selected in tabs if selected == "true"] == [kernel_tabs[0].id]
    assert "Overview" in html
    assert entity["entity_id"] in html
    assert tags(html, "a", href="/ui/entities?tag=math")

    fragment = await page(ui, f"/ui/entities/{entity['entity_id']}?tab=overview",
                          headers={"HX-Request": "true"})
    assert "<html" not in fragment and 'role="tablist"' not in fragment
    assert "<dt>born</dt><dd>1815</dd>" in fragment


async def test_unknown_entity_is_a_404_page(ui):
    for url in (f"/ui/entities/{UNKNOWN_ID}", "/ui/entities/abc",
                f"/ui/entities/{UNKNOWN_ID}/edit", f"/ui/entities/{UNKNOWN_ID}/delete"):
        html = await page(ui, url, status=404)
        assert "<main" in html and "Not found" in html


async def test_unknown_tab_is_a_404_page(ui, client):
    entity = await create(client, "Ada")
    html = await page(ui, f"/ui/entities/{entity['entity_id']}?tab=nope", status=404)
    assert "<main" in html and "nope" in html
    r = await ui.client.get(f"/ui/entities/{entity['entity_id']}?tab=nope",
                            headers={"HX-Request": "true"})
    assert r.status_code == 404 and r.headers["hx-retarget"] == "#main"


async def test_posts_to_unknown_entities_are_404(ui):
    for action in ("edit", "delete", "restore"):
        r = await post_form(ui, f"/ui/entities/{UNKNOWN_ID}/{action}",
                            {"display_name": "x"})
        assert r.status_code == 404, action


# -- tabs from the faceforge_ui_entity_tabs hook -----------------------------------------

class NotesTab:
    @hookimpl
    def faceforge_ui_entity_tabs(self, kernel):
        async def render(request, entity):
            return f'<p id="notes">Notes about {entity["display_name"]}</p>'

        return [EntityTab(id="notes", label="Notes", order=50, render=render)]


async def test_a_plugin_tab_appears_and_renders(make_app, settings):
    app = make_app(extra_plugins=[("notestab", NotesTab())])
    async with running(app, settings.install_token) as api:
        ui = await sign_in(httpx.AsyncClient(transport=api._transport,
                                             base_url="http://testserver"),
                           settings.install_token)
        entity = await create(api, "Ada")
        url = f"/ui/entities/{entity['entity_id']}"
        overview = await page(ui, url)
        notes = await page(ui, url + "?tab=notes")
        fragment = await page(ui, url + "?tab=notes", headers={"HX-Request": "true"})

    tab_ids = [t.attrs["data-tab"] for t in tags(overview, "a", role="tab")]
    assert tab_ids.index("overview") < tab_ids.index("notes")
    (link,) = tags(overview, "a", role="tab", data_tab="notes")
    assert link.attrs["href"] == link.attrs["hx-get"] == url + "?tab=notes"
    assert "Notes about Ada" not in overview
    assert '<p id="notes">Notes about Ada</p>' in notes
    assert tags(notes, "a", role="tab", data_tab="notes")[0].attrs["aria-selected"] == "true"
    assert fragment.strip() == '<p id="notes">Notes about Ada</p>'

"""The entity list's "External id" filter over HTTP: ``namespace:id`` finds what the API's
``external_id`` finds, stays in the page's links, and a malformed one is explained."""

from __future__ import annotations

import re
from html import unescape
from typing import Any

import pytest

from tests.plugins_builtin.entities.test_ui_pages import create, input_value, shown_names
from tests.ui.browsing import entity_ids, page, tags

HTMX = {"HX-Request": "true"}


def alert(html: str) -> str | None:
    match = re.search(r'id="external-id-error">([^<]*)</p>', html)
    return unescape(match.group(1)) if match else None


@pytest.fixture
async def people(client) -> dict[str, Any]:
    return {
        "ada": await create(client, "Ada", tags=["math"],
                            external_ids={"stash": "1234", "tpdb": "a-1"}),
        "grace": await create(client, "Grace", external_ids={"stash": "12345"}),
        "alan": await create(client, "Alan", tags=["math"], external_ids={"tpdb": "1234"}),
    }


async def test_the_list_shows_only_the_entity_with_that_external_id(ui, client, people):
    html = await page(ui, "/ui/entities?external_id=stash:1234")
    assert shown_names(html) == ["Ada"]
    assert "1 entity" in html
    assert input_value(html, "external_id") == "stash:1234"
    # the same entities as the API's filter, for each namespace and value
    for wanted in ("stash:1234", "stash:12345", "tpdb:1234", "tpdb:a-1", "stash:9",
                   "other:1234"):
        api = await client.get("/v1/entities", params={"external_id": wanted})
        shown = entity_ids(await page(ui, "/ui/entities", params={"external_id": wanted}))
        assert shown == [e["entity_id"] for e in api.json()["items"]], wanted
    html = await page(ui, "/ui/entities?external_id=stash:9")
    assert shown_names(html) == [] and "Nothing matches this search" in html
    # it combines with the other filters
    assert shown_names(await page(ui, "/ui/entities?external_id=tpdb:1234&tag=math")) == [
        "Alan"]
    assert shown_names(await page(ui, "/ui/entities?external_id=tpdb:1234&q=ada")) == []
    # blank is no filter
    assert len(shown_names(await page(ui, "/ui/entities?external_id=+"))) == 3


async def test_the_filter_stays_in_the_pages_links(ui, client, people):
    for i in range(3):
        await create(client, f"Other {i}")
    html = await page(ui, "/ui/entities?external_id=stash:1234&sort=display_name:asc")
    gallery = [unescape(t.attrs["href"]) for t in tags(html, "a")
               if "view=gallery" in t.attrs.get("href", "")]
    assert gallery == ["/ui/entities?external_id=stash%3A1234&sort=display_name%3Aasc"
                       "&view=gallery&state=active"]
    assert entity_ids(await page(ui, gallery[0])) == [people["ada"]["entity_id"]]
    # the toolbar form sends it with the others (and htmx puts that in the address bar)
    (form,) = tags(html, "form", role="search")
    assert form.attrs["hx-push-url"] == "true"
    assert tags(html, "input", name="external_id", id="external_id")


@pytest.mark.parametrize("typed, message", [
    ("stash", "Write the external id as namespace:id, such as stash:1234."),
    (":1234", "Write the external id as namespace:id, such as stash:1234."),
    ("stash:", "Write the external id as namespace:id, such as stash:1234."),
    ("Stash Box:1234", "“Stash Box” is not an external-id namespace"),
    ("_stash:1234", "“_stash” is not an external-id namespace"),
    ("stash:" + "9" * 501, "The id after the colon is at most 500 characters."),
])
async def test_a_malformed_external_id_is_explained_not_a_server_error(ui, people, typed,
                                                                         message):
    r = await ui.client.get("/ui/entities", params={"external_id": typed})
    assert r.status_code == 422
    assert alert(r.text).startswith(message)
    assert shown_names(r.text) == [] and "No results: fix the external id." in r.text
    (box,) = tags(r.text, "input", name="external_id")
    assert box.attrs["value"] == typed and box.attrs["aria-invalid"] == "true"
    assert box.attrs["aria-describedby"] == "external-id-error"
    # a live search gets the results block with the same message
    r = await ui.client.get("/ui/entities", params={"external_id": typed}, headers=HTMX)
    assert r.status_code == 422
    assert "<html" not in r.text and alert(r.text).startswith(message)

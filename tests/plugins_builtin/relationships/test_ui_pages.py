"""The Relationships tab over HTTP, as a signed-in browser sees it: the list, the add form
(type suggestions, entity search, inline errors, no-JavaScript "Find") and remove."""

from __future__ import annotations

import re
from html import unescape

import pytest

from ff_plugin_sdk import ValidationFailed
from tests.plugins_builtin.relationships.conftest import (
    UNKNOWN_ID,
    entity,
    relate,
    seen_from,
)
from tests.ui.browsing import htmx_links_without_href, page, post_form, tags

HTMX = {"HX-Request": "true"}


def tab(entity_id: str, **extra: str) -> str:
    query = "".join(f"&{k}={v}" for k, v in extra.items())
    return f"/ui/entities/{entity_id}?tab=relationships{query}"


def rows(html: str) -> list[tuple[str, str, str]]:
    """(label, other entity's name, its href) of each listed relationship."""
    found = re.findall(r'<td class="rel-label">(.*?)</td>\s*<td><a href="([^"]+)">([^<]*)</a>',
                       html, re.S)
    return [(unescape(re.sub(r"<[^>]+>", "", label)).strip(), unescape(name), href)
            for label, href, name in found]


def suggested(html: str) -> list[str]:
    return [t.attrs["data-type"] for t in tags(html, "button") if "data-type" in t.attrs]


def offered(html: str) -> list[str]:
    return [t.attrs["value"] for t in tags(html, "input", name="other_entity_id")]


def error(html: str, field: str) -> str | None:
    match = re.search(rf'id="{field}-error">([^<]*)<', html)
    return unescape(match.group(1)) if match else None


@pytest.fixture
async def people(client) -> dict[str, str]:
    return {name: await entity(client, name, aliases=aliases)
            for name, aliases in (("Ada Lovelace", ["Countess of Lovelace"]),
                                  ("Lord Byron", []), ("Mary Somerville", []))}


async def add(ui, entity_id: str, headers: dict[str, str] | None = None, **data: str):
    return await post_form(ui, f"/ui/entities/{entity_id}/relationships",
                           {"action": "add", **data}, headers=headers)


# -- the list ----------------------------------------------------------------------------

async def test_the_tab_lists_both_directions_from_this_entitys_side(ui, client, people):
    ada, byron, mary = people["Ada Lovelace"], people["Lord Byron"], people["Mary Somerville"]
    await relate(client, byron, "parent_of", ada, valid_from="1815-12-10")
    await relate(client, mary, "mentor_of", ada, fields={"subject": "mathematics"})
    await relate(client, ada, "corresponded_with", mary)
    html = await page(ui, tab(ada))
    assert 'data-tab="relationships"' in html
    assert rows(html) == [
        ("child of", "Lord Byron", f"/ui/entities/{byron}"),
        ("student of", "Mary Somerville", f"/ui/entities/{mary}"),
        ("corresponded with", "Mary Somerville", f"/ui/entities/{mary}")]
    assert "1815-12-10 – …" in html and "subject: mathematics" in html
    html = await page(ui, tab(mary))
    assert rows(html) == [("mentor of", "Ada Lovelace", f"/ui/entities/{ada}"),
                          ("← corresponded with", "Ada Lovelace", f"/ui/entities/{ada}")]
    # an htmx tab switch gets the panel only
    fragment = await page(ui, tab(mary), headers=HTMX)
    assert "<html" not in fragment and rows(fragment) == rows(html)


async def test_an_entity_without_relationships_says_so(ui, people):
    html = await page(ui, tab(people["Ada Lovelace"]))
    assert 'id="relationships-empty"' in html and rows(html) == []
    assert tags(html, "form", id="relationship-add")


async def test_a_deleted_entitys_tab_says_its_relationships_are_hidden(ui, client, people):
    ada = people["Ada Lovelace"]
    await relate(client, people["Lord Byron"], "parent_of", ada)
    await client.delete(f"/v1/entities/{ada}")
    html = await page(ui, tab(ada))
    assert 'id="relationships-hidden"' in html and rows(html) == []
    assert not tags(html, "form", id="relationship-add")
    assert rows(await page(ui, tab(people["Lord Byron"]))) == []


async def test_long_lists_page_with_real_links(ui, client):
    hub = await entity(client, "Hub")
    for i in range(52):
        await relate(client, hub, "friend_of", await entity(client, f"Friend {i:02}"))
    html = await page(ui, tab(hub))
    assert len(rows(html)) == 50
    (next_link,) = tags(html, "a", rel="next")
    href = unescape(next_link.attrs["href"])
    assert next_link.attrs["hx-get"] == next_link.attrs["href"]
    second = await page(ui, href)
    assert [name for _, name, _ in rows(second)] == ["Friend 50", "Friend 51"]
    # a hand-edited cursor starts over instead of failing
    assert len(rows(await page(ui, tab(hub, cursor="garbage")))) == 50
    # every hx-get is a link or a form with the same real target, except the two search
    # fields of the add form, whose "Find" button does the same without JavaScript
    inputs = htmx_links_without_href(html)
    assert sorted(t.attrs["id"] for t in inputs) == ["relationship-other-q",
                                                     "relationship-type"]
    assert tags(html, "button", name="action", value="find")


# -- suggestions and search --------------------------------------------------------------

async def test_type_suggestions_start_with_what_was_typed_most_used_first(ui, client, people):
    assert suggested(await page(ui, "/ui/relationships/types?type=s")) == [
        "sibling_of", "spouse_of", "student_of"]
    await relate(client, people["Ada Lovelace"], "student_of", people["Mary Somerville"])
    html = await page(ui, "/ui/relationships/types?type=S", headers=HTMX)
    assert suggested(html) == ["student_of", "sibling_of", "spouse_of"]
    assert "<html" not in html and 'id="relation-type-suggestions"' in html
    assert "1 in use" in html
    assert suggested(await page(ui, "/ui/relationships/types?type=child+of")) == ["child_of"]
    assert suggested(await page(ui, "/ui/relationships/types?type=%3Cb%3E")) == []


async def test_entity_search_offers_other_entities_by_name_alias_or_id(ui, people):
    ada, byron = people["Ada Lovelace"], people["Lord Byron"]
    base = f"/ui/entities/{ada}/relationships/candidates"
    assert offered(await page(ui, base + "?other_q=byr")) == [byron]
    assert offered(await page(ui, f"/ui/entities/{byron}/relationships/candidates"
                                  "?other_q=countess")) == [ada]
    assert offered(await page(ui, base + f"?other_q={byron}")) == [byron]
    # never the entity itself
    assert offered(await page(ui, base + "?other_q=lovelace")) == []
    html = await page(ui, base + "?other_q=zzz")
    assert 'id="no-other"' in html
    # a choice already made stays offered while the search changes
    assert offered(await page(ui, base + f"?other_q=mary&other_entity_id={byron}")) == [
        byron, people["Mary Somerville"]]
    await page(ui, f"/ui/entities/{UNKNOWN_ID}/relationships/candidates?other_q=a", 404)
    await page(ui, "/ui/entities/nope/relationships/candidates?other_q=a", 404)


async def test_find_without_javascript_shows_suggestions_and_candidates(ui, client, people):
    ada = people["Ada Lovelace"]
    r = await post_form(ui, f"/ui/entities/{ada}/relationships",
                        {"action": "find", "type": "sp", "other_q": "byron",
                         "direction": "to", "valid_from": "1815"})
    assert r.status_code == 200
    assert "<html" in r.text and "Add a relationship to Ada Lovelace" in r.text
    assert suggested(r.text) == ["spouse_of"]
    assert offered(r.text) == [people["Lord Byron"]]
    # what was typed is kept, and nothing was added
    assert tags(r.text, "input", name="valid_from")[0].attrs["value"] == "1815"
    assert tags(r.text, "input", name="direction", value="to")[0].attrs.get("checked") == ""
    assert await seen_from(client, ada) == []


# -- add ---------------------------------------------------------------------------------

async def test_adding_from_the_tab_relates_the_chosen_entity(ui, client, people):
    ada, byron = people["Ada Lovelace"], people["Lord Byron"]
    r = await add(ui, ada, direction="to", type=" Parent of ", other_entity_id=byron,
                  valid_from="1815-12-10", fields="note: first\nyears: 8")
    assert r.status_code == 303
    assert r.headers["location"] == tab(ada) + "&notice=added"
    html = await page(ui, r.headers["location"])
    assert "Relationship added." in html
    assert rows(html) == [("child of", "Lord Byron", f"/ui/entities/{byron}")]
    assert await seen_from(client, byron) == [("outgoing", "parent_of", "Ada Lovelace")]
    (item,) = (await client.get("/v1/relationships", params={"entity_id": ada})).json()[
        "items"]
    assert item["fields"] == {"note": "first", "years": 8}
    assert item["valid_from"] == "1815-12-10"


async def test_an_htmx_add_redirects_with_a_header(ui, people):
    r = await add(ui, people["Ada Lovelace"], type="friend_of",
                  other_entity_id=people["Mary Somerville"], headers=HTMX)
    assert r.status_code == 200
    assert r.headers["hx-redirect"] == tab(people["Ada Lovelace"]) + "&notice=added"


@pytest.mark.parametrize("data, field, status", [
    ({"type": ""}, "type", 422),
    ({"type": "Ehefrau von!"}, "type", 422),
    ({"other_entity_id": ""}, "other", 422),
    ({"other_entity_id": UNKNOWN_ID}, "other", 422),
    ({"valid_from": "last spring"}, "valid_from", 422),
    ({"valid_from": "1820-01-01", "valid_to": "1810-01-01"}, "valid_to", 422),
    ({"fields": "no colon here"}, "fields", 422),
])
async def test_refused_adds_show_the_error_inline(ui, client, people, data, field, status):
    ada = people["Ada Lovelace"]
    form = {"type": "friend_of", "other_entity_id": people["Lord Byron"]} | data
    r = await add(ui, ada, **form)
    assert r.status_code == status, r.text
    assert "<html" in r.text and error(r.text, field)
    r = await add(ui, ada, headers=HTMX, **form)
    assert r.status_code == status
    assert "<html" not in r.text and r.text.lstrip().startswith("<form")
    assert error(r.text, field)
    # what was typed is still there
    assert tags(r.text, "input", name="type")[0].attrs["value"] == form["type"]
    assert await seen_from(client, ada) == []


async def test_self_and_duplicate_relationships_are_refused_inline(ui, client, people):
    ada, byron = people["Ada Lovelace"], people["Lord Byron"]
    r = await add(ui, ada, type="friend_of", other_entity_id=ada)
    assert r.status_code == 422 and "itself" in error(r.text, "other")
    await relate(client, byron, "parent_of", ada)
    # the same fact written from Ada's side
    r = await add(ui, ada, direction="from", type="child_of", other_entity_id=byron,
                  headers=HTMX)
    assert r.status_code == 409
    assert 'id="relationship-error"' in r.text and "exists already" in r.text
    assert await seen_from(client, ada) == [("incoming", "child_of", "Lord Byron")]


async def test_adding_to_a_deleted_or_unknown_entity_is_not_a_server_error(ui, client,
                                                                            people):
    await client.delete(f"/v1/entities/{people['Lord Byron']}")
    r = await add(ui, people["Lord Byron"], type="friend_of",
                  other_entity_id=people["Ada Lovelace"])
    assert r.status_code == 404
    r = await add(ui, "not-an-id", type="friend_of", other_entity_id=people["Ada Lovelace"])
    assert r.status_code == 404


async def test_a_form_post_needs_the_csrf_token(ui, client, people):
    r = await ui.client.post(f"/ui/entities/{people['Ada Lovelace']}/relationships",
                             data={"action": "add", "type": "friend_of",
                                   "other_entity_id": people["Lord Byron"]})
    assert r.status_code == 403
    assert await seen_from(client, people["Ada Lovelace"]) == []


# -- remove ------------------------------------------------------------------------------

async def test_remove_deletes_the_relationship_and_returns_to_the_tab(ui, client, people):
    ada, byron = people["Ada Lovelace"], people["Lord Byron"]
    rel = await relate(client, byron, "parent_of", ada)
    html = await page(ui, tab(ada))
    (form,) = [t for t in tags(html, "form")
               if t.attrs.get("action", "").endswith(f"{rel['relationship_id']}/delete")]
    r = await ui.client.post(form.attrs["action"], data={"entity_id": ada})
    assert r.status_code == 403  # no CSRF token
    r = await post_form(ui, form.attrs["action"], {"entity_id": ada})
    assert r.status_code == 303 and r.headers["location"] == tab(ada) + "&notice=removed"
    assert "Relationship removed." in await page(ui, r.headers["location"])
    assert await seen_from(client, byron) == []
    r = await post_form(ui, form.attrs["action"], {"entity_id": ada})
    assert r.status_code == 404


# -- a delete racing an add ----------------------------------------------------------------

async def test_an_entity_deleted_after_the_check_is_still_refused(app, client, people,
                                                                   monkeypatch):
    """The write itself refuses an end deleted since the entities store was asked."""
    store = app.state.kernel.services["relationships.store"]
    ada, byron = people["Ada Lovelace"], people["Lord Byron"]
    await client.delete(f"/v1/entities/{byron}")

    async def stale_check(ends: dict[str, str]) -> None:
        return None  # as if asked just before the delete committed

    monkeypatch.setattr(store, "check_live", stale_check)
    with pytest.raises(ValidationFailed) as refused:
        await store.create({"from_entity_id": ada, "to_entity_id": byron,
                            "type": "friend_of", "fields": {}, "valid_from": None,
                            "valid_to": None})
    assert refused.value.code == "entity_not_found"
    assert refused.value.details == [{"path": "$.to_entity_id",
                                      "message": f"no live entity with id {byron!r}"}]
    await client.post(f"/v1/entities/{byron}/restore")
    assert await seen_from(client, ada) == []

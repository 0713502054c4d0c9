"""Editing a relationship from the Relationships tab over HTTP: the Edit action, a form
filled in with what is stored, saving through the store's update, errors inline with what
was typed kept, and a relationship removed meanwhile."""

from __future__ import annotations

import re
from html import unescape

import pytest

from tests.plugins_builtin.relationships.conftest import entity, relate, seen_from
from tests.plugins_builtin.relationships.test_ui_pages import HTMX, rows, tab
from tests.ui.browsing import htmx_links_without_href, page, post_form, tags


def edit_error(html: str, field: str) -> str | None:
    match = re.search(rf'id="edit-{field}-error">([^<]*)<', html)
    return unescape(match.group(1)) if match else None


def value(html: str, name: str) -> str:
    return tags(html, "input", name=name)[0].attrs.get("value", "")


def fields_text(html: str) -> str:
    match = re.search(r'<textarea id="relationship-edit-fields"[^>]*>(.*?)</textarea>', html,
                      re.S)
    assert match, "no fields textarea"
    return unescape(match.group(1))


@pytest.fixture
async def parent(client) -> dict[str, str]:
    """Byron parent_of Ada, with bounds and fields; ids of the three."""
    ada, byron = await entity(client, "Ada Lovelace"), await entity(client, "Lord Byron")
    rel = await relate(client, byron, "parent_of", ada, valid_from="1815-12-10",
                       fields={"note": "first", "years": 8, "code": "1815", "gone": None})
    return {"ada": ada, "byron": byron, "rel": rel["relationship_id"]}


def edit_url(p: dict[str, str], seen_by: str = "ada") -> str:
    return f"/ui/relationships/{p['rel']}/edit?entity_id={p[seen_by]}"


async def save(ui, p: dict[str, str], headers: dict[str, str] | None = None, **data: str):
    form = {"entity_id": p["ada"], "type": "parent_of", "valid_from": "1815-12-10",
            "valid_to": "", "fields": ""} | data
    return await post_form(ui, f"/ui/relationships/{p['rel']}/edit", form, headers=headers)


async def stored(client, relationship_id: str) -> dict:
    r = await client.get(f"/v1/relationships/{relationship_id}")
    assert r.status_code == 200, r.text
    return r.json()


async def test_each_row_has_an_edit_action_opening_a_filled_in_form(ui, parent):
    html = await page(ui, tab(parent["ada"]))
    (action,) = [t for t in tags(html, "form") if t.attrs.get("action", "").endswith(
        f"{parent['rel']}/edit")]
    assert action.attrs["hx-get"] == action.attrs["action"]
    assert action.attrs["hx-target"] == "#relationship-editor"
    assert tags(html, "div", id="relationship-editor")
    assert tags(html, "input", name="entity_id", value=parent["ada"])
    form = await page(ui, edit_url(parent))
    assert "<html" in form and "From <strong>Lord Byron</strong> to <strong>Ada Lovelace" in form
    assert value(form, "type") == "parent_of"
    assert value(form, "valid_from") == "1815-12-10" and value(form, "valid_to") == ""
    # each value written so that saving it unchanged keeps its type
    assert fields_text(form).splitlines() == ['note: first', 'years: 8', 'code: "1815"',
                                              'gone: null']
    assert value(form, "csrf_token") == ui.csrf
    assert htmx_links_without_href(form) == []
    # htmx gets the form's card only, to show inside the tab
    fragment = await page(ui, edit_url(parent), headers=HTMX)
    assert "<html" not in fragment
    assert fragment.lstrip().startswith('<section class="card" id="relationship-edit-card"')


async def test_saving_changes_type_bounds_and_fields_and_returns_to_the_tab(ui, client,
                                                                          parent):
    r = await save(ui, parent, type=" Mentor of ", valid_from="1820-01-01",
                   valid_to="1852-11-27T10:00:00+01:00",
                   fields='note: second\ncode: "1815"\ngone: null\nsubject: [1, 2]')
    assert r.status_code == 303
    assert r.headers["location"] == tab(parent["ada"]) + "&notice=updated"
    html = await page(ui, r.headers["location"])
    assert "Relationship updated." in html
    assert rows(html) == [("student of", "Lord Byron", f"/ui/entities/{parent['byron']}")]
    rel = await stored(client, parent["rel"])
    assert rel["type"] == "mentor_of"
    assert (rel["valid_from"], rel["valid_to"]) == ("1820-01-01", "1852-11-27T09:00:00Z")
    # "years" was deleted from the text: removed; "gone: null" left alone: kept
    assert rel["fields"] == {"note": "second", "code": "1815", "gone": None,
                             "subject": [1, 2]}


async def test_saving_the_form_unchanged_changes_nothing(ui, client, parent):
    before = await stored(client, parent["rel"])
    form = await page(ui, edit_url(parent, seen_by="byron"))
    r = await save(ui, parent, entity_id=parent["byron"], fields=fields_text(form),
                   headers=HTMX)
    assert r.status_code == 200
    assert r.headers["hx-redirect"] == tab(parent["byron"]) + "&notice=updated"
    assert await stored(client, parent["rel"]) == before


@pytest.mark.parametrize("data, field", [
    ({"type": ""}, "type"),
    ({"type": "Ehefrau von!"}, "type"),
    ({"valid_from": "last spring"}, "valid_from"),
    ({"valid_to": "2020-02-30"}, "valid_to"),
    ({"valid_from": "1820-01-01", "valid_to": "1810-01-01"}, "valid_to"),
    ({"fields": "note: kept\nno colon here"}, "fields"),
])
async def test_refused_saves_show_the_error_next_to_the_input(ui, client, parent, data,
                                                               field):
    before = await stored(client, parent["rel"])
    form = {"fields": "note: typed"} | data
    r = await save(ui, parent, **form)
    assert r.status_code == 422, r.text
    assert "<html" in r.text and edit_error(r.text, field)
    r = await save(ui, parent, headers=HTMX, **form)
    assert r.status_code == 422
    assert r.text.lstrip().startswith('<section class="card" id="relationship-edit-card"')
    assert edit_error(r.text, field)
    (box,) = tags(r.text, "input", name=field) or tags(r.text, "textarea", name=field)
    assert box.attrs["aria-invalid"] == "true"
    # what was typed is still there, and nothing was saved
    assert value(r.text, "type") == form.get("type", "parent_of")
    assert value(r.text, "valid_from") == form.get("valid_from", "1815-12-10")
    assert fields_text(r.text) == form["fields"]
    assert await stored(client, parent["rel"]) == before


async def test_a_type_that_makes_it_a_copy_of_another_is_refused_inline(ui, client, parent):
    await relate(client, parent["ada"], "friend_of", parent["byron"])
    r = await save(ui, parent, type="friend_of", headers=HTMX)
    assert r.status_code == 409
    assert "exists already" in edit_error(r.text, "type")
    assert value(r.text, "type") == "friend_of"
    assert (await stored(client, parent["rel"]))["type"] == "parent_of"


async def test_a_relationship_removed_meanwhile_is_explained_not_a_server_error(ui, client,
                                                                               parent):
    form = await page(ui, edit_url(parent))
    assert (await client.delete(f"/v1/relationships/{parent['rel']}")).status_code == 204
    for headers in (None, HTMX):
        r = await save(ui, parent, fields=fields_text(form), headers=headers)
        assert r.status_code == 404
        assert 'id="relationship-gone"' in r.text and "Nothing was saved" in r.text
        assert f'href="{tab(parent["ada"])}"' in r.text.replace("&amp;", "&")
    html = await page(ui, edit_url(parent), 404)
    assert "no longer there" in html
    # an entity deleted since: its relationships are hidden, so the same
    other = await relate(client, parent["byron"], "friend_of", parent["ada"])
    await client.delete(f"/v1/entities/{parent['byron']}")
    r = await post_form(ui, f"/ui/relationships/{other['relationship_id']}/edit",
                        {"entity_id": parent["ada"], "type": "friend_of"})
    assert r.status_code == 404 and 'id="relationship-gone"' in r.text
    await page(ui, "/ui/relationships/not-an-id/edit", 404)


async def test_a_save_needs_the_csrf_token(ui, client, parent):
    before = await stored(client, parent["rel"])
    r = await ui.client.post(f"/ui/relationships/{parent['rel']}/edit",
                             data={"entity_id": parent["ada"], "type": "mentor_of"})
    assert r.status_code == 403
    assert await stored(client, parent["rel"]) == before
    assert await seen_from(client, parent["ada"]) == [("incoming", "child_of", "Lord Byron")]

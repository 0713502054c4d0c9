"""The Descriptors tab and its forms over HTTP, as a signed-in browser sees them."""

from __future__ import annotations

import re
from html import unescape

import httpx

from tests.plugins_builtin.descriptors.conftest import (
    FUTURE_FROM,
    UNKNOWN_ID,
    add,
    define,
    listed,
)
from tests.ui.browsing import SignedIn, htmx_links_without_href, page, post_form, tags

HTMX = {"HX-Request": "true"}


def tab(entity_id: str, **params: str) -> str:
    query = "".join(f"&{k}={v}" for k, v in params.items())
    return f"/ui/entities/{entity_id}?tab=descriptors{query}"


def shown(html: str, state: str) -> list[str]:
    """The values listed as ``current``, ``future`` or ``past``, in page order."""
    return [unescape(v) for v in re.findall(
        rf'data-state="{state}">\s*<div class="descriptor-main">\s*'
        r'<span class="descriptor-value">([^<]*)</span>', html)]


def field_error(html: str, field: str) -> str | None:
    match = re.search(rf'<p class="field-error" id="descriptor-{field}-error">([^<]*)</p>',
                      html)
    return unescape(match.group(1)) if match else None


def value_input(html: str) -> tuple[str, dict[str, str]]:
    """(element, attributes) of the value input."""
    found = [t for t in tags(html) if t.attrs.get("id") == "descriptor-value"]
    assert len(found) == 1, found
    return found[0].name, found[0].attrs


async def post_add(ui: SignedIn, entity_id: str, key: str, value: str = "",
                   **fields: str) -> httpx.Response:
    return await post_form(ui, f"/ui/entities/{entity_id}/descriptors",
                           {"key": key, "value": value, **fields})


# -- the tab -----------------------------------------------------------------------------

async def test_tab_groups_values_by_key_with_current_and_history(ui, client, entity_id):
    await define(client, "phone", "string", label="Phone number")
    await add(client, entity_id, "address", "A street", valid_from="2010-01-01",
              valid_to="2014-12-31")
    await add(client, entity_id, "address", "B street", valid_from="2015-01-01")
    await add(client, entity_id, "address", "C street", valid_from=FUTURE_FROM)
    gone = await add(client, entity_id, "address", "Deleted street")
    await client.delete(f"/v1/descriptors/{gone['descriptor_id']}")
    await add(client, entity_id, "phone", "+1 555")
    await add(client, entity_id, "langs", ["en", "fr"], source="census", notes="spoken")
    html = await page(ui, tab(entity_id))
    assert [t.attrs["data-key"] for t in tags(html, "section")
            if "data-key" in t.attrs] == ["address", "langs", "phone"]
    assert shown(html, "current") == ["B street", '["en","fr"]', "+1 555"]
    assert shown(html, "future") == ["C street"]
    assert shown(html, "past") == ["A street"]
    assert "Deleted street" not in html
    assert "Phone number" in html and "2010-01-01 – 2014-12-31" in html
    assert "since 2015-01-01" in html and "Source: census" in html and "spoken" in html
    assert htmx_links_without_href(html) == []
    # the tab as htmx asks for it: the panel only
    fragment = await page(ui, tab(entity_id), headers=HTMX)
    assert "<html" not in fragment and 'id="descriptors"' in fragment


async def test_the_tab_follows_overview_on_the_entity_page(ui, entity_id):
    html = await page(ui, f"/ui/entities/{entity_id}")
    tab_ids = [t.attrs["data-tab"] for t in tags(html, "a", role="tab")]
    assert tab_ids[:2] == ["overview", "descriptors"]
    link = tags(html, "a", data_tab="descriptors")[0]
    assert link.attrs["href"] == link.attrs["hx-get"] == tab(entity_id)


async def test_empty_tab_invites_to_add(ui, entity_id):
    html = await page(ui, tab(entity_id))
    assert 'id="descriptors-empty"' in html
    assert tags(html, "input", id="descriptor-key")
    assert not tags(html, "form", id="descriptor-value-form")  # no key chosen yet


async def test_choosing_a_key_shows_the_input_its_definition_asks_for(ui, client, entity_id):
    await define(client, "born", "date", label="Date of birth")
    await define(client, "height", "int")
    await define(client, "eyes", "enum", options=["blue", "brown"])
    await define(client, "langs", "multi_enum", options=["en", "fr", "de"])
    await define(client, "alive", "bool")
    await define(client, "bio", "text")
    html = await page(ui, tab(entity_id))
    # the key's suggestions (the only options before a key is chosen): the defined keys
    assert [t.attrs["value"] for t in tags(html, "option")] == [
        "alive", "bio", "born", "eyes", "height", "langs"]
    expected = {"born": ("input", "date"), "height": ("input", "number"),
                "eyes": ("select", None), "langs": ("select", None),
                "alive": ("input", "checkbox"), "bio": ("textarea", None),
                "free_key": ("textarea", None)}
    for key, (element, input_type) in expected.items():
        html = await page(ui, tab(entity_id, key=key))
        form = tags(html, "form", id="descriptor-value-form")
        assert form and form[0].attrs["data-key"] == key
        name, attrs = value_input(html)
        assert name == element, key
        if input_type:
            assert attrs["type"] == input_type, key
    html = await page(ui, tab(entity_id, key="langs"))
    assert "multiple" in value_input(html)[1]
    assert [t.attrs["value"] for t in tags(html, "option") if t.attrs.get("value") in
            ("en", "fr", "de")] == ["en", "fr", "de"]
    assert "Date of birth" in await page(ui, tab(entity_id, key="born"))


async def test_a_bad_key_is_refused_next_to_the_key_input(ui, entity_id):
    html = await page(ui, tab(entity_id, key="no spaces"))
    assert "letter or _" in field_error(html, "key")
    assert tags(html, "input", id="descriptor-key")[0].attrs["aria-invalid"] == "true"
    assert not tags(html, "form", id="descriptor-value-form")
    r = await post_add(ui, entity_id, "1bad", "x")
    assert r.status_code == 422 and field_error(r.text, "key")


# -- adding ------------------------------------------------------------------------------

async def test_add_redirects_to_the_tab_and_keeps_types(ui, client, entity_id):
    await define(client, "height", "int")
    await define(client, "langs", "multi_enum", options=["en", "fr", "de"])
    await define(client, "alive", "bool")
    r = await post_add(ui, entity_id, "address", "1 Main St\r\nLondon",
                       valid_from="2015-01-01", source=" deed ", notes="")
    assert r.status_code == 303
    assert r.headers["location"] == tab(entity_id, notice="added")
    await post_add(ui, entity_id, "height", " 170 ")
    await post_add(ui, entity_id, "born_year", "1815")  # no definition: JSON keeps its type
    await post_form(ui, f"/ui/entities/{entity_id}/descriptors",
                    {"key": "langs", "value": ["en", "de"]})
    await post_form(ui, f"/ui/entities/{entity_id}/descriptors", {"key": "alive"})
    made = {d["key"]: d for d in await listed(client, entity_id)}
    assert made["address"]["value"] == "1 Main St\nLondon"
    assert made["address"]["valid_from"] == "2015-01-01" and made["address"]["valid_to"] is None
    assert made["address"]["source"] == "deed" and made["address"]["notes"] is None
    assert made["height"]["value"] == 170
    assert made["born_year"]["value"] == 1815
    assert made["langs"]["value"] == ["en", "de"]
    assert made["alive"]["value"] is False
    html = await page(ui, tab(entity_id, notice="added"))
    assert '<p class="flash" role="status" id="descriptors-notice">Value added.</p>' in html


async def test_bad_input_is_shown_inline_and_kept(ui, client, entity_id):
    await define(client, "phone", "string", regex=r"^\+?[0-9 ]+$")
    await define(client, "height", "int")
    r = await post_add(ui, entity_id, "address", "A", valid_from="2015-13-01",
                       notes="keep me")
    assert r.status_code == 422
    assert "<html" in r.text  # without JavaScript: a whole page
    assert field_error(r.text, "valid_from") == "Enter a date as YYYY-MM-DD."
    assert tags(r.text, "textarea", id="descriptor-notes")
    assert "keep me" in r.text
    r = await post_add(ui, entity_id, "address", "A", valid_from="2015-01-01",
                       valid_to="2014-12-31")
    assert r.status_code == 422 and "is after valid_to" in field_error(r.text, "valid_to")
    r = await post_add(ui, entity_id, "phone", "call me")
    assert r.status_code == 422 and "regex" in field_error(r.text, "value")
    assert value_input(r.text)[1]["value"] == "call me"
    r = await post_add(ui, entity_id, "height", "tall")
    assert r.status_code == 422 and field_error(r.text, "value") == "Enter a whole number."
    r = await post_add(ui, entity_id, "address", "   ")
    assert r.status_code == 422 and field_error(r.text, "value") == "Enter a value."
    # htmx gets the tab alone, to swap in place
    r = await post_form(ui, f"/ui/entities/{entity_id}/descriptors",
                        {"key": "phone", "value": "x"}, headers=HTMX)
    assert r.status_code == 422 and "<html" not in r.text
    assert r.text.lstrip().startswith('<div class="descriptors" id="descriptors">')
    assert field_error(r.text, "value")
    assert await listed(client, entity_id) == []


async def test_the_same_fact_twice_is_refused_inline(ui, client, entity_id):
    await add(client, entity_id, "phone", "+1 555")
    r = await post_add(ui, entity_id, "phone", "+1 555")
    assert r.status_code == 409
    assert "already has this 'phone' value" in field_error(r.text, "value")
    assert len(await listed(client, entity_id)) == 1


async def test_posts_need_the_csrf_token(ui, client, entity_id):
    d = await add(client, entity_id, "phone", "+1")
    for url in (f"/ui/entities/{entity_id}/descriptors",
                f"/ui/descriptors/{d['descriptor_id']}/edit",
                f"/ui/descriptors/{d['descriptor_id']}/delete"):
        r = await ui.client.post(url, data={"key": "phone", "value": "+2"})
        assert r.status_code == 403, url
    assert [x["value"] for x in await listed(client, entity_id)] == ["+1"]


# -- editing and deleting ----------------------------------------------------------------

async def test_edit_form_shows_the_value_and_saves_changes(ui, client, entity_id):
    d = await add(client, entity_id, "born_year", 1815, valid_from="1815-12-10",
                  notes="baptism")
    html = await page(ui, tab(entity_id, edit=d["descriptor_id"]))
    assert value_input(html)[0] == "textarea"
    assert re.search(r'<textarea id="descriptor-value"[^>]*>1815</textarea>', html)
    assert tags(html, "input", id="descriptor-valid_from")[0].attrs["value"] == "1815-12-10"
    action = f"/ui/descriptors/{d['descriptor_id']}/edit"
    assert tags(html, "form", action=action)
    # saved unchanged: the number stays a number
    r = await post_form(ui, action, {"value": "1815", "valid_from": "1815-12-10",
                                     "notes": "baptism"})
    assert r.status_code == 303 and r.headers["location"] == tab(entity_id, notice="saved")
    assert (await client.get(f"/v1/descriptors/{d['descriptor_id']}")).json() == d
    r = await post_form(ui, action, {"value": "1815", "valid_from": "1815-12-10",
                                     "valid_to": "1852-11-27", "notes": ""})
    assert r.status_code == 303
    got = (await client.get(f"/v1/descriptors/{d['descriptor_id']}")).json()
    assert got["valid_to"] == "1852-11-27" and got["notes"] is None and got["value"] == 1815


async def test_edit_errors_are_inline(ui, client, entity_id):
    d = await add(client, entity_id, "address", "A", valid_from="2010-01-01")
    r = await post_form(ui, f"/ui/descriptors/{d['descriptor_id']}/edit",
                        {"value": "A", "valid_from": "2010-01-01", "valid_to": "2009-01-01"})
    assert r.status_code == 422 and "is after valid_to" in field_error(r.text, "valid_to")
    assert tags(r.text, "form", action=f"/ui/descriptors/{d['descriptor_id']}/edit")
    assert (await client.get(f"/v1/descriptors/{d['descriptor_id']}")).json() == d


async def test_editing_a_value_that_is_gone_says_so(ui, client, entity_id):
    d = await add(client, entity_id, "phone", "+1")
    await client.delete(f"/v1/descriptors/{d['descriptor_id']}")
    html = await page(ui, tab(entity_id, edit=d["descriptor_id"]))
    assert "That value was deleted" in html
    html = await page(ui, tab(entity_id, edit="not-an-id"))
    assert "That value was deleted" in html


async def test_delete_removes_the_value_from_the_tab(ui, client, entity_id):
    keep = await add(client, entity_id, "phone", "+1")
    drop = await add(client, entity_id, "phone", "+2", valid_to="1999-01-01")
    r = await post_form(ui, f"/ui/descriptors/{drop['descriptor_id']}/delete")
    assert r.status_code == 303 and r.headers["location"] == tab(entity_id, notice="deleted")
    html = await page(ui, tab(entity_id, notice="deleted"))
    assert "Value deleted." in html and "+2" not in html and shown(html, "current") == ["+1"]
    assert [x["descriptor_id"] for x in await listed(client, entity_id)] == [
        keep["descriptor_id"]]
    r = await post_form(ui, f"/ui/descriptors/{drop['descriptor_id']}/delete")
    assert r.status_code == 404 and "<html" in r.text


async def test_unknown_ids_are_404_pages(ui):
    for url in (f"/ui/entities/{UNKNOWN_ID}/descriptors", "/ui/entities/bad/descriptors",
                f"/ui/descriptors/{UNKNOWN_ID}/edit", "/ui/descriptors/bad/delete"):
        r = await post_form(ui, url, {"key": "k", "value": "v"})
        assert r.status_code == 404, url
        assert "text/html" in r.headers["content-type"]


async def test_a_deleted_entity_shows_its_values_read_only(ui, client, entity_id):
    await add(client, entity_id, "phone", "+1")
    await client.delete(f"/v1/entities/{entity_id}")
    html = await page(ui, tab(entity_id))
    assert shown(html, "current") == ["+1"]
    assert not tags(html, "section", id="descriptor-add")
    assert not [t for t in tags(html, "form") if "/ui/descriptors/" in t.attrs.get("action", "")]
    r = await post_add(ui, entity_id, "phone", "+2")
    assert r.status_code == 404

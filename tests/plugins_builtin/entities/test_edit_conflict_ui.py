"""The edit form over HTTP when someone else changed the entity after it was opened: a 409
that shows the current values and what the user had typed, and overwrites nothing."""

from __future__ import annotations

import re
from html import unescape
from typing import Any

import httpx
import pytest

from tests.plugins_builtin.entities.test_ui_pages import (
    create,
    field_error,
    input_value,
    page,
    post_form,
    textarea,
)
from tests.ui.browsing import SignedIn, tags

TYPED = {"display_name": "Ada (mine)", "aliases": "Mine", "tags": "mine, typed",
         "fields": "note: typed by me\r\nborn: 1816"}


def edit_url(entity: dict[str, Any]) -> str:
    return f"/ui/entities/{entity['entity_id']}/edit"


async def api_entity(client: httpx.AsyncClient, entity: dict[str, Any]) -> dict[str, Any]:
    r = await client.get(f"/v1/entities/{entity['entity_id']}")
    assert r.status_code == 200, r.text
    return r.json()


async def updates(client: httpx.AsyncClient) -> int:
    r = await client.get("/v1/events", params={"type": "entity.updated"})
    assert r.status_code == 200, r.text
    return len(r.json()["items"])


def conflict_alert(html: str) -> str:
    """The ``#edit-conflict`` alert's HTML (fails when there is none)."""
    (alert,) = tags(html, "div", id="edit-conflict")
    assert alert.attrs["role"] == "alert"
    return html.split('id="edit-conflict"', 1)[1].split("</details>", 1)[0]


FIELD_OF_LABEL = {"Name": "display_name", "Aliases": "aliases", "Tags": "tags",
                  "Fields": "fields"}


def typed_values(html: str) -> dict[str, str]:
    """What the conflict's <details> lists as typed: {field: value} (shown by label)."""
    details = conflict_alert(html).split("<details>", 1)[1]
    pairs = re.findall(r"<dt>([^<]*)</dt><dd><pre>(.*?)</pre></dd>", details, re.S)
    return {FIELD_OF_LABEL[unescape(k)]: unescape(v) for k, v in pairs}


@pytest.fixture
async def ada(client: httpx.AsyncClient) -> dict[str, Any]:
    return await create(client, "Ada", aliases=["Countess"], tags=["math"],
                        fields={"born": 1815, "city": "London"},
                        plugin_data={"trainer": {"steps": 1}})


async def open_form(ui: SignedIn, entity: dict[str, Any]) -> str:
    """Open the edit form; returns the version it was opened at."""
    html = await page(ui, edit_url(entity))
    version = input_value(html, "version")
    assert version == str(entity["version"])
    assert not tags(html, "div", id="edit-conflict")
    return version


async def someone_else_edits(client: httpx.AsyncClient, entity: dict[str, Any]
                             ) -> dict[str, Any]:
    r = await client.patch(f"/v1/entities/{entity['entity_id']}", json={
        "display_name": "Ada King", "tags": ["poet"], "fields": {"city": "Paris"}})
    assert r.status_code == 200, r.text
    return r.json()


# -- the conflict ------------------------------------------------------------------------

async def test_saving_a_stale_form_is_409_and_overwrites_nothing(ui, client, ada):
    version = await open_form(ui, ada)
    theirs = await someone_else_edits(client, ada)
    before = await updates(client)

    r = await post_form(ui, edit_url(ada), {**TYPED, "version": version})
    assert r.status_code == 409
    assert "text/html" in r.headers["content-type"]
    assert await api_entity(client, ada) == theirs
    assert await updates(client) == before

    html = r.text
    assert "<html" in html and "<main" in html  # a whole page without htmx
    alert = unescape(conflict_alert(html))
    assert "changed since you opened the form" in alert
    assert "not saved" in alert
    # the form now holds the current values and the current version
    assert input_value(html, "display_name") == "Ada King"
    assert input_value(html, "aliases") == "Countess"
    assert input_value(html, "tags") == "poet"
    assert unescape(textarea(html, "fields")) == "born: 1815\ncity: Paris"
    assert input_value(html, "version") == str(theirs["version"])
    (form,) = tags(html, "form", action=edit_url(ada))
    assert form.attrs["method"] == "post"
    # what the user typed is there to copy from, field by field
    assert typed_values(html) == {"display_name": "Ada (mine)", "aliases": "Mine",
                                  "tags": "mine, typed",
                                  "fields": "note: typed by me\r\nborn: 1816"}


async def test_after_a_conflict_saving_again_lands(ui, client, ada):
    version = await open_form(ui, ada)
    await someone_else_edits(client, ada)
    conflict = await post_form(ui, edit_url(ada), {**TYPED, "version": version})
    assert conflict.status_code == 409
    fresh = input_value(conflict.text, "version")

    r = await post_form(ui, edit_url(ada), {
        "display_name": "Ada King-Lovelace", "aliases": "Countess", "tags": "poet, mine",
        "fields": "city: Paris\nnote: typed by me", "version": fresh})  # born removed
    assert (r.status_code, r.headers["location"]) == (
        303, f"/ui/entities/{ada['entity_id']}?notice=saved")
    saved = await api_entity(client, ada)
    assert saved["display_name"] == "Ada King-Lovelace"
    assert saved["tags"] == ["poet", "mine"]
    assert saved["fields"] == {"city": "Paris", "note": "typed by me"}
    assert saved["plugin_data"] == {"trainer": {"steps": 1}}
    assert saved["version"] == int(fresh) + 1


async def test_htmx_conflict_swaps_in_the_form_block(ui, client, ada):
    version = await open_form(ui, ada)
    await someone_else_edits(client, ada)
    r = await post_form(ui, edit_url(ada), {**TYPED, "version": version},
                        headers={"HX-Request": "true"})
    assert r.status_code == 409
    assert "hx-redirect" not in r.headers and "hx-retarget" not in r.headers
    html = r.text
    assert "<html" not in html and "<main" not in html and 'id="entity-form"' not in html
    assert "changed since you opened the form" in unescape(conflict_alert(html))
    assert input_value(html, "display_name") == "Ada King"
    assert typed_values(html)["display_name"] == "Ada (mine)"
    # the swapped-in form posts again with the new version, and that save lands
    data = {"display_name": "Ada K.", "version": input_value(html, "version")}
    saved = await post_form(ui, edit_url(ada), data, headers={"HX-Request": "true"})
    assert saved.status_code == 200
    assert saved.headers["hx-redirect"] == f"/ui/entities/{ada['entity_id']}?notice=saved"
    assert (await api_entity(client, ada))["display_name"] == "Ada K."


async def test_a_form_made_stale_by_my_own_earlier_save_is_a_conflict_too(ui, client, ada):
    """Back button, submit the old form again: the second save would undo nothing silently."""
    version = await open_form(ui, ada)
    first = await post_form(ui, edit_url(ada), {"display_name": "First", "version": version})
    assert first.status_code == 303
    again = await post_form(ui, edit_url(ada), {"display_name": "Second", "version": version})
    assert again.status_code == 409
    assert input_value(again.text, "display_name") == "First"
    assert (await api_entity(client, ada))["display_name"] == "First"


async def test_a_delete_or_restore_in_between_is_a_change_too(ui, client, ada):
    version = await open_form(ui, ada)
    url = f"/v1/entities/{ada['entity_id']}"
    assert (await client.delete(url)).status_code == 204
    assert (await client.post(url + "/restore")).status_code == 200
    r = await post_form(ui, edit_url(ada), {**TYPED, "version": version})
    assert r.status_code == 409
    assert (await api_entity(client, ada))["display_name"] == "Ada"


async def test_typed_values_in_the_conflict_are_escaped(ui, client, ada):
    version = await open_form(ui, ada)
    await someone_else_edits(client, ada)
    r = await post_form(ui, edit_url(ada), {"display_name": "<script>alert(1)</script>",
                                            "fields": "x: </pre><b>bold</b>",
                                            "version": version})
    assert r.status_code == 409
    assert "<script>alert" not in r.text and "<b>bold" not in r.text
    assert typed_values(r.text)["display_name"] == "<script>alert(1)</script>"
    assert typed_values(r.text)["fields"] == "x: </pre><b>bold</b>"


async def test_editing_an_entity_deleted_meanwhile_is_404_and_keeps_it_deleted(ui, client,
                                                                                 ada):
    version = await open_form(ui, ada)
    assert (await client.delete(f"/v1/entities/{ada['entity_id']}")).status_code == 204
    r = await post_form(ui, edit_url(ada), {**TYPED, "version": version})
    assert r.status_code == 404
    assert "Not found" in r.text
    gone = await client.get(f"/v1/entities/{ada['entity_id']}",
                            params={"include_deleted": "true"})
    assert gone.json()["deleted_at"] is not None
    assert gone.json()["display_name"] == "Ada"


async def test_a_form_with_errors_keeps_the_version_it_was_opened_at(ui, client, ada):
    """A 422 must not quietly move the form to the newer version: fixing the error and
    saving would then overwrite the other person's change."""
    version = await open_form(ui, ada)
    await someone_else_edits(client, ada)
    invalid = await post_form(ui, edit_url(ada), {**TYPED, "display_name": " ",
                                                  "version": version})
    assert invalid.status_code == 422
    assert field_error(invalid.text, "display_name") == "A name is required."
    assert input_value(invalid.text, "version") == version
    assert input_value(invalid.text, "tags") == "mine, typed"  # what was typed, kept

    r = await post_form(ui, edit_url(ada), {**TYPED, "version": input_value(invalid.text,
                                                                             "version")})
    assert r.status_code == 409
    assert (await api_entity(client, ada))["display_name"] == "Ada King"


# -- no conflict -------------------------------------------------------------------------

async def test_an_up_to_date_form_saves_and_bumps_the_version(ui, client, ada):
    version = await open_form(ui, ada)
    r = await post_form(ui, edit_url(ada), {**TYPED, "version": version})
    assert (r.status_code, r.headers["location"]) == (
        303, f"/ui/entities/{ada['entity_id']}?notice=saved")
    saved = await api_entity(client, ada)
    assert saved["display_name"] == "Ada (mine)"
    assert saved["fields"] == {"note": "typed by me", "born": 1816}
    assert saved["version"] == ada["version"] + 1
    # the next form carries the new version
    assert input_value(await page(ui, edit_url(ada)), "version") == str(saved["version"])


async def test_an_up_to_date_htmx_form_answers_hx_redirect(ui, client, ada):
    version = await open_form(ui, ada)
    r = await post_form(ui, edit_url(ada), {**TYPED, "version": version},
                        headers={"HX-Request": "true"})
    assert r.status_code == 200
    assert r.headers["hx-redirect"] == f"/ui/entities/{ada['entity_id']}?notice=saved"
    assert (await api_entity(client, ada))["display_name"] == "Ada (mine)"


async def test_saving_an_unchanged_up_to_date_form_keeps_the_version(ui, client, ada):
    html = await page(ui, edit_url(ada))
    data = {name: unescape(input_value(html, name))
            for name in ("display_name", "aliases", "tags", "version")}
    data["fields"] = unescape(textarea(html, "fields"))
    r = await post_form(ui, edit_url(ada), data)
    assert r.status_code == 303
    assert await api_entity(client, ada) == ada


@pytest.mark.parametrize("version", [None, "", "abc", "-1", "1.0", " 1", "9" * 30, "０", "²"])
async def test_a_form_without_a_usable_version_still_saves(ui, client, ada, version):
    """Forms from before versions existed (or mangled ones) save as they always did."""
    await someone_else_edits(client, ada)
    data = dict(TYPED) if version is None else {**TYPED, "version": version}
    r = await post_form(ui, edit_url(ada), data)
    assert r.status_code == 303, r.text[:500]
    saved = await api_entity(client, ada)
    assert saved["display_name"] == "Ada (mine)"
    assert saved["tags"] == ["mine", "typed"]

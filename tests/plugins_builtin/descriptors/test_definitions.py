"""Descriptor values checked by descriptor-scope field definitions (the entities plugin's,
defined through ``/v1/admin/field-defs``)."""

from __future__ import annotations

from tests.plugins_builtin.descriptors.conftest import add, define, listed
from tests.plugins_builtin.entities.test_api import error_of


def url(entity_id: str) -> str:
    return f"/v1/entities/{entity_id}/descriptors"


# -- the entities plugin's field definitions ---------------------------------------------

async def test_a_string_definition_with_a_regex_checks_values(client, entity_id):
    await define(client, "phone", "string", regex=r"^\+?[0-9 ]+$")
    assert (await add(client, entity_id, "phone", "+44 20 7946 0000"))["value"] == (
        "+44 20 7946 0000")
    r = await client.post(url(entity_id), json={"key": "phone", "value": "call me"})
    err = error_of(r, 422)
    assert err["code"] == "validation_error"
    assert err["details"][0]["path"] == "$.value"
    r = await client.post(url(entity_id), json={"key": "phone", "value": 44})
    assert error_of(r, 422)["details"][0]["path"] == "$.value"
    assert [d["value"] for d in await listed(client, entity_id)] == ["+44 20 7946 0000"]


async def test_an_int_definition_refuses_other_types(client, entity_id):
    await define(client, "height_cm", "int", min=30, max=300)
    assert (await add(client, entity_id, "height_cm", 170))["value"] == 170
    for bad in ("170", 1.5, 500, True):
        r = await client.post(url(entity_id), json={"key": "height_cm", "value": bad})
        assert error_of(r, 422)["details"][0]["path"] == "$.value", bad


async def test_a_date_definition_takes_dates_only(client, entity_id):
    await define(client, "born", "date")
    assert (await add(client, entity_id, "born", "1815-12-10"))["value"] == "1815-12-10"
    r = await client.post(url(entity_id), json={"key": "born", "value": "last winter"})
    assert error_of(r, 422)["details"][0]["path"] == "$.value"


async def test_keys_without_a_definition_take_any_value(client, entity_id):
    await define(client, "phone", "string", regex=r"^[0-9]+$")
    assert (await add(client, entity_id, "nickname", {"any": ["thing"]}))["value"] == {
        "any": ["thing"]}


async def test_a_patched_value_is_checked_again_but_an_old_one_is_not(client, entity_id):
    # recorded before the definition existed: its notes can still be edited
    d = await add(client, entity_id, "phone", "ask the office")
    await define(client, "phone", "string", regex=r"^\+?[0-9 ]+$")
    one = f"/v1/descriptors/{d['descriptor_id']}"
    r = await client.patch(one, json={"notes": "old habit"})
    assert r.status_code == 200, r.text
    err = error_of(await client.patch(one, json={"value": "still no number"}), 422)
    assert err["details"][0]["path"] == "$.value"
    r = await client.patch(one, json={"value": "+1 555"})
    assert r.status_code == 200 and r.json()["value"] == "+1 555"


# -- values come back in their typed form --------------------------------------------------

async def test_values_are_stored_as_their_definition_normalizes_them(client, entity_id):
    await define(client, "seen", "datetime")
    d = await add(client, entity_id, "seen", "1815-12-10T10:00:00+01:00")
    assert d["value"] == "1815-12-10T09:00:00Z"
    one = f"/v1/descriptors/{d['descriptor_id']}"
    r = await client.patch(one, json={"value": "1816-01-01T00:00:00Z"})
    assert r.json()["value"] == "1816-01-01T00:00:00Z"
    err = error_of(await client.post(url(entity_id), json={"key": "seen", "value": "soon"}),
                   422)
    assert err["details"][0] == {"path": "$.value", "rule": "type",
                                 "message": err["details"][0]["message"]}
    # a key without a descriptor-scope definition is taken as it comes
    assert (await add(client, entity_id, "motto", "Hic sunt"))["value"] == "Hic sunt"
    assert [x["value"] for x in await listed(client, entity_id)] == [
        "Hic sunt", "1816-01-01T00:00:00Z"]

"""``/v1/admin/field-defs`` and what definitions do to entity ``fields``: validation, typed
storage and ``field.<key>`` filters."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.plugins_builtin.entities.test_api import create, error_of, names


async def define(client: httpx.AsyncClient, key: str, field_type: str, **rules: Any) -> dict:
    r = await client.post("/v1/admin/field-defs",
                          json={"field_key": key, "field_type": field_type, **rules})
    assert r.status_code == 201, r.text
    return r.json()


async def test_a_definition_is_created_read_listed_changed_and_deleted(client):
    made = await define(client, "born", "date", label="Born", help="day of birth",
                        min="1800-01-01")
    assert made["field_key"] == "born" and made["scope"] == "entity"
    assert made["label"] == "Born" and made["min"] == "1800-01-01" and made["version"] == 1
    assert (await client.get("/v1/admin/field-defs/born")).json() == made
    listed = (await client.get("/v1/admin/field-defs")).json()["items"]
    assert [d["field_key"] for d in listed] == ["born"]

    r = await client.patch("/v1/admin/field-defs/born", json={"label": "Date of birth",
                                                              "min": None})
    assert r.status_code == 200, r.text
    assert r.json()["label"] == "Date of birth" and r.json()["min"] is None
    assert r.json()["version"] == 2

    assert (await client.delete("/v1/admin/field-defs/born")).status_code == 204
    error_of(await client.get("/v1/admin/field-defs/born"), 404)
    error_of(await client.delete("/v1/admin/field-defs/born"), 404)
    assert (await client.get("/v1/admin/field-defs")).json()["items"] == []
    gone = (await client.get("/v1/admin/field-defs?include_deleted=true")).json()["items"]
    assert gone[0]["deleted_at"] is not None

    # a deleted key can be defined again, even with another type
    again = await define(client, "born", "int")
    assert again["field_def_id"] != made["field_def_id"]


async def test_a_live_key_cannot_be_defined_twice(client):
    await define(client, "eyes", "string")
    err = error_of(await client.post("/v1/admin/field-defs", json={
        "field_key": "eyes", "field_type": "enum", "options": ["blue"]}), 409)
    assert err["code"] == "field_def_exists"


@pytest.mark.parametrize(("body", "rule"), [
    ({"field_type": "string", "regex": "(unclosed"}, "regex"),
    ({"field_type": "int", "regex": "^1$"}, "regex"),
    ({"field_type": "enum", "options": []}, "options"),
    ({"field_type": "multi_enum"}, "options"),
    ({"field_type": "enum", "options": ["a", "a"]}, "options"),
    ({"field_type": "string", "options": ["a"]}, "options"),
    ({"field_type": "int", "min": 10, "max": 1}, "min"),
    ({"field_type": "date", "min": "2020-01-01", "max": "1990-01-01"}, "min"),
    ({"field_type": "date", "min": "01/02/2020"}, "min"),
    ({"field_type": "int", "min": 1.5}, "min"),
    ({"field_type": "string", "max": -1}, "max"),
    ({"field_type": "bool", "max": 1}, "max"),
])
async def test_a_definition_that_makes_no_sense_is_a_422_naming_the_rule(client, body, rule):
    err = error_of(await client.post("/v1/admin/field-defs",
                                     json={"field_key": "k", **body}), 422)
    assert any(d["path"] == f"$.{rule}" for d in err["details"]), err
    assert rule in err["message"]
    assert (await client.get("/v1/admin/field-defs")).json()["items"] == []


@pytest.mark.parametrize("body", [
    {"field_key": "k", "field_type": "colour"},
    {"field_key": "1st", "field_type": "string"},
    {"field_key": "has space", "field_type": "string"},
    {"field_key": "k", "field_type": "string", "scope": "asset"},
    {"field_key": "k", "field_type": "string", "colour": "red"},
    {"field_type": "string"},
])
async def test_a_malformed_definition_is_a_422(client, body):
    error_of(await client.post("/v1/admin/field-defs", json=body), 422)


async def test_type_and_scope_cannot_change(client):
    await define(client, "height", "float")
    err = error_of(await client.patch("/v1/admin/field-defs/height",
                                      json={"field_type": "int"}), 422)
    assert err["details"][0]["path"] == "$.field_type"
    error_of(await client.patch("/v1/admin/field-defs/nope", json={"label": "x"}), 404)


@pytest.mark.parametrize(("field_type", "rules", "good", "stored", "bad"), [
    ("string", {"regex": "^[A-Z]{2}$"}, "NL", "NL", ["nl", 12, "N\nL"]),
    ("string", {"min": 2, "max": 3}, "abc", "abc", ["a", "abcd"]),
    ("text", {}, "line one\nline two", "line one\nline two", [3]),
    ("int", {"min": 0, "max": 10}, 7.0, 7, [11, -1, 2.5, "7", True]),
    ("float", {"min": 0.5}, 2, 2.0, [0.1, "2", False]),
    ("bool", {}, False, False, ["true", 0]),
    ("date", {"max": "2030-12-31"}, "1990-05-01", "1990-05-01",
     ["1990-5-1", "1990-02-30", "2031-01-01", 19900501]),
    ("datetime", {}, "2024-05-01T16:30:00+02:00", "2024-05-01T14:30:00Z",
     ["2024-05-01T16:30:00", "2024-05-01", "yesterday"]),
    ("url", {}, "https://example.org/x", "https://example.org/x", ["example.org", "http://"]),
    ("enum", {"options": ["blue", "green"]}, "green", "green", ["red", ["blue"]]),
    ("multi_enum", {"options": ["a", "b", "c"], "max": 2}, ["b", "a", "b"], ["b", "a"],
     [["a", "d"], "a", ["a", "b", "c"]]),
    ("json", {}, {"any": [1, None]}, {"any": [1, None]}, []),
])
async def test_entity_fields_are_checked_and_stored_typed(client, field_type, rules, good,
                                                          stored, bad):
    await define(client, "f", field_type, **rules)
    entity = await create(client, "Typed", fields={"f": good})
    assert entity["fields"]["f"] == stored
    assert type(entity["fields"]["f"]) is type(stored)
    for value in bad:
        err = error_of(await client.post("/v1/entities", json={
            "display_name": "Bad", "fields": {"f": value}}), 422)
        assert err["details"][0]["path"] == "$.fields.f", err
        r = await client.patch(f"/v1/entities/{entity['entity_id']}",
                               json={"fields": {"f": value}})
        error_of(r, 422)
    assert await names(client) == ["Typed"]  # nothing bad was stored


async def test_required_applies_to_new_entities_and_to_patches_that_touch_it(client):
    old = await create(client, "Before the rule")
    await define(client, "country", "string", required=True)
    err = error_of(await client.post("/v1/entities", json={"display_name": "New"}), 422)
    assert err["details"] == [{"path": "$.fields.country", "rule": "required",
                               "message": "country is required"}]
    # an older record stays editable...
    r = await client.patch(f"/v1/entities/{old['entity_id']}", json={"tags": ["x"]})
    assert r.status_code == 200, r.text
    # ...but may not remove the key once it has it
    await client.patch(f"/v1/entities/{old['entity_id']}", json={"fields": {"country": "NL"}})
    r = await client.patch(f"/v1/entities/{old['entity_id']}", json={"fields": {"country": None}})
    assert error_of(r, 422)["details"][0]["rule"] == "required"


async def test_undefined_keys_are_kept_as_they_are(client):
    await define(client, "age", "int")
    entity = await create(client, "Free", fields={"age": 3, "mood": "07", "n": "1e3"})
    assert entity["fields"] == {"age": 3, "mood": "07", "n": "1e3"}


async def test_an_old_value_that_breaks_a_new_definition_stays_and_stays_editable(client):
    entity = await create(client, "Legacy", fields={"age": "about forty", "city": "Oslo"})
    await define(client, "age", "int")
    r = await client.patch(f"/v1/entities/{entity['entity_id']}",
                           json={"fields": {"city": "Bergen"}})
    assert r.status_code == 200, r.text
    assert r.json()["fields"] == {"age": "about forty", "city": "Bergen"}
    # it cannot be found by the typed filter, and does not break it
    assert await names(client, **{"field.age.gte": 0}) == []


async def test_field_filters_equality_and_ranges(client):
    await define(client, "born", "date")
    await define(client, "height", "float")
    await define(client, "eyes", "enum", options=["blue", "green", "brown"])
    await define(client, "skills", "multi_enum", options=["sing", "dance", "act"])
    await define(client, "city", "string")
    await define(client, "active", "bool")
    await define(client, "seen", "datetime")
    people = {
        "Ann": {"born": "1980-03-01", "height": 1.62, "eyes": "blue", "skills": ["sing"],
                "city": "Paris", "active": True, "seen": "2024-01-01T10:00:00Z"},
        "Bob": {"born": "1990-07-15", "height": 1.80, "eyes": "green",
                "skills": ["dance", "act"], "city": "Berlin", "active": False,
                "seen": "2024-01-01T10:00:00.500Z"},
        "Cy": {"born": "2001-12-31", "height": 1.75, "eyes": "blue",
               "skills": ["sing", "act"], "city": "paris", "active": True,
               "seen": "2024-01-01T09:59:59+00:00"},
        "Dee": {},
    }
    for name, fields in people.items():
        await create(client, name, fields=fields)

    async def match(**params: Any) -> list[str]:
        return sorted(await names(client, **params))

    assert await match(**{"field.eyes": "blue"}) == ["Ann", "Cy"]
    assert await match(**{"field.city": "PARIS"}) == ["Ann", "Cy"]  # case-insensitive
    assert await match(**{"field.skills": "act"}) == ["Bob", "Cy"]
    assert await match(**{"field.active": "true"}) == ["Ann", "Cy"]
    assert await match(**{"field.born.gte": "1985-01-01"}) == ["Bob", "Cy"]
    assert await match(**{"field.born.gte": "1980-03-01", "field.born.lt": "1990-07-15"}) \
        == ["Ann"]
    assert await match(**{"field.height.gt": "1.7", "field.eyes": "blue"}) == ["Cy"]
    assert await match(**{"field.height.lte": "1.75"}) == ["Ann", "Cy"]
    # datetimes compare as moments, not as text ("...00.5Z" < "...00Z" as text)
    assert await match(**{"field.seen.gt": "2024-01-01T10:00:00Z"}) == ["Bob"]
    assert await match(**{"field.seen.lt": "2024-01-01T11:00:00+01:00"}) == ["Cy"]
    assert await match(**{"field.born": "1990-07-15"}) == ["Bob"]

    # a change of value moves the entity in the index; a delete takes it out
    page = (await client.get("/v1/entities", params={"field.eyes": "green"})).json()
    bob = page["items"][0]["entity_id"]
    await client.patch(f"/v1/entities/{bob}", json={"fields": {"eyes": "brown"}})
    assert await match(**{"field.eyes": "green"}) == []
    assert await match(**{"field.eyes": "brown"}) == ["Bob"]
    await client.patch(f"/v1/entities/{bob}", json={"fields": {"eyes": None}})
    assert await match(**{"field.eyes": "brown"}) == []


async def test_a_definition_indexes_values_stored_before_it(client):
    await create(client, "Early", fields={"rank": 3})
    await create(client, "Wrong type", fields={"rank": "three"})
    await define(client, "rank", "int")
    assert await names(client, **{"field.rank.gte": 1}) == ["Early"]
    # a deleted definition is no longer filterable
    await client.delete("/v1/admin/field-defs/rank")
    err = error_of(await client.get("/v1/entities", params={"field.rank": 3}), 422)
    assert err["details"][0]["path"] == "query.field.rank"


@pytest.mark.parametrize(("params", "path"), [
    ({"field.nope": "1"}, "query.field.nope"),
    ({"field.n.gte": "ten"}, "query.field.n.gte"),
    ({"field.n.between": "1"}, "query.field.n.between"),
    ({"field.name.gte": "a"}, "query.field.name.gte"),
    ({"field.e": "purple"}, "query.field.e"),
    ({"field.": "x"}, "query.field."),
])
async def test_a_bad_field_filter_is_a_422(client, params, path):
    await define(client, "n", "int")
    await define(client, "name", "string")
    await define(client, "e", "enum", options=["red"])
    err = error_of(await client.get("/v1/entities", params=params), 422)
    assert err["details"][0]["path"] == path


async def test_field_filters_page_with_cursors(client):
    await define(client, "n", "int")
    for i in range(7):
        await create(client, f"P{i}", fields={"n": i})
    seen, cursor = [], None
    while True:
        params: dict[str, Any] = {"field.n.gte": 2, "limit": 2, "sort_by": "display_name",
                                  "sort_order": "asc"}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get("/v1/entities", params=params)).json()
        seen += [e["display_name"] for e in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == ["P2", "P3", "P4", "P5", "P6"]
    total = (await client.get("/v1/entities", params={"field.n.lt": 3,
                                                      "include_total": "true"})).json()
    assert total["total"] == 3


async def test_definition_changes_are_events(client):
    await define(client, "x", "string")
    await client.patch("/v1/admin/field-defs/x", json={"required": True})
    await client.delete("/v1/admin/field-defs/x")
    events = (await client.get("/v1/events", params={"type": "field_def."})).json()["items"]
    assert [e["type"] for e in events][-3:] == ["field_def.created", "field_def.updated",
                                                "field_def.deleted"]

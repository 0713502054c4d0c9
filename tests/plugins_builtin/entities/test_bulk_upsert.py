"""External ids, ``POST /v1/entities/bulk-upsert``, the Unicode name sort and the kept
count."""

from __future__ import annotations

from typing import Any

import httpx

from tests.plugins_builtin.entities.test_api import create, error_of, names
from tests.plugins_builtin.entities.test_field_defs import define


async def upsert(client: httpx.AsyncClient, items: list[Any], **body: Any) -> list[dict]:
    r = await client.post("/v1/entities/bulk-upsert", json={"items": items, **body})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["index"] for x in results] == list(range(len(items)))
    return results


async def by_external_id(client: httpx.AsyncClient, ref: str, **params: Any) -> list[dict]:
    r = await client.get("/v1/entities", params={"external_id": ref, **params})
    assert r.status_code == 200, r.text
    return r.json()["items"]


# -- external ids ---------------------------------------------------------------------------
async def test_external_ids_are_unique_per_namespace_among_live_entities(client):
    a = await create(client, "A", external_ids={"stash": "1234", "tpdb": "x9"})
    assert a["external_ids"] == {"stash": "1234", "tpdb": "x9"}
    assert [e["entity_id"] for e in await by_external_id(client, "stash:1234")] == \
        [a["entity_id"]]
    assert await by_external_id(client, "stash:x9") == []

    err = error_of(await client.post("/v1/entities", json={
        "display_name": "B", "external_ids": {"stash": "1234"}}), 409)
    assert err["code"] == "external_id_taken"
    assert err["details"][0]["entity_id"] == a["entity_id"]
    b = await create(client, "B", external_ids={"other": "1234"})  # another namespace
    error_of(await client.patch(f"/v1/entities/{b['entity_id']}",
                                json={"external_ids": {"tpdb": "x9"}}), 409)

    # deleting A frees its ids; restoring it while B holds one is refused
    await client.delete(f"/v1/entities/{a['entity_id']}")
    assert await by_external_id(client, "stash:1234") == []
    r = await client.patch(f"/v1/entities/{b['entity_id']}",
                           json={"external_ids": {"stash": "1234", "other": None}})
    assert r.json()["external_ids"] == {"stash": "1234"}
    err = error_of(await client.post(f"/v1/entities/{a['entity_id']}/restore"), 409)
    assert err["code"] == "external_id_taken"
    assert (await client.get(f"/v1/entities/{a['entity_id']}")).status_code == 404
    await client.patch(f"/v1/entities/{b['entity_id']}", json={"external_ids": {"stash": None}})
    r = await client.post(f"/v1/entities/{a['entity_id']}/restore")
    assert r.status_code == 200, r.text
    assert [e["display_name"] for e in await by_external_id(client, "stash:1234")] == ["A"]


async def test_bad_external_ids_are_422(client):
    for bad in ({"Stash": "1"}, {"stash": ""}, {"": "1"}, {"stash": 1}):
        error_of(await client.post("/v1/entities", json={"display_name": "X",
                                                         "external_ids": bad}), 422)
    for ref in ("stash", ":1", "stash:"):
        err = error_of(await client.get("/v1/entities", params={"external_id": ref}), 422)
        assert err["details"][0]["path"] == "query.external_id"


# -- bulk upsert ----------------------------------------------------------------------------
async def test_bulk_upsert_creates_then_reports_unchanged_then_updates(client):
    await define(client, "born", "date")
    items = [{"display_name": f"Star {i}", "external_ids": {"stash": str(i)},
              "tags": ["imported"], "fields": {"born": f"199{i}-01-0{i + 1}"}}
             for i in range(5)]
    first = await upsert(client, items)
    assert [r["status"] for r in first] == ["created"] * 5
    assert all(r["error"] is None and r["entity_id"] for r in first)
    events_after_first = (await client.get("/v1/events")).json()["items"]

    again = await upsert(client, items)
    assert [r["status"] for r in again] == ["unchanged"] * 5
    assert [r["entity_id"] for r in again] == [r["entity_id"] for r in first]
    assert (await client.get("/v1/events")).json()["items"] == events_after_first

    items[2]["tags"] = ["imported", "fixed"]
    third = await upsert(client, items)
    assert [r["status"] for r in third] == ["unchanged", "unchanged", "updated", "unchanged",
                                            "unchanged"]
    got = (await client.get(f"/v1/entities/{first[2]['entity_id']}")).json()
    assert got["tags"] == ["imported", "fixed"] and got["version"] == 2
    assert sorted(await names(client, **{"field.born.gte": "1993-01-01"})) == \
        ["Star 3", "Star 4"]


async def test_merge_keeps_what_an_item_leaves_out_and_replace_empties_it(client):
    e = await create(client, "Ada", aliases=["A. L."], tags=["math"],
                     fields={"a": 1, "b": 2}, external_ids={"stash": "7"},
                     plugin_data={"p": {"x": 1}, "q": {"y": 2}})
    [merged] = await upsert(client, [{"external_ids": {"stash": "7"}, "fields": {"b": None,
                                                                                 "c": 3}}])
    assert merged == {"index": 0, "entity_id": e["entity_id"], "status": "updated",
                      "error": None}
    got = (await client.get(f"/v1/entities/{e['entity_id']}")).json()
    assert got["display_name"] == "Ada" and got["aliases"] == ["A. L."]
    assert got["fields"] == {"a": 1, "c": 3}

    [replaced] = await upsert(client, [{"entity_id": e["entity_id"], "display_name": "Ada L.",
                                        "plugin_data": {"p": {"z": 0}}}], mode="replace")
    assert replaced["status"] == "updated"
    got = (await client.get(f"/v1/entities/{e['entity_id']}")).json()
    assert got["display_name"] == "Ada L."
    assert got["aliases"] == [] and got["tags"] == [] and got["fields"] == {}
    assert got["external_ids"] == {}
    assert got["plugin_data"] == {"p": {"z": 0}, "q": {"y": 2}}


async def test_a_failing_item_is_reported_and_never_touches_the_others(client):
    await define(client, "age", "int", min=0)
    taken = await create(client, "Holder", external_ids={"stash": "1"})
    other = await create(client, "Other", external_ids={"tpdb": "2"})
    before = (await client.get("/v1/entities", params={"limit": 500})).json()["items"]
    items = [
        {"display_name": "Good one", "external_ids": {"csv": "a"}},
        {"display_name": "Bad age", "fields": {"age": -3}},
        {"external_ids": {"csv": "nobody"}},  # nothing matched, and no name to create
        {"entity_id": "f" * 64, "display_name": "Ghost"},
        {"display_name": 12},
        {"external_ids": {"stash": "1", "tpdb": "2"}, "display_name": "Both"},
        "not an object",
        {"display_name": "Steals", "external_ids": {"csv": "b"}, "tags": ["x"]},
        {"entity_id": other["entity_id"], "external_ids": {"stash": "1"}},
        {"display_name": "Good two", "colour": "red"},
    ]
    results = await upsert(client, items)
    statuses = [r["status"] for r in results]
    assert statuses == ["created", "error", "error", "error", "error", "error", "error",
                        "created", "error", "error"]
    codes = [r["error"]["code"] if r["error"] else None for r in results]
    assert codes[1] == "validation_error"
    assert results[1]["error"]["details"][0]["path"] == "$.fields.age"
    assert codes[3] == "entity_not_found" and codes[5] == "external_ids_disagree"
    assert codes[8] == "external_id_taken"
    assert results[4]["error"]["details"][0]["path"] == "$.display_name"
    assert all(r["error"]["message"] for r in results if r["status"] == "error")

    after = (await client.get("/v1/entities", params={"limit": 500})).json()["items"]
    assert sorted(e["display_name"] for e in after) == sorted(
        [e["display_name"] for e in before] + ["Good one", "Steals"])
    unchanged = {e["entity_id"]: e for e in after}
    assert unchanged[other["entity_id"]]["version"] == other["version"]
    assert unchanged[taken["entity_id"]]["version"] == taken["version"]


async def test_items_of_one_batch_see_each_other(client):
    results = await upsert(client, [
        {"display_name": "Twin", "external_ids": {"stash": "9"}},
        {"display_name": "Twin", "external_ids": {"stash": "9"}, "tags": ["second"]},
    ])
    assert [r["status"] for r in results] == ["created", "updated"]
    assert results[0]["entity_id"] == results[1]["entity_id"]


async def test_search_finds_what_a_batch_wrote_last(client):
    """A batch writes its full-text rows after its other rows: an entity created and then
    renamed in one batch, and one renamed that existed before, are found by their new
    names only."""
    before = await create(client, "Oldname Before")

    async def found(q: str) -> list[str]:
        r = await client.get("/v1/entities", params={"q": q})
        return sorted(e["display_name"] for e in r.json()["items"])

    assert await found("Oldname") == ["Oldname Before"]
    results = await upsert(client, [
        {"display_name": "Firstname Twin", "external_ids": {"stash": "9"}},
        {"entity_id": before["entity_id"], "display_name": "Newname Before"},
        {"display_name": "Secondname Twin", "external_ids": {"stash": "9"},
         "tags": ["tagged"]},
        {"display_name": "Broken", "fields": "not an object"},
    ])
    assert [r["status"] for r in results] == ["created", "updated", "updated", "error"]
    assert await found("Firstname") == []
    assert await found("Oldname") == []
    assert await found("Secondname") == ["Secondname Twin"]
    assert await found("tagged") == ["Secondname Twin"]
    assert await found("Newname") == ["Newname Before"]
    assert await found("Broken") == []
    assert await found("Twin") == ["Secondname Twin"]  # one row per entity


async def test_bulk_upsert_bounds(client):
    error_of(await client.post("/v1/entities/bulk-upsert", json={"items": []}), 422)
    error_of(await client.post("/v1/entities/bulk-upsert",
                               json={"items": [{}] * 10_001}), 422)
    error_of(await client.post("/v1/entities/bulk-upsert",
                               json={"items": [{"display_name": "x"}], "mode": "upsert"}),
             422)
    error_of(await client.post("/v1/entities/bulk-upsert", content=b"{nope"), 400)


async def test_ten_thousand_items_in_one_request(client):
    items = [{"display_name": f"N{i}", "external_ids": {"bench": str(i)}}
             for i in range(10_000)]
    results = await upsert(client, items)
    assert {r["status"] for r in results} == {"created"}
    total = (await client.get("/v1/entities", params={"include_total": "true"})).json()
    assert total["total"] == 10_000
    assert {r["status"] for r in await upsert(client, items)} == {"unchanged"}


# -- the name sort and the count -----------------------------------------------------------
async def test_display_name_sort_follows_unicode_and_pages_exactly(client):
    for name in ["zoë", "Émile", "eve", "Zack", "ÉMILE", "Ångström", "adam", "Eamon",
                 "émile"]:
        await create(client, name)
    expected = ["adam", "Ångström", "Eamon", "émile", "Émile", "ÉMILE", "eve", "Zack", "zoë"]
    got = await names(client, sort_by="display_name", sort_order="asc")
    assert [n.casefold() for n in got] == [n.casefold() for n in expected]
    paged, cursor = [], None
    while True:
        params: dict[str, Any] = {"sort_by": "display_name", "sort_order": "asc", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get("/v1/entities", params=params)).json()
        paged += [e["display_name"] for e in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert paged == got


async def test_the_total_without_a_filter_is_the_kept_count(client):
    ids = [(await create(client, f"E{i}"))["entity_id"] for i in range(5)]
    await client.delete(f"/v1/entities/{ids[0]}")
    await client.delete(f"/v1/entities/{ids[1]}")
    await client.post(f"/v1/entities/{ids[1]}/restore")

    async def total(**params: Any) -> int:
        r = await client.get("/v1/entities", params={"include_total": "true", **params})
        return r.json()["total"]

    assert await total() == 4
    assert await total(only_deleted="true") == 1
    assert await total(include_deleted="true") == 5
    assert await total(q="E0", include_deleted="true") == 1

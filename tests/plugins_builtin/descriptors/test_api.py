"""Descriptors over HTTP: every endpoint, history and validity filters, paging, soft delete,
the entity's own life, bad inputs and events."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import httpx

from tests.plugins_builtin.descriptors.conftest import (
    FUTURE_FROM,
    PAST,
    UNKNOWN_ID,
    add,
    listed,
    new_entity,
)
from tests.plugins_builtin.entities.test_api import error_of

HEX64 = re.compile(r"^[0-9a-f]{64}$")


def url(entity_id: str) -> str:
    return f"/v1/entities/{entity_id}/descriptors"


async def events(client: httpx.AsyncClient) -> list[dict]:
    r = await client.get("/v1/events", params={"type": "descriptor."})
    assert r.status_code == 200
    return r.json()["items"]


# -- create, get -------------------------------------------------------------------------

async def test_create_returns_the_descriptor_and_get_reads_it(client, entity_id):
    r = await client.post(url(entity_id), json={
        "key": "address", "value": {"street": "1 Main St", "city": "London"},
        "valid_from": "2010-01-01", "valid_to": "2014-12-31", "source": "  letter ",
        "notes": "moved out in winter"})
    assert r.status_code == 201, r.text
    d = r.json()
    assert HEX64.match(d["descriptor_id"])
    assert d["entity_id"] == entity_id and d["key"] == "address"
    assert d["value"] == {"city": "London", "street": "1 Main St"}
    assert (d["valid_from"], d["valid_to"]) == ("2010-01-01", "2014-12-31")
    assert d["source"] == "letter" and d["notes"] == "moved out in winter"
    assert d["created_at"] == d["updated_at"] and d["deleted_at"] is None
    got = await client.get(f"/v1/descriptors/{d['descriptor_id']}")
    assert got.status_code == 200 and got.json() == d


async def test_any_json_value_and_open_validity(client, entity_id):
    values = ["text", 42, 1.5, True, None, [1, "a"], {"nested": {"x": [None]}}]
    made = [await add(client, entity_id, f"k{i}", v) for i, v in enumerate(values)]
    assert [d["value"] for d in made] == values
    assert all(d["valid_from"] is None and d["valid_to"] is None for d in made)
    assert all(d["source"] is None and d["notes"] is None for d in made)
    assert [d["value"] for d in await listed(client, entity_id)] == values


async def test_blank_source_and_notes_are_none(client, entity_id):
    d = await add(client, entity_id, "phone", "+44 1", source="   ", notes="")
    assert d["source"] is None and d["notes"] is None


async def test_one_day_fact_is_allowed(client, entity_id):
    d = await add(client, entity_id, "event", "wedding", valid_from="2001-05-05",
                  valid_to="2001-05-05")
    assert d["valid_from"] == d["valid_to"] == "2001-05-05"


async def test_identical_live_fact_is_409_but_other_days_or_values_are_not(client, entity_id):
    first = await add(client, entity_id, "phone", "+44 1", valid_from="2001-01-01")
    r = await client.post(url(entity_id), json={"key": "phone", "value": "+44 1",
                                                 "valid_from": "2001-01-01"})
    err = error_of(r, 409)
    assert err["code"] == "descriptor_exists"
    assert err["details"] == [{"descriptor_id": first["descriptor_id"]}]
    await add(client, entity_id, "phone", "+44 1", valid_from="2002-01-01")
    await add(client, entity_id, "phone", "+44 2", valid_from="2001-01-01")
    # object keys in another order are the same value
    await add(client, entity_id, "address", {"a": 1, "b": 2})
    r = await client.post(url(entity_id), json={"key": "address", "value": {"b": 2, "a": 1}})
    assert error_of(r, 409)["code"] == "descriptor_exists"
    assert len(await listed(client, entity_id)) == 4


# -- history and validity filters --------------------------------------------------------

async def history(client: httpx.AsyncClient, entity_id: str) -> dict[str, dict]:
    """address: A 2010..2014, B 2015.. (open), C from 2990 (upcoming); phone: no dates."""
    return {
        "a": await add(client, entity_id, "address", "A", valid_from="2010-01-01",
                       valid_to="2014-12-31"),
        "c": await add(client, entity_id, "address", "C", valid_from=FUTURE_FROM),
        "b": await add(client, entity_id, "address", "B", valid_from="2015-01-01"),
        "phone": await add(client, entity_id, "phone", "+44 20 7946 0000"),
        "old": await add(client, entity_id, "address", "Old", valid_to=PAST[1]),
    }


async def test_list_orders_by_key_then_newest_valid_from_first(client, entity_id):
    await history(client, entity_id)
    items = await listed(client, entity_id)
    assert [(d["key"], d["value"]) for d in items] == [
        ("address", "C"), ("address", "B"), ("address", "A"), ("address", "Old"),
        ("phone", "+44 20 7946 0000")]


async def test_key_filter(client, entity_id):
    await history(client, entity_id)
    assert [d["value"] for d in await listed(client, entity_id, key="address")] == [
        "C", "B", "A", "Old"]
    assert [d["key"] for d in await listed(client, entity_id, key="phone")] == ["phone"]
    assert await listed(client, entity_id, key="email") == []


async def test_current_keeps_what_is_valid_today(client, entity_id):
    await history(client, entity_id)
    current = await listed(client, entity_id, current="true")
    assert [(d["key"], d["value"]) for d in current] == [
        ("address", "B"), ("phone", "+44 20 7946 0000")]
    assert [d["value"] for d in await listed(client, entity_id, current="true",
                                             key="address")] == ["B"]


async def test_current_includes_a_fact_ending_or_starting_today(client, entity_id):
    today = datetime.now(UTC).date()
    # yesterday..today and today..tomorrow both hold today (bounds are inclusive), so the
    # test holds even when it runs across midnight (the window is two days wide)
    ends = await add(client, entity_id, "status", "ending",
                     valid_from=(today - timedelta(days=1)).isoformat(),
                     valid_to=(today + timedelta(days=1)).isoformat())
    current = await listed(client, entity_id, current="true")
    assert [d["descriptor_id"] for d in current] == [ends["descriptor_id"]]


async def test_at_a_day_with_inclusive_bounds(client, entity_id):
    await history(client, entity_id)

    async def at(day: str) -> list[str]:
        return [d["value"] for d in await listed(client, entity_id, at=day, key="address")]

    assert await at("2009-12-31") == []
    assert await at("2010-01-01") == ["A"]  # first day included
    assert await at("2014-12-31") == ["A"]  # last day included
    assert await at("2015-01-01") == ["B"]
    assert await at("1999-12-31") == ["Old"]
    assert await at("2000-01-01") == []
    assert await at("2989-12-31") == ["B"]
    assert await at(FUTURE_FROM) == ["C", "B"]
    # a fact without dates holds on every day
    assert [d["key"] for d in await listed(client, entity_id, at="1000-01-01")] == [
        "address", "phone"]


async def test_current_and_at_together_are_refused(client, entity_id):
    r = await client.get(url(entity_id), params={"current": "true", "at": "2010-01-01"})
    assert error_of(r, 422)["details"][0]["path"] == "query.at"


# -- paging ------------------------------------------------------------------------------

async def test_keyset_pages_visit_every_descriptor_once_in_order(client, entity_id):
    for year in range(2000, 2012):
        await add(client, entity_id, "address", f"A{year}", valid_from=f"{year}-01-01")
        await add(client, entity_id, "alias", f"same-day {year}", valid_from="2000-01-01")
    await add(client, entity_id, "alias", "no date")
    everything = await listed(client, entity_id, limit=500)
    assert len(everything) == 25
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 4} | ({"cursor": cursor} if cursor else {})
        r = await client.get(url(entity_id), params=params)
        assert r.status_code == 200, r.text
        body = r.json()
        assert len(body["items"]) <= 4
        seen += body["items"]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 7
    assert seen == everything
    # same valid_from: newest created first; no date: last
    aliases = [d["value"] for d in everything if d["key"] == "alias"]
    assert aliases == [f"same-day {y}" for y in range(2011, 1999, -1)] + ["no date"]


async def test_limit_defaults_to_50_and_is_bounded(client, entity_id):
    for i in range(51):
        await add(client, entity_id, "n", i)
    r = await client.get(url(entity_id))
    assert len(r.json()["items"]) == 50 and r.json()["next_cursor"]
    for bad in ("0", "501", "x"):
        err = error_of(await client.get(url(entity_id), params={"limit": bad}), 422)
        assert err["details"][0]["path"] == "query.limit"


async def test_offset_still_works(client, entity_id):
    for i in range(5):
        await add(client, entity_id, "n", i)
    all_values = [d["value"] for d in await listed(client, entity_id)]
    assert [d["value"] for d in await listed(client, entity_id, offset=3)] == all_values[3:]


async def test_garbage_cursor_is_400_invalid_cursor(client, entity_id):
    for bad in ("garbage", "W10", "WyJhIiwgMSwgMl0", "!!!"):
        r = await client.get(url(entity_id), params={"cursor": bad})
        assert error_of(r, 400)["code"] == "invalid_cursor", bad


# -- patch -------------------------------------------------------------------------------

async def test_patch_changes_only_what_is_sent(client, entity_id):
    d = await add(client, entity_id, "address", "A", valid_from="2010-01-01", source="deed")
    r = await client.patch(f"/v1/descriptors/{d['descriptor_id']}",
                           json={"valid_to": "2014-12-31", "notes": "sold"})
    assert r.status_code == 200, r.text
    patched = r.json()
    assert patched["valid_to"] == "2014-12-31" and patched["notes"] == "sold"
    assert patched["value"] == "A" and patched["source"] == "deed"
    assert patched["valid_from"] == "2010-01-01" and patched["key"] == "address"
    assert patched["updated_at"] > d["updated_at"]
    assert patched["created_at"] == d["created_at"]
    assert (await client.get(f"/v1/descriptors/{d['descriptor_id']}")).json() == patched


async def test_patch_null_clears_and_value_can_change_type(client, entity_id):
    d = await add(client, entity_id, "n", 1, valid_from="2010-01-01", source="x")
    r = await client.patch(f"/v1/descriptors/{d['descriptor_id']}",
                           json={"valid_from": None, "source": None, "value": True})
    assert r.status_code == 200, r.text
    assert r.json()["valid_from"] is None and r.json()["source"] is None
    assert r.json()["value"] is True  # 1 == True in Python: still a change


async def test_patch_with_nothing_new_changes_nothing(client, entity_id):
    d = await add(client, entity_id, "n", 1, notes="same")
    before = await events(client)
    r = await client.patch(f"/v1/descriptors/{d['descriptor_id']}",
                           json={"value": 1, "notes": "same", "key": "n"})
    assert r.status_code == 200 and r.json() == d
    assert await events(client) == before


async def test_patch_cannot_change_the_key(client, entity_id):
    d = await add(client, entity_id, "phone", "+1")
    err = error_of(await client.patch(f"/v1/descriptors/{d['descriptor_id']}",
                                      json={"key": "email"}), 422)
    assert err["details"][0]["path"] == "$.key"
    assert "cannot change" in err["message"]
    assert (await client.get(f"/v1/descriptors/{d['descriptor_id']}")).json() == d


async def test_patch_checks_the_merged_days(client, entity_id):
    d = await add(client, entity_id, "address", "A", valid_from="2010-01-01",
                  valid_to="2014-12-31")
    one = f"/v1/descriptors/{d['descriptor_id']}"
    err = error_of(await client.patch(one, json={"valid_from": "2015-01-01"}), 422)
    assert err["details"][0]["path"] == "$.valid_from"
    err = error_of(await client.patch(one, json={"valid_to": "2009-12-31"}), 422)
    assert err["details"][0]["path"] == "$.valid_to"
    # moving both together is fine
    r = await client.patch(one, json={"valid_from": "2020-01-01", "valid_to": "2021-01-01"})
    assert r.status_code == 200, r.text


async def test_patch_into_a_duplicate_is_409(client, entity_id):
    await add(client, entity_id, "phone", "+1")
    d = await add(client, entity_id, "phone", "+2")
    r = await client.patch(f"/v1/descriptors/{d['descriptor_id']}", json={"value": "+1"})
    assert error_of(r, 409)["code"] == "descriptor_exists"


# -- delete ------------------------------------------------------------------------------

async def test_soft_delete_hides_then_404s_and_the_same_fact_can_be_recorded_again(
        client, entity_id):
    d = await add(client, entity_id, "phone", "+1", valid_from="2001-01-01")
    one = f"/v1/descriptors/{d['descriptor_id']}"
    r = await client.delete(one)
    assert r.status_code == 204 and r.content == b""
    for method in ("GET", "PATCH", "DELETE"):
        r = await client.request(method, one, json={"notes": "x"} if method == "PATCH"
                                 else None)
        assert error_of(r, 404)["code"] == "descriptor_not_found", method
    assert await listed(client, entity_id) == []
    deleted = await listed(client, entity_id, include_deleted="true")
    assert [x["descriptor_id"] for x in deleted] == [d["descriptor_id"]]
    assert deleted[0]["deleted_at"] is not None
    got = await client.get(one, params={"include_deleted": "true"})
    assert got.status_code == 200 and got.json()["deleted_at"] == deleted[0]["deleted_at"]
    again = await add(client, entity_id, "phone", "+1", valid_from="2001-01-01")
    assert again["descriptor_id"] != d["descriptor_id"]
    assert [x["descriptor_id"] for x in await listed(client, entity_id)] == [
        again["descriptor_id"]]


# -- the entity --------------------------------------------------------------------------

async def test_a_deleted_entity_has_no_descriptors_until_restored(client, entity_id):
    d = await add(client, entity_id, "phone", "+1")
    one = f"/v1/descriptors/{d['descriptor_id']}"
    assert (await client.delete(f"/v1/entities/{entity_id}")).status_code == 204
    err = error_of(await client.get(url(entity_id)), 404)
    assert err["code"] == "entity_not_found"
    r = await client.post(url(entity_id), json={"key": "phone", "value": "+2"})
    assert error_of(r, 404)["code"] == "entity_not_found"
    for method in ("GET", "PATCH", "DELETE"):
        r = await client.request(method, one, json={"notes": "x"} if method == "PATCH"
                                 else None)
        assert error_of(r, 404)["code"] == "descriptor_not_found", method
    assert (await client.post(f"/v1/entities/{entity_id}/restore")).status_code == 200
    assert (await client.get(one)).json() == d
    assert [x["value"] for x in await listed(client, entity_id)] == ["+1"]


async def test_descriptors_belong_to_their_entity(client, entity_id):
    other = await new_entity(client, "Grace Hopper")
    await add(client, entity_id, "phone", "+1")
    await add(client, other, "phone", "+1")  # the same fact about someone else
    assert [d["entity_id"] for d in await listed(client, other)] == [other]


async def test_unknown_and_malformed_ids_are_404(client):
    for bad in (UNKNOWN_ID, "abc", "A" * 64, "0" * 65, "g" * 64):
        err = error_of(await client.get(url(bad)), 404)
        assert err["code"] == "entity_not_found", bad
        r = await client.post(url(bad), json={"key": "k", "value": 1})
        assert error_of(r, 404)["code"] == "entity_not_found", bad
        for method in ("GET", "PATCH", "DELETE"):
            r = await client.request(method, f"/v1/descriptors/{bad}",
                                     json={"notes": "x"} if method == "PATCH" else None)
            assert error_of(r, 404)["code"] == "descriptor_not_found", (method, bad)


# -- bad input ---------------------------------------------------------------------------

async def test_bad_bodies_are_422_naming_the_path_and_record_nothing(client, entity_id):
    cases = [
        ({"value": 1}, "$"),  # no key
        ({"key": "k"}, "$"),  # no value
        ({"key": "", "value": 1}, "$.key"),
        ({"key": "1abc", "value": 1}, "$.key"),
        ({"key": "has space", "value": 1}, "$.key"),
        ({"key": "a-b", "value": 1}, "$.key"),
        ({"key": "k" * 65, "value": 1}, "$.key"),
        ({"key": 5, "value": 1}, "$.key"),
        ({"key": "k", "value": 1, "valid_from": "2010-13-01"}, "$.valid_from"),
        ({"key": "k", "value": 1, "valid_from": "2010-02-30"}, "$.valid_from"),
        ({"key": "k", "value": 1, "valid_to": "yesterday"}, "$.valid_to"),
        ({"key": "k", "value": 1, "valid_to": "2010-01-01T00:00:00Z"}, "$.valid_to"),
        ({"key": "k", "value": 1, "valid_to": 20100101}, "$.valid_to"),
        ({"key": "k", "value": 1, "valid_from": "2015-01-01", "valid_to": "2014-12-31"},
         "$.valid_to"),
        ({"key": "k", "value": 1, "source": 5}, "$.source"),
        ({"key": "k", "value": 1, "notes": "x" * 10_001}, "$.notes"),
        ({"key": "k", "value": "x" * 70_000}, "$.value"),
    ]
    for body, path in cases:
        err = error_of(await client.post(url(entity_id), json=body), 422)
        assert err["code"] == "validation_error", body
        assert err["details"][0]["path"] == path, body
    err = error_of(await client.post(url(entity_id), json={"key": "k", "value": 1,
                                                           "vaild_to": "2010-01-01"}), 422)
    assert "vaild_to" in err["message"]
    assert await listed(client, entity_id, include_deleted="true") == []
    assert await events(client) == []


async def test_a_longest_key_is_fine(client, entity_id):
    for key in ("_", "A", "k" * 64, "Phone_2"):
        assert (await add(client, entity_id, key, 1))["key"] == key


async def test_bad_patches_are_422(client, entity_id):
    d = await add(client, entity_id, "k", 1)
    one = f"/v1/descriptors/{d['descriptor_id']}"
    for body, path in [({"valid_from": "2010-1-1"}, "$.valid_from"),
                       ({"valid_to": 5}, "$.valid_to"), ({"notes": ["x"]}, "$.notes")]:
        assert error_of(await client.patch(one, json=body), 422)["details"][0]["path"] == path
    err = error_of(await client.patch(one, json={"entity_id": UNKNOWN_ID}), 422)
    assert "entity_id" in err["message"]
    assert (await client.get(one)).json() == d


async def test_malformed_json_is_400(client, entity_id):
    r = await client.post(url(entity_id), content=b'{"key": "k",',
                          headers={"content-type": "application/json"})
    assert error_of(r, 400)["code"] == "invalid_json"


async def test_bad_query_parameters_are_422(client, entity_id):
    for params, path in [({"at": "2010-02-30"}, "query.at"), ({"at": "today"}, "query.at"),
                         ({"at": "2010-01-01T00:00:00Z"}, "query.at"),
                         ({"current": "maybe"}, "query.current"),
                         ({"key": "not a key"}, "query.key"),
                         ({"include_deleted": "x"}, "query.include_deleted"),
                         ({"offset": "-1"}, "query.offset")]:
        err = error_of(await client.get(url(entity_id), params=params), 422)
        assert err["details"][0]["path"] == path, params
    r = await client.get(f"/v1/descriptors/{UNKNOWN_ID}", params={"include_deleted": "x"})
    assert error_of(r, 422)["details"][0]["path"] == "query.include_deleted"


# -- events, auth, OpenAPI ---------------------------------------------------------------

async def test_every_change_records_one_event_with_the_correlation_id(client, entity_id):
    def cid(value: str) -> dict[str, str]:
        return {"X-Correlation-ID": value}

    r = await client.post(url(entity_id), json={"key": "phone", "value": "+1"},
                          headers=cid("c-create"))
    d = r.json()
    one = f"/v1/descriptors/{d['descriptor_id']}"
    await client.patch(one, json={"value": "+2", "notes": "new"}, headers=cid("c-patch"))
    await client.delete(one, headers=cid("c-delete"))
    got = await events(client)
    assert [(e["type"], e["correlation_id"]) for e in got] == [
        ("descriptor.created", "c-create"), ("descriptor.updated", "c-patch"),
        ("descriptor.deleted", "c-delete")]
    expected = {"descriptor_id": d["descriptor_id"], "entity_id": entity_id, "key": "phone"}
    assert got[0]["data"] == expected and got[2]["data"] == expected
    assert got[1]["data"] == expected | {"changed": ["notes", "value"]}


async def test_failed_requests_record_no_event(client, entity_id):
    d = await add(client, entity_id, "phone", "+1")
    before = await events(client)
    one = f"/v1/descriptors/{d['descriptor_id']}"
    await client.post(url(entity_id), json={"key": "phone", "value": "+1"})  # 409
    await client.post(url(entity_id), json={"key": "bad key", "value": 1})
    await client.patch(one, json={"valid_from": "2999-01-01", "valid_to": "2000-01-01"})
    await client.delete(f"/v1/descriptors/{UNKNOWN_ID}")
    assert await events(client) == before


async def test_every_route_needs_the_token(client, anon, entity_id):
    d = await add(client, entity_id, "phone", "+1")
    one = f"/v1/descriptors/{d['descriptor_id']}"
    for method, path in [("GET", url(entity_id)), ("POST", url(entity_id)), ("GET", one),
                         ("PATCH", one), ("DELETE", one)]:
        body = {"key": "x", "value": 1} if method == "POST" else (
            {"notes": "x"} if method == "PATCH" else None)
        r = await anon.request(method, path, json=body)
        assert error_of(r, 401)["code"] == "unauthorized", (method, path)
    assert (await client.get(one)).json() == d


async def test_scopes_and_routes_are_declared(client):
    doc = (await client.get("/openapi.json")).json()
    paths = doc["paths"]
    assert set(paths["/v1/entities/{entity_id}/descriptors"]) >= {"get", "post"}
    assert set(paths["/v1/descriptors/{descriptor_id}"]) >= {"get", "patch", "delete"}
    info = (await client.get("/v1/system/info")).json()
    for scope in ("descriptors:read", "descriptors:write"):
        assert info["scopes"][scope]["plugin"] == "descriptors"

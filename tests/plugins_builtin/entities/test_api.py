"""``/v1/entities`` over HTTP: every endpoint, its bad inputs, search, paging and events."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

HEX64 = re.compile(r"^[0-9a-f]{64}$")
RFC3339_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")
UNKNOWN_ID = "0" * 64


async def create(client: httpx.AsyncClient, name: str = "Ada Lovelace", **body: Any) -> dict:
    r = await client.post("/v1/entities", json={"display_name": name, **body})
    assert r.status_code == 201, r.text
    return r.json()


async def names(client: httpx.AsyncClient, **params: Any) -> list[str]:
    r = await client.get("/v1/entities", params=params)
    assert r.status_code == 200, r.text
    return [e["display_name"] for e in r.json()["items"]]


def error_of(r: httpx.Response, status: int) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["message"]
    return body["error"]


def utc(stamp: str) -> datetime:
    assert RFC3339_UTC.match(stamp), stamp
    return datetime.fromisoformat(stamp)


# -- create ------------------------------------------------------------------------------

async def test_create_returns_the_entity_with_an_id_and_utc_timestamps(client):
    before = datetime.now(UTC)
    r = await client.post("/v1/entities", json={
        "display_name": "  Ada Lovelace ", "fields": {"born": 1815, "city": "London"},
        "plugin_data": {"lora.trainer": {"steps": 2000}}})
    assert r.status_code == 201
    entity = r.json()
    assert HEX64.match(entity["entity_id"])
    assert entity["display_name"] == "Ada Lovelace"
    assert entity["fields"] == {"born": 1815, "city": "London"}
    assert entity["plugin_data"] == {"lora.trainer": {"steps": 2000}}
    assert entity["aliases"] == [] and entity["tags"] == []
    assert entity["deleted_at"] is None and entity["primary_thumbnail_asset_id"] is None
    created = utc(entity["created_at"])
    assert created == utc(entity["updated_at"])
    assert before <= created <= datetime.now(UTC)
    got = await client.get(f"/v1/entities/{entity['entity_id']}")
    assert got.status_code == 200
    assert got.json() == entity


async def test_two_entities_with_the_same_name_get_different_ids(client):
    a, b = await create(client, "Twin"), await create(client, "Twin")
    assert a["entity_id"] != b["entity_id"]


async def test_aliases_and_tags_are_trimmed_and_deduplicated_ignoring_case(client):
    entity = await create(client, aliases=[" Ada ", "ADA", "Countess", "  ", "ada"],
                          tags=["Math", " math ", "Poet", "MATH"])
    assert entity["aliases"] == ["Ada", "Countess"]
    assert entity["tags"] == ["Math", "Poet"]


async def test_blank_display_name_is_refused_naming_the_field(client):
    for name in ("", "   ", "\t\n"):
        err = error_of(await client.post("/v1/entities", json={"display_name": name}), 422)
        assert err["code"] == "validation_error"
        assert "display_name" in err["details"][0]["path"]
    assert (await client.get("/v1/entities")).json()["items"] == []


async def test_missing_display_name_is_refused(client):
    err = error_of(await client.post("/v1/entities", json={"tags": ["x"]}), 422)
    assert "display_name" in err["message"]


async def test_wrong_types_are_422_with_the_failing_path(client):
    cases = [
        ({"display_name": 5}, "$.display_name"),
        ({"display_name": "x", "tags": "x"}, "$.tags"),
        ({"display_name": "x", "aliases": [1]}, "$.aliases[0]"),
        ({"display_name": "x", "tags": [""]}, "$.tags[0]"),
        ({"display_name": "x", "fields": []}, "$.fields"),
        ({"display_name": "x", "fields": {"": 1}}, "$.fields"),  # a bad key
        ({"display_name": "x", "plugin_data": {"no spaces": {}}}, "$.plugin_data"),
        ({"display_name": "x", "primary_thumbnail_asset_id": "abc"},
         "$.primary_thumbnail_asset_id"),
        ({"display_name": "x" * 501}, "$.display_name"),
    ]
    for body, path in cases:
        err = error_of(await client.post("/v1/entities", json=body), 422)
        assert err["details"][0]["path"] == path, body
    assert (await client.get("/v1/entities")).json()["items"] == []


async def test_unknown_field_is_refused(client):
    err = error_of(await client.post("/v1/entities", json={"display_name": "x", "nmae": "y"}),
                   422)
    assert "nmae" in err["message"]


async def test_plugin_data_values_must_be_objects(client):
    err = error_of(await client.post("/v1/entities", json={
        "display_name": "x", "plugin_data": {"trainer": 5}}), 422)
    assert err["details"][0]["path"].startswith("$.plugin_data")


async def test_malformed_json_is_400_invalid_json(client):
    # "[1," and the truncated object fail on a type before the parser sees the end
    for raw in (b"{", b'{"display_name": "x",}', b"[1,", b'{"display_name": 5, ',
                b"\xff\xfe", b"", b"   "):
        r = await client.post("/v1/entities", content=raw,
                              headers={"content-type": "application/json"})
        assert error_of(r, 400)["code"] == "invalid_json", raw
    assert (await client.get("/v1/entities")).json()["items"] == []


async def test_json_array_body_is_422(client):
    r = await client.post("/v1/entities", json=[{"display_name": "x"}])
    assert error_of(r, 422)["code"] == "validation_error"


async def test_non_json_content_type_is_415(client):
    for ctype in ("application/x-www-form-urlencoded", "text/plain", "multipart/form-data"):
        r = await client.post("/v1/entities", content=b'{"display_name": "x"}',
                              headers={"content-type": ctype})
        assert error_of(r, 415)["code"] == "unsupported_media_type", ctype
    assert (await client.get("/v1/entities")).json()["items"] == []


async def test_json_with_charset_is_accepted(client):
    r = await client.post("/v1/entities", content=b'{"display_name": "x"}',
                          headers={"content-type": "application/json; charset=utf-8"})
    assert r.status_code == 201


async def test_concurrent_creates_all_succeed_with_distinct_ids(client):
    results = await asyncio.gather(*[
        client.post("/v1/entities", json={"display_name": f"Racer {i}"}) for i in range(20)])
    assert [r.status_code for r in results] == [201] * 20
    ids = {r.json()["entity_id"] for r in results}
    assert len(ids) == 20
    listed = await client.get("/v1/entities", params={"limit": 100, "include_total": "true"})
    assert listed.json()["total"] == 20
    assert {e["entity_id"] for e in listed.json()["items"]} == ids


# -- get ---------------------------------------------------------------------------------

async def test_get_unknown_id_is_404_entity_not_found(client):
    err = error_of(await client.get(f"/v1/entities/{UNKNOWN_ID}"), 404)
    assert err["code"] == "entity_not_found"
    assert UNKNOWN_ID in err["message"]


async def test_get_malformed_id_is_404_envelope(client):
    for bad in ("abc", "A" * 64, "0" * 63, "0" * 65, "g" * 64):
        r = await client.get(f"/v1/entities/{bad}")
        assert error_of(r, 404)["code"] == "entity_not_found", bad


async def test_get_bad_include_deleted_value_is_422(client):
    entity = await create(client)
    r = await client.get(f"/v1/entities/{entity['entity_id']}",
                         params={"include_deleted": "maybe"})
    assert error_of(r, 422)["details"][0]["path"] == "query.include_deleted"


# -- patch -------------------------------------------------------------------------------

async def test_patch_changes_only_what_is_sent(client):
    entity = await create(client, aliases=["Countess"], tags=["math"],
                          fields={"born": 1815, "city": "London"},
                          plugin_data={"a": {"x": 1}, "b": {"y": 2}})
    url = f"/v1/entities/{entity['entity_id']}"
    r = await client.patch(url, json={"display_name": "Augusta Ada King"})
    assert r.status_code == 200
    patched = r.json()
    assert patched["display_name"] == "Augusta Ada King"
    for key in ("aliases", "tags", "fields", "plugin_data", "created_at", "entity_id"):
        assert patched[key] == entity[key]
    assert (await client.get(url)).json() == patched


async def test_patch_merges_fields_and_plugin_data_by_key_and_null_removes(client):
    entity = await create(client, fields={"born": 1815, "city": "London", "died": 1852},
                          plugin_data={"a": {"x": 1}, "b": {"y": 2}})
    url = f"/v1/entities/{entity['entity_id']}"
    r = await client.patch(url, json={
        "fields": {"city": "Marylebone", "died": None, "title": "Countess"},
        "plugin_data": {"a": None, "c": {"z": 3}}})
    assert r.status_code == 200
    assert r.json()["fields"] == {"born": 1815, "city": "Marylebone", "title": "Countess"}
    assert r.json()["plugin_data"] == {"b": {"y": 2}, "c": {"z": 3}}
    assert (await client.get(url)).json()["fields"] == r.json()["fields"]


async def test_patch_replaces_lists_cleaned_like_create(client):
    entity = await create(client, tags=["old"])
    r = await client.patch(f"/v1/entities/{entity['entity_id']}",
                           json={"tags": [" New ", "new", "other"], "aliases": ["A", "a"]})
    assert r.json()["tags"] == ["New", "other"]
    assert r.json()["aliases"] == ["A"]


async def test_updated_at_advances_only_when_something_changed(client):
    entity = await create(client, fields={"born": 1815})
    url = f"/v1/entities/{entity['entity_id']}"
    for no_change in ({}, {"display_name": "Ada Lovelace"}, {"fields": {"born": 1815}},
                      {"fields": {"missing": None}}, {"plugin_data": {"nobody": None}}):
        r = await client.patch(url, json=no_change)
        assert r.status_code == 200, no_change
        assert r.json() == entity, no_change
    changed = (await client.patch(url, json={"fields": {"born": 1816}})).json()
    assert utc(changed["updated_at"]) > utc(entity["updated_at"])
    assert changed["created_at"] == entity["created_at"]


async def test_bad_patch_is_refused_and_changes_nothing(client):
    entity = await create(client)
    url = f"/v1/entities/{entity['entity_id']}"
    cases = [
        ({"display_name": "  "}, "$.display_name"),
        ({"display_name": None}, "$.display_name"),
        ({"tags": "x"}, "$.tags"),
        ({"fields": {"": 1}}, "$.fields"),
        ({"plugin_data": {"p": 1}}, "$.plugin_data"),
        ({"plugin_data": {"bad key!": {}}}, "$.plugin_data"),
        ({"entity_id": UNKNOWN_ID}, "$"),  # ids never change
        ({"created_at": "2000-01-01T00:00:00Z"}, "$"),
    ]
    for body, path in cases:
        err = error_of(await client.patch(url, json=body), 422)
        assert err["details"][0]["path"].startswith(path), body
    r = await client.patch(url, content=b"{", headers={"content-type": "application/json"})
    assert error_of(r, 400)["code"] == "invalid_json"
    r = await client.patch(url, content=b"tags=x", headers={"content-type": "text/plain"})
    assert error_of(r, 415)["code"] == "unsupported_media_type"
    assert (await client.get(url)).json() == entity


async def test_patch_unknown_or_deleted_entity_is_404(client):
    r = await client.patch(f"/v1/entities/{UNKNOWN_ID}", json={"display_name": "x"})
    assert error_of(r, 404)["code"] == "entity_not_found"
    entity = await create(client)
    url = f"/v1/entities/{entity['entity_id']}"
    assert (await client.delete(url)).status_code == 204
    assert error_of(await client.patch(url, json={"display_name": "x"}), 404)["code"] == \
        "entity_not_found"
    stored = (await client.get(url, params={"include_deleted": "true"})).json()
    assert stored["display_name"] == "Ada Lovelace"


# -- delete and restore ------------------------------------------------------------------

async def test_delete_hides_the_entity_until_restored(client):
    keep = await create(client, "Keep")
    gone = await create(client, "Gone")
    url = f"/v1/entities/{gone['entity_id']}"

    r = await client.delete(url)
    assert r.status_code == 204 and r.content == b""
    assert error_of(await client.get(url), 404)["code"] == "entity_not_found"
    deleted = (await client.get(url, params={"include_deleted": "true"})).json()
    assert utc(deleted["deleted_at"])
    assert await names(client) == ["Keep"]
    assert sorted(await names(client, include_deleted="true")) == ["Gone", "Keep"]
    assert await names(client, only_deleted="true") == ["Gone"]
    assert error_of(await client.delete(url), 404)["code"] == "entity_not_found"

    r = await client.post(url + "/restore")
    assert r.status_code == 200
    assert r.json()["deleted_at"] is None
    assert r.json()["display_name"] == "Gone"
    assert (await client.get(url)).status_code == 200
    assert sorted(await names(client)) == ["Gone", "Keep"]
    assert await names(client, only_deleted="true") == []

    assert (await client.delete(url)).status_code == 204
    assert await names(client) == ["Keep"]
    assert (await client.get(f"/v1/entities/{keep['entity_id']}")).status_code == 200


async def test_restoring_a_live_entity_changes_nothing(client):
    entity = await create(client)
    r = await client.post(f"/v1/entities/{entity['entity_id']}/restore")
    assert r.status_code == 200
    assert r.json() == entity


async def test_delete_and_restore_unknown_ids_are_404(client):
    for bad in (UNKNOWN_ID, "abc"):
        assert error_of(await client.delete(f"/v1/entities/{bad}"), 404)["code"] == \
            "entity_not_found"
        assert error_of(await client.post(f"/v1/entities/{bad}/restore"), 404)["code"] == \
            "entity_not_found"


# -- list, sort, paging ------------------------------------------------------------------

async def test_list_defaults_to_50_newest_first(client):
    made = [await create(client, f"E{i:03}") for i in range(60)]
    r = await client.get("/v1/entities")
    page = r.json()
    assert len(page["items"]) == 50
    assert [e["entity_id"] for e in page["items"]] == \
        [e["entity_id"] for e in reversed(made)][:50]
    assert page["next_cursor"]
    assert page["total"] is None


async def test_empty_list(client):
    r = await client.get("/v1/entities", params={"include_total": "true"})
    assert r.json() == {"items": [], "next_cursor": None, "total": 0}


async def test_bad_list_parameters_are_422_naming_the_parameter(client):
    for params in ({"limit": 0}, {"limit": 501}, {"limit": -1}, {"limit": "ten"},
                   {"offset": -1}, {"sort_by": "entity_id"}, {"sort_order": "up"},
                   {"include_total": "maybe"}, {"only_deleted": "2"}):
        err = error_of(await client.get("/v1/entities", params=params), 422)
        assert err["details"][0]["path"] == "query." + next(iter(params)), params


async def test_limit_500_is_allowed(client):
    await create(client)
    assert len((await client.get("/v1/entities", params={"limit": 500})).json()["items"]) == 1


def expected_order(entities: list[dict], sort_by: str, order: str) -> list[str]:
    def key(e: dict) -> tuple[str, str]:
        # display_name sorts case-insensitively (names here are ASCII); the id breaks ties
        value = e[sort_by].lower() if sort_by == "display_name" else e[sort_by]
        return value, e["entity_id"]

    return [e["entity_id"] for e in sorted(entities, key=key, reverse=order == "desc")]


async def walk(client: httpx.AsyncClient, **params: Any) -> list[str]:
    seen: list[str] = []
    cursor = None
    for _ in range(20):  # bounded: a cursor loop must not hang the suite
        query = {**params, **({"cursor": cursor} if cursor else {})}
        r = await client.get("/v1/entities", params=query)
        assert r.status_code == 200, r.text
        page = r.json()
        assert len(page["items"]) <= params["limit"]
        seen += [e["entity_id"] for e in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return seen
    raise AssertionError("pagination did not end")


@pytest.fixture
async def many(client: httpx.AsyncClient) -> list[dict]:
    """120 entities; names repeat in different letter cases so ties need the id."""
    spellings = ["Ada", "ada", "ADA", "Bob", "bob", "Carol", "Zed", "mallory"]
    made = await asyncio.gather(*[
        client.post("/v1/entities", json={"display_name": spellings[i % len(spellings)]})
        for i in range(120)])
    entities = [r.json() for r in made]
    # touch a spread of them so updated_at order differs from created_at order
    for e in entities[::7]:
        r = await client.patch(f"/v1/entities/{e['entity_id']}", json={"tags": ["touched"]})
        e.update(r.json())
    return entities


async def test_keyset_pages_visit_every_entity_once_in_order(client, many):
    for sort_by in ("created_at", "updated_at", "display_name"):
        for sort_order in ("asc", "desc"):
            seen = await walk(client, limit=50, sort_by=sort_by, sort_order=sort_order)
            assert len(seen) == len(set(seen)) == 120, (sort_by, sort_order)
            assert seen == expected_order(many, sort_by, sort_order), (sort_by, sort_order)


async def test_keyset_pages_with_filters(client, many):
    touched = [e for e in many if "touched" in e["tags"]]
    seen = await walk(client, limit=5, tag="touched", sort_by="display_name",
                      sort_order="asc")
    assert seen == expected_order(touched, "display_name", "asc")


async def test_pages_stay_stable_when_entities_are_created_meanwhile(client, many):
    first = (await client.get("/v1/entities", params={"limit": 50})).json()
    await create(client, "Newcomer")
    rest = await walk(client, limit=50, cursor=first["next_cursor"])
    ids = [e["entity_id"] for e in first["items"]] + rest
    assert ids == expected_order(many, "created_at", "desc")


async def test_garbage_cursor_is_400_invalid_cursor(client):
    await create(client)
    # "e30" is {} and "W10" is [] base64-encoded: valid JSON, not a cursor
    for cursor in ("garbage", "!!!", "e30", "W10", "WzEsMiwzLDRd", "x" * 500, "%%"):
        err = error_of(await client.get("/v1/entities", params={"cursor": cursor}), 400)
        assert err["code"] == "invalid_cursor", cursor


async def test_cursor_from_another_sort_is_400(client, many):
    cursor = (await client.get("/v1/entities", params={"limit": 10})).json()["next_cursor"]
    for other in ({"sort_order": "asc"}, {"sort_by": "display_name"},
                  {"sort_by": "updated_at", "sort_order": "asc"}):
        r = await client.get("/v1/entities", params={"limit": 10, "cursor": cursor, **other})
        assert error_of(r, 400)["code"] == "invalid_cursor"


async def test_offset_still_works(client, many):
    everything = expected_order(many, "display_name", "asc")
    r = await client.get("/v1/entities", params={
        "offset": 45, "limit": 10, "sort_by": "display_name", "sort_order": "asc"})
    assert [e["entity_id"] for e in r.json()["items"]] == everything[45:55]
    r = await client.get("/v1/entities", params={"offset": 200})
    assert r.json()["items"] == [] and r.json()["next_cursor"] is None


async def test_include_total_counts_all_matches_not_the_page(client, many):
    r = await client.get("/v1/entities", params={"limit": 3, "include_total": "true"})
    assert r.json()["total"] == 120
    r = await client.get("/v1/entities", params={"limit": 3, "include_total": "true",
                                                 "q": "bob"})
    assert r.json()["total"] == 30
    assert len(r.json()["items"]) == 3
    assert (await client.get("/v1/entities", params={"limit": 3})).json()["total"] is None


# -- search ------------------------------------------------------------------------------

@pytest.fixture
async def people(client: httpx.AsyncClient) -> dict[str, dict]:
    made = [
        await create(client, "Ada Lovelace", aliases=["Countess of Lovelace"],
                     tags=["mathematician"], fields={"city": "London", "born": 1815}),
        await create(client, "Zoë Saldaña", tags=["actor"], fields={"city": "Passaic"}),
        await create(client, "Grace Hopper", aliases=["Amazing Grace"], tags=["admiral"],
                     fields={"language": "COBOL"}),
    ]
    return {e["display_name"].split()[0]: e for e in made}


SEARCHES = [
    ("Lovelace", ["Ada Lovelace"]),
    ("lovelace", ["Ada Lovelace"]),
    ("lov", ["Ada Lovelace"]),
    ("Countess", ["Ada Lovelace"]),           # alias
    ("mathematician", ["Ada Lovelace"]),      # tag
    ("London", ["Ada Lovelace"]),             # field value
    ("1815", ["Ada Lovelace"]),               # non-string field value
    ("cobol", ["Grace Hopper"]),
    ("Zoe", ["Zoë Saldaña"]),                 # diacritics-insensitive
    ("saldana", ["Zoë Saldaña"]),
    ("ZOË", ["Zoë Saldaña"]),
    ("grace", ["Grace Hopper"]),
    ("ada lov", ["Ada Lovelace"]),            # every word must match
    ("  ada   LOVELACE  ", ["Ada Lovelace"]),
    ('ada"', ["Ada Lovelace"]),               # punctuation is text, not syntax
    ("ada hopper", []),
    ("nobody", []),
]


async def test_search(client, people):
    found = {q: sorted(await names(client, q=q)) for q, _ in SEARCHES}
    assert found == dict(SEARCHES)


async def test_search_syntax_characters_match_nothing_and_never_fail(client, people):
    for q in ("%", '"', "*", "NEAR(", "-", "'", "()", "^", '"*"', "AND", "OR", "NOT", "_",
              "%%%", "a*b*c*d*zzz", "\\", ":", "::"):
        r = await client.get("/v1/entities", params={"q": q, "include_total": "true"})
        assert r.status_code == 200, (q, r.text)
        assert (r.json()["items"], r.json()["total"]) == ([], 0), q


async def test_blank_search_lists_everything(client, people):
    assert len(await names(client, q="   ")) == 3


async def test_search_follows_renames_and_deletes(client, people):
    ada = people["Ada"]
    url = f"/v1/entities/{ada['entity_id']}"
    await client.patch(url, json={"display_name": "Augusta King", "aliases": [],
                                  "tags": ["poet"], "fields": {"city": None}})
    assert await names(client, q="Augusta") == ["Augusta King"]
    assert await names(client, q="Lovelace") == []
    assert await names(client, q="mathematician") == []
    assert await names(client, q="London") == []
    assert await names(client, q="poet") == ["Augusta King"]
    assert await names(client, q="1815") == ["Augusta King"]  # untouched field still indexed

    await client.delete(url)
    assert await names(client, q="Augusta") == []
    assert await names(client, q="Augusta", include_deleted="true") == ["Augusta King"]
    await client.post(url + "/restore")
    assert await names(client, q="Augusta") == ["Augusta King"]


async def test_search_combines_with_tags_and_sorting(client, people):
    await create(client, "Ada Byron", tags=["mathematician"])
    assert await names(client, q="ada", tag="mathematician", sort_by="display_name",
                       sort_order="asc") == ["Ada Byron", "Ada Lovelace"]
    assert await names(client, q="ada", tag="mathematician", sort_by="display_name",
                       sort_order="desc") == ["Ada Lovelace", "Ada Byron"]


# -- tag filter --------------------------------------------------------------------------

async def test_tag_filter_requires_every_tag_ignoring_case(client):
    await create(client, "Both", tags=["Actor", "sdxl"])
    await create(client, "Actor only", tags=["actor"])
    await create(client, "Model only", tags=["SDXL"])
    await create(client, "Untagged")

    async def tagged(*tags: str) -> list[str]:
        r = await client.get("/v1/entities", params=[("tag", t) for t in tags])
        assert r.status_code == 200
        return sorted(e["display_name"] for e in r.json()["items"])

    assert await tagged("actor") == ["Actor only", "Both"]
    assert await tagged("ACTOR") == ["Actor only", "Both"]
    assert await tagged("sdxl") == ["Both", "Model only"]
    assert await tagged("actor", "SDXL") == ["Both"]
    assert await tagged("actor", "sdxl", "missing") == []
    assert await tagged("act") == []  # tags match whole, not as a prefix
    assert await tagged(" actor ") == ["Actor only", "Both"]


async def test_tag_filter_ignores_case_beyond_ascii(client):
    entity = await create(client, "Émile", tags=["Émigré", "émigré", "Straße"])
    assert entity["tags"] == ["Émigré", "Straße"]
    for tag in ("Émigré", "émigré", "ÉMIGRÉ", "STRASSE", "straße"):
        assert await names(client, tag=tag) == ["Émile"], tag


async def test_tag_filter_follows_patches_and_deletes(client):
    e = await create(client, "Mover", tags=["old"])
    url = f"/v1/entities/{e['entity_id']}"
    await client.patch(url, json={"tags": ["new"]})
    assert await names(client, tag="old") == []
    assert await names(client, tag="new") == ["Mover"]
    await client.delete(url)
    assert await names(client, tag="new") == []
    assert await names(client, tag="new", only_deleted="true") == ["Mover"]


# -- events ------------------------------------------------------------------------------

async def entity_events(client: httpx.AsyncClient) -> list[dict]:
    r = await client.get("/v1/events", params={"type": "entity."})
    assert r.status_code == 200
    return r.json()["items"]


async def test_every_change_records_one_event_with_the_correlation_id(client):
    def cid(value: str) -> dict[str, str]:
        return {"X-Correlation-ID": value}

    r = await client.post("/v1/entities", json={"display_name": "Ada"}, headers=cid("c-create"))
    assert r.headers["x-correlation-id"] == "c-create"
    entity_id = r.json()["entity_id"]
    url = f"/v1/entities/{entity_id}"
    await client.patch(url, json={"display_name": "Ada L", "fields": {"born": 1815},
                                  "aliases": []}, headers=cid("c-patch"))
    await client.patch(url, json={"display_name": "Ada L"}, headers=cid("c-noop"))
    await client.delete(url, headers=cid("c-delete"))
    await client.post(url + "/restore", headers=cid("c-restore"))

    events = await entity_events(client)
    assert [(e["type"], e["correlation_id"]) for e in events] == [
        ("entity.created", "c-create"), ("entity.updated", "c-patch"),
        ("entity.deleted", "c-delete"), ("entity.restored", "c-restore")]
    assert all(e["data"]["entity_id"] == entity_id for e in events)
    assert events[1]["data"]["changed"] == ["display_name", "fields"]
    assert all(utc(e["created_at"]) for e in events)


async def test_requests_that_fail_record_no_event(client):
    entity = await create(client)
    url = f"/v1/entities/{entity['entity_id']}"
    before = await entity_events(client)
    await client.post("/v1/entities", json={"display_name": "   "})
    await client.post("/v1/entities", json={"display_name": 5})
    await client.patch(url, json={"tags": "x"})
    await client.patch(f"/v1/entities/{UNKNOWN_ID}", json={"display_name": "x"})
    await client.delete(f"/v1/entities/{UNKNOWN_ID}")
    await client.post(url + "/restore")  # already live: nothing happens
    assert await entity_events(client) == before


# -- auth and OpenAPI --------------------------------------------------------------------

ROUTES = [
    ("GET", "/v1/entities"), ("POST", "/v1/entities"), ("GET", "/v1/entities/{id}"),
    ("PATCH", "/v1/entities/{id}"), ("DELETE", "/v1/entities/{id}"),
    ("POST", "/v1/entities/{id}/restore"),
]


async def test_every_route_needs_the_token(client, anon):
    entity = await create(client)
    for method, path in ROUTES:
        url = path.replace("{id}", entity["entity_id"])
        body = {"display_name": "Intruder"} if method in ("POST", "PATCH") else None
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"X-FaceForge-Token": "wrong"},
                        {"Authorization": "Basic eDp5"}, {"Authorization": "Bearer "}):
            r = await anon.request(method, url, json=body, headers=headers)
            assert error_of(r, 401)["code"] == "unauthorized", (method, path, headers)
    assert (await client.get(f"/v1/entities/{entity['entity_id']}")).json() == entity
    assert await names(client) == ["Ada Lovelace"]
    assert len(await entity_events(client)) == 1  # only the create above


async def test_x_faceforge_token_header_works_too(anon, settings):
    r = await anon.post("/v1/entities", json={"display_name": "Via header"},
                        headers={"X-FaceForge-Token": settings.install_token})
    assert r.status_code == 201


async def test_routes_are_documented_with_their_schemas(client):
    doc = (await client.get("/openapi.json")).json()
    paths, schemas = doc["paths"], doc["components"]["schemas"]

    def ref(content: dict) -> str:
        return content["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]

    many_, one = paths["/v1/entities"], paths["/v1/entities/{entity_id}"]
    assert ref(many_["get"]["responses"]["200"]["content"]) == "EntityPage"
    assert ref(many_["post"]["requestBody"]["content"]) == "EntityCreate"
    assert ref(many_["post"]["responses"]["201"]["content"]) == "Entity"
    assert ref(one["get"]["responses"]["200"]["content"]) == "Entity"
    assert ref(one["patch"]["requestBody"]["content"]) == "EntityPatch"
    assert ref(one["patch"]["responses"]["200"]["content"]) == "Entity"
    assert "204" in one["delete"]["responses"]
    restore = paths["/v1/entities/{entity_id}/restore"]["post"]
    assert ref(restore["responses"]["200"]["content"]) == "Entity"
    assert {p["name"] for p in many_["get"]["parameters"]} >= {
        "limit", "cursor", "offset", "sort_by", "sort_order", "q", "tag", "include_deleted",
        "only_deleted", "include_total"}
    for name in ("EntityCreate", "EntityPatch", "Entity", "EntityPage"):
        assert name in schemas
    assert "display_name" in schemas["EntityCreate"]["required"]
    assert schemas["EntityCreate"].get("additionalProperties") is False
    assert set(schemas["Entity"]["properties"]) >= {
        "entity_id", "display_name", "aliases", "tags", "fields", "plugin_data",
        "created_at", "updated_at", "deleted_at"}

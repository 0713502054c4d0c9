"""``/v1/relationships`` and ``/v1/relation-types`` over HTTP: labels from each side, the
type registry, duplicates, deleted entities, paging, events and bad inputs."""

from __future__ import annotations

import re

import pytest

from tests.kernel.conftest import assert_envelope
from tests.plugins_builtin.relationships.conftest import (
    UNKNOWN_ID,
    entity,
    listing,
    relate,
    seen_from,
    type_names,
)

HEX64 = re.compile(r"^[0-9a-f]{64}$")


@pytest.fixture
async def family(client) -> dict[str, str]:
    return {name: await entity(client, name)
            for name in ("Byron", "Ada", "Annabella", "Augusta")}


# -- create and list ---------------------------------------------------------------------

async def test_a_relationship_is_listed_on_both_entities_labelled_from_each_side(
        client, family):
    rel = await relate(client, family["Byron"], "parent_of", family["Ada"],
                       fields={"note": "only legitimate child"}, valid_from="1815-12-10")
    assert HEX64.match(rel["relationship_id"])
    assert rel["type"] == "parent_of" and rel["fields"] == {"note": "only legitimate child"}
    assert (rel["valid_from"], rel["valid_to"]) == ("1815-12-10", None)
    assert rel["created_at"] == rel["updated_at"]

    (byron_side,) = (await listing(client, family["Byron"]))["items"]
    assert byron_side["direction"] == "outgoing" and byron_side["label"] == "parent_of"
    assert byron_side["other_entity_id"] == family["Ada"]
    assert byron_side["other_display_name"] == "Ada"
    (ada_side,) = (await listing(client, family["Ada"]))["items"]
    assert ada_side["direction"] == "incoming" and ada_side["label"] == "child_of"
    assert ada_side["other_entity_id"] == family["Byron"]
    assert ada_side["other_display_name"] == "Byron"
    for side in (byron_side, ada_side):
        assert {k: side[k] for k in rel} == rel

    got = await client.get(f"/v1/relationships/{rel['relationship_id']}")
    assert got.status_code == 200 and got.json() == rel


async def test_names_can_be_left_out_of_a_list(client, family):
    await relate(client, family["Byron"], "parent_of", family["Ada"])
    (item,) = (await listing(client, family["Ada"], names="false"))["items"]
    assert item["other_entity_id"] == family["Byron"] and item["other_display_name"] is None
    assert item["label"] == "child_of"


async def test_an_entity_sees_both_directions_in_creation_order(client, family):
    await relate(client, family["Byron"], "parent_of", family["Ada"])
    await relate(client, family["Ada"], "parent_of", family["Annabella"])
    await relate(client, family["Augusta"], "sibling_of", family["Ada"])
    assert await seen_from(client, family["Ada"]) == [
        ("incoming", "child_of", "Byron"), ("outgoing", "parent_of", "Annabella"),
        ("incoming", "sibling_of", "Augusta")]
    assert await seen_from(client, family["Augusta"]) == [("outgoing", "sibling_of", "Ada")]


async def test_a_type_without_an_inverse_has_no_label_when_seen_from_its_target(client,
                                                                                 family):
    await relate(client, family["Ada"], "corresponded_with", family["Annabella"])
    assert await seen_from(client, family["Ada"]) == [
        ("outgoing", "corresponded_with", "Annabella")]
    assert await seen_from(client, family["Annabella"]) == [("incoming", None, "Ada")]


async def test_the_type_filter_keeps_one_stored_type_in_either_direction(client, family):
    await relate(client, family["Byron"], "parent_of", family["Ada"])
    await relate(client, family["Ada"], "parent_of", family["Annabella"])
    await relate(client, family["Ada"], "friend_of", family["Augusta"])
    assert await seen_from(client, family["Ada"], type="parent_of") == [
        ("incoming", "child_of", "Byron"), ("outgoing", "parent_of", "Annabella")]
    assert await seen_from(client, family["Ada"], type="friend_of") == [
        ("outgoing", "friend_of", "Augusta")]
    assert await seen_from(client, family["Ada"], type="enemy_of") == []


async def test_time_bounds_take_dates_and_rfc3339_times_stored_in_utc(client, family):
    rel = await relate(client, family["Ada"], "friend_of", family["Augusta"],
                       valid_from="1830-06-05T18:30:00+02:00", valid_to="1852-11-27")
    assert rel["valid_from"] == "1830-06-05T16:30:00Z"
    assert rel["valid_to"] == "1852-11-27"
    # a date is the whole day: a time on the same day is not after it
    await relate(client, family["Ada"], "ally_of", family["Augusta"],
                 valid_from="1840-01-01T23:00:00Z", valid_to="1840-01-01")


# -- relation types ----------------------------------------------------------------------

async def test_common_types_are_registered_with_their_inverses(client):
    r = await client.get("/v1/relation-types", params={"limit": 500})
    types = {t["name"]: t for t in r.json()["items"]}
    assert types["parent_of"] == {"name": "parent_of", "inverse": "child_of",
                                  "symmetric": False, "uses": 0}
    assert types["child_of"]["inverse"] == "parent_of"
    for name in ("sibling_of", "spouse_of", "partner_of", "friend_of", "colleague_of"):
        assert types[name]["symmetric"] and types[name]["inverse"] == name
    assert types["member_of"]["inverse"] == "has_member"


async def test_type_search_is_by_prefix_ranked_by_use_then_name(client, family):
    assert await type_names(client, "sp") == ["spouse_of"]
    assert await type_names(client, "s") == ["sibling_of", "spouse_of", "student_of"]
    await relate(client, family["Byron"], "spouse_of", family["Annabella"])
    await relate(client, family["Ada"], "student_of", family["Augusta"])
    await relate(client, family["Augusta"], "student_of", family["Annabella"])
    assert await type_names(client, "s") == ["student_of", "spouse_of", "sibling_of"]
    r = await client.get("/v1/relation-types", params={"query": "s"})
    assert [t["uses"] for t in r.json()["items"]] == [2, 1, 0]


async def test_an_inverse_is_found_by_its_own_name_and_shares_the_pairs_uses(client,
                                                                              family):
    assert await type_names(client, "ch") == ["child_of"]
    await relate(client, family["Byron"], "parent_of", family["Ada"])
    r = await client.get("/v1/relation-types", params={"query": "CH"})
    assert r.json()["items"] == [{"name": "child_of", "inverse": "parent_of",
                                  "symmetric": False, "uses": 1}]
    # typed as words, the way a person would
    assert await type_names(client, "child of") == ["child_of"]


async def test_type_search_pages_with_a_cursor(client):
    everything = await type_names(client, "", limit=500)
    seen, cursor = [], None
    while True:
        params = {"query": "", "limit": 7} | ({"cursor": cursor} if cursor else {})
        page = (await client.get("/v1/relation-types", params=params)).json()
        seen += [t["name"] for t in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == everything and len(seen) > 7


async def test_an_unknown_type_is_registered_on_first_use(client, family):
    assert await type_names(client, "rescued") == []
    await relate(client, family["Ada"], "rescued", family["Augusta"])
    r = await client.get("/v1/relation-types", params={"query": "rescued"})
    assert r.json()["items"] == [{"name": "rescued", "inverse": None, "symmetric": False,
                                  "uses": 1}]


@pytest.mark.parametrize("bad", ["Spouse_of", "spouse of", "1st_cousin", "_x", "",
                                 "a" * 65, "ehe_frau_ü"])
async def test_a_type_name_must_be_lowercase_letters_digits_and_underscores(client, family,
                                                                            bad):
    r = await client.post("/v1/relationships", json={
        "from_entity_id": family["Ada"], "to_entity_id": family["Byron"], "type": bad})
    error = assert_envelope(r, 422)
    assert error["details"][0]["path"] == "$.type"
    assert bad not in await type_names(client, "", limit=500)


async def test_a_type_is_registered_with_its_inverse(client, family):
    r = await client.post("/v1/relation-types", json={"name": "mentor_to",
                                                     "inverse": "protege_of"})
    assert r.status_code == 201
    assert r.json() == {"name": "mentor_to", "inverse": "protege_of", "symmetric": False,
                        "uses": 0}
    again = await client.post("/v1/relation-types", json={"name": "mentor_to",
                                                         "inverse": "protege_of"})
    assert again.status_code == 200
    await relate(client, family["Augusta"], "mentor_to", family["Ada"])
    assert await seen_from(client, family["Ada"]) == [("incoming", "protege_of", "Augusta")]
    # the inverse pair is one fact: Ada protege_of Augusta is a duplicate
    dup = await client.post("/v1/relationships", json={
        "from_entity_id": family["Ada"], "to_entity_id": family["Augusta"],
        "type": "protege_of"})
    assert_envelope(dup, 409, "relationship_exists")


async def test_a_symmetric_type_reads_the_same_from_both_sides(client, family):
    r = await client.post("/v1/relation-types", json={"name": "twin_of", "symmetric": True})
    assert r.status_code == 201 and r.json()["inverse"] == "twin_of"
    await relate(client, family["Ada"], "twin_of", family["Augusta"])
    assert await seen_from(client, family["Augusta"]) == [("incoming", "twin_of", "Ada")]


async def test_registering_a_type_differently_than_it_exists_is_a_conflict(client):
    r = await client.post("/v1/relation-types", json={"name": "parent_of",
                                                     "inverse": "kid_of"})
    error = assert_envelope(r, 409, "relation_type_exists")
    assert error["details"][0]["inverse"] == "child_of"
    r = await client.post("/v1/relation-types", json={"name": "begetter_of",
                                                     "inverse": "child_of"})
    assert_envelope(r, 409, "relation_type_exists")
    assert await type_names(client, "begetter") == []
    r = await client.post("/v1/relation-types", json={"name": "x_of", "inverse": "y_of",
                                                     "symmetric": True})
    assert assert_envelope(r, 422)["details"][0]["path"] == "$.inverse"


# -- refusals ----------------------------------------------------------------------------

async def test_an_entity_cannot_relate_to_itself(client, family):
    r = await client.post("/v1/relationships", json={
        "from_entity_id": family["Ada"], "to_entity_id": family["Ada"], "type": "friend_of"})
    assert_envelope(r, 422, "self_relationship")


async def test_the_same_relationship_twice_is_a_conflict_naming_the_first(client, family):
    first = await relate(client, family["Byron"], "parent_of", family["Ada"])
    r = await client.post("/v1/relationships", json={
        "from_entity_id": family["Byron"], "to_entity_id": family["Ada"], "type": "parent_of"})
    error = assert_envelope(r, 409, "relationship_exists")
    assert error["details"][0]["relationship_id"] == first["relationship_id"]
    # written from the other end with the inverse type: the same fact
    r = await client.post("/v1/relationships", json={
        "from_entity_id": family["Ada"], "to_entity_id": family["Byron"], "type": "child_of"})
    assert_envelope(r, 409, "relationship_exists")
    # the reverse of a directed type is another fact
    await relate(client, family["Ada"], "parent_of", family["Byron"])


async def test_a_symmetric_relationship_reversed_is_a_duplicate(client, family):
    await relate(client, family["Ada"], "sibling_of", family["Augusta"])
    r = await client.post("/v1/relationships", json={
        "from_entity_id": family["Augusta"], "to_entity_id": family["Ada"],
        "type": "sibling_of"})
    assert_envelope(r, 409, "relationship_exists")


async def test_a_deleted_relationship_can_be_made_again(client, family):
    rel = await relate(client, family["Ada"], "friend_of", family["Augusta"])
    assert (await client.delete(f"/v1/relationships/{rel['relationship_id']}")).status_code \
        == 204
    again = await relate(client, family["Augusta"], "friend_of", family["Ada"])
    assert again["relationship_id"] != rel["relationship_id"]


async def test_both_ends_must_be_live_entities_and_the_error_names_which(client, family):
    r = await client.post("/v1/relationships", json={
        "from_entity_id": family["Ada"], "to_entity_id": UNKNOWN_ID, "type": "friend_of"})
    error = assert_envelope(r, 422, "entity_not_found")
    assert [d["path"] for d in error["details"]] == ["$.to_entity_id"]
    assert (await client.delete(f"/v1/entities/{family['Byron']}")).status_code == 204
    r = await client.post("/v1/relationships", json={
        "from_entity_id": family["Byron"], "to_entity_id": UNKNOWN_ID, "type": "friend_of"})
    error = assert_envelope(r, 422, "entity_not_found")
    assert [d["path"] for d in error["details"]] == ["$.from_entity_id", "$.to_entity_id"]


@pytest.mark.parametrize("body, path", [
    ({"from_entity_id": "ABC"}, "$.from_entity_id"),
    ({"to_entity_id": 5}, "$.to_entity_id"),
    ({"fields": ["not", "an", "object"]}, "$.fields"),
    ({"valid_from": "yesterday"}, "$.valid_from"),
    ({"valid_from": "2020-02-30"}, "$.valid_from"),
    ({"valid_to": "2020-01-01T10:00:00"}, "$.valid_to"),  # no offset
    ({"valid_to": "0000-01-01"}, "$.valid_to"),
    ({"valid_from": "2021-01-01", "valid_to": "2020-12-31"}, "$.valid_from"),
    ({"valid_from": "2020-06-01T00:00:00Z", "valid_to": "2020-05-31"}, "$.valid_from"),
])
async def test_bad_bodies_are_422_naming_the_field(client, family, body, path):
    base = {"from_entity_id": family["Ada"], "to_entity_id": family["Augusta"],
            "type": "friend_of"}
    r = await client.post("/v1/relationships", json=base | body)
    error = assert_envelope(r, 422)
    assert error["details"][0]["path"] == path
    assert (await listing(client, family["Ada"]))["items"] == []


async def test_unknown_missing_and_malformed_bodies_are_refused(client, family):
    r = await client.post("/v1/relationships", json={
        "from_entity_id": family["Ada"], "to_entity_id": family["Augusta"],
        "type": "friend_of", "colour": "red"})
    assert "unknown field `colour`" in assert_envelope(r, 422)["message"]
    r = await client.post("/v1/relationships", json={"from_entity_id": family["Ada"],
                                                     "type": "friend_of"})
    assert "to_entity_id" in assert_envelope(r, 422)["message"]
    r = await client.post("/v1/relationships", content=b'{"type": ',
                          headers={"content-type": "application/json"})
    assert_envelope(r, 400, "invalid_json")


@pytest.mark.parametrize("rid", [UNKNOWN_ID, "nope", "A" * 64, "0" * 65])
async def test_unknown_or_malformed_relationship_ids_are_404(client, rid):
    for method in ("GET", "DELETE"):
        r = await client.request(method, f"/v1/relationships/{rid}")
        assert_envelope(r, 404, "relationship_not_found")
    r = await client.patch(f"/v1/relationships/{rid}", json={"fields": {}})
    assert_envelope(r, 404, "relationship_not_found")


async def test_listing_needs_a_live_entity(client, family):
    assert_envelope(await client.get("/v1/relationships"), 422)
    for bad in (UNKNOWN_ID, "not-an-id"):
        r = await client.get("/v1/relationships", params={"entity_id": bad})
        assert_envelope(r, 404, "entity_not_found")
    r = await client.get("/v1/relationships", params={"entity_id": family["Ada"],
                                                      "limit": 501})
    assert assert_envelope(r, 422)["details"][0]["path"] == "query.limit"
    r = await client.get("/v1/relationships", params={"entity_id": family["Ada"],
                                                      "cursor": "garbage"})
    assert_envelope(r, 400, "invalid_cursor")
    # unknown parameters are ignored, as everywhere
    r = await client.get("/v1/relationships", params={"entity_id": family["Ada"],
                                                      "colour": "red"})
    assert r.status_code == 200


# -- deleted entities --------------------------------------------------------------------

async def test_a_deleted_entitys_relationships_are_hidden_until_it_is_restored(client,
                                                                              family):
    rel = await relate(client, family["Byron"], "parent_of", family["Ada"])
    other = await relate(client, family["Ada"], "friend_of", family["Augusta"])
    rid = rel["relationship_id"]
    assert (await client.delete(f"/v1/entities/{family['Byron']}")).status_code == 204

    assert await seen_from(client, family["Ada"]) == [("outgoing", "friend_of", "Augusta")]
    assert_envelope(await client.get(f"/v1/relationships/{rid}"), 404)
    assert_envelope(await client.patch(f"/v1/relationships/{rid}", json={"fields": {}}), 404)
    assert_envelope(await client.delete(f"/v1/relationships/{rid}"), 404)
    assert_envelope(await client.get("/v1/relationships",
                                     params={"entity_id": family["Byron"]}), 404)
    r = await client.get("/v1/relation-types", params={"query": "parent_of"})
    assert r.json()["items"][0]["uses"] == 0

    r = await client.post(f"/v1/entities/{family['Byron']}/restore")
    assert r.status_code == 200
    assert await seen_from(client, family["Ada"]) == [
        ("incoming", "child_of", "Byron"), ("outgoing", "friend_of", "Augusta")]
    assert (await client.get(f"/v1/relationships/{rid}")).json() == rel
    assert await seen_from(client, family["Byron"]) == [("outgoing", "parent_of", "Ada")]
    r = await client.get("/v1/relation-types", params={"query": "parent_of"})
    assert r.json()["items"][0]["uses"] == 1
    assert (await client.get(f"/v1/relationships/{other['relationship_id']}")).status_code \
        == 200


async def test_a_relationship_stays_hidden_until_both_ends_are_restored(client, family):
    rel = await relate(client, family["Ada"], "friend_of", family["Augusta"])
    url = f"/v1/relationships/{rel['relationship_id']}"
    for name in ("Ada", "Augusta"):
        assert (await client.delete(f"/v1/entities/{family[name]}")).status_code == 204
    await client.post(f"/v1/entities/{family['Ada']}/restore")
    assert (await client.get(url)).status_code == 404
    assert await seen_from(client, family["Ada"]) == []
    await client.post(f"/v1/entities/{family['Augusta']}/restore")
    assert (await client.get(url)).status_code == 200
    assert await seen_from(client, family["Ada"]) == [("outgoing", "friend_of", "Augusta")]


async def test_restoring_a_live_entity_changes_nothing(client, family):
    rel = await relate(client, family["Ada"], "friend_of", family["Augusta"])
    assert (await client.post(f"/v1/entities/{family['Ada']}/restore")).status_code == 200
    assert (await client.get(f"/v1/relationships/{rel['relationship_id']}")).status_code \
        == 200


# -- change and delete -------------------------------------------------------------------

async def test_patch_changes_type_fields_and_bounds(client, family):
    rel = await relate(client, family["Byron"], "spouse_of", family["Annabella"],
                       fields={"place": "Seaham", "witnesses": 2}, valid_from="1815-01-02")
    url = f"/v1/relationships/{rel['relationship_id']}"
    r = await client.patch(url, json={"type": "former_spouse_of",
                                      "fields": {"witnesses": None, "ended": "separation"},
                                      "valid_to": "1816-04-21"})
    assert r.status_code == 200, r.text
    changed = r.json()
    assert changed["type"] == "former_spouse_of"
    assert changed["fields"] == {"place": "Seaham", "ended": "separation"}
    assert (changed["valid_from"], changed["valid_to"]) == ("1815-01-02", "1816-04-21")
    assert changed["updated_at"] > rel["updated_at"]
    assert (await client.get(url)).json() == changed
    assert await seen_from(client, family["Annabella"]) == [
        ("incoming", "former_spouse_of", "Byron")]
    assert (await type_names(client, "spouse")) == ["spouse_of"]
    uses = (await client.get("/v1/relation-types", params={"query": "former"})).json()
    assert uses["items"][0]["uses"] == 1

    r = await client.patch(url, json={"valid_from": None})
    assert r.json()["valid_from"] is None and r.json()["valid_to"] == "1816-04-21"


async def test_patch_rechecks_duplicates_bounds_and_names(client, family):
    await relate(client, family["Ada"], "friend_of", family["Augusta"])
    rel = await relate(client, family["Augusta"], "rival_of", family["Ada"],
                       valid_from="1830-01-01")
    url = f"/v1/relationships/{rel['relationship_id']}"
    assert_envelope(await client.patch(url, json={"type": "friend_of"}), 409,
                    "relationship_exists")
    r = await client.patch(url, json={"valid_to": "1829-12-31"})
    assert assert_envelope(r, 422)["details"][0]["path"] == "$.valid_from"
    r = await client.patch(url, json={"type": "Friend"})
    assert assert_envelope(r, 422)["details"][0]["path"] == "$.type"
    # the ends of a relationship never change
    r = await client.patch(url, json={"to_entity_id": family["Byron"]})
    assert "unknown field `to_entity_id`" in assert_envelope(r, 422)["message"]
    assert (await client.get(url)).json() == rel


async def test_delete_is_soft_and_final(client, family):
    rel = await relate(client, family["Ada"], "friend_of", family["Augusta"])
    url = f"/v1/relationships/{rel['relationship_id']}"
    r = await client.delete(url)
    assert r.status_code == 204 and r.content == b""
    assert_envelope(await client.get(url), 404, "relationship_not_found")
    assert_envelope(await client.delete(url), 404, "relationship_not_found")
    assert await seen_from(client, family["Ada"]) == []
    assert await seen_from(client, family["Augusta"]) == []


# -- paging ------------------------------------------------------------------------------

async def test_pages_follow_the_cursor_over_both_directions(client):
    hub = await entity(client, "Hub")
    expected = []
    for i in range(23):
        other = await entity(client, f"P{i:02}")
        if i % 3:
            await relate(client, hub, "friend_of", other)
        else:
            await relate(client, other, "parent_of", hub)
        expected.append(f"P{i:02}")
    seen, cursor, pages = [], None, 0
    while True:
        page = await listing(client, hub, limit=5, **({"cursor": cursor} if cursor else {}))
        assert len(page["items"]) <= 5
        seen += [i["other_display_name"] for i in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == expected and pages == 5
    assert len((await listing(client, hub))["items"]) == 23
    page = await listing(client, hub, limit=10, type="parent_of")
    assert [i["other_display_name"] for i in page["items"]] == [
        f"P{i:02}" for i in range(0, 23, 3)]
    assert page["next_cursor"] is None


# -- events ------------------------------------------------------------------------------

async def test_every_change_records_one_event(client, family):
    r = await client.post("/v1/relationships", json={
        "from_entity_id": family["Byron"], "to_entity_id": family["Ada"],
        "type": "parent_of"}, headers={"X-Correlation-ID": "c-create"})
    rel = r.json()
    url = f"/v1/relationships/{rel['relationship_id']}"
    await client.patch(url, json={"fields": {"x": 1}}, headers={"X-Correlation-ID": "c-patch"})
    await client.patch(url, json={"fields": {"x": 1}})  # no change: no event
    await client.delete(url, headers={"X-Correlation-ID": "c-delete"})
    r = await client.get("/v1/events", params={"type": "relationship."})
    events = r.json()["items"]
    assert [(e["type"], e["correlation_id"]) for e in events] == [
        ("relationship.created", "c-create"), ("relationship.updated", "c-patch"),
        ("relationship.deleted", "c-delete")]
    assert events[0]["data"] == {"relationship_id": rel["relationship_id"],
                                 "from_entity_id": family["Byron"],
                                 "to_entity_id": family["Ada"], "type": "parent_of"}
    assert events[1]["data"] == {"relationship_id": rel["relationship_id"],
                                 "changed": ["fields"]}
    assert events[2]["data"]["relationship_id"] == rel["relationship_id"]


# -- scopes ------------------------------------------------------------------------------

async def test_routes_need_a_credential_and_declare_their_scopes(client, anon):
    assert_envelope(await anon.get("/v1/relationships", params={"entity_id": UNKNOWN_ID}),
                    401)
    assert_envelope(await anon.get("/v1/relation-types"), 401)
    r = await client.get("/openapi.json")
    paths = r.json()["paths"]
    assert {"/v1/relationships", "/v1/relationships/{relationship_id}",
            "/v1/relation-types"} <= set(paths)

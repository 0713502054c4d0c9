"""Optimistic concurrency on ``/v1/entities``: versions, ``ETag``, ``If-None-Match`` (304) and
``If-Match`` (412 when the client's copy is stale, 400 when the header is malformed)."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
import pytest

from tests.kernel.conftest import assert_envelope
from tests.media import upload_image

UNKNOWN_ID = "0" * 64
STRONG_TAG = re.compile(r'^"\d+"$')


async def create(client: httpx.AsyncClient, name: str = "Ada Lovelace", **body: Any
                 ) -> httpx.Response:
    r = await client.post("/v1/entities", json={"display_name": name, **body})
    assert r.status_code == 201, r.text
    return r


async def entity_events(client: httpx.AsyncClient) -> list[tuple[str, str]]:
    r = await client.get("/v1/events", params={"type": "entity."})
    assert r.status_code == 200, r.text
    return [(e["type"], e["data"]["entity_id"]) for e in r.json()["items"]]


async def current(client: httpx.AsyncClient, entity_id: str, **params: Any) -> httpx.Response:
    r = await client.get(f"/v1/entities/{entity_id}", params=params)
    assert r.status_code == 200, r.text
    return r


def tag(version: int) -> str:
    return f'"{version}"'


@pytest.fixture
async def ada(client: httpx.AsyncClient) -> dict[str, Any]:
    """A fresh entity at version 1, with the URL to change it."""
    entity = (await create(client, tags=["math"], fields={"born": 1815})).json()
    return {**entity, "url": f"/v1/entities/{entity['entity_id']}"}


# -- ETag --------------------------------------------------------------------------------

async def test_every_answer_carrying_the_entity_carries_its_version_as_etag(client):
    created = await create(client)
    entity = created.json()
    assert entity["version"] == 1
    assert created.headers["etag"] == '"1"'
    url = f"/v1/entities/{entity['entity_id']}"
    got = await client.get(url)
    assert got.headers["etag"] == '"1"' and got.json()["version"] == 1

    patched = await client.patch(url, json={"display_name": "Ada King"})
    assert patched.status_code == 200
    assert patched.headers["etag"] == '"2"' and patched.json()["version"] == 2
    assert (await client.get(url)).headers["etag"] == '"2"'

    deleted = await client.delete(url)
    assert deleted.status_code == 204
    gone = await current(client, entity["entity_id"], include_deleted="true")
    assert gone.headers["etag"] == '"3"' and gone.json()["version"] == 3

    restored = await client.post(url + "/restore")
    assert restored.status_code == 200
    assert restored.headers["etag"] == '"4"' and restored.json()["version"] == 4
    assert (await client.get(url)).headers["etag"] == '"4"'
    for r in (created, got, patched, restored):
        assert STRONG_TAG.match(r.headers["etag"]), r.headers["etag"]


async def test_each_entity_has_its_own_version(client, ada):
    other = (await create(client, "Grace Hopper")).json()
    await client.patch(ada["url"], json={"display_name": "Ada King"})
    await client.patch(ada["url"], json={"tags": []})
    assert (await current(client, ada["entity_id"])).headers["etag"] == '"3"'
    assert (await current(client, other["entity_id"])).headers["etag"] == '"1"'


async def test_a_patch_that_changes_nothing_keeps_the_version(client, ada):
    r = await client.patch(ada["url"], json={"display_name": "Ada Lovelace", "tags": ["math"],
                                             "fields": {"born": 1815}})
    assert r.status_code == 200
    assert r.headers["etag"] == '"1"'
    assert r.json() == {k: v for k, v in ada.items() if k != "url"}
    empty = await client.patch(ada["url"], json={})
    assert empty.status_code == 200 and empty.headers["etag"] == '"1"'
    # restoring a live entity changes nothing either
    restore = await client.post(ada["url"] + "/restore")
    assert restore.status_code == 200 and restore.headers["etag"] == '"1"'
    assert (await client.get(ada["url"])).headers["etag"] == '"1"'


async def test_every_kind_of_change_bumps_the_version(client, ada):
    image = await upload_image(client)
    changes = [{"display_name": "Ada King"}, {"aliases": ["Countess"]}, {"tags": ["poet"]},
               {"fields": {"city": "London"}}, {"fields": {"city": None}},
               {"plugin_data": {"trainer": {"steps": 1}}},
               {"primary_thumbnail_asset_id": image}]
    for version, change in enumerate(changes, start=2):
        r = await client.patch(ada["url"], json=change)
        assert r.status_code == 200, r.text
        assert r.headers["etag"] == tag(version), change


# -- If-None-Match -----------------------------------------------------------------------

async def test_if_none_match_with_the_current_tag_is_304_without_a_body(client, ada):
    r = await client.get(ada["url"], headers={"If-None-Match": '"1"'})
    assert r.status_code == 304
    assert r.content == b""
    assert r.headers["etag"] == '"1"'
    # a list naming it, a weak form of it, and * all mean "I have it"
    for header in ('"7", "1"', 'W/"1"', "*"):
        r = await client.get(ada["url"], headers={"If-None-Match": header})
        assert r.status_code == 304, header


async def test_if_none_match_with_an_old_tag_gets_the_new_entity(client, ada):
    await client.patch(ada["url"], json={"display_name": "Ada King"})
    r = await client.get(ada["url"], headers={"If-None-Match": '"1"'})
    assert r.status_code == 200
    assert r.headers["etag"] == '"2"'
    assert r.json()["display_name"] == "Ada King"
    # and the new tag is 304 again
    r = await client.get(ada["url"], headers={"If-None-Match": r.headers["etag"]})
    assert r.status_code == 304


async def test_if_none_match_does_not_hide_a_missing_entity(client, ada):
    r = await client.get(f"/v1/entities/{UNKNOWN_ID}", headers={"If-None-Match": "*"})
    assert_envelope(r, 404, "entity_not_found")
    await client.delete(ada["url"])
    r = await client.get(ada["url"], headers={"If-None-Match": '"2"'})
    assert_envelope(r, 404, "entity_not_found")


# -- If-Match: success -------------------------------------------------------------------

async def test_patch_with_the_current_tag_saves(client, ada):
    r = await client.patch(ada["url"], json={"display_name": "Ada King"},
                           headers={"If-Match": '"1"'})
    assert r.status_code == 200, r.text
    assert r.headers["etag"] == '"2"'
    # the new tag is what the next write names
    r = await client.patch(ada["url"], json={"tags": ["poet"]},
                           headers={"If-Match": r.headers["etag"]})
    assert r.status_code == 200, r.text
    assert r.json()["tags"] == ["poet"] and r.headers["etag"] == '"3"'


async def test_delete_and_restore_with_the_current_tag_succeed(client, ada):
    r = await client.delete(ada["url"], headers={"If-Match": '"1"'})
    assert r.status_code == 204
    deleted = await current(client, ada["entity_id"], include_deleted="true")
    assert deleted.json()["deleted_at"] is not None
    r = await client.post(ada["url"] + "/restore",
                          headers={"If-Match": deleted.headers["etag"]})
    assert r.status_code == 200, r.text
    assert r.json()["deleted_at"] is None and r.headers["etag"] == '"3"'
    assert await entity_events(client) == [
        ("entity.created", ada["entity_id"]), ("entity.deleted", ada["entity_id"]),
        ("entity.restored", ada["entity_id"])]


async def test_if_match_star_matches_any_version(client, ada):
    await client.patch(ada["url"], json={"display_name": "Ada King"})
    r = await client.patch(ada["url"], json={"display_name": "Ada"}, headers={"If-Match": "*"})
    assert r.status_code == 200 and r.headers["etag"] == '"3"'
    assert (await client.delete(ada["url"], headers={"If-Match": " * "})).status_code == 204
    r = await client.post(ada["url"] + "/restore", headers={"If-Match": "*"})
    assert r.status_code == 200 and r.json()["deleted_at"] is None


async def test_if_match_list_with_the_current_tag_among_others_matches(client, ada):
    await client.patch(ada["url"], json={"display_name": "Ada King"})  # now at 2
    r = await client.patch(ada["url"], json={"tags": ["poet"]},
                           headers={"If-Match": '"1", "2", "9"'})
    assert r.status_code == 200, r.text
    assert r.headers["etag"] == '"3"'
    r = await client.patch(ada["url"], json={"tags": []},
                           headers={"If-Match": '"opaque",W/"3","3"'})
    assert r.status_code == 200, r.text
    assert r.headers["etag"] == '"4"'


@pytest.mark.parametrize("header", ['"1",', ', "1"', '"7", , "1"', ',,"1",,'])
async def test_empty_list_elements_are_ignored(client, ada, header):
    r = await client.patch(ada["url"], json={"display_name": "Ada King"},
                           headers={"If-Match": header})
    assert r.status_code == 200, r.text
    assert r.headers["etag"] == '"2"'


async def test_a_matching_tag_on_a_patch_that_changes_nothing_is_fine(client, ada):
    r = await client.patch(ada["url"], json={"display_name": "Ada Lovelace"},
                           headers={"If-Match": '"1"'})
    assert r.status_code == 200 and r.headers["etag"] == '"1"'


# -- If-Match: stale ---------------------------------------------------------------------

def assert_stale(r: httpx.Response, current_version: int) -> None:
    error = assert_envelope(r, 412, "precondition_failed")
    assert error["details"] == [{"current_version": current_version}]
    assert "changed" in error["message"]


async def test_patch_with_a_stale_tag_is_412_and_changes_nothing(client, ada):
    await client.patch(ada["url"], json={"display_name": "Ada King"})  # someone else: v2
    before = (await client.get(ada["url"])).json()
    events = await entity_events(client)

    r = await client.patch(ada["url"], json={"display_name": "Mine", "tags": ["mine"],
                                             "fields": {"born": None}},
                           headers={"If-Match": '"1"'})
    assert_stale(r, 2)
    assert (await client.get(ada["url"])).json() == before
    assert await entity_events(client) == events
    # nothing leaked into search or tag filters either
    names = await client.get("/v1/entities", params={"tag": "mine"})
    assert names.json()["items"] == []
    found = await client.get("/v1/entities", params={"q": "Mine"})
    assert found.json()["items"] == []


async def test_a_stale_tag_is_refused_even_when_the_patch_would_change_nothing(client, ada):
    await client.patch(ada["url"], json={"display_name": "Ada King"})
    r = await client.patch(ada["url"], json={"display_name": "Ada King"},
                           headers={"If-Match": '"1"'})
    assert_stale(r, 2)


async def test_delete_with_a_stale_tag_is_412_and_the_entity_stays(client, ada):
    await client.patch(ada["url"], json={"tags": []})
    events = await entity_events(client)
    r = await client.delete(ada["url"], headers={"If-Match": '"1"'})
    assert_stale(r, 2)
    live = await client.get(ada["url"])
    assert live.status_code == 200
    assert live.json()["deleted_at"] is None and live.headers["etag"] == '"2"'
    assert await entity_events(client) == events
    listed = await client.get("/v1/entities")
    assert [e["entity_id"] for e in listed.json()["items"]] == [ada["entity_id"]]


async def test_restore_with_a_stale_tag_is_412_and_it_stays_deleted(client, ada):
    await client.delete(ada["url"])  # v2
    events = await entity_events(client)
    r = await client.post(ada["url"] + "/restore", headers={"If-Match": '"1"'})
    assert_stale(r, 2)
    assert_envelope(await client.get(ada["url"]), 404, "entity_not_found")
    deleted = await current(client, ada["entity_id"], include_deleted="true")
    assert deleted.json()["deleted_at"] is not None and deleted.headers["etag"] == '"2"'
    assert await entity_events(client) == events


async def test_a_weak_tag_never_matches(client, ada):
    for method, url, body in (("PATCH", ada["url"], {"display_name": "Weak"}),
                              ("DELETE", ada["url"], None)):
        r = await client.request(method, url, json=body, headers={"If-Match": 'W/"1"'})
        assert_stale(r, 1)
    await client.delete(ada["url"])
    r = await client.post(ada["url"] + "/restore", headers={"If-Match": 'W/"2"'})
    assert_stale(r, 2)
    assert await entity_events(client) == [
        ("entity.created", ada["entity_id"]), ("entity.deleted", ada["entity_id"])]


@pytest.mark.parametrize("header", ['"0"', '"2"', '"01"', '"1.0"', '"01x"', '"abc"', '""',
                                    '"99999999999999999999999"', '"-1"', '"+1"'])
async def test_a_tag_that_is_not_the_current_version_does_not_match(client, ada, header):
    r = await client.patch(ada["url"], json={"display_name": "Nope"},
                           headers={"If-Match": header})
    assert_stale(r, 1)
    assert (await client.get(ada["url"])).json()["display_name"] == "Ada Lovelace"


async def test_a_tag_of_other_digits_is_just_another_tag(client, ada):
    """Latin-1 "²" passes str.isdigit but is no version: a 412, not a crash."""
    for value in ('"\xb2"', '"\xb9"', '"1\xb2"'):
        r = await client.patch(ada["url"], json={"display_name": "Nope"},
                               headers={"If-Match": value.encode("latin-1")})
        assert_stale(r, 1)
        r = await client.get(ada["url"], headers={"If-None-Match": value.encode("latin-1")})
        assert r.status_code == 200
    assert (await client.get(ada["url"])).json()["display_name"] == "Ada Lovelace"


# -- If-Match: malformed -----------------------------------------------------------------

@pytest.mark.parametrize("header", ["1", '"1', '1"', "W/1", "'1'", '"1" "2"', '"1", 2',
                                    "**", '*, "1"', "abc", 'w/"1"', ",", " , ", ""])
async def test_a_malformed_if_match_is_400_and_changes_nothing(client, ada, header):
    for method, url, body in (("PATCH", ada["url"], {"display_name": "Bad"}),
                              ("DELETE", ada["url"], None),
                              ("POST", ada["url"] + "/restore", None)):
        r = await client.request(method, url, json=body, headers={"If-Match": header})
        error = assert_envelope(r, 400, "invalid_if_match")
        assert "If-Match" in error["message"], (method, header)
    got = await client.get(ada["url"])
    assert got.json()["display_name"] == "Ada Lovelace" and got.headers["etag"] == '"1"'
    assert await entity_events(client) == [("entity.created", ada["entity_id"])]


async def test_if_match_on_an_unknown_entity_is_404(client):
    url = f"/v1/entities/{UNKNOWN_ID}"
    for headers in ({"If-Match": '"1"'}, {"If-Match": "*"}):
        r = await client.patch(url, json={"display_name": "x"}, headers=headers)
        assert_envelope(r, 404, "entity_not_found")
        assert_envelope(await client.delete(url, headers=headers), 404, "entity_not_found")


# -- races -------------------------------------------------------------------------------

async def test_two_writers_with_the_same_tag_one_wins_one_gets_412(client, ada):
    a, b = await asyncio.gather(
        client.patch(ada["url"], json={"display_name": "Writer A"},
                     headers={"If-Match": '"1"'}),
        client.patch(ada["url"], json={"display_name": "Writer B"},
                     headers={"If-Match": '"1"'}))
    assert sorted([a.status_code, b.status_code]) == [200, 412], (a.text, b.text)
    winner, loser = (a, b) if a.status_code == 200 else (b, a)
    assert winner.headers["etag"] == '"2"'
    assert_stale(loser, 2)
    saved = (await client.get(ada["url"])).json()
    assert saved == winner.json()
    assert saved["version"] == 2
    updates = [e for e in await entity_events(client) if e[0] == "entity.updated"]
    assert len(updates) == 1


async def test_many_writers_with_the_same_tag_exactly_one_wins(client, ada):
    responses = await asyncio.gather(*(
        client.patch(ada["url"], json={"display_name": f"Writer {i}"},
                     headers={"If-Match": '"1"'}) for i in range(8)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [412] * 7, [r.text for r in responses]
    (winner,) = [r for r in responses if r.status_code == 200]
    assert (await client.get(ada["url"])).json()["display_name"] == winner.json()["display_name"]


async def test_a_delete_and_a_patch_racing_on_the_same_tag_one_wins(client, ada):
    patched, deleted = await asyncio.gather(
        client.patch(ada["url"], json={"display_name": "Patched"},
                     headers={"If-Match": '"1"'}),
        client.delete(ada["url"], headers={"If-Match": '"1"'}))
    if patched.status_code == 200:
        # the patch went first: the delete names a version that is gone
        assert_stale(deleted, 2)
        assert (await client.get(ada["url"])).json()["display_name"] == "Patched"
    else:
        # the delete went first: there is no live entity to patch any more
        assert deleted.status_code == 204
        assert patched.status_code in (404, 412), patched.text
        gone = await current(client, ada["entity_id"], include_deleted="true")
        assert gone.json()["display_name"] == "Ada Lovelace"
    assert len(await entity_events(client)) == 2  # the create and exactly one change

"""The same bytes again: the existing asset (200, ``"deduplicated": true``) with everything
the request asked for applied — kind, metadata, links, source — and the events to match;
the bytes of a deleted asset revive it."""

from __future__ import annotations

import asyncio

from tests.plugins_builtin.assets.conftest import (
    PNG,
    events,
    last_event_id,
    make_entity,
    sha,
    upload,
    uploaded,
)


async def test_the_same_bytes_answer_200_with_the_existing_asset(client, store):
    first = await uploaded(client, PNG, "first.png")
    blob = store.blob_path(first["asset_id"])
    stored_at = blob.stat().st_mtime_ns
    after = await last_event_id(client)
    r = await upload(client, PNG, "second-name.png")
    assert r.status_code == 200, r.text
    again = r.json()
    assert again["deduplicated"] is True
    assert again["asset_id"] == first["asset_id"]
    # nothing was asked for that the asset lacks: it is unchanged, and no event says otherwise
    assert again["filename"] == "first.png" and again["version"] == first["version"]
    assert r.headers["etag"] == f'"{first["version"]}"'
    assert await events(client, after=after) == []
    assert blob.stat().st_mtime_ns == stored_at  # a blob is never rewritten
    assert store.staged() == frozenset()
    listed = await client.get("/v1/assets")
    assert [a["asset_id"] for a in listed.json()["items"]] == [first["asset_id"]]


async def test_a_dedupe_applies_the_requests_kind_metadata_links_and_source(client):
    source = await uploaded(client, b"the source", "source.bin")
    first = await uploaded(client, PNG, "photo.png", fields={"meta": '{"a": 1, "b": 2}'})
    assert first["kind"] == "image.original"
    ada, bob = await make_entity(client, "Ada"), await make_entity(client, "Bob")
    after = await last_event_id(client)
    again = await uploaded(client, PNG, "photo.png", status=200, fields={
        "kind": "image.thumbnail", "meta": '{"b": 3, "c": 4}', "entity_id": [ada, bob],
        "role": "portrait", "derived_from_asset_id": source["asset_id"]})
    assert again["deduplicated"] is True
    assert again["kind"] == "image.thumbnail"
    assert again["user_metadata"] == {"a": 1, "b": 3, "c": 4}
    assert sorted(again["linked_entity_ids"]) == sorted([ada, bob])
    assert again["derived_from_asset_id"] == source["asset_id"]
    assert again["version"] == first["version"] + 1
    got = await client.get(f"/v1/assets/{first['asset_id']}")
    assert {k: v for k, v in got.json().items()} == {
        k: v for k, v in again.items() if k != "deduplicated"}
    for entity_id in (ada, bob):
        r = await client.get(f"/v1/entities/{entity_id}/assets")
        assert [(a["asset_id"], a["role"]) for a in r.json()["items"]] == [
            (first["asset_id"], "portrait")]
    seen = [(e["type"], e["data"]) for e in await events(client, after=after)]
    assert seen == [
        ("asset.updated", {"asset_id": first["asset_id"], "deduplicated": True}),
        ("asset.linked", {"asset_id": first["asset_id"], "entity_id": ada, "role": "portrait"}),
        ("asset.linked", {"asset_id": first["asset_id"], "entity_id": bob, "role": "portrait"}),
    ]


async def test_a_dedupe_without_a_kind_keeps_the_assets_kind(client):
    first = await uploaded(client, b"\x00" * 32, "style.safetensors")
    assert first["kind"] == "model.lora"
    again = await uploaded(client, b"\x00" * 32, "renamed.bin", status=200)
    assert again["kind"] == "model.lora"


async def test_a_dedupe_that_only_links_writes_only_the_link_event(client):
    first = await uploaded(client, b"link me later", "later.bin")
    ada = await make_entity(client)
    after = await last_event_id(client)
    again = await uploaded(client, b"link me later", "later.bin", status=200,
                           params={"entity_id": ada})
    assert again["linked_entity_ids"] == [ada]
    assert [(e["type"], e["data"]) for e in await events(client, after=after)] == [
        ("asset.linked", {"asset_id": first["asset_id"], "entity_id": ada, "role": None})]
    # linking again with the same nothing: no change, no event
    after = await last_event_id(client)
    await uploaded(client, b"link me later", "later.bin", status=200,
                   params={"entity_id": ada})
    assert await events(client, after=after) == []


async def test_the_bytes_of_a_deleted_asset_revive_it(client, kernel, store):
    ada = await make_entity(client)
    first = await uploaded(client, PNG, "old-name.png", fields={
        "meta": '{"old": true}', "kind": "image.thumbnail", "entity_id": ada})
    assert (await client.delete(f"/v1/assets/{first['asset_id']}")).status_code == 204
    await kernel.services["assets.collector"].sweep()
    assert not store.blob_path(first["asset_id"]).exists()
    after = await last_event_id(client)
    r = await upload(client, PNG, "new-name.png", fields={"meta": '{"new": true}'})
    assert r.status_code == 201, r.text
    revived = r.json()
    assert revived["deduplicated"] is False
    assert revived["asset_id"] == first["asset_id"]
    assert revived["deleted_at"] is None and revived["blob_present"] is True
    # a fresh start: this upload's name, kind and metadata, not the deleted asset's
    assert revived["filename"] == "new-name.png"
    assert revived["kind"] == "image.original"
    assert revived["user_metadata"] == {"new": True}
    assert first["linked_entity_ids"] == [ada] and revived["linked_entity_ids"] == []
    assert (await client.get(f"/v1/entities/{ada}/assets")).json()["items"] == []
    assert revived["version"] > first["version"]
    assert store.blob_path(first["asset_id"]).read_bytes() == PNG
    got = await client.get(f"/v1/assets/{first['asset_id']}")
    assert got.status_code == 200 and got.json()["filename"] == "new-name.png"
    [created] = await events(client, "asset.created", after=after)
    assert created["data"]["asset_id"] == first["asset_id"]
    assert created["data"]["revived"] is True


async def test_a_blob_removed_by_hand_is_stored_again_by_the_same_bytes(client, store):
    first = await uploaded(client, b"lost and found", "lost.bin")
    blob = store.blob_path(first["asset_id"])
    blob.unlink()
    r = await client.get(f"/v1/assets/{first['asset_id']}/download")
    assert r.status_code == 404 and r.json()["error"]["code"] == "blob_missing"
    again = await uploaded(client, b"lost and found", "lost.bin", status=200)
    assert again["deduplicated"] is True
    assert blob.read_bytes() == b"lost and found"
    r = await client.get(f"/v1/assets/{first['asset_id']}/download")
    assert r.status_code == 200 and r.content == b"lost and found"


async def test_concurrent_uploads_of_the_same_bytes_make_one_asset(client, store):
    data = b"raced" * 100_000
    results = await asyncio.gather(*(upload(client, data, f"copy-{i}.bin") for i in range(8)))
    statuses = sorted(r.status_code for r in results)
    assert statuses == [200] * 7 + [201]
    assert {r.json()["asset_id"] for r in results} == {sha(data)}
    assert await store.rows() == {sha(data)}
    assert store.blobs() == {sha(data)} and store.staged() == frozenset()
    assert store.blob_path(sha(data)).read_bytes() == data

"""What a finished tus upload becomes: an asset through the same ingest path as
``POST /v1/assets/upload`` — its id is the sha256 of the bytes, the usual events, dedupe —
and nothing of the upload is left in ``tmp/``."""

from __future__ import annotations

import os

import httpx
import pytest

from tests.plugins_builtin.assets.conftest import (
    PNG,
    events,
    last_event_id,
    make_entity,
    sha,
    uploaded,
)
from tests.plugins_builtin.assets.tus import (
    Tus,
    asset_id_of,
    metadata,
    tmp_files,
)

DATA = os.urandom(300 * 1024)


@pytest.fixture
def tus(client: httpx.AsyncClient) -> Tus:
    return Tus(client)


async def test_the_asset_has_the_bytes_and_their_sha256(tus, client, store):
    r = await tus.upload(DATA, metadata(filename="weights.safetensors"), chunk=100_000)
    asset_id = asset_id_of(r, DATA)
    asset = (await client.get(f"/v1/assets/{asset_id}")).json()
    assert asset["asset_id"] == asset["content_hash"] == sha(DATA)
    assert asset["size"] == len(DATA)
    assert asset["filename"] == "weights.safetensors"
    assert asset["kind"] == "model.lora"  # the same defaults as a multipart upload
    assert store.blob_path(asset_id).read_bytes() == DATA
    download = await client.get(f"/v1/assets/{asset_id}/download")
    assert download.content == DATA


async def test_nothing_of_a_finished_upload_stays_in_tmp(tus, settings):
    before = tmp_files(settings)
    await tus.upload(DATA, chunk=100_000)
    assert tmp_files(settings) == before


async def test_the_asset_created_event_is_written(tus, client):
    after = await last_event_id(client)
    ada = await make_entity(client)
    asset_id_of(await tus.upload(PNG, metadata(filename="p.png", entity_id=ada)), PNG)
    seen = await events(client, "asset.", after)
    created = [e for e in seen if e["type"] == "asset.created"]
    assert [e["data"]["asset_id"] for e in created] == [sha(PNG)]
    linked = [e for e in seen if e["type"] == "asset.linked"]
    assert [(e["data"]["asset_id"], e["data"]["entity_id"]) for e in linked] == [
        (sha(PNG), ada)]


async def test_bytes_already_an_asset_are_deduplicated_and_linked(tus, client):
    existing = await uploaded(client, DATA, "first.bin")
    ada = await make_entity(client)
    after = await last_event_id(client)
    path = await tus.created(len(DATA), metadata(filename="again.bin", entity_id=ada,
                                                 meta='{"pass": 2}'))
    await tus.patched(path, DATA[:1000], 0)
    r = await tus.patched(path, DATA[1000:], 1000)
    assert asset_id_of(r, DATA, deduplicated=True) == existing["asset_id"]
    asset = (await client.get(f"/v1/assets/{existing['asset_id']}")).json()
    assert asset["linked_entity_ids"] == [ada]
    assert asset["user_metadata"] == {"pass": 2}
    assert [e["type"] for e in await events(client, "asset.created", after)] == []
    listed = (await client.get("/v1/assets")).json()["items"]
    assert [a["asset_id"] for a in listed] == [existing["asset_id"]]


async def test_two_uploads_of_the_same_bytes_make_one_asset(tus, client):
    first = await tus.created(len(DATA))
    second = await tus.created(len(DATA))
    await tus.patched(first, DATA[:5000], 0)
    await tus.patched(second, DATA[:7000], 0)
    asset_id_of(await tus.patched(first, DATA[5000:], 5000), DATA)
    asset_id_of(await tus.patched(second, DATA[7000:], 7000), DATA, deduplicated=True)
    assert (await tus.status(first))["asset_id"] == (await tus.status(second))["asset_id"]
    assert (await client.get(f"/v1/assets/{sha(DATA)}/download")).content == DATA


async def test_uploads_interleaved_do_not_mix_their_bytes(tus, client):
    a, b = os.urandom(50_000), os.urandom(50_000)
    pa, pb = await tus.created(len(a)), await tus.created(len(b))
    for start in range(0, 50_000, 10_000):
        ra = await tus.patched(pa, a[start:start + 10_000], start)
        rb = await tus.patched(pb, b[start:start + 10_000], start)
    for r, data in ((ra, a), (rb, b)):
        asset_id = asset_id_of(r, data)
        assert (await client.get(f"/v1/assets/{asset_id}/download")).content == data

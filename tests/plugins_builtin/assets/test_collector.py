"""The blob collector: the bytes of a deleted asset go once no live asset needs them, and
never while (or after) an upload of the same bytes brings the asset back."""

from __future__ import annotations

import asyncio
import os

import pytest

from tests.kernel.conftest import eventually
from tests.plugins_builtin.assets.conftest import PNG, sha, upload, uploaded

MiB = 1024 * 1024


@pytest.fixture
async def collector(kernel):
    """The collector with its background task stopped: sweeps happen when the test says."""
    collector = kernel.services["assets.collector"]
    await collector.stop()
    return collector


async def test_a_sweep_removes_the_blob_of_a_deleted_asset_only(client, store, collector):
    kept = await uploaded(client, PNG, "kept.png")
    gone = await uploaded(client, b"to be collected", "gone.bin")
    assert await collector.sweep() == 0
    await client.delete(f"/v1/assets/{gone['asset_id']}")
    assert store.blob_path(gone["asset_id"]).exists()  # soft delete: not yet
    assert await collector.sweep() == 1
    assert not store.blob_path(gone["asset_id"]).exists()
    assert store.blob_path(kept["asset_id"]).read_bytes() == PNG
    record = await client.get(f"/v1/assets/{gone['asset_id']}",
                              params={"include_deleted": "true"})
    assert record.json()["blob_present"] is False
    assert await collector.sweep() == 0


async def test_the_running_collector_removes_the_bytes_soon_after_a_delete(client, store):
    asset = await uploaded(client, b"collected in the background", "bg.bin")
    blob = store.blob_path(asset["asset_id"])
    await client.delete(f"/v1/assets/{asset['asset_id']}")
    await eventually(lambda: not blob.exists(), what="the background collector")


async def test_a_blob_already_gone_is_collected_without_error(client, store, collector):
    asset = await uploaded(client, b"removed by hand, then deleted", "x.bin")
    store.blob_path(asset["asset_id"]).unlink()
    await client.delete(f"/v1/assets/{asset['asset_id']}")
    assert await collector.sweep() == 1
    assert (await store.row(asset["asset_id"]))[0] == "removed"


async def test_a_deleted_asset_uploaded_again_before_the_sweep_keeps_its_blob(client, store,
                                                                              collector):
    asset = await uploaded(client, PNG, "p.png")
    await client.delete(f"/v1/assets/{asset['asset_id']}")
    revived = await uploaded(client, PNG, "p.png")
    assert revived["deleted_at"] is None
    assert await collector.sweep() == 0
    assert store.blob_path(asset["asset_id"]).read_bytes() == PNG
    r = await client.get(f"/v1/assets/{asset['asset_id']}/download")
    assert r.status_code == 200 and r.content == PNG


async def yield_then_sweep(collector, turns: int) -> int:
    """Sweep after ``turns`` passes of the event loop: spreads the sweep's start over the
    upload's own steps (this orders the two; it waits for nothing)."""
    for _ in range(turns):
        await asyncio.sleep(0)
    return await collector.sweep()


async def test_an_upload_racing_the_collector_never_leaves_a_row_without_its_blob(client,
                                                                                   store):
    """Upload the bytes of a just-deleted asset while the collector sweeps (the background
    one, woken by the delete, and an explicit sweep started at a different point of the
    upload each time): whichever wins, a live asset's bytes are stored."""
    collector = store.kernel.services["assets.collector"]
    payloads = [os.urandom(size) for size in (0, 1, 4096, MiB + 3, 3 * MiB)]
    for round_ in range(40):
        data = payloads[round_ % len(payloads)]
        first = await upload(client, data, "raced.bin")
        assert first.status_code in (200, 201), first.text
        asset_id = first.json()["asset_id"]
        assert (await client.delete(f"/v1/assets/{asset_id}")).status_code == 204
        again, _ = await asyncio.gather(upload(client, data, "raced.bin"),
                                        yield_then_sweep(collector, round_))
        assert again.status_code == 201, again.text
    await collector.sweep()  # and nothing a later sweep does takes the bytes either
    live = (await client.get("/v1/assets", params={"limit": 500})).json()["items"]
    assert {a["asset_id"] for a in live} == {sha(p) for p in payloads}
    for asset in live:
        assert asset["blob_present"] is True
        assert store.blob_path(asset["asset_id"]).exists(), asset["asset_id"]
        r = await client.get(f"/v1/assets/{asset['asset_id']}/download")
        assert r.status_code == 200 and len(r.content) == asset["size"]
    assert store.staged() == frozenset()


async def test_a_sweep_at_the_worst_moment_of_an_upload_waits_for_it(client, kernel, store,
                                                                      collector, monkeypatch):
    """The sweep starts right after the upload found the deleted asset's bytes still stored
    and before it records the asset as live again: it must wait, then keep the bytes."""
    asset = await uploaded(client, PNG, "p.png")
    await client.delete(f"/v1/assets/{asset['asset_id']}")
    ingest = kernel.services["assets.ingest"]
    still_stored = ingest._still_stored
    sweeps: list[asyncio.Task[int]] = []

    async def then_sweep(row):
        stored = await still_stored(row)
        assert stored  # the bytes are there: the upload will not store them again
        sweeps.append(asyncio.create_task(collector.sweep()))
        for _ in range(50):  # let the sweep go as far as it can
            await asyncio.sleep(0)
        return stored

    monkeypatch.setattr(ingest, "_still_stored", then_sweep)
    revived = await uploaded(client, PNG, "p.png")
    [sweep] = sweeps
    assert await sweep == 0
    assert revived["deleted_at"] is None and revived["blob_present"] is True
    assert store.blob_path(asset["asset_id"]).read_bytes() == PNG
    assert (await store.row(asset["asset_id"]))[0] == "present"


async def test_blobs_that_cannot_be_removed_now_do_not_hold_up_the_others(client, kernel,
                                                                          store, collector):
    """Deleted assets on a provider that is not available (S3 switched off, say) are tried
    again later; the sweep still reaches every deleted asset behind them."""
    elsewhere = [await uploaded(client, f"held elsewhere {i}".encode(), f"s{i}.bin")
                 for i in range(3)]
    here = await uploaded(client, b"held here", "here.bin")
    for asset in [*elsewhere, here]:  # deleted first: the collector meets them first
        assert (await client.delete(f"/v1/assets/{asset['asset_id']}")).status_code == 204
    ids = [a["asset_id"] for a in elsewhere]
    await kernel.db.write(lambda tx: tx.execute(
        "UPDATE assets SET provider = 'gone-provider' WHERE asset_id IN (?, ?, ?)", ids))
    assert await kernel.services["assets.store"].collect(batch=2) == 1  # batches of 2
    assert not store.blob_path(here["asset_id"]).exists()
    assert all(store.blob_path(i).exists() for i in ids)
    assert [(await store.row(i))[0] for i in ids] == ["present"] * 3
    assert await collector.sweep() == 0

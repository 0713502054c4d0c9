"""The same bytes twice (in the folder, across batches, or already stored): one asset and one
blob, counted as ``deduplicated``; the bytes of a deleted asset bring it back."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.plugins_builtin.assets.conftest import uploaded
from tests.plugins_builtin.assets.folders import (
    all_assets,
    assets_by_id,
    content,
    many_files,
    run_import,
    sha,
    shas,
    start_import,
    wait_for_job,
    write_tree,
)


@pytest.fixture
async def collector(kernel):
    """The blob collector, swept only when the test says."""
    collector = kernel.services["assets.collector"]
    await collector.stop()
    return collector


async def test_identical_files_in_a_folder_are_one_asset(client, store, src: Path):
    files = write_tree(src, {"a/photo.jpg": "same bytes", "b/copy of photo.jpg": "same bytes",
                             "c/other.jpg": "other bytes"})
    job = await run_import(client, src)
    assets = await all_assets(client)
    assert sorted(a["asset_id"] for a in assets) == sorted(shas(files))
    assert len(assets) == 2
    by_id = {a["asset_id"]: a for a in assets}
    assert by_id[sha(b"same bytes")]["filename"] in {"photo.jpg", "copy of photo.jpg"}
    assert store.blobs() == shas(files) == await store.rows()
    result = job["result"]
    assert (result["files"], result["imported"], result["deduplicated"]) == (3, 2, 1)
    assert store.staged() == frozenset()


async def test_identical_files_in_different_batches_are_one_asset(client, store, src: Path):
    files = many_files(src, 700, size=40)
    twin = content("file 3", 40)  # the same bytes as part-000/file-00003.bin
    files |= write_tree(src, {"zz-last/twin.bin": twin})
    job = await run_import(client, src)
    assert store.blobs() == shas(files) == await store.rows()
    assert len(shas(files)) == 700
    result = job["result"]
    assert (result["files"], result["imported"], result["deduplicated"]) == (701, 700, 1)


async def test_a_file_already_stored_adds_no_blob(client, store, src: Path):
    first = await uploaded(client, b"uploaded before", "uploaded.bin")
    blob = store.blob_path(first["asset_id"])
    stored_at = blob.stat().st_mtime_ns
    before = store.blobs()
    files = write_tree(src, {"renamed.bin": b"uploaded before", "new.bin": b"new"})
    job = await run_import(client, src)

    assert store.blobs() == before | {sha(b"new")}
    assert blob.stat().st_mtime_ns == stored_at  # a blob is never rewritten
    assets = await assets_by_id(client)
    assert set(assets) == shas(files)
    assert assets[first["asset_id"]]["filename"] == "uploaded.bin"
    assert assets[first["asset_id"]]["version"] == first["version"]
    result = job["result"]
    assert (result["imported"], result["deduplicated"]) == (1, 1)
    assert store.staged() == frozenset()


async def test_the_bytes_of_a_deleted_asset_bring_it_back(client, store, collector,
                                                         src: Path):
    gone = await uploaded(client, b"deleted, then imported", "gone.bin")
    await client.delete(f"/v1/assets/{gone['asset_id']}")
    assert await collector.sweep() == 1
    assert not store.blob_path(gone["asset_id"]).exists()

    write_tree(src, {"back.bin": b"deleted, then imported"})
    job = await run_import(client, src)
    r = await client.get(f"/v1/assets/{gone['asset_id']}")
    assert r.status_code == 200, r.text
    assert r.json()["deleted_at"] is None and r.json()["blob_present"] is True
    assert r.json()["filename"] == "back.bin"
    download = await client.get(f"/v1/assets/{gone['asset_id']}/download")
    assert download.content == b"deleted, then imported"
    assert job["result"]["imported"] == 1


async def test_imports_of_the_same_files_at_once_store_each_once(client, store, src: Path):
    """Two imports of one folder and one of its subfolder, all running together."""
    files = many_files(src, 1500, size=64, per_folder=500)
    started = [await start_import(client, path)
               for path in (src, src, src / "part-001")]
    jobs = [await wait_for_job(client, s["job_id"]) for s in started]
    assert [job["status"] for job in jobs] == ["succeeded"] * 3, jobs
    assert max(j["started_at"] for j in jobs) < min(j["finished_at"] for j in jobs)  # overlap
    assert store.blobs() == shas(files) == await store.rows()
    assert len(await all_assets(client)) == 1500
    assert sum(job["result"]["imported"] for job in jobs) == 1500
    assert store.staged() == frozenset()

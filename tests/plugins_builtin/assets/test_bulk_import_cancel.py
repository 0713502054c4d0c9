"""Cancelling an import mid-way: the job ends ``cancelled`` and leaves a consistent store —
every asset has its bytes, no bytes without an asset, nothing left in ``tmp/`` — and a
re-run takes the rest without duplicates."""

from __future__ import annotations

from pathlib import Path

from tests.plugins_builtin.assets.folders import (
    get_job,
    job_log,
    many_files,
    poll,
    run_import,
    shas,
    start_import,
    wait_for_job,
)

FILES = 5000


async def assert_consistent(store) -> None:
    """What a stop at any point must leave: rows and blobs in pairs, an empty tmp/."""
    rows = await store.rows()
    assert all(store.blob_path(asset_id).is_file() for asset_id in rows)
    assert store.blobs() == rows, "a blob without its row (or a row without its blob)"
    assert store.staged() == frozenset()
    assert [p for p in store.tmp_dir.rglob("*") if p.is_file()] == []


async def test_a_cancelled_import_leaves_a_consistent_store_and_a_rerun_finishes(
        client, store, tmp_path: Path):
    files = many_files(tmp_path / "src", FILES, size=4096)
    started = await start_import(client, tmp_path / "src")
    job_id = started["job_id"]

    async def some_done() -> dict | None:
        job = await get_job(client, job_id)
        assert job["status"] in ("queued", "running"), job  # not over before the cancel
        return job if job["progress"].get("counters", {}).get("files", 0) > 0 else None

    await poll(some_done, what="the first files to be imported")
    r = await client.post(f"/v1/jobs/{job_id}/cancel")
    assert r.status_code in (200, 202), r.text
    job = await wait_for_job(client, job_id)
    assert job["status"] == "cancelled", job
    assert job["finished_at"] is not None and job["result"] is None
    assert 0 < job["progress"]["counters"]["files"] < FILES
    assert any(line["message"] == "cancelled" for line in await job_log(client, job_id))

    await assert_consistent(store)
    done = await store.rows()
    assert done < shas(files)

    again = await run_import(client, tmp_path / "src")
    result = again["result"]
    assert result["files"] == FILES
    # what the cancelled run stored was recorded with it: skipped now, not read again
    assert (result["unchanged"], result["imported"]) == (len(done), FILES - len(done))
    assert (result["deduplicated"], result["failed"]) == (0, 0)
    assert store.blobs() == shas(files) == await store.rows()
    await assert_consistent(store)

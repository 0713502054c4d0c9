"""Importing a folder: every file becomes an asset (id = the SHA-256 of its bytes, its size,
its own name), with the options of the request (recursion, include / exclude globs, kind,
an entity to link); the job says exactly what it did, and its log has one line per batch
and one per problem file — not one per file."""

from __future__ import annotations

from pathlib import Path

from tests.plugins_builtin.assets.conftest import PNG, events, last_event_id, make_entity
from tests.plugins_builtin.assets.folders import (
    BULK_IMPORT,
    all_assets,
    assets_by_id,
    job_log,
    lines_about,
    many_files,
    run_import,
    sha,
    shas,
    wait_for_job,
    warnings,
    write_sidecar,
    write_tree,
)

NESTED = {
    "top.txt": "at the top\n",
    "face.png": PNG,
    "a/one.txt": "one\n",
    "a/b/two.bin": bytes(range(256)) * 3,
    "a/b/c/three.txt": "three, deep down\n",
    "z/empty.dat": b"",
}


def result_of(job: dict) -> dict:
    """The job's result, checked to have exactly the documented fields."""
    result = job["result"]
    assert set(result) == {"path", "files", "bytes", "imported", "deduplicated", "unchanged",
                           "failed", "problems", "symlinks_skipped"}, result
    return result


async def test_every_file_of_a_nested_folder_becomes_an_asset(client, store, src: Path):
    files = write_tree(src, NESTED)
    job = await run_import(client, src)

    assets = await assets_by_id(client)
    assert set(assets) == shas(files)
    for relpath, data in files.items():
        asset = assets[sha(data)]
        assert asset["size"] == len(data)
        assert asset["filename"] == relpath.rsplit("/", 1)[-1]
        assert asset["user_metadata"] == {}
        assert asset["linked_entity_ids"] == []
    assert assets[sha(PNG)]["mime_type"] == "image/png"
    assert assets[sha(PNG)]["kind"] == "image.original"
    # the bytes are copied into the store (the folder keeps its files)
    assert store.blobs() == shas(files) == await store.rows()
    for relpath, data in files.items():
        assert store.blob_path(sha(data)).read_bytes() == data
        assert (src / relpath).read_bytes() == data
        assert store.blob_path(sha(data)).stat().st_ino != (
            src / relpath).stat().st_ino  # a copy, never a hard link
    assert store.staged() == frozenset()

    total = sum(len(d) for d in files.values())
    assert result_of(job) == {"path": str(src), "files": 6, "bytes": total,
                              "imported": 6, "deduplicated": 0, "unchanged": 0,
                              "failed": 0, "problems": 0, "symlinks_skipped": 0}
    assert job["progress"]["percent"] == 100
    counters = job["progress"]["counters"]
    assert counters["files"] == counters["files_total"] == 6
    assert counters["bytes"] == counters["bytes_total"] == total
    assert counters["imported"] == 6 and counters["failed"] == 0
    assert job["error"] is None and job["attempts"] == 1

    log = await job_log(client, job["job_id"])
    assert warnings(log) == []
    assert len(lines_about(log, "batch 1:")) == 1
    assert not lines_about(log, "batch 2")
    assert any("found 6 file(s)" in line["message"] for line in log)


async def test_recursive_false_takes_only_the_top_level(client, src: Path):
    files = write_tree(src, NESTED)
    job = await run_import(client, src, recursive=False)
    top = {k: v for k, v in files.items() if "/" not in k}
    assert set(await assets_by_id(client)) == shas(top)
    assert result_of(job)["files"] == result_of(job)["imported"] == 2


async def test_include_and_exclude_globs_choose_the_files(client, src: Path):
    files = write_tree(src, {
        "keep.jpg": "k1", "Upper.JPG": "k2", "deep/er/keep.jpg": "k3",
        "notes.txt": "t1", "deep/notes.txt": "t2",
        "drafts/skip.jpg": "d1", "deep/drafts/skip.jpg": "d2",
        "deep/tmp.jpg.part": "p1", "scratch.tmp.jpg": "s1",
    })
    job = await run_import(client, src, include=["*.jpg"],
                           exclude=["drafts", "scratch*"])
    wanted = {"keep.jpg", "Upper.JPG", "deep/er/keep.jpg"}
    assert set(await assets_by_id(client)) == {sha(files[k]) for k in wanted}
    assert result_of(job)["files"] == 3

    # exclude alone: everything else is taken
    other = src.parent / "other"
    more = write_tree(other, {"a.txt": "a", "b.log": "b", "logs/c.txt": "c"})
    await run_import(client, other, exclude=["*.log", "logs"])
    assert sha(more["a.txt"]) in await assets_by_id(client)
    for name in ("b.log", "logs/c.txt"):
        assert sha(more[name]) not in await assets_by_id(client)


async def test_the_requested_kind_is_every_files_kind(client, src: Path):
    files = write_tree(src, {"face.png": PNG, "notes.txt": "n", "sub/x.bin": b"x"})
    await run_import(client, src, kind="dataset.sample")
    assets = await all_assets(client)
    assert {a["asset_id"] for a in assets} == shas(files)
    assert {a["kind"] for a in assets} == {"dataset.sample"}
    listed = await all_assets(client, kind="dataset.sample")
    assert len(listed) == 3


async def test_every_file_is_linked_to_the_entity(client, src: Path):
    ada = await make_entity(client, "Ada")
    other = await make_entity(client, "Not linked")
    files = write_tree(src, {"a.txt": "a", "b/c.txt": "c", "b/d/e.png": PNG})
    await run_import(client, src, entity_id=ada)
    assets = await all_assets(client, entity_id=ada)
    assert {a["asset_id"] for a in assets} == shas(files)
    assert all(a["linked_entity_ids"] == [ada] for a in assets)
    r = await client.get(f"/v1/entities/{ada}/assets", params={"limit": 500})
    assert {a["asset_id"] for a in r.json()["items"]} == shas(files)
    assert await all_assets(client, entity_id=other) == []


async def test_a_big_folder_logs_one_line_per_batch_not_per_file(client, store,
                                                                 src: Path):
    files = many_files(src, 1201, size=32)
    job = await run_import(client, src)
    assert store.blobs() == shas(files) == await store.rows()
    result = result_of(job)
    assert (result["files"], result["imported"], result["bytes"]) == (1201, 1201, 1201 * 32)
    counters = job["progress"]["counters"]
    assert counters["files"] == counters["files_total"] == 1201

    log = await job_log(client, job["job_id"])
    batches = [line for line in log if line["message"].startswith("batch ")]
    assert [line["message"].split(":")[0] for line in batches] == [
        "batch 1", "batch 2", "batch 3"]
    assert [line["fields"]["imported"] for line in batches] == [500, 500, 201]
    assert len(log) < 15, [line["message"] for line in log]  # not one per file
    assert warnings(log) == []


async def test_each_problem_file_has_one_warning_line_and_the_rest_is_imported(
        client, src: Path):
    files = write_tree(src, {"good.txt": "good", "sub/fine.txt": "fine",
                                  "bad.jpg": "a picture"})
    write_tree(src, {"bad.jpg_meta.json": "{not json"})
    write_sidecar(src / "sub" / "lonely_meta.json", {"who": "nobody"})
    (src / "escape.txt").symlink_to("/etc/hostname")
    job = await run_import(client, src, follow_symlinks=True)

    assert set(await assets_by_id(client)) == shas(files)
    found = warnings(await job_log(client, job["job_id"]))
    assert len(found) == 3, found
    for name in ("bad.jpg_meta.json", "sub/lonely_meta.json", "escape.txt"):
        assert len([m for m in found if name in m]) == 1, (name, found)
    result = result_of(job)
    assert (result["imported"], result["failed"]) == (3, 0)
    assert result["problems"] == 3, result


async def test_each_new_asset_has_its_event_and_the_job_its_requests_correlation_id(
        client, src: Path):
    files = write_tree(src, {"a.txt": "a", "b/c.txt": "c", "b/twin.txt": "a"})
    after = await last_event_id(client)
    r = await client.post(BULK_IMPORT, json={"path": str(src)},
                          headers={"X-Correlation-ID": "import-ada-2024"})
    assert r.status_code == 202, r.text
    job = await wait_for_job(client, r.json()["job_id"])
    assert job["correlation_id"] == "import-ada-2024"
    created = [e["data"]["asset_id"] for e in await events(client, "asset.created", after)]
    assert sorted(created) == sorted(shas(files))  # once each, the twin not again
    jobs = [e["type"] for e in await events(client, "job.", after)]
    assert jobs == ["job.created", "job.started", "job.succeeded"]

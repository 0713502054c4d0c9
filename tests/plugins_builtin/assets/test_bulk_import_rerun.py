"""Importing the same folder again: files unchanged since (same path, size and mtime, and
sidecar) are skipped without being read; touched or changed files and changed sidecars are
taken again; new files are imported."""

from __future__ import annotations

from pathlib import Path

from tests.plugins_builtin.assets.conftest import events, last_event_id, make_entity
from tests.plugins_builtin.assets.folders import (
    all_assets,
    assets_by_id,
    job_log,
    keep_stamp,
    many_files,
    run_import,
    sha,
    shas,
    touch_later,
    warnings,
    write_sidecar,
    write_tree,
)


def counts(job: dict) -> tuple[int, int, int, int, int]:
    r = job["result"]
    return r["files"], r["imported"], r["deduplicated"], r["unchanged"], r["failed"]


async def test_an_unchanged_folder_imports_nothing_again(client, store, src: Path):
    files = many_files(src, 620, size=24)
    write_sidecar(src / "part-000" / "file-00000.bin_meta.json", {"a": 1})
    first = await run_import(client, src)
    assert counts(first) == (620, 620, 0, 0, 0)
    before = await store.snapshot()
    versions = {a["asset_id"]: a["version"] for a in await all_assets(client)}
    after = await last_event_id(client)

    again = await run_import(client, src)
    assert counts(again) == (620, 0, 0, 620, 0)
    assert again["progress"]["counters"]["unchanged"] == 620
    assert await store.snapshot() == before
    assert {a["asset_id"]: a["version"] for a in await all_assets(client)} == versions
    assert await events(client, after=after) == []  # no asset event at all
    assert store.blobs() == shas(files)
    log = await job_log(client, again["job_id"])
    assert warnings(log) == []
    assert [line["fields"]["unchanged"] for line in log
            if line["message"].startswith("batch ")] == [500, 120]


async def test_an_unchanged_file_is_not_read_again(client, src: Path):
    """Same size, same mtime: a re-run takes the record's word for it (the documented
    trade-off that makes re-runs fast) — new bytes slipped in under the old stamp are not
    seen."""
    write_tree(src, {"photo.jpg": "version one", "other.txt": "other"})
    await run_import(client, src)
    keep_stamp(src / "photo.jpg", b"version two")
    again = await run_import(client, src)
    assert counts(again) == (2, 0, 0, 2, 0)
    assert sha(b"version two") not in await assets_by_id(client)


async def test_touched_changed_and_new_files_are_taken_again(client, store, src: Path):
    files = write_tree(src, {"same.txt": "same", "touched.txt": "touched",
                             "changed.txt": "before", "sub/same-too.txt": "same too"})
    await run_import(client, src)
    touch_later(src / "touched.txt")
    (src / "changed.txt").write_bytes(b"after, and longer")
    touch_later(src / "changed.txt")
    added = write_tree(src, {"sub/new.txt": "new", "new-folder/n.txt": "n"})
    again = await run_import(client, src)
    # changed + 2 new imported; touched: the same bytes, found already stored
    assert counts(again) == (6, 3, 1, 2, 0)
    assets = await assets_by_id(client)
    assert set(assets) == shas(files) | shas(added) | {sha(b"after, and longer")}
    assert store.blobs() == set(assets) == await store.rows()
    assert assets[sha(b"after, and longer")]["filename"] == "changed.txt"

    third = await run_import(client, src)
    assert counts(third) == (6, 0, 0, 6, 0)


async def test_a_changed_sidecar_takes_its_file_again(client, src: Path):
    files = write_tree(src, {"photo.jpg": "photo", "plain.txt": "plain"})
    sidecar = write_sidecar(src / "photo.jpg_meta.json", {"rating": 3})
    await run_import(client, src)
    write_sidecar(sidecar, {"rating": 5, "label": "best"})
    touch_later(sidecar)
    again = await run_import(client, src)
    assert counts(again) == (2, 0, 1, 1, 0)
    meta = (await assets_by_id(client))[sha(files["photo.jpg"])]["user_metadata"]
    assert meta == {"rating": 5, "label": "best"}


async def test_a_sidecar_added_later_takes_its_file_again(client, src: Path):
    files = write_tree(src, {"photo.jpg": "photo"})
    await run_import(client, src)
    write_sidecar(src / "photo_meta.json", {"added": "later"})
    again = await run_import(client, src)
    assert counts(again) == (1, 0, 1, 0, 0)
    asset = (await assets_by_id(client))[sha(files["photo.jpg"])]
    assert asset["user_metadata"] == {"added": "later"}


async def test_a_rerun_with_an_entity_links_the_unchanged_files_too(client, src: Path):
    files = write_tree(src, {"a.txt": "a", "b/c.txt": "c"})
    await run_import(client, src)
    ada = await make_entity(client, "Ada")
    again = await run_import(client, src, entity_id=ada)
    assert counts(again) == (2, 0, 0, 2, 0)
    assert {a["asset_id"] for a in await all_assets(client, entity_id=ada)} == shas(files)


async def test_the_same_folder_through_a_symlink_is_the_same_folder(client, tmp_path: Path):
    files = write_tree(tmp_path / "real", {"a.txt": "a", "b/c.txt": "c"})
    (tmp_path / "alias").symlink_to(tmp_path / "real")
    await run_import(client, tmp_path / "real")
    again = await run_import(client, tmp_path / "alias")
    assert counts(again) == (2, 0, 0, 2, 0)
    assert set(await assets_by_id(client)) == shas(files)


async def test_a_file_gone_from_the_folder_keeps_its_asset(client, src: Path):
    files = write_tree(src, {"kept.txt": "kept", "removed.txt": "removed"})
    await run_import(client, src)
    (src / "removed.txt").unlink()
    again = await run_import(client, src)
    assert counts(again) == (1, 0, 0, 1, 0)
    assert set(await assets_by_id(client)) == shas(files)


async def test_a_file_moved_within_the_folder_is_found_already_stored(client, store,
                                                                     src: Path):
    files = write_tree(src, {"inbox/photo.jpg": "the photo"})
    await run_import(client, src)
    blobs = store.blobs()
    (src / "sorted").mkdir()
    (src / "inbox" / "photo.jpg").rename(src / "sorted" / "photo.jpg")
    again = await run_import(client, src)
    assert counts(again) == (1, 0, 1, 0, 0)
    assert store.blobs() == blobs == shas(files)

"""Files as folders really hold them: names in any script or with odd characters, empty files,
a file larger than one copy step, an empty folder, filters that match nothing."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from tests.plugins_builtin.assets.folders import (
    assets_by_id,
    job_log,
    run_import,
    sha,
    shas,
    warnings,
    write_tree,
)

MiB = 1024 * 1024



async def test_names_in_any_script_and_with_odd_characters_are_kept(client, src: Path):
    names = ["Ада Лавлейс.txt", "写真 2024.jpg", "émoji 🎉.png", "-leading-dash.bin",
             "  spaces  .txt", "quote'd \"name\".txt", "semi;colon&amp.txt", "#hash%25.txt",
             ".hidden", "no-extension", "x" * 251 + ".txt"]
    files = write_tree(src, {f"dir {i}/{name}": f"content {i}" for i, name in enumerate(names)})
    await run_import(client, src)
    assets = await assets_by_id(client)
    assert set(assets) == shas(files)
    for relpath, data in files.items():
        assert assets[sha(data)]["filename"] == relpath.split("/", 1)[1].strip(), relpath


async def test_a_control_character_in_a_name_is_cleaned(client, src: Path):
    files = write_tree(src, {"line\nbreak.txt": "newline", "tab\there.txt": "tab"})
    await run_import(client, src)
    assets = await assets_by_id(client)
    assert assets[sha(files["line\nbreak.txt"])]["filename"] == "linebreak.txt"
    assert assets[sha(files["tab\there.txt"])]["filename"] == "tabhere.txt"


async def test_an_empty_file_is_an_asset(client, store, src: Path):
    write_tree(src, {"empty.dat": b""})
    job = await run_import(client, src)
    asset = (await assets_by_id(client))[sha(b"")]
    assert asset["size"] == 0
    assert store.blob_path(sha(b"")).read_bytes() == b""
    assert job["result"]["bytes"] == 0 and job["result"]["imported"] == 1


async def test_a_file_larger_than_one_copy_step(client, store, src: Path):
    """Big files are copied in pieces (a cancel is heard between them): the bytes must
    still arrive whole and in order."""
    big = src / "big.bin"
    big.parent.mkdir(parents=True)
    digest = hashlib.sha256()
    with big.open("wb") as fh:
        for _ in range(17):  # 17 MiB, every MiB different
            piece = os.urandom(16) * (MiB // 16)
            fh.write(piece)
            digest.update(piece)
        fh.write(b"tail")
        digest.update(b"tail")
    write_tree(src, {"small.txt": "small"})
    job = await run_import(client, src)
    asset = (await assets_by_id(client))[digest.hexdigest()]
    assert asset["size"] == 17 * MiB + 4
    assert store.blob_path(asset["asset_id"]).stat().st_size == 17 * MiB + 4
    with store.blob_path(asset["asset_id"]).open("rb") as fh:
        assert hashlib.file_digest(fh, "sha256").hexdigest() == asset["asset_id"]
    assert job["result"]["bytes"] == 17 * MiB + 4 + 5
    assert store.staged() == frozenset()


async def test_an_empty_folder_is_a_job_that_succeeds_with_nothing(client, src: Path):
    src.mkdir()
    (src / "empty-subfolder").mkdir()
    job = await run_import(client, src)
    assert job["result"] == {"path": str(src), "files": 0, "bytes": 0, "imported": 0,
                             "deduplicated": 0, "unchanged": 0, "failed": 0, "problems": 0,
                             "symlinks_skipped": 0}
    assert job["progress"]["percent"] == 100
    assert await assets_by_id(client) == {}
    assert warnings(await job_log(client, job["job_id"])) == []


async def test_an_include_that_matches_nothing_imports_nothing(client, src: Path):
    write_tree(src, {"a.txt": "a", "b/c.txt": "c"})
    job = await run_import(client, src, include=["*.png"])
    assert job["result"]["files"] == 0
    assert await assets_by_id(client) == {}

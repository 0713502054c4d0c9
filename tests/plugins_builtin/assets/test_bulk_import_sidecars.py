"""Sidecars: a file's ``_meta.json`` (four name forms) becomes its asset's ``user_metadata``;
a sidecar is never an asset itself.  A sidecar that is not a JSON object, or has no file
beside it, costs one warning line and nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.plugins_builtin.assets.folders import (
    assets_by_id,
    job_log,
    run_import,
    sha,
    shas,
    warnings,
    write_sidecar,
    write_tree,
)


async def test_each_of_the_four_sidecar_names_gives_the_files_metadata(client, store,
                                                                       src: Path):
    photos = write_tree(src, {f"photo{i}.jpg": f"photo {i}" for i in range(1, 5)})
    forms = ["photo1.jpg_meta.json", "photo2.jpg._meta.json", "photo3_meta.json",
             "photo4._meta.json"]
    for i, name in enumerate(forms, 1):
        write_sidecar(src / name, {"form": name, "n": i, "tags": ["a", "b"]})
    job = await run_import(client, src)

    assets = await assets_by_id(client)
    assert set(assets) == shas(photos)  # the sidecars are not assets
    for i, name in enumerate(forms, 1):
        meta = assets[sha(photos[f"photo{i}.jpg"])]["user_metadata"]
        assert meta == {"form": name, "n": i, "tags": ["a", "b"]}
    assert store.blobs() == shas(photos)
    assert job["result"]["files"] == 4
    log = await job_log(client, job["job_id"])
    assert warnings(log) == []
    assert any("4 with a sidecar" in line["message"] for line in log)


async def test_a_sidecar_in_a_subfolder_and_a_file_with_several_dots(client, src: Path):
    files = write_tree(src, {"2024/06/IMG_0001.tar.gz": b"\x1f\x8b archive",
                             "2024/06/portrait.final.png": b"not really a png"})
    write_sidecar(src / "2024/06/IMG_0001.tar.gz_meta.json", {"camera": "Leica", "é": "ü"})
    write_sidecar(src / "2024/06/portrait.final_meta.json", {"nested": {"a": [1, {"b": 2}]}})
    await run_import(client, src)
    assets = await assets_by_id(client)
    assert set(assets) == shas(files)
    assert assets[sha(files["2024/06/IMG_0001.tar.gz"])]["user_metadata"] == {
        "camera": "Leica", "é": "ü"}
    assert assets[sha(files["2024/06/portrait.final.png"])]["user_metadata"] == {
        "nested": {"a": [1, {"b": 2}]}}


async def test_the_most_specific_sidecar_wins(client, src: Path):
    files = write_tree(src, {"photo.jpg": "the photo"})
    write_sidecar(src / "photo.jpg_meta.json", {"from": "name"})
    write_sidecar(src / "photo_meta.json", {"from": "stem"})
    job = await run_import(client, src)
    assert (await assets_by_id(client))[sha(files["photo.jpg"])]["user_metadata"] == {
        "from": "name"}
    # the other one is nobody's: said once, never imported
    found = warnings(await job_log(client, job["job_id"]))
    assert len(found) == 1 and "photo_meta.json" in found[0], found


@pytest.mark.parametrize("text", ["{not json", "[1, 2, 3]", '"a string"', "42", "null", "",
                                  "\xff\xfe{}"], ids=["invalid", "list", "string",
                                                      "number", "null", "empty", "not-utf8"])
async def test_a_sidecar_that_is_not_a_json_object_is_ignored_with_a_warning(
        client, src: Path, text: str):
    files = write_tree(src, {"photo.jpg": "the photo", "other.txt": "other"})
    (src / "photo.jpg_meta.json").write_bytes(text.encode("latin-1"))
    job = await run_import(client, src)

    assets = await assets_by_id(client)
    assert set(assets) == shas(files)
    assert assets[sha(files["photo.jpg"])]["user_metadata"] == {}
    found = warnings(await job_log(client, job["job_id"]))
    assert len(found) == 1, found
    assert found[0].startswith("photo.jpg_meta.json: "), found
    result = job["result"]
    assert (result["imported"], result["failed"]) == (2, 0)


async def test_the_warning_for_a_bad_sidecar_in_a_subfolder_names_its_folder(client,
                                                                           src: Path):
    """Every day's folder of a camera has its IMG_0001.JPG_meta.json: the bare name would
    not say which one is broken."""
    files = write_tree(src, {"2024-06-01/IMG_0001.JPG": "day one",
                             "2024-06-02/IMG_0001.JPG": "day two"})
    write_sidecar(src / "2024-06-01/IMG_0001.JPG_meta.json", {"ok": True})
    write_tree(src, {"2024-06-02/IMG_0001.JPG_meta.json": "{broken"})
    job = await run_import(client, src)
    assert set(await assets_by_id(client)) == shas(files)
    found = warnings(await job_log(client, job["job_id"]))
    assert len(found) == 1, found
    assert found[0].startswith("2024-06-02/IMG_0001.JPG_meta.json: "), found


async def test_a_sidecar_over_the_metadata_limit_is_ignored_with_a_warning(client,
                                                                           src: Path):
    files = write_tree(src, {"photo.jpg": "the photo"})
    write_sidecar(src / "photo.jpg_meta.json", {"big": "x" * (1024 * 1024 + 1)})
    job = await run_import(client, src)
    assert (await assets_by_id(client))[sha(files["photo.jpg"])]["user_metadata"] == {}
    found = warnings(await job_log(client, job["job_id"]))
    assert len(found) == 1 and "photo.jpg_meta.json" in found[0], found


async def test_an_orphan_sidecar_is_a_warning_and_not_imported(client, store, src: Path):
    files = write_tree(src, {"kept.txt": "kept"})
    write_sidecar(src / "gone.jpg_meta.json", {"orphan": True})
    write_sidecar(src / "deep/er/alone._meta.json", {"orphan": True})
    job = await run_import(client, src)
    assert set(await assets_by_id(client)) == shas(files) == store.blobs()
    found = warnings(await job_log(client, job["job_id"]))
    assert len(found) == 2, found
    assert any("gone.jpg_meta.json" in m for m in found)
    assert any("deep/er/alone._meta.json" in m for m in found)
    assert job["result"]["files"] == 1 and job["result"]["problems"] == 2


async def test_the_sidecar_of_an_excluded_file_is_no_orphan(client, src: Path):
    files = write_tree(src, {"kept.txt": "kept", "skip.raw": "raw"})
    write_sidecar(src / "skip.raw_meta.json", {"x": 1})
    job = await run_import(client, src, exclude=["*.raw"])
    assert set(await assets_by_id(client)) == shas({"kept.txt": files["kept.txt"]})
    assert warnings(await job_log(client, job["job_id"])) == []


async def test_sidecar_metadata_is_merged_into_an_existing_asset(client, src: Path):
    """The same bytes already stored (uploaded, say) take the sidecar's fields."""
    data = b"already here"
    r = await client.post("/v1/assets/upload", files={"file": ("first.bin", data)},
                          data={"meta": '{"kept": 1, "over": "old"}'})
    assert r.status_code == 201, r.text
    write_tree(src, {"again.bin": data})
    write_sidecar(src / "again_meta.json", {"over": "new", "added": True})
    job = await run_import(client, src)
    asset = (await assets_by_id(client))[sha(data)]
    assert asset["user_metadata"] == {"kept": 1, "over": "new", "added": True}
    assert job["result"]["deduplicated"] == 1 and job["result"]["imported"] == 0

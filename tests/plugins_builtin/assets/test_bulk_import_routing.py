"""An import goes through the ingest path's storage routing: files of a kind routed to S3
(moto's real server) land in the bucket, the others on the filesystem, in the same
batch; nothing stays under ``tmp/``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kernel.config import Settings
from tests.plugins_builtin.assets.folders import assets_by_id, run_import, sha, write_tree
from tests.plugins_builtin.assets.tus import core, tmp_files
from tests.providers.conftest import with_s3
from tests.s3servers import S3Server, moto_server


@pytest.fixture(scope="module")
def moto() -> Iterator[S3Server]:
    with moto_server() as server:
        yield server


def loras_on_s3(settings: Settings, server: S3Server) -> Settings:
    """The home's config with S3 on and ``model.lora`` routed to it (the rest: fs)."""
    return with_s3(settings, server, {"kind_map": {"model.lora": "s3"}})


async def test_each_file_goes_where_its_kind_is_routed(make_app, settings, moto,
                                                       tmp_path: Path):
    chosen = loras_on_s3(settings, moto)
    files = write_tree(tmp_path / "src", {"style.safetensors": b"\x00" * 64 + b"lora one",
                                          "loras/other.safetensors": b"\x00" * 64 + b"two",
                                          "notes.txt": "stays on the filesystem"})
    async with core(make_app, chosen) as (_, http):
        job = await run_import(http, tmp_path / "src")
        assets = await assets_by_id(http)
        providers = {relpath: assets[sha(data)]["provider"] for relpath, data in files.items()}
        assert providers == {"style.safetensors": "s3", "loras/other.safetensors": "s3",
                             "notes.txt": "fs"}
        assert assets[sha(files["style.safetensors"])]["kind"] == "model.lora"
        for data in files.values():
            download = await http.get(f"/v1/assets/{sha(data)}/download")
            assert download.status_code == 200 and download.content == data
        fs_blobs = {p.name for p in chosen.paths.assets_dir.rglob("*") if p.is_file()}
        assert fs_blobs == {sha(files["notes.txt"])}
        assert job["result"]["imported"] == 3
        assert tmp_files(chosen) == frozenset()

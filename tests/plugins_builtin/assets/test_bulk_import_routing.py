"""An import goes through the ingest path's storage routing: files of a kind routed to S3
(moto's real server) land in the bucket, the others on the filesystem, in the same
batch; nothing stays under ``tmp/``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from kernel.config import Settings, load_settings
from tests.plugins_builtin.assets.folders import assets_by_id, run_import, sha, write_tree
from tests.plugins_builtin.assets.tus import core, tmp_files
from tests.providers.conftest import fresh_bucket
from tests.s3servers import S3Server, moto_server


@pytest.fixture(scope="module")
def moto() -> Iterator[S3Server]:
    with moto_server() as server:
        yield server


def loras_on_s3(settings: Settings, server: S3Server) -> Settings:
    """The home's config with S3 on and ``model.lora`` routed to it (the rest: fs)."""
    config = settings.paths.config_file
    config.parent.mkdir(parents=True, exist_ok=True)
    data = json.loads(config.read_text("utf-8")) if config.exists() else {}
    data["storage"] = {"s3": {"enabled": True, "bucket": fresh_bucket(), "region": "us-east-1",
                              "endpoint_url": server.endpoint_url,
                              "access_key": server.access_key,
                              "secret_key": server.secret_key},
                       "routing": {"kind_map": {"model.lora": "s3"}}}
    config.write_text(json.dumps(data), encoding="utf-8")
    return load_settings(settings.paths.home,
                         env={"FACEFORGE_DISABLE_PLUGINS": "thumbnails,metadata_extract"})


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

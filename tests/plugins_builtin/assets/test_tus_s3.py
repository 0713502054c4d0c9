"""A resumable upload routed to S3 (moto's real server): the chunks gather under ``tmp/``,
the finished file goes to the bucket through the ingest path, and nothing stays behind."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator

import pytest

from kernel.config import Settings
from tests.plugins_builtin.assets.tus import Tus, asset_id_of, core, metadata, tmp_files
from tests.providers.conftest import with_s3
from tests.s3servers import S3Server, moto_server


@pytest.fixture(scope="module")
def moto() -> Iterator[S3Server]:
    with moto_server() as server:
        yield server


def on_s3(settings: Settings, server: S3Server) -> Settings:
    return with_s3(settings, server, {"default_provider": "s3"})


async def test_a_resumable_upload_lands_in_the_bucket(make_app, settings, moto) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    chosen = on_s3(settings, moto)
    async with core(make_app, chosen) as (_, http):
        before = tmp_files(chosen)
        tus = Tus(http)
        path = await tus.created(len(data), metadata(filename="ada.safetensors",
                                                     kind="model.lora"))
        step = 1024 * 1024
        for start in range(0, len(data), step):
            r = await tus.patched(path, data[start:start + step], start)
        asset_id = asset_id_of(r, data)
        asset = (await http.get(f"/v1/assets/{asset_id}")).json()
        assert asset["provider"] == "s3" and asset["kind"] == "model.lora"
        download = await http.get(f"/v1/assets/{asset_id}/download")
        assert hashlib.sha256(download.content).hexdigest() == asset_id
        assert tmp_files(chosen) == before, "the upload's file stayed under tmp/"

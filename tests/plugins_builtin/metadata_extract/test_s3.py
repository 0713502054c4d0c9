"""Assets on S3 (moto's real server): ExifTool reads a copy under ``tmp/`` that is removed
after; safetensors headers come by range; S3 down at extraction time postpones, loses nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.plugins_builtin.metadata_extract import files
from tests.plugins_builtin.metadata_extract.conftest import configure
from tests.providers.conftest import fresh_bucket
from tests.s3servers import S3Server, free_port, moto_server


@pytest.fixture(scope="module")
def moto() -> Iterator[S3Server]:
    with moto_server() as server:
        yield server


def on_s3(home: Path, server: S3Server | None, bucket: str, **kw):
    """Uploads go to S3 (``server`` None: an endpoint nobody listens on)."""
    url = server.endpoint_url if server else f"http://127.0.0.1:{free_port()}"
    s3 = {"enabled": True, "bucket": bucket, "region": "us-east-1", "endpoint_url": url,
          "access_key": server.access_key if server else "nobody",
          "secret_key": server.secret_key if server else "nothing"}
    return configure(home, storage={"s3": s3, "routing": {"default_provider": "s3"}}, **kw)


def copies(home: Path) -> list[Path]:
    return list((home / "tmp").glob("metadata-extract-*"))


async def test_assets_on_s3_are_extracted_from_temporary_copies(
        start_core, home: Path, moto: S3Server) -> None:
    async with start_core(on_s3(home, moto, fresh_bucket())) as core:
        photo = await core.extracted(files.jpeg(120, 80), "photo.jpg")
        art = await core.extracted(files.generated_png(), "art.png")
        clip = await core.extracted(files.wav(2.0), "clip.wav")
        lora = await core.extracted(files.safetensors(files.LORA_METADATA), "a.safetensors")
        left = copies(home)
    assert {a["provider"] for a in (photo, art, clip, lora)} == {"s3"}
    assert (photo["width"], photo["height"]) == (120, 80)
    assert photo["extracted_metadata"]["exiftool"]["IFD0:Make"] == "Canon"
    assert art["extracted_metadata"]["generation"]["prompt"] == files.COMFY_PROMPT
    assert clip["duration_seconds"] == pytest.approx(2.0, abs=0.01)
    assert lora["extracted_metadata"]["generation"]["tensor_count"] == 3
    assert left == []  # every copy removed once read


async def test_s3_down_when_extracting_postpones_to_the_next_start(
        start_core, home: Path, moto: S3Server) -> None:
    bucket = fresh_bucket()
    async with start_core(on_s3(home, moto, bucket,
                                disabled="thumbnails,metadata_extract")) as core:
        asset = await core.upload(files.jpeg(30, 20), "later.jpg")
    async with start_core(on_s3(home, None, bucket)) as core:  # S3 unreachable
        await core.settled()
        waiting = await core.asset(asset["asset_id"])
        status = await core.status()
        left = copies(home)
    assert waiting["extracted_metadata"] == {} and status["failed"] == 1 and left == []
    async with start_core(on_s3(home, moto, bucket)) as core:
        await core.settled()
        done = await core.asset(asset["asset_id"])
    assert (done["width"], done["height"]) == (30, 20)

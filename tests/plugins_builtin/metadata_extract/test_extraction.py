"""Uploads through the API come back with what the real ExifTool read from them: width,
height and duration on the record, readable tags, embedded generation parameters."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.plugins_builtin.metadata_extract import files
from tests.plugins_builtin.metadata_extract.conftest import configure, poll


@pytest.fixture
def settings(home: Path, exiftool: Path):
    return configure(home)


async def test_an_uploaded_jpeg_gets_its_camera_and_size(start_core, home: Path) -> None:
    async with start_core() as core:
        uploaded = await core.upload(files.jpeg(640, 480), "photo.jpg")
        assert uploaded["extracted_metadata"] == {} and uploaded["width"] is None

        # the upload's own hook queued it: no help from the test
        async def done():
            asset = await core.asset(uploaded["asset_id"])
            return asset if asset["extracted_metadata"] else None

        asset = await poll(done)
    assert (asset["width"], asset["height"]) == (640, 480)
    assert asset["duration_seconds"] is None
    tags = asset["extracted_metadata"]["exiftool"]
    assert tags["IFD0:Make"] == "Canon" and tags["IFD0:Model"] == "EOS R5"
    assert tags["File:MIMEType"] == "image/jpeg"
    # nothing that describes the blob file on this machine rather than the picture
    assert "SourceFile" not in tags and not any(k.startswith("System:") for k in tags)
    assert str(home) not in json.dumps(asset)


async def test_png_generation_parameters_are_kept_readable(start_core) -> None:
    async with start_core() as core:
        asset = await core.extracted(files.generated_png(), "ada.png")
    assert (asset["width"], asset["height"]) == (512, 768)
    generation = asset["extracted_metadata"]["generation"]
    assert generation["source"] == "png:parameters"
    assert generation["parameters"] == files.A1111
    assert generation["parsed"] == {
        "prompt": "a portrait of Ada Lovelace, oil painting",
        "negative_prompt": "blurry, lowres",
        "settings": {"Steps": "28", "Sampler": "DPM++ 2M Karras", "CFG scale": "6.5",
                     "Seed": "1234", "Size": "512x768",
                     "Lora hashes": "ada: 0123abcd, style: 4567ef01"}}
    # ComfyUI's JSON text is kept as the objects it holds
    assert generation["prompt"] == files.COMFY_PROMPT
    assert generation["workflow"] == files.COMFY_WORKFLOW
    assert asset["extracted_metadata"]["exiftool"]["PNG:Parameters"] == files.A1111


async def test_comfyui_png_with_compressed_international_text(start_core) -> None:
    prompt = {"6": {"class_type": "CLIPTextEncode", "inputs": {"text": "Ада, 油画"}}}
    data = files.png(64, 48, itxt={"prompt": json.dumps(prompt, ensure_ascii=False)},
                     zip_itxt=True)
    async with start_core() as core:
        asset = await core.extracted(data, "comfy.png")
    generation = asset["extracted_metadata"]["generation"]
    assert generation == {"source": "png:comfyui", "prompt": prompt}
    assert (asset["width"], asset["height"]) == (64, 48)


async def test_audio_and_video_get_their_duration(start_core) -> None:
    async with start_core() as core:
        wav = await core.extracted(files.wav(3.0), "voice.wav")
        mp3 = await core.extracted(files.mp3(frames=383), "song.mp3")  # 383 x 1152 samples
        mp4 = await core.extracted(files.mp4(320, 240, 2.5), "clip.mp4")
    assert wav["duration_seconds"] == pytest.approx(3.0, abs=0.01)
    assert wav["width"] is None and wav["extracted_metadata"]["exiftool"]["RIFF:SampleRate"] \
        == 8000
    assert mp3["duration_seconds"] == pytest.approx(383 * 1152 / 44100, abs=0.05)
    assert mp4["duration_seconds"] == pytest.approx(2.5)
    assert (mp4["width"], mp4["height"]) == (320, 240)
    assert mp4["extracted_metadata"]["exiftool"]["File:MIMEType"] == "video/mp4"


async def test_a_lora_keeps_its_training_metadata_without_exiftool(start_core) -> None:
    data = files.safetensors(files.LORA_METADATA, tensors=3)
    async with start_core() as core:
        asset = await core.extracted(data, "ada_lovelace.safetensors")
    assert asset["kind"] == "model.lora"
    metadata = asset["extracted_metadata"]
    assert "exiftool" not in metadata  # weights have nothing for ExifTool: it is not run
    assert metadata["generation"] == {
        "source": "safetensors", "tensor_count": 3,
        "metadata": {"ss_output_name": "ada_lovelace", "ss_network_dim": "32",
                     "ss_tag_frequency": {"img": {"ada": 12, "portrait": 7}},
                     "modelspec.title": "Ada"}}
    assert asset["width"] is None and asset["duration_seconds"] is None


async def test_a_safetensors_name_on_other_bytes_is_read_by_exiftool(start_core) -> None:
    async with start_core() as core:
        asset = await core.extracted(b"not weights at all\n" * 10, "fake.safetensors")
    metadata = asset["extracted_metadata"]
    assert metadata["generation_error"].startswith("not a safetensors file: header length")
    assert "exiftool" in metadata  # so it went to ExifTool after all


async def test_files_exiftool_cannot_make_sense_of_are_recorded_not_fatal(start_core) -> None:
    corrupt = b"\x89PNG\r\n\x1a\n" + b"\xde\xad" * 40  # a PNG signature, then garbage
    async with start_core() as core:
        bad = await core.extracted(corrupt, "broken.png")
        noise = await core.extracted(bytes(range(256)) * 8, "noise.bin")
        good = await core.extracted(files.jpeg(32, 16), "after.jpg")  # the worker goes on
        status = await core.status()
    assert "PNG" in bad["extracted_metadata"]["exiftool"]["ExifTool:Warning"]
    assert bad["width"] is None and bad["extracted_metadata"].get("generation") is None
    assert noise["extracted_metadata"]["exiftool"]["ExifTool:Error"] == "Unknown file type"
    assert (good["width"], good["height"]) == (32, 16)
    assert status["done"] == 3 and status["failed"] == 0


async def test_thumbnails_and_derived_files_are_left_alone(start_core) -> None:
    async with start_core() as core:
        original = await core.extracted(files.jpeg(64, 64), "face.jpg")
        thumb = await core.upload(files.jpeg(16, 16, color="blue"), "face_16.jpg",
                                  kind="image.thumbnail")
        derived = await core.upload(files.png(8, 8), "face_crop.png",
                                    derived_from_asset_id=original["asset_id"])
        # the hook, called again here, so it has certainly seen both before the worker idles
        for asset in (thumb, derived):
            await core.kernel.hooks.asset_ingested(core.kernel, asset)
        await core.settled()
        assert (await core.asset(thumb["asset_id"]))["extracted_metadata"] == {}
        assert (await core.asset(derived["asset_id"]))["extracted_metadata"] == {}
        assert (await core.status())["done"] == 1


async def test_status_says_exiftool_is_on(start_core, exiftool: Path) -> None:
    version = subprocess.run([exiftool, "-ver"], capture_output=True, text=True,
                             check=True).stdout.strip()
    async with start_core() as core:
        idle = await core.status()  # nothing to do yet: checked, but no process kept
        await core.extracted(files.jpeg(), "one.jpg")
        status = await core.status()
        async with httpx.AsyncClient(transport=core.client._transport,
                                     base_url="http://testserver") as anon:
            r = await anon.get("/v1/metadata-extract/status")
    assert status["exiftool"] == {"enabled": True, "path": str(exiftool), "version": version,
                                  "running": True, "processes_started": 1, "reason": None}
    assert status["queued"] == 0 and status["done"] == 1
    assert idle["exiftool"] | {"running": True, "processes_started": 1} == status["exiftool"]
    assert idle["exiftool"]["running"] is False and idle["done"] == 0
    assert r.status_code == 401 and set(r.json()) == {"error"}

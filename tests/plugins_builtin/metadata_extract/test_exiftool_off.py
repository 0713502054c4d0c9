"""Without ExifTool, extraction is visibly off (status, one log line), not an error, and the
generation parameters that need no ExifTool are still read; once ExifTool is there, what was
missed is done at the next start.  Where ExifTool is looked for: config, ``tools/``, ``PATH``."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tests.plugins_builtin.metadata_extract import files
from tests.plugins_builtin.metadata_extract.conftest import configure


def off_lines(core) -> list[str]:
    return [line["message"] for line in core.log_lines()
            if line["message"].startswith("metadata extraction off")]


async def test_a_configured_path_that_is_wrong_turns_it_off_visibly(
        start_core, home: Path, exiftool: Path) -> None:
    settings = configure(home, tools={"exiftool_path": "/nowhere/exiftool"})
    async with start_core(settings) as core:  # ExifTool is on PATH: a typo is not papered over
        jpeg = await core.extracted(files.jpeg(200, 100), "photo.jpg")
        png = await core.extracted(files.generated_png(), "ada.png")
        lora = await core.extracted(files.safetensors(files.LORA_METADATA), "ada.safetensors")
        status = await core.status()
        lines = off_lines(core)
    reason = "exiftool not found (looked in /nowhere/exiftool, from tools.exiftool_path)"
    assert status["exiftool"] == {"enabled": False, "path": None, "version": None,
                                  "running": False, "processes_started": 0, "reason": reason}
    assert lines == [f"metadata extraction off: {reason}"]  # once, at start
    assert jpeg["extracted_metadata"] == {"exiftool_off": reason} and jpeg["width"] is None
    # PNG text chunks and the PNG's own header need no ExifTool
    assert png["extracted_metadata"]["generation"]["parsed"]["negative_prompt"] == \
        "blurry, lowres"
    assert png["extracted_metadata"]["exiftool_off"] == reason
    assert (png["width"], png["height"]) == (512, 768)
    assert lora["extracted_metadata"]["generation"]["metadata"]["ss_network_dim"] == "32"
    assert status["done"] == 3 and status["failed"] == 0

    # ExifTool set up properly: the next start does what was missed, and only that
    settings = configure(home, tools={"exiftool_path": str(exiftool)})
    async with start_core(settings) as core:
        await core.settled()
        jpeg = await core.asset(jpeg["asset_id"])
        png = await core.asset(png["asset_id"])
        relora = await core.asset(lora["asset_id"])
        status = await core.status()
    assert jpeg["extracted_metadata"]["exiftool"]["IFD0:Make"] == "Canon"
    assert "exiftool_off" not in jpeg["extracted_metadata"]
    assert (jpeg["width"], jpeg["height"]) == (200, 100)
    assert png["extracted_metadata"]["exiftool"]["PNG:ImageWidth"] == 512
    assert png["extracted_metadata"]["generation"]["source"] == "png:parameters"
    assert relora["version"] == lora["version"]  # done already: not touched again
    assert status["done"] == 2


async def test_not_in_tools_nor_on_path(start_core, home: Path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(home / "empty-bin"))
    settings = configure(home)
    async with start_core(settings) as core:
        png = await core.extracted(files.png(30, 20, texts={"parameters": files.A1111}), "a.png")
        status = await core.status()
        lines = off_lines(core)
    tools = settings.paths.tools_dir
    reason = (f"exiftool not found (looked in {tools / 'exiftool'}, "
              f"{tools / 'exiftool' / 'exiftool'} and on PATH)")
    assert status["exiftool"]["reason"] == reason and lines == [
        f"metadata extraction off: {reason}"]
    assert png["extracted_metadata"]["generation"]["source"] == "png:parameters"
    assert (png["width"], png["height"]) == (30, 20)


async def test_turned_off_in_config(start_core, home: Path) -> None:
    settings = configure(home, tools={"exiftool_enabled": False})
    async with start_core(settings) as core:
        wav = await core.extracted(files.wav(1.0), "v.wav")
        status = await core.status()
    reason = "turned off in config (tools.exiftool_enabled is false)"
    assert status["exiftool"]["enabled"] is False and status["exiftool"]["reason"] == reason
    assert wav["extracted_metadata"] == {"exiftool_off": reason}
    assert wav["duration_seconds"] is None


@pytest.mark.parametrize("place", ["tools/exiftool", "tools/exiftool/exiftool", "relative"])
async def test_found_in_the_tools_folder(start_core, home: Path, exiftool: Path,
                                         monkeypatch, place: str) -> None:
    monkeypatch.setenv("PATH", str(home / "empty-bin"))  # PATH would not find it
    tools = configure(home).paths.tools_dir
    target = {"tools/exiftool": tools / "exiftool",
              "tools/exiftool/exiftool": tools / "exiftool" / "exiftool",
              "relative": tools / "vendor" / "et"}[place]
    target.parent.mkdir(parents=True, exist_ok=True)
    target.symlink_to(exiftool)
    settings = configure(home, tools={"exiftool_path": "vendor/et"} if place == "relative"
                         else {})
    async with start_core(settings) as core:
        asset = await core.extracted(files.jpeg(40, 30), "p.jpg")
        status = await core.status()
    assert status["exiftool"]["path"] == str(target) and status["exiftool"]["enabled"]
    assert (asset["width"], asset["height"]) == (40, 30)


async def test_an_exiftool_that_does_not_run_is_reported(start_core, home: Path) -> None:
    broken = home / "broken-exiftool"
    home.mkdir(parents=True, exist_ok=True)
    broken.write_text('#!/bin/sh\necho "Can\'t locate Image/ExifTool.pm" >&2\nexit 2\n')
    broken.chmod(broken.stat().st_mode | stat.S_IXUSR)
    settings = configure(home, tools={"exiftool_path": str(broken)})
    async with start_core(settings) as core:
        asset = await core.extracted(files.jpeg(), "p.jpg")
        status = await core.status()
        lines = off_lines(core)
    reason = f"{broken} -ver failed (code 2): Can't locate Image/ExifTool.pm"
    assert status["exiftool"]["enabled"] is False and status["exiftool"]["reason"] == reason
    assert lines == [f"metadata extraction off: {reason}"]
    assert asset["extracted_metadata"] == {"exiftool_off": reason}
    assert os.access(broken, os.X_OK)


async def test_the_off_state_is_a_line_on_the_system_status_and_page(
        start_core, home: Path, exiftool: Path) -> None:
    settings = configure(home, tools={"exiftool_path": "/nowhere/exiftool"})
    async with start_core(settings) as core:
        r = await core.client.get("/v1/system/status")
        page = await core.client.get("/ui/system")
    assert r.status_code == 200, r.text
    [line] = [s for s in r.json()["items"] if s["plugin"] == "metadata_extract"]
    assert line["state"] == "off"
    assert line["message"].startswith("metadata extraction off: exiftool not found")
    assert page.status_code == 200
    assert "metadata extraction off: exiftool not found (looked in /nowhere/exiftool" in \
        page.text

    settings = configure(home, tools={"exiftool_path": str(exiftool)})
    async with start_core(settings) as core:
        r = await core.client.get("/v1/system/status")
    [line] = [s for s in r.json()["items"] if s["plugin"] == "metadata_extract"]
    assert line["state"] == "ok" and str(exiftool) in line["message"]

"""ExifTool extraction throughput: small JPEG and PNG files through the plugin's own
``-stay_open`` runner, in the plugin's batch size (issue 8 target: >= 200 files/s); then the
whole plugin in an in-process Core: the same files as assets, extracted by the catch-up at
start, rows written and all.

    python -m tests.bench.exiftool [--quick]

Prints one JSON document.  The files (1,000; 300 with ``--quick``; no extension, like blobs)
are made before the clock starts.  The runner is timed twice: from a cold start (the first
batch starts ExifTool) and again on the running process; the target is judged on the cold
figure.  The plugin is timed from Core's start to its worker going idle.  Every file must
come back with its own size, or the run fails.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from PIL import Image

from plugins_builtin.metadata_extract.runner import ExifToolRunner
from plugins_builtin.metadata_extract.worker import Settings
from tests.bench.load import wait_quiet
from tests.bench.server import BenchError

TARGET_FILES_PER_S = 200


def _make_files(folder: Path, count: int) -> list[Path]:
    paths = []
    for i in range(count):
        out = io.BytesIO()
        exif = Image.Exif()
        exif[0x010F] = "Bench"
        exif[0x010E] = f"file {i}"  # JPEG may make near colours equal: keep the bytes unique
        image = Image.new("RGB", (32 + i % 64, 24), (i % 256, i // 256, 160))  # all unique
        if i % 2:
            image.save(out, "JPEG", exif=exif, quality=80)
        else:
            image.save(out, "PNG")
        path = folder / f"blob-{i:05d}"
        path.write_bytes(out.getvalue())
        paths.append(path)
    return paths


async def _pass(runner: ExifToolRunner, paths: list[Path], batch: int) -> float:
    started = time.perf_counter()
    for at in range(0, len(paths), batch):
        chunk = paths[at:at + batch]
        results = await runner.extract(chunk)
        for i, result in zip(range(at, at + len(chunk)), results, strict=True):
            if not result.tags or result.tags.get("Composite:ImageSize") != f"{32 + i % 64} 24":
                raise BenchError(f"file {i} came back wrong: {result}")
    return time.perf_counter() - started


async def _measure(exe: Path, paths: list[Path], batch: int) -> dict[str, Any]:
    runner = ExifToolRunner(exe)
    try:
        cold = await _pass(runner, paths, batch)
        warm = await _pass(runner, paths, batch)
    finally:
        await runner.close()
    n = len(paths)
    return {"cold_s": round(cold, 3), "cold_files_per_s": round(n / cold, 1),
            "warm_s": round(warm, 3), "files_per_s": round(n / warm, 1),
            "processes_started": runner.starts, "round_trips": runner.round_trips}


async def _through_core(paths: list[Path], home: Path) -> dict[str, Any]:
    """Assets stored while the plugin is off, then a start with it on: time to idle."""
    from kernel.app import create_app
    from kernel.config import load_settings
    from tests.conftest import running

    sizes = {}
    settings = load_settings(home, env={"FACEFORGE_DISABLE_PLUGINS": "thumbnails,"
                                                                      "metadata_extract"})
    app = create_app(settings, console_log=False)
    async with running(app, settings.install_token) as client:
        for i, path in enumerate(paths):
            r = await client.post("/v1/assets/upload", files={"file": (path.name,
                                                                       path.read_bytes())})
            if r.status_code != 201:
                raise BenchError(f"upload {i} failed: {r.text}")
            sizes[r.json()["asset_id"]] = 32 + i % 64
    settings = load_settings(home, env={"FACEFORGE_DISABLE_PLUGINS": "thumbnails"})
    app = create_app(settings, console_log=False)
    started = time.perf_counter()
    async with running(app, settings.install_token) as client:
        worker = app.state.kernel.services["metadata_extract.worker"]
        await asyncio.wait_for(worker.idle(), 600)
        elapsed = time.perf_counter() - started
        for asset_id, width in sizes.items():
            asset = (await client.get(f"/v1/assets/{asset_id}")).json()
            if asset["width"] != width:
                raise BenchError(f"asset {asset_id} has width {asset['width']}, not {width}")
        status = worker.status()
    return {"start_to_idle_s": round(elapsed, 3),
            "files_per_s": round(len(paths) / elapsed, 1),
            "processes_started": status["exiftool"]["processes_started"],
            "done": status["done"], "failed": status["failed"]}


def run(quick: bool) -> dict[str, Any]:
    """The measurement, as one JSON-able dict with its target and pass flag."""
    found = shutil.which("exiftool")
    if not found:
        raise BenchError("exiftool is not installed (Debian: libimage-exiftool-perl)")
    count = 300 if quick else 1000
    batch = Settings().batch_size
    with tempfile.TemporaryDirectory(prefix="faceforge-bench-exiftool-") as tmp:
        paths = _make_files(Path(tmp), count)
        quiet = wait_quiet(30)
        figures = asyncio.run(_measure(Path(found), paths, batch))
        plugin = asyncio.run(_through_core(paths, Path(tmp) / "home"))
    return {"files": count, "batch_size": batch, "exiftool": found, "quiet": quiet,
            "runner": figures, "plugin": plugin, "target_files_per_s": TARGET_FILES_PER_S,
            "pass": figures["cold_files_per_s"] >= TARGET_FILES_PER_S
            and plugin["files_per_s"] >= TARGET_FILES_PER_S}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    print(json.dumps(run(parser.parse_args().quick), indent=2))


if __name__ == "__main__":
    main()

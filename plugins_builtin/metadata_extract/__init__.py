"""Metadata extraction (issue 8): ExifTool in ``-stay_open`` batch mode, and generation
parameters embedded in PNGs and safetensors headers, into each asset's
``extracted_metadata``; width, height and duration onto the asset record.

Service for other plugins and tests: ``metadata_extract.worker`` (:class:`Extractor`).
Settings (``plugins.metadata_extract`` in ``config/core.json``): ``batch_size`` (32),
``queue_limit`` (10,000), ``timeout_seconds`` (60, per ExifTool batch),
``copy_budget_bytes`` (256 MiB of remote blobs copied under ``tmp/`` at once),
``exiftool_idle_seconds`` (300: the ExifTool process exits when unused that long).  ExifTool
itself: ``tools.exiftool_enabled`` and ``tools.exiftool_path``.
"""

from __future__ import annotations

from typing import Any

from ff_plugin_sdk import ApiRoute, Kernel, StatusLine, hookimpl
from plugins_builtin.metadata_extract import api
from plugins_builtin.metadata_extract.worker import Extractor, Settings, wanted

SERVICE = "metadata_extract.worker"


def worker_for(kernel: Kernel) -> Extractor:
    """This kernel's worker, made once and published."""
    if SERVICE not in kernel.services:
        settings = Settings.from_config(kernel.plugin_config("metadata_extract"))
        kernel.services[SERVICE] = Extractor(kernel, settings)
    return kernel.services[SERVICE]


@hookimpl
def faceforge_routes(kernel: Kernel) -> list[ApiRoute]:
    return api.routes(worker_for(kernel))


@hookimpl
def faceforge_startup(kernel: Kernel) -> None:
    worker_for(kernel).start()


@hookimpl
async def faceforge_shutdown(kernel: Kernel) -> None:
    await worker_for(kernel).stop()


@hookimpl
def faceforge_asset_ingested(kernel: Kernel, asset: dict[str, Any]) -> None:
    if wanted(asset):
        worker_for(kernel).enqueue(asset["asset_id"])


@hookimpl
async def faceforge_status(kernel: Kernel) -> list[StatusLine]:
    """The System page's line: on (which ExifTool), or off and why."""
    worker = worker_for(kernel)
    if await worker.exiftool_ready():
        status = worker.status()
        return [StatusLine(name="metadata extraction", state="ok", message=(
            f"ExifTool {status['exiftool']['version']} at {status['exiftool']['path']}; "
            f"{status['queued']} queued, {status['done']} done, {status['failed']} failed"))]
    reason = worker.located.reason or "exiftool not available"
    return [StatusLine(name="metadata extraction", state="off",
                       message=f"metadata extraction off: {reason} (PNG and safetensors "
                               f"generation parameters are still read)")]

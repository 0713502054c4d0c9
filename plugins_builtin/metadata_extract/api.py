"""``/v1/metadata-extract/status``: is ExifTool on, and how far the worker got."""

from __future__ import annotations

from typing import Any

import msgspec

from ff_plugin_sdk import ApiRoute
from plugins_builtin.metadata_extract.worker import Extractor


class ExifToolStatus(msgspec.Struct, kw_only=True):
    #: False: only generation parameters (PNG text, safetensors headers) are read
    enabled: bool
    path: str | None
    version: str | None
    #: the long-lived ``-stay_open`` process is up (it starts on first use)
    running: bool
    processes_started: int
    #: why ExifTool is off ("exiftool not found (looked in ...)"), else null
    reason: str | None


class Status(msgspec.Struct, kw_only=True):
    exiftool: ExifToolStatus
    #: assets waiting in the queue
    queued: int
    #: assets extracted since start
    done: int
    #: assets whose file could not be read since start
    failed: int


def routes(worker: Extractor) -> list[ApiRoute]:
    async def status(request: Any) -> Status:
        await worker.exiftool_ready()  # a version, or why it does not run
        return msgspec.convert(worker.status(), Status)

    return [ApiRoute(path="/metadata-extract/status", endpoint=status, scope="system:read",
                     response=Status, summary="Metadata extraction: ExifTool and the queue",
                     tags=["metadata"])]

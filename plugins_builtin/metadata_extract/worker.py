"""The extraction worker: a bounded queue of asset ids, taken in batches, one at a time.

Each batch: read the rows, give every file a local path (the filesystem provider's blob as
it is; anything else copied under ``tmp/``), read generation parameters in Python, run the
files through one ExifTool process together, store each result.  ``extracted_metadata``:

- ``exiftool``: ExifTool's tags (see :mod:`.shape`); ``exiftool_error`` when it could not read
  the file at all; ``exiftool_off`` (the reason) when ExifTool was not available — such
  assets are done again once it is;
- ``generation``: embedded generation parameters (see :mod:`.generation`);
  ``generation_error`` when a ``.safetensors`` file has no readable header.

An asset whose ``extracted_metadata`` is still ``{}`` was never done: the catch-up scan at
start (and after the queue overflowed) finds it.  A store that cannot be reached leaves it so.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections import deque
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ff_plugin_sdk import Kernel
from ff_plugin_sdk.storage import BlobMissing, StorageProvider, StorageUnavailable
from plugins_builtin.metadata_extract.generation import (
    NotSafetensors,
    parse_a1111,
    png_generation,
    png_text,
    safetensors_generation,
)
from plugins_builtin.metadata_extract.locate import Located, locate_exiftool, probe_version
from plugins_builtin.metadata_extract.runner import ExifToolRunner, FileResult
from plugins_builtin.metadata_extract.shape import clean_tags, dimensions, duration

#: copies of remote blobs under ``tmp/`` start with this (not ``staged-``: not an upload)
TMP_PREFIX = "metadata-extract-"
THUMBNAIL_KIND = "image.thumbnail"
SCAN_PAGE = 500


@dataclass(frozen=True, kw_only=True)
class Settings:
    """``plugins.metadata_extract`` in ``config/core.json``."""

    batch_size: int = 32
    #: ids waiting past this are left to the catch-up scan (the database remembers them)
    queue_limit: int = 10_000
    timeout_seconds: float = 60.0
    #: remote blobs copied under ``tmp/`` at once, at most (one larger file goes alone)
    copy_budget_bytes: int = 256 * 1024 * 1024
    #: ExifTool (~25 MB of Perl) exits after this long without work; it starts again on use
    exiftool_idle_seconds: float = 300.0

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Settings:
        values: dict[str, Any] = {}
        for name, default in vars(cls()).items():
            value = config.get(name, default)
            if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"plugins.metadata_extract.{name} must be a positive number, "
                                 f"got {value!r}")
            values[name] = type(default)(value)
        return cls(**values)


def wanted(asset: dict[str, Any]) -> bool:
    """Originals only: thumbnails and other derived files say nothing new."""
    return asset.get("kind") != THUMBNAIL_KIND and not asset.get("derived_from_asset_id")


@dataclass
class Job:
    asset: dict[str, Any]
    metadata: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    temporary: bool = False
    run_exiftool: bool = True
    png_size: tuple[int, int] | None = None
    #: the store could not be reached: leave the asset for a later start
    postponed: bool = False

    @property
    def asset_id(self) -> str:
        return str(self.asset["asset_id"])


class Extractor:
    """Published as ``metadata_extract.worker``: :meth:`enqueue`, :meth:`idle`,
    :meth:`status`."""

    def __init__(self, kernel: Kernel, settings: Settings) -> None:
        self.kernel = kernel
        self.settings = settings
        self.log = kernel.logger("metadata_extract")
        self.located = Located(None, "not started")
        self.version: str | None = None
        self.runner: ExifToolRunner | None = None
        self.done = 0
        self.failed = 0
        self._queue: deque[str] = deque()
        self._queued: set[str] = set()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._scan_pending = True
        self._scan_after = 0
        self._task: asyncio.Task[None] | None = None
        self._probe: asyncio.Task[None] | None = None

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> None:
        """Find ExifTool (say so once if it is missing), then work in the background: the
        catch-up scan happens there, not on the way to serving.  ExifTool is first run
        (``-ver``, to check it works) when there is work or the status is asked for."""
        self.located = locate_exiftool(self.kernel.tools_config(), self.kernel.tools_dir,
                                       path_env=os.environ.get("PATH"))
        if self.located.path is None:
            self.log.warning("metadata extraction off: %s", self.located.reason)
        if "assets.store" not in self.kernel.services:
            self.log.warning("metadata extraction off: the assets plugin is not loaded")
            self._idle.set()
            return
        self._sweep_copies()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Cancel the batch in flight (its assets are redone at the next start) and stop
        ExifTool."""
        for task in (self._task, self._probe):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._task = self._probe = None
        if self.runner is not None:
            await self.runner.close()

    def enqueue(self, asset_id: str) -> None:
        """Queue an asset; returns at once (called from ``faceforge_asset_ingested``)."""
        if asset_id in self._queued:
            return
        self._idle.clear()
        if len(self._queue) >= self.settings.queue_limit:
            self._scan_pending = True  # its row says it is not done: the scan finds it
        else:
            self._queue.append(asset_id)
            self._queued.add(asset_id)
        self._wake.set()

    async def idle(self) -> None:
        """Wait until the start-up work is over and nothing is queued or in flight."""
        await self._idle.wait()

    def status(self) -> dict[str, Any]:
        runner = self.runner
        return {"exiftool": {"enabled": self.located.path is not None,
                             "path": str(self.located.path) if self.located.path else None,
                             "version": self.version,
                             "running": bool(runner and runner.running),
                             "processes_started": runner.starts if runner else 0,
                             "reason": self.located.reason},
                "queued": len(self._queue), "done": self.done, "failed": self.failed}

    # -- the loop ------------------------------------------------------------------------
    async def exiftool_ready(self) -> bool:
        """Whether ExifTool runs; the first call checks (``-ver``) and reports a failure as
        the off state."""
        if self.located.path is None:
            return False
        if self.runner is None:
            if self._probe is None:
                self._probe = asyncio.get_running_loop().create_task(self._check_exiftool())
            await asyncio.shield(self._probe)  # one caller going away does not stop it
        return self.runner is not None

    async def _run(self) -> None:
        while True:
            try:
                if self._queue:
                    count = min(self.settings.batch_size, len(self._queue))
                    batch = [self._queue.popleft() for _ in range(count)]
                    try:
                        await self._process(batch)
                    finally:
                        self._queued.difference_update(batch)
                elif self._scan_pending:
                    self._scan_pending = False
                    await self._scan()
                else:
                    self._idle.set()
                    await self._wait_for_work()
            except Exception:
                self.log.exception("metadata extraction failed on a batch; going on")

    async def _wait_for_work(self) -> None:
        runner = self.runner
        linger = self.settings.exiftool_idle_seconds if runner and runner.running else None
        try:
            async with asyncio.timeout(linger):
                await self._wake.wait()
        except TimeoutError:
            assert runner is not None
            self.log.info("exiftool idle for %g s: stopping it until there is work", linger)
            await runner.close()
            return
        self._wake.clear()

    async def _check_exiftool(self) -> None:
        exe = self.located.path
        if exe is None:
            return
        try:
            self.version = await probe_version(exe)
        except RuntimeError as exc:
            self.located = Located(None, str(exc))
            self.log.warning("metadata extraction off: %s", exc)
            return
        self.runner = ExifToolRunner(exe, timeout=self.settings.timeout_seconds, logger=self.log)
        self.log.info("metadata extraction with exiftool %s at %s", self.version, exe)

    async def _scan(self) -> None:
        """Queue live originals never extracted (and those done while ExifTool was off, if it
        is on now), from where the last scan stopped."""
        # a read of the assets table: the store has no query for "not extracted yet"
        sql = ("SELECT seq, asset_id FROM assets WHERE seq > ? AND deleted_at IS NULL"
               " AND derived_from_asset_id IS NULL AND kind != ?"
               " AND (extracted_metadata = '{}'"
               "      OR (? AND json_type(extracted_metadata, '$.exiftool_off') IS NOT NULL))"
               " ORDER BY seq LIMIT ?")
        while rows := await self.kernel.db.fetchall(
                sql, (self._scan_after, THUMBNAIL_KIND, self.located.path is not None,
                      SCAN_PAGE)):
            for row in rows:
                if len(self._queue) >= self.settings.queue_limit:
                    self._scan_pending = True  # go on from here once the queue drains
                    return
                self.enqueue(row[1])
                self._scan_after = row[0]

    # -- one batch -----------------------------------------------------------------------
    def _needs_work(self, asset: dict[str, Any] | None) -> bool:
        if asset is None or asset["deleted_at"] or not wanted(asset):
            return False
        done = asset["extracted_metadata"]
        return not done or (self.located.path is not None and "exiftool_off" in done)

    async def _process(self, ids: Sequence[str]) -> None:
        store = self.kernel.services["assets.store"]
        await self.exiftool_ready()
        assets = await asyncio.gather(*(store.find(i) for i in ids))
        jobs = [Job(a) for a in assets if self._needs_work(a)]
        wave: list[Job] = []
        copied = 0
        for job in jobs:
            size = 0 if self._local_path(job.asset) else int(job.asset["size"])
            if wave and copied + size > self.settings.copy_budget_bytes:
                await self._wave(wave)
                wave, copied = [], 0
            wave.append(job)
            copied += size
        if wave:
            await self._wave(wave)

    async def _wave(self, jobs: list[Job]) -> None:
        try:
            for job in jobs:
                await self._prepare(job)
            runs = [j for j in jobs if j.run_exiftool and j.path and not j.postponed]
            if self.runner is not None and runs:
                results = await self.runner.extract([j.path for j in runs if j.path])
                for job, result in zip(runs, results, strict=True):
                    self._take(job, result)
            await asyncio.gather(*(self._store(j) for j in jobs))
        finally:
            for job in jobs:
                if job.temporary and job.path:
                    with contextlib.suppress(OSError):
                        job.path.unlink()

    async def _prepare(self, job: Job) -> None:
        """Generation parameters, and a local file when ExifTool or the PNG reader wants one."""
        asset = job.asset
        provider = self.kernel.storage.provider(asset["provider"])
        try:
            if asset["filename"].lower().endswith(".safetensors"):
                try:
                    job.metadata["generation"] = await safetensors_generation(
                        lambda start, end: provider.open_range(asset["asset_id"], start, end),
                        int(asset["size"]))
                    job.run_exiftool = False  # weights: nothing for ExifTool to read
                    return
                except NotSafetensors as exc:
                    job.metadata["generation_error"] = f"not a safetensors file: {exc}"
            is_png = asset["mime_type"] == "image/png"
            if self.runner is None:
                job.metadata["exiftool_off"] = self.located.reason or "exiftool not available"
                if not is_png:
                    return
            await self._materialize(job, provider)
            if is_png and job.path:
                texts, job.png_size = await asyncio.to_thread(png_text, job.path)
                if generation := png_generation(texts):
                    job.metadata["generation"] = generation
        except BlobMissing:
            job.metadata["exiftool_error"] = "the file's bytes are missing from storage"
            job.run_exiftool = False
        except (StorageUnavailable, OSError) as exc:
            self.log.warning("cannot read asset %s for metadata extraction (%s); it is done "
                             "at a later start", asset["asset_id"], exc)
            job.postponed = True

    def _local_path(self, asset: dict[str, Any]) -> Path | None:
        """The blob's own file, for the filesystem provider (read in place, never changed)."""
        provider = self.kernel.storage.providers.get(asset["provider"])
        # a provider with local files may say where a blob is (``local_path``); the others
        # are read through open_range into a copy
        helper = getattr(provider, "local_path", None)
        if not callable(helper):
            return None
        path = helper(asset["asset_id"])
        with contextlib.suppress(OSError):
            if path is not None and Path(path).stat().st_size == asset["size"]:
                return Path(path)
        return None

    async def _materialize(self, job: Job, provider: StorageProvider) -> None:
        job.path = self._local_path(job.asset)
        if job.path is not None:
            return
        path = Path(self.kernel.storage.context.tmp_dir) / f"{TMP_PREFIX}{uuid.uuid4().hex}"
        job.path, job.temporary = path, True
        await _copy(provider.open_range(job.asset_id), path)

    def _take(self, job: Job, result: FileResult) -> None:
        if result.tags is None:
            job.metadata["exiftool_error"] = result.error or "exiftool could not read the file"
            return
        tags = clean_tags(result.tags)
        job.metadata["exiftool"] = tags
        comment = tags.get("ExifIFD:UserComment")
        if ("generation" not in job.metadata and isinstance(comment, str)
                and "Steps: " in comment):  # AUTOMATIC1111 writes JPEG/WebP parameters here
            job.metadata["generation"] = {"source": "exif:usercomment", "parameters": comment,
                                          "parsed": parse_a1111(comment)}

    async def _store(self, job: Job) -> None:
        if job.postponed:
            self.failed += 1
            return
        tags = job.metadata.get("exiftool", {})
        width, height = dimensions(tags)
        if width is None and job.png_size and all(job.png_size):
            width, height = job.png_size
        metadata = job.metadata or {"exiftool_error": "nothing could be read"}
        store = self.kernel.services["assets.store"]
        await store.set_extracted(job.asset_id, metadata, width=width, height=height,
                                  duration_seconds=duration(tags))
        if "exiftool_error" in metadata:
            self.failed += 1
        else:
            self.done += 1

    def _sweep_copies(self) -> None:
        """Copies a crash left under ``tmp/``."""
        storage = getattr(self.kernel, "storage", None)
        if storage is None:
            return
        for path in Path(storage.context.tmp_dir).glob(f"{TMP_PREFIX}*"):
            with contextlib.suppress(OSError):
                path.unlink()


async def _copy(chunks: AsyncIterator[bytes], path: Path) -> None:
    fd = await asyncio.to_thread(os.open, path, os.O_WRONLY | os.O_CREAT | os.O_EXCL
                                 | getattr(os, "O_BINARY", 0), 0o600)
    try:
        async for chunk in chunks:
            await asyncio.to_thread(_write_all, fd, chunk)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]

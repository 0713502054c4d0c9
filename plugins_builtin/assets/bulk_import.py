"""Bulk import of a folder (``assets.bulk_import``): a job that walks the folder and ingests
every file, with its ``_meta.json`` sidecar, in batches.

The request is checked before a job exists (a relative, missing or unreadable root is a
422, not a failed job).  A record of what was imported (path, size, mtime) lets a re-run
skip unchanged files without reading them, and lets a run that was cancelled or cut short
by a crash continue without duplicates.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import anyio
import msgspec
from msgspec import Meta

from ff_plugin_sdk import ApiRoute, JobType, Kernel, ValidationFailed
from ff_plugin_sdk.jobs import JobContext, JobFailed
from ff_plugin_sdk.storage import StorageFull
from plugins_builtin.assets.batch_ingest import BatchIngest, Outcome
from plugins_builtin.assets.folder_walk import FileEntry, walk
from plugins_builtin.assets.ingest import Ingest, check_kind
from plugins_builtin.assets.store import AssetStore

JOB_TYPE = "assets.bulk_import"
#: a batch ends at this many files or bytes, whichever comes first
BATCH_FILES = 500
BATCH_BYTES = 64 * 1024 * 1024

Pattern = Annotated[str, Meta(min_length=1, max_length=500)]


class BulkImport(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """What to import: an absolute folder on the machine Core runs on."""

    path: Annotated[str, Meta(min_length=1, max_length=4096)]
    recursive: bool = True
    #: every file's kind (default: from its content, as an upload)
    kind: str | None = None
    #: link every imported file to this entity
    entity_id: Annotated[str, Meta(pattern="^[0-9a-f]{64}$")] | None = None
    #: glob patterns on the path below the folder (or the file name): only these...
    include: Annotated[list[Pattern], Meta(max_length=100)] = []
    #: ...and never these (a matching folder is not entered)
    exclude: Annotated[list[Pattern], Meta(max_length=100)] = []
    #: follow symbolic links that stay inside the folder (never one that leads out)
    follow_symlinks: bool = False


class BulkImportRequest(BulkImport, kw_only=True, forbid_unknown_fields=True):
    priority: Annotated[int, Meta(ge=-1_000_000, le=1_000_000)] = 0


def check_root(path: str, at: str = "$", home: Path | None = None) -> Path:
    """The folder, if it can be imported: absolute, existing, a folder, readable (422
    naming ``<at>.path`` otherwise)."""

    def _bad_path(message: str) -> ValidationFailed:
        return ValidationFailed(message, details=[{"path": f"{at}.path", "message": message}])

    if "\x00" in path:
        raise _bad_path("path contains a NUL character")
    root = Path(path)
    if not root.is_absolute():
        raise _bad_path(f"path must be absolute (a folder on the machine Core runs on), "
                        f"got {path!r}")
    try:
        if not root.exists():
            raise _bad_path(f"no such folder: {path}")
        if not root.is_dir():
            raise _bad_path(f"not a folder: {path}")
    except OSError as exc:
        raise _bad_path(f"cannot reach {path}: {exc.strerror}") from exc
    if not os.access(root, os.R_OK | os.X_OK):
        raise _bad_path(f"cannot read the folder {path} (permission denied)")
    if home is not None and Path(os.path.realpath(root)).is_relative_to(
            os.path.realpath(home)):
        raise _bad_path(f"{path} is inside FaceForge's own home ({home}): its database and "
                        f"blobs are not files to import")
    return root


class Importer:
    """The ``assets.importer`` service: start a bulk import; run one (the job handler)."""

    def __init__(self, kernel: Kernel, store: AssetStore, ingest: Ingest) -> None:
        self.kernel = kernel
        self.store = store
        self.batches = BatchIngest(kernel, store, ingest)

    async def check(self, request: BulkImport, at: str = "$.input") -> None:
        """What the schema cannot tell: the folder, the kind, the entity (422 / 404);
        ``at`` is where the request sits in the body, for the error's path."""
        check_root(request.path, at, self.kernel.home)
        check_kind(request.kind, f"{at}.kind")
        if request.entity_id is not None:
            await self.store.require_entities([request.entity_id])

    async def start(self, request: BulkImportRequest) -> dict[str, Any]:
        """Check the request (errors name its own fields), then queue the job; returns
        the job."""
        await self.check(request, "$")
        queue = self.kernel.services.get("jobs.queue")
        if queue is None:
            raise ValidationFailed("bulk import needs the jobs plugin, which is not enabled")
        fields = msgspec.structs.asdict(request)
        priority = fields.pop("priority")
        return await queue.submit(JOB_TYPE, fields, priority=priority)

    def job_type(self) -> JobType:
        return JobType(name=JOB_TYPE, summary="import every file of a folder",
                       handler=self.run, input_schema=BulkImport, check=self.check,
                       max_attempts=3)

    async def run(self, ctx: JobContext) -> dict[str, Any]:
        request: BulkImport = ctx.input
        try:
            root = check_root(request.path, home=self.kernel.home)
        except ValidationFailed as exc:
            raise JobFailed(exc.message) from exc
        ctx.progress(percent=0, step="listing files")
        found = await anyio.to_thread.run_sync(
            lambda: walk(root, recursive=request.recursive, include=request.include,
                         exclude=request.exclude, follow_symlinks=request.follow_symlinks,
                         skip=[self.kernel.home]))
        for relpath, problem in found.problems:
            ctx.log("warning", f"{relpath}: {problem}", path=relpath)
        skipped = (f", {found.symlinks_skipped} symlink(s) skipped"
                   if found.symlinks_skipped else "")
        ctx.log("info", f"found {len(found.files)} file(s), {found.total_bytes} bytes"
                        f" ({found.sidecars} with a sidecar{skipped})",
                files=len(found.files), bytes=found.total_bytes)
        totals = Outcome()
        done = {"bytes": 0, "problems": len(found.problems)}
        ctx.progress(step="importing", files=0, bytes=0, files_total=len(found.files),
                     bytes_total=found.total_bytes)

        def report(number: int, batch: Sequence[FileEntry], outcome: Outcome) -> None:
            totals.add(outcome)
            done["bytes"] += sum(entry.size for entry in batch)
            ctx.log("info", f"batch {number}: {outcome.summary()}", batch=number,
                    **outcome.counts())
            for relpath, problem in outcome.problems:
                ctx.log("warning", f"{relpath}: {problem}", path=relpath)
            done["problems"] += len(outcome.problems)
            ctx.progress(percent=100 * done["bytes"] / found.total_bytes if found.total_bytes
                         else 100 * totals.files / max(1, len(found.files)),
                         files=totals.files, bytes=done["bytes"], imported=totals.imported,
                         deduplicated=totals.deduplicated, unchanged=totals.unchanged,
                         failed=totals.failed)

        try:
            await self.batches.run(root, _batches(found.files), request, report)
        except StorageFull as exc:  # trying again will not make room
            raise JobFailed(exc.message) from exc
        ctx.progress(percent=100, step="done")
        return {"path": str(root), "files": len(found.files), "bytes": found.total_bytes,
                **totals.counts(), "problems": done["problems"],
                "symlinks_skipped": found.symlinks_skipped}


def _batches(files: list[FileEntry]) -> list[list[FileEntry]]:
    batches: list[list[FileEntry]] = []
    batch: list[FileEntry] = []
    size = 0
    for entry in files:
        batch.append(entry)
        size += entry.size
        if len(batch) >= BATCH_FILES or size >= BATCH_BYTES:
            batches.append(batch)
            batch, size = [], 0
    if batch:
        batches.append(batch)
    return batches


class Started(msgspec.Struct, kw_only=True):
    job_id: str
    job_type: str
    status: str
    created_at: str
    #: the job as ``GET /v1/jobs/{job_id}`` returns it
    job: dict[str, Any]


def routes(importer: Importer) -> list[ApiRoute]:
    async def bulk_import(request: Any, body: BulkImportRequest) -> Started:
        """Import every file of a folder on this machine, as a job (202); follow it at
        ``/v1/jobs/{job_id}``.  Files are copied (never linked) through the normal ingest
        path; ``*_meta.json`` sidecars become their file's metadata."""
        job = await importer.start(body)
        return Started(job_id=job["job_id"], job_type=job["type"], status=job["status"],
                       created_at=job["created_at"],
                       job={k: v for k, v in job.items() if k[0] != "_"})

    return [ApiRoute(path="/assets/bulk-import", endpoint=bulk_import, methods=["POST"],
                     scope="assets:write", body=BulkImportRequest, response=Started,
                     status_code=202, tags=["assets"])]

"""Core's own worker pool: runs in-process job handlers, highest priority first, within a
global limit and per-type limits.

Each run has a cancel scope (a cancel takes effect at the handler's next ``await``) and a
:class:`Context` whose log lines and progress are buffered and saved a few times a second,
for every running job together, in one write.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from typing import Any

import anyio
import msgspec

from ff_plugin_sdk import JobType, Kernel, WriteTx
from ff_plugin_sdk.jobs import LEVELS, JobFailed
from plugins_builtin.jobs.store import (
    COLUMNS,
    CORE,
    JobStore,
    LogLine,
    add_lines,
    finish,
    requeue_or_fail,
    row_to_job,
)

#: how often buffered log lines and progress are saved
FLUSH_SECONDS = 0.25
#: how long the pool waits for a change before looking at the queue anyway
IDLE_SECONDS = 5.0


def _plain(value: Any) -> Any:
    """``value`` as JSON data (anything else becomes its text): a log field must never
    break the write that saves it."""
    return msgspec.json.decode(msgspec.json.encode(value, enc_hook=str))


class Context:
    """One run of one job (:class:`ff_plugin_sdk.jobs.JobContext`)."""

    def __init__(self, pool: Pool, job: dict[str, Any], input: Any) -> None:
        self.pool = pool
        self.kernel = pool.kernel
        self.job_id: str = job["job_id"]
        self.type: str = job["type"]
        self.input = input
        self.input_asset_id: str | None = job["input_asset_id"]
        self.attempt: int = job["attempts"]
        self.max_attempts: int = job["max_attempts"]
        self.correlation_id: str | None = job["correlation_id"]
        self._progress: dict[str, Any] = {}
        self._progress_dirty = False
        self._lines: list[LogLine] = []
        self.outputs: list[str] = []

    def progress(self, percent: float | None = None, step: str | None = None,
                 **counters: int | float) -> None:
        if percent is not None:
            self._progress["percent"] = round(min(100.0, max(0.0, float(percent))), 2)
        if step is not None:
            self._progress["step"] = str(step)
        if counters:
            self._progress["counters"] = {**self._progress.get("counters", {}),
                                          **_plain(counters)}
        self._progress_dirty = True
        self.pool.dirty.add(self)

    def log(self, level: str, message: str, **fields: Any) -> None:
        if level not in LEVELS:
            level = "info"
        self._lines.append(LogLine(level, str(message), _plain(fields), self.kernel.now()))
        self.pool.dirty.add(self)

    def add_output(self, *asset_ids: str) -> None:
        self.outputs += asset_ids

    async def flush(self) -> None:
        await self.pool.flush()

    def take(self) -> tuple[dict[str, Any] | None, list[LogLine]]:
        """What is waiting to be saved (and forget it)."""
        progress = dict(self._progress) if self._progress_dirty else None
        lines, self._lines, self._progress_dirty = self._lines, [], False
        return progress, lines


def _save(tx: WriteTx, job_id: str, progress: dict[str, Any] | None,
          lines: list[LogLine], now: str) -> None:
    if progress is not None:
        tx.execute("UPDATE jobs SET progress = ?, updated_at = ? WHERE job_id = ?",
                   (msgspec.json.encode(progress).decode(), now, job_id))
    add_lines(tx, job_id, lines)


@dataclass
class Run:
    context: Context
    scope: anyio.CancelScope
    #: why it was cancelled: "user" or "shutdown"
    cancelled_by: str | None = None


@dataclass
class Pool:
    kernel: Kernel
    store: JobStore
    types: dict[str, JobType]
    workers: int
    limits: dict[str, int]
    running: dict[str, Run] = field(default_factory=dict)
    dirty: set[Context] = field(default_factory=set)
    stopping: bool = False

    def __post_init__(self) -> None:
        self.log = self.kernel.logger("jobs")
        self._flush_lock = anyio.Lock()
        self._idle = anyio.Event()

    @property
    def in_process(self) -> list[str]:
        return [name for name, t in self.types.items() if t.in_process]

    async def run(self) -> None:
        """Claim and run jobs until cancelled; in-flight runs are then queued again."""
        hub = self.store.hub
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(self._flusher)
                while True:
                    seen = hub.token()
                    free = self.workers - len(self.running)
                    if (free > 0 and self.in_process and not self.stopping
                            and await self.store.any_queued(self.in_process)):
                        jobs = await self.store.claim(self.in_process, CORE, None,
                                                      self.limits, free)
                        for job in jobs:
                            self._start(group, job)
                        if jobs:
                            continue
                    await hub.wait(IDLE_SECONDS, seen)
        finally:
            with anyio.CancelScope(shield=True):
                await self.flush()

    def _start(self, group: anyio.abc.TaskGroup, job: dict[str, Any]) -> None:
        job_type = self.types[job["type"]]
        bad: str | None = None
        try:
            value = (msgspec.convert(job["input"], job_type.input_schema)
                     if job_type.input_schema is not None else job["input"])
        except msgspec.ValidationError as exc:  # a type whose schema changed since
            value, bad = None, str(exc)
        run = Run(Context(self, job, value), anyio.CancelScope())
        self.running[job["job_id"]] = run
        group.start_soon(self._run, run, job_type, bad, name=f"faceforge-job-{job['job_id']}")

    async def _run(self, run: Run, job_type: JobType, bad_input: str | None) -> None:
        ctx = run.context
        outcome: tuple[str, Any, bool] = ("cancelled", None, False)
        try:
            with self.kernel.correlated(ctx.correlation_id), run.scope:
                if bad_input is not None:
                    raise JobFailed(f"input no longer fits {job_type.name}: {bad_input}")
                assert job_type.handler is not None
                result = await job_type.handler(ctx)
                outcome = ("succeeded", _plain(result) if result is not None else None, False)
        except JobFailed as exc:
            outcome = ("failed", exc.message, exc.retryable)
        except Exception as exc:
            ctx.log("error", f"{type(exc).__name__}: {exc}",
                    traceback="".join(traceback.format_exception(exc, limit=-8)))
            self.log.exception("job %s (%s) failed", ctx.job_id, ctx.type)
            outcome = ("failed", f"{type(exc).__name__}: {exc}", True)
        finally:
            with anyio.CancelScope(shield=True), self.kernel.correlated(ctx.correlation_id):
                try:
                    await self._end(run, *outcome)
                finally:
                    self.running.pop(ctx.job_id, None)
                    self.store.hub.changed()  # a worker is free: the pool looks again

    async def _end(self, run: Run, status: str, value: Any, retryable: bool) -> None:
        ctx = run.context
        now = self.kernel.now()

        def end(tx: WriteTx) -> None:
            _save(tx, ctx.job_id, *ctx.take(), now)
            row = tx.fetchone(f"SELECT {COLUMNS} FROM jobs WHERE job_id = ?", (ctx.job_id,))
            if row is None:
                return
            job = row_to_job(row)
            if job["status"] != "running" or job["runner_id"] != CORE:
                return  # no longer ours (cannot happen while Core runs; defensive)
            if status == "succeeded":
                finish(tx, job, "succeeded", now, result=value, outputs=ctx.outputs)
            elif status == "failed":
                requeue_or_fail(tx, job, str(value), now, retryable=retryable, failure=True)
            elif run.cancelled_by == "shutdown" or self.stopping:
                tx.execute("UPDATE jobs SET attempts = attempts - 1 WHERE job_id = ?",
                           (ctx.job_id,))
                job["attempts"] -= 1
                requeue_or_fail(tx, job, "Core stopped while the job ran", now)
            else:
                finish(tx, job, "cancelled", now, outputs=ctx.outputs)

        async with self._flush_lock:
            await self.store.write(end)

    def cancel(self, job_id: str) -> bool:
        """Cancel a run of this pool (at its next await); False if it runs elsewhere."""
        run = self.running.get(job_id)
        if run is None:
            return False
        run.cancelled_by = run.cancelled_by or "user"
        run.scope.cancel()
        return True

    def stop(self) -> None:
        """Core is stopping: every run is cancelled and its job queued again."""
        self.stopping = True
        for run in self.running.values():
            run.cancelled_by = "shutdown"
            run.scope.cancel()

    async def _flusher(self) -> None:
        while True:
            await anyio.sleep(FLUSH_SECONDS)
            if self.dirty:
                await self.flush()

    async def flush(self) -> None:
        """Save every running job's buffered log lines and progress, in one write."""
        async with self._flush_lock:
            dirty, self.dirty = self.dirty, set()
            pending = [(ctx.job_id, *ctx.take()) for ctx in dirty]
            pending = [p for p in pending if p[1] is not None or p[2]]
            if not pending:
                return
            now = self.kernel.now()

            def save(tx: WriteTx) -> None:
                for job_id, progress, lines in pending:
                    _save(tx, job_id, progress, lines, now)

            try:
                await self.store.write(save)
            except Exception:
                self.log.exception("could not save the log lines of %d job(s)", len(pending))

"""The ``jobs.queue`` service: submitting, claiming and steering jobs, the lease sweeper and
recovery at start.  The HTTP API and other plugins both go through it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import anyio
import msgspec

from ff_plugin_sdk import Conflict, JobType, Kernel, NotFound, ValidationFailed
from ff_plugin_sdk.errors import validation_error
from plugins_builtin.jobs.pool import Pool
from plugins_builtin.jobs.store import CORE, Hub, JobStore, LogLine, seconds_until

#: the longest a claim may wait for work (long-poll)
MAX_WAIT_SECONDS = 30.0
#: the longest the lease sweeper sleeps without looking
SWEEP_SECONDS = 30.0
#: how long shutdown waits for in-process runs to hand their jobs back
STOP_SECONDS = 10.0


#: how often a waiting claim checks that its runner is still there
CHECK_SECONDS = 1.0


class JobQueue:
    def __init__(self, kernel: Kernel, settings: dict[str, Any]) -> None:
        self.kernel = kernel
        self.hub = Hub()
        self.store = JobStore(kernel, self.hub)
        self.types: dict[str, JobType] = {}
        self.settings = settings
        self.pool: Pool | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.log = kernel.logger("jobs")

    # -- job types ---------------------------------------------------------------------
    def job_type(self, name: str) -> JobType:
        job_type = self.types.get(name)
        if job_type is None:
            known = ", ".join(sorted(self.types)) or "none"
            raise ValidationFailed(f"unknown job type {name!r}; the known types are: {known}",
                                   details=[{"path": "$.type", "message": "unknown job type",
                                             "known": sorted(self.types)}])
        return job_type

    def limits(self) -> dict[str, int]:
        """Per-type concurrency: the type's own limit, unless config says otherwise."""
        configured = self.settings.get("concurrency", {})
        limits = {name: t.concurrency for name, t in self.types.items()
                  if t.concurrency is not None}
        limits.update({name: int(n) for name, n in configured.items()})
        return limits

    # -- lifecycle -----------------------------------------------------------------------
    async def start(self, types: dict[str, JobType]) -> None:
        # the kernel's own dict, kept: enabling or disabling a plugin changes it in place
        self.types = types
        if recovered := await self.store.recover(
                "Core stopped or crashed while the job ran"):
            self.log.warning("recovered %d job(s) that were running when Core stopped",
                             recovered)
        self.pool = Pool(self.kernel, self.store, self.types, int(self.settings["workers"]),
                         self.limits())
        self._tasks = [asyncio.create_task(self._sweep(), name="faceforge-jobs-leases")]

    def run_pool(self) -> None:
        """Start running in-process jobs (once every plugin has started)."""
        assert self.pool is not None
        self._tasks.append(asyncio.create_task(self.pool.run(), name="faceforge-jobs-pool"))

    async def stop(self) -> None:
        if self.pool is not None:
            self.pool.stop()
            # the pool's runs end shielded (queued again); then the pool itself goes.  A
            # handler stuck where a cancel cannot reach (a long thread call) is left to
            # recovery at the next start
            deadline = anyio.current_time() + STOP_SECONDS
            while self.pool.running and anyio.current_time() < deadline:
                await self.hub.wait(deadline - anyio.current_time())
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        self.hub.close()

    async def _sweep(self) -> None:
        """Leases that run out: queued again, or failed after their attempts."""
        while True:
            seen = self.hub.token()
            soonest = await self.store.next_lease_expiry()
            wait = SWEEP_SECONDS if soonest is None else seconds_until(soonest)
            if wait > 0:
                await self.hub.wait(min(wait + 0.01, SWEEP_SECONDS), seen)
                continue
            for job_id, status in await self.store.expire_leases():
                self.log.warning("job %s: its runner's lease expired; now %s", job_id, status)

    # -- the API's operations ----------------------------------------------------------------
    async def submit(self, type: str, input: dict[str, Any] | None = None, *,
                     priority: int = 0, input_asset_id: str | None = None,
                     max_attempts: int | None = None,
                     correlation_id: str | None = None) -> dict[str, Any]:
        job_type = self.job_type(type)
        value: Any = input if input is not None else {}
        if job_type.input_schema is not None:
            try:
                decoded = msgspec.convert(value, job_type.input_schema)
            except msgspec.ValidationError as exc:
                raise validation_error(exc, "$.input") from exc
            value = msgspec.to_builtins(decoded)
        else:
            decoded = value
        if job_type.check is not None:
            await job_type.check(decoded)
        if input_asset_id is not None:
            await self._require_asset(input_asset_id)
        return await self.store.create(
            type=type, input=value, priority=priority, input_asset_id=input_asset_id,
            max_attempts=max_attempts or job_type.max_attempts,
            correlation_id=correlation_id or self.kernel.correlation_id())

    async def _require_asset(self, asset_id: str) -> None:
        assets = self.kernel.services.get("assets.store")
        asset = await assets.find(asset_id) if assets is not None else None
        if asset is None or asset["deleted_at"]:
            raise NotFound(f"no asset with id {asset_id!r} to use as the job's input",
                           code="asset_not_found")

    async def get(self, job_id: str) -> dict[str, Any]:
        return await self.store.get(job_id)

    async def cancel(self, job_id: str) -> dict[str, Any]:
        job = await self.store.request_cancel(job_id)
        if job["status"] == "running" and job["runner_id"] == CORE and self.pool is not None:
            self.pool.cancel(job_id)
        return job

    async def claim(self, types: Sequence[str], runner_id: str, lease_seconds: float,
                    wait: float, waiting: Callable[[], Awaitable[bool]] | None = None
                    ) -> dict[str, Any] | None:
        """The next job of ``types`` for an out-of-process runner, waiting up to ``wait``
        seconds for one while ``waiting()`` holds (the runner is still there) and Core is
        not stopping."""
        for name in types:
            if self.job_type(name).in_process:
                raise ValidationFailed(
                    f"job type {name!r} runs inside Core; runners cannot claim it",
                    details=[{"path": "$.types", "message": f"{name} runs in process"}])
        deadline = anyio.current_time() + min(max(wait, 0.0), MAX_WAIT_SECONDS)
        while True:
            seen = self.hub.token()
            jobs = await self.store.claim(types, runner_id, lease_seconds, self.limits())
            if jobs:
                return jobs[0]
            left = deadline - anyio.current_time()
            if left <= 0 or self.hub.closed or self.kernel.stopping.is_set():
                return None
            await self.hub.wait(min(left, CHECK_SECONDS), seen)
            if waiting is not None and not await waiting():
                return None  # checked before each claim: a job is not given to nobody

    async def heartbeat(self, job_id: str, runner_id: str,
                        lease_seconds: float) -> dict[str, Any]:
        return await self.store.heartbeat(job_id, runner_id, lease_seconds)

    async def report(self, job_id: str, runner_id: str, progress: dict[str, Any] | None,
                     lines: Sequence[LogLine]) -> dict[str, Any]:
        return await self.store.report(job_id, runner_id, progress=progress, lines=lines)

    async def complete(self, job_id: str, runner_id: str, result: Any,
                       outputs: Sequence[str]) -> dict[str, Any]:
        for asset_id in dict.fromkeys(outputs):
            try:
                await self._require_asset(asset_id)
            except NotFound as exc:
                raise ValidationFailed(exc.message, details=[
                    {"path": "$.output_asset_ids", "message": f"no asset {asset_id}"}]) from exc
        return await self.store.complete(job_id, runner_id, result, outputs)

    async def fail(self, job_id: str, runner_id: str, error: str,
                   retryable: bool) -> dict[str, Any]:
        return await self.store.fail(job_id, runner_id, error, retryable)

    async def retry(self, job_id: str) -> dict[str, Any]:
        job = await self.store.get(job_id)
        if job["type"] not in self.types:
            raise Conflict(f"job type {job['type']!r} is no longer provided by any plugin",
                           code="job_type_unknown")
        return await self.store.retry(job_id)

    async def set_priority(self, job_id: str, priority: int) -> dict[str, Any]:
        return await self.store.set_priority(job_id, priority)

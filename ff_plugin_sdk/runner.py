"""Running jobs for Core from another process: claim, heart-beat, report, finish.

    runner = Runner(AsyncFaceForge())          # FACEFORGE_URL / FACEFORGE_TOKEN

    @runner.job("lora.train")
    async def train(ctx: JobContext) -> dict:
        await ctx.log("downloading images", count=3)
        await ctx.progress(50, step="training")
        ctx.check_cancelled()
        asset = await ctx.client.assets.upload(path, kind="model.lora")
        ctx.add_output(asset.asset_id)
        return {"steps": 100}

    if __name__ == "__main__":
        sys.exit(runner.main())

The runner long-polls ``POST /v1/jobs/claim`` for its types (``concurrency`` jobs at a
time), heart-beats every third of the lease in the background (a cancel requested in Core
stops the handler), sends progress and log lines in batches, and completes the job with
what the handler returns — or fails it: with the message of the exception the handler
raised, retryable for :class:`Retryable` (and for Core being unreachable).  Transient
HTTP failures are retried with back-off.  SIGTERM or SIGINT stop claiming, give running
handlers ``grace_seconds`` to finish, then stop them and fail their jobs as retryable so
Core queues them again.  Handlers must not block the event loop: run blocking work with
``asyncio.to_thread``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import logging
import os
import signal
import socket
import sys
import threading
import time
import traceback
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import msgspec

from ff_plugin_sdk.client import AsyncFaceForge, Job, Lease, Retry, Unreachable
from ff_plugin_sdk.errors import Conflict, FaceForgeError
from ff_plugin_sdk.jobs import JobFailed

log = logging.getLogger("ff_plugin_sdk.runner")
#: Core holds a claim open at most this long when no job is queued
CLAIM_WAIT_SECONDS = 20.0
#: pending log lines and progress are sent this often (and when a job ends)
FLUSH_SECONDS = 0.5
#: log lines sent in one request at most (Core's limit)
MAX_LINES = 1000
#: statuses that mean "try later", like a failed connection
TRANSIENT = frozenset({502, 503, 504})

Handler = Callable[["JobContext"], Awaitable[Any] | Any]


class Retryable(JobFailed):
    """Raised by a handler: the job failed, but may succeed if run again (Core queues it
    again while attempts are left)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=True)


class JobCancelled(Exception):
    """Raised by :meth:`JobContext.check_cancelled` once the job should stop."""


@dataclass(frozen=True)
class _Registration:
    handler: Handler
    #: a msgspec type the job's input is converted to (None: the dict as sent)
    input_type: Any


class JobContext:
    """One run of one job, as its handler sees it."""

    def __init__(self, runner: Runner, job: Job, input: Any) -> None:
        self._runner = runner
        self.job = job
        #: the job's input: a dict, or the ``input=`` type given to :meth:`Runner.job`
        self.input = input
        #: assets this run produced, sent with the completion (see :meth:`add_output`)
        self.output_asset_ids: list[str] = []
        self._lines: list[dict[str, Any]] = []
        self._progress: dict[str, Any] | None = None
        self._progress_sent = 0.0
        #: why the handler is being stopped: "cancel", "lost" (the lease) or "shutdown"
        self._stop_reason: str | None = None
        self._task: asyncio.Future[Any] | None = None
        #: one flush at a time, so batches reach Core in the order they were written
        self._flushing = asyncio.Lock()
        #: when the lease was last renewed (the claim took it)
        self._beat = time.monotonic()

    @property
    def job_id(self) -> str:
        return self.job.job_id

    @property
    def type(self) -> str:
        return self.job.type

    @property
    def attempt(self) -> int:
        """This run's number, from 1 (more after a retry or a recovered lease)."""
        return self.job.attempts

    @property
    def client(self) -> AsyncFaceForge:
        """The runner's client, to read inputs and upload results."""
        return self._runner.client

    @property
    def runner_id(self) -> str:
        return self._runner.runner_id

    @property
    def cancelled(self) -> bool:
        """True once the job should stop (cancelled in Core, its lease lost, the runner
        stopping); the handler is cancelled at its next ``await`` then too."""
        return self._stop_reason is not None

    def check_cancelled(self) -> None:
        """Raise :class:`JobCancelled` if the job should stop (for loops that seldom
        await)."""
        if self._stop_reason is not None:
            raise JobCancelled(f"job {self.job_id} is stopping ({self._stop_reason})")

    def add_output(self, *asset_ids: str) -> None:
        """Name assets this job produced (upload them first)."""
        self.output_asset_ids.extend(a for a in asset_ids if a not in self.output_asset_ids)

    async def progress(self, percent: float | None = None, *, step: str | None = None,
                       counters: Mapping[str, int | float] | None = None) -> None:
        """Report progress (0-100), the current step and counters; cheap to call often:
        the newest values are sent at most every half second, and when the job ends."""
        if percent is not None:
            percent = min(100.0, max(0.0, float(percent)))
        self._progress = {"percent": percent, "step": step, "counters": dict(counters or {})}
        if time.monotonic() - self._progress_sent >= FLUSH_SECONDS:
            await self.flush()

    async def log(self, message: str, level: str = "info", **fields: Any) -> None:
        """Append a line to the job's log (``debug``, ``info``, ``warning``, ``error``);
        lines are sent in batches, in order."""
        self._lines.append({"level": level, "message": str(message)[:10_000],
                            "fields": msgspec.to_builtins(fields, str_keys=True)})
        if len(self._lines) >= MAX_LINES:
            await self.flush()

    async def flush(self) -> None:
        """Send pending log lines and progress now (done anyway twice a second)."""
        client, job_id, me = self._runner.client, self.job_id, self._runner.runner_id
        async with self._flushing:
            while self._lines:
                batch, self._lines = self._lines[:MAX_LINES], self._lines[MAX_LINES:]
                self._heard(await client.jobs.append_log(job_id, me, batch))
            if self._progress is not None:
                progress, self._progress = self._progress, None
                self._progress_sent = time.monotonic()
                self._heard(await client.jobs.progress(job_id, me, **progress))

    def _heard(self, lease: Lease) -> None:
        if lease.cancel_requested or lease.status != "running":
            self._stop("cancel")

    def _stop(self, reason: str) -> None:
        if self._stop_reason is None:
            self._stop_reason = reason
            if self._task is not None:
                self._task.cancel()


def default_runner_id() -> str:
    plugin = os.environ.get("FACEFORGE_PLUGIN_ID") or "runner"
    return f"{plugin}@{socket.gethostname()[:100]}:{os.getpid()}"


class Runner:
    """Claims jobs of its registered types from Core and runs their handlers.

    ``client`` defaults to ``AsyncFaceForge()`` (the environment Core gives a runner);
    ``concurrency`` jobs run at once; a job is held for ``lease_seconds`` and the lease
    renewed every third of it; ``grace_seconds`` is how long running handlers may finish
    after a stop signal.
    """

    def __init__(self, client: AsyncFaceForge | None = None, *, runner_id: str | None = None,
                 concurrency: int = 1, lease_seconds: float = 60.0,
                 claim_wait: float = CLAIM_WAIT_SECONDS, grace_seconds: float = 10.0,
                 retry: Retry | None = None) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self._client = client
        self.runner_id = runner_id or default_runner_id()
        self.concurrency = concurrency
        self.lease_seconds = lease_seconds
        self.claim_wait = claim_wait
        self.grace_seconds = grace_seconds
        #: back-off between failed claims (Core down, restarting)
        self.retry = retry or Retry(backoff=0.5, max_backoff=10.0)
        self._handlers: dict[str, _Registration] = {}
        self._running: dict[str, JobContext] = {}
        self._claims: set[asyncio.Task[Any]] = set()
        self._stopping: asyncio.Event | None = None
        self._hurry: asyncio.Event | None = None
        self._fatal: FaceForgeError | None = None

    @property
    def client(self) -> AsyncFaceForge:
        if self._client is None:
            self._client = AsyncFaceForge()
        return self._client

    @property
    def handlers(self) -> dict[str, Handler]:
        """The job types this runner claims, each with its handler."""
        return {name: r.handler for name, r in self._handlers.items()}

    def job(self, type: str, *, input: Any = None) -> Callable[[Handler], Handler]:
        """Register ``async def handler(ctx) -> dict | None`` for the job type ``type``;
        ``input``: a msgspec type the job's input is converted to (a job whose input does
        not fit fails, not retried)."""

        def register(handler: Handler) -> Handler:
            if type in self._handlers:
                raise ValueError(f"job type {type!r} already has a handler")
            self._handlers[type] = _Registration(handler, input)
            return handler

        return register

    # -- running -----------------------------------------------------------------------------
    async def run(self, *, handle_signals: bool = True) -> None:
        """Claim and run jobs until :meth:`stop` (or SIGTERM/SIGINT with
        ``handle_signals``).  Raises what Core answered if it refuses to hand out jobs
        (``Unauthorized`` once the plugin is disabled, ``ValidationFailed`` for a job type
        it does not know): retrying would not help."""
        if not self._handlers:
            raise RuntimeError("no job types: register handlers with @runner.job(type)")
        self._stopping, self._hurry, self._fatal = asyncio.Event(), asyncio.Event(), None
        restore = self._catch_signals() if handle_signals else []
        log.info("runner %s claims %s", self.runner_id, ", ".join(self._handlers))
        workers = [asyncio.create_task(self._work()) for _ in range(self.concurrency)]
        keeper = asyncio.create_task(self._keep())
        try:
            await self._stopping.wait()
            await self._shutdown(workers)
        finally:
            for task in [*workers, keeper]:
                task.cancel()
            for undo in restore:
                undo()
        if self._fatal is not None:
            raise self._fatal

    def stop(self) -> None:
        """Stop claiming and let running jobs finish (within ``grace_seconds``); a second
        call stops them at once.  Safe to call from a signal handler on the loop."""
        if self._stopping is None:
            return
        if self._stopping.is_set() and self._hurry is not None:
            self._hurry.set()
        self._stopping.set()
        for claim in self._claims:
            claim.cancel()

    def run_forever(self) -> None:
        """Run in a new event loop until a stop signal (a plugin's ``__main__``)."""
        asyncio.run(self._run_and_close())

    def main(self) -> int:
        """:meth:`run_forever` for ``sys.exit(runner.main())``: 0 after a clean stop, 1 if
        Core refused to hand out jobs (the token, the types)."""
        if not logging.getLogger().handlers:
            logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                                format="%(asctime)s %(levelname)s %(name)s: %(message)s")
            # a line per HTTP request would bury the runner's own lines in its log
            for noisy in ("httpx", "httpcore"):
                logging.getLogger(noisy).setLevel(logging.WARNING)
        try:
            self.run_forever()
        except FaceForgeError as exc:
            log.error("runner stopped: %s (%s)", exc.message, exc.code)
            return 1
        return 0

    async def _run_and_close(self) -> None:
        try:
            await self.run()
        finally:
            await self.client.aclose()

    def _catch_signals(self) -> list[Callable[[], Any]]:
        """Stop on SIGTERM and SIGINT; returns what puts the old handlers back."""
        if threading.current_thread() is not threading.main_thread():
            return []
        loop = asyncio.get_running_loop()
        undo: list[Callable[[], Any]] = []
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(sig, self.stop)
                undo.append(functools.partial(loop.remove_signal_handler, sig))
            except (NotImplementedError, RuntimeError):  # Windows: no loop signal handlers
                old = signal.signal(sig, lambda *_: loop.call_soon_threadsafe(self.stop))
                undo.append(functools.partial(signal.signal, sig, old))
        return undo

    async def _work(self) -> None:
        """One slot: claim a job, run it, again, until stopping."""
        assert self._stopping is not None
        failures = 0
        while not self._stopping.is_set():
            claim = asyncio.create_task(self.client.jobs.claim(
                list(self._handlers), self.runner_id, lease_seconds=self.lease_seconds,
                wait=self.claim_wait))
            self._claims.add(claim)
            try:
                await asyncio.wait({claim})
            finally:
                self._claims.discard(claim)
                claim.cancel()
            if claim.cancelled():
                return
            try:
                job = claim.result()
            except FaceForgeError as exc:
                if not _transient(exc):  # a refused token, a type Core does not know
                    log.error("Core refused the claim: %s", exc.message)
                    self._fatal = exc
                    self.stop()
                    return
                failures += 1
                log.warning("claim failed (%s: %s); trying again", exc.code, exc.message)
                await self._pause(self.retry.delay(failures - 1))
                continue
            failures = 0
            if job is not None:
                try:
                    await self._run_job(job)
                except Exception:  # a bug here must not take the slot with it
                    log.exception("job %s: the runner failed to run it", job.job_id)

    async def _pause(self, seconds: float) -> None:
        assert self._stopping is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def _shutdown(self, workers: list[asyncio.Task[Any]]) -> None:
        """Give running jobs their grace, then stop them; each reports its own end."""
        assert self._hurry is not None
        busy = [w for w in workers if not w.done()]
        if not busy:
            return
        if self._running:
            log.info("stopping: %d job(s) running, %.0f s to finish", len(self._running),
                     self.grace_seconds)
        finished = asyncio.create_task(asyncio.wait(busy))
        hurry = asyncio.create_task(self._hurry.wait())
        await asyncio.wait({finished, hurry}, timeout=self.grace_seconds,
                           return_when=asyncio.FIRST_COMPLETED)
        hurry.cancel()
        for ctx in list(self._running.values()):
            ctx._stop("shutdown")
        await asyncio.wait({finished}, timeout=self.lease_seconds)

    # -- one job -----------------------------------------------------------------------------
    async def _run_job(self, job: Job) -> None:
        registration = self._handlers[job.type]
        try:
            data = (job.input if registration.input_type is None
                    else msgspec.convert(job.input, registration.input_type))
        except msgspec.ValidationError as exc:
            await self._finish(job, "fail", f"invalid input: {exc}", False)
            return
        ctx = JobContext(self, job, data)
        self._running[job.job_id] = ctx
        ctx._task = task = asyncio.ensure_future(_call(registration.handler, ctx))
        try:
            await asyncio.wait({task})
        finally:
            task.cancel()
            self._running.pop(job.job_id, None)
        await self._report(ctx, task)

    async def _keep(self) -> None:
        """Twice a second, for every running job: send its pending log lines and progress,
        renew its lease when a third of it has gone, hear a cancel."""
        while True:
            await asyncio.sleep(FLUSH_SECONDS)
            await asyncio.gather(*(self._tend(ctx) for ctx in list(self._running.values())))

    async def _tend(self, ctx: JobContext) -> None:
        try:
            await ctx.flush()
            if time.monotonic() - ctx._beat >= max(self.lease_seconds / 3, FLUSH_SECONDS):
                ctx._beat = time.monotonic()
                ctx._heard(await self.client.jobs.heartbeat(
                    ctx.job_id, self.runner_id, lease_seconds=self.lease_seconds))
        except Conflict:  # job_not_held: the lease ran out and Core took the job back
            if ctx.job_id in self._running:
                ctx._stop("lost")
        except FaceForgeError as exc:  # Core unreachable: the next tick tries again
            log.warning("job %s: cannot reach Core (%s)", ctx.job_id, exc.message)

    async def _report(self, ctx: JobContext, task: asyncio.Future[Any]) -> None:
        """Complete or fail the job with what the handler did."""
        reason = ctx._stop_reason
        if reason == "lost":
            log.warning("job %s: the lease was lost; its result is dropped", ctx.job_id)
            return
        error = None if task.cancelled() else task.exception()
        if task.cancelled() or isinstance(error, JobCancelled):
            if reason == "cancel":
                await self._finish(ctx.job, "fail", "cancelled", False, ctx)
            else:  # the runner is stopping: Core queues the job again
                await self._finish(ctx.job, "fail", "the runner stopped before the job "
                                   "finished", True, ctx)
            return
        if error is None:
            try:
                result = msgspec.to_builtins(task.result())
            except TypeError as exc:
                error = JobFailed(f"the handler's result is not JSON: {exc}")
            else:
                await self._finish(ctx.job, "complete", result, False, ctx)
                return
        message, retryable = _failure(error)
        if not isinstance(error, JobFailed):
            await ctx.log(message, level="error", traceback="".join(
                traceback.format_exception(error))[-8000:])
        await self._finish(ctx.job, "fail", message, retryable, ctx)

    async def _finish(self, job: Job, how: str, value: Any, retryable: bool,
                      ctx: JobContext | None = None) -> None:
        """Send the end of the job, trying again for as long as the lease lasts."""
        deadline = time.monotonic() + self.lease_seconds
        failures = 0
        while True:
            try:
                if ctx is not None:
                    await ctx.flush()
                if how == "complete":
                    await self.client.jobs.complete(
                        job.job_id, self.runner_id, value,
                        output_asset_ids=ctx.output_asset_ids if ctx else ())
                else:
                    await self.client.jobs.fail(job.job_id, self.runner_id, str(value),
                                                retryable=retryable)
                return
            except Conflict as exc:  # ended meanwhile: cancelled, or the lease ran out
                log.warning("job %s: %s", job.job_id, exc.message)
                return
            except FaceForgeError as exc:
                if how == "complete" and exc.status == 422:  # an output asset Core lacks
                    how, value, retryable = "fail", exc.message, False
                    continue
                failures += 1
                if not _transient(exc) or time.monotonic() > deadline:
                    log.error("job %s: could not report its end: %s", job.job_id,
                              exc.message)
                    return
                await asyncio.sleep(self.retry.delay(failures - 1))


async def _call(handler: Handler, ctx: JobContext) -> Any:
    """The handler's result; a plain function works too (it runs on the loop: keep it
    quick)."""
    result = handler(ctx)
    return await result if inspect.isawaitable(result) else result


def _transient(error: BaseException) -> bool:
    return isinstance(error, Unreachable) or (
        isinstance(error, FaceForgeError) and error.status in TRANSIENT)


def _failure(error: BaseException) -> tuple[str, bool]:
    """(message, retryable) for what a handler raised."""
    if isinstance(error, JobFailed):
        return error.message, error.retryable
    message = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    return message[:10_000], _transient(error)

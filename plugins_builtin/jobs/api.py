"""``/v1/jobs``: the queue's HTTP surface, for people, tools and out-of-process runners."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta
from starlette.responses import StreamingResponse

from ff_plugin_sdk import SQL_INT_MAX, ApiRoute, Kernel, NotFound, parse_event_id
from plugins_builtin.jobs.queue import MAX_WAIT_SECONDS, JobQueue
from plugins_builtin.jobs.store import LogLine
from plugins_builtin.jobs.watch import follow_job

Status = Literal["queued", "running", "succeeded", "failed", "cancelled"]
Level = Literal["debug", "info", "warning", "error"]
HexId = Annotated[str, Meta(pattern="^[0-9a-f]{64}$", description="SHA-256 hex")]
TypeName = Annotated[str, Meta(min_length=3, max_length=200)]
RunnerId = Annotated[str, Meta(pattern=r"^[A-Za-z0-9._:@\-]{1,200}$")]
Priority = Annotated[int, Meta(ge=-1_000_000, le=1_000_000)]
LeaseSeconds = Annotated[float, Meta(ge=1, le=24 * 3600)]
_ID = re.compile("^[0-9a-f]{64}$")


class Progress(msgspec.Struct, kw_only=True, omit_defaults=True):
    percent: float | None = None
    step: str | None = None
    counters: dict[str, int | float] = {}


class Job(msgspec.Struct, kw_only=True):
    job_id: str
    type: str
    status: Status
    priority: int
    input: Any
    input_asset_id: str | None
    progress: Progress
    result: Any
    output_asset_ids: list[str]
    error: str | None
    attempts: int
    max_attempts: int
    cancel_requested: bool
    correlation_id: str | None
    #: ``core`` for Core's own worker pool, else the out-of-process runner holding it
    runner_id: str | None
    lease_expires_at: str | None
    created_at: str
    updated_at: str
    started_at: str | None
    finished_at: str | None


class JobPage(msgspec.Struct, kw_only=True):
    items: list[Job]
    next_cursor: str | None


class JobCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    type: TypeName
    #: checked against the job type's input schema
    input: dict[str, Any] = {}
    #: higher runs first
    priority: Priority = 0
    #: a stored asset holding a large input (spec §9.3: no giant JSON payloads)
    input_asset_id: HexId | None = None
    max_attempts: Annotated[int, Meta(ge=1, le=100)] | None = None


class ListQuery(msgspec.Struct, kw_only=True):
    status: list[Status] = []
    type: list[str] = []
    limit: Annotated[int, Meta(ge=1, le=500)] = 50
    cursor: str | None = None


class LogQuery(msgspec.Struct, kw_only=True):
    after_id: Annotated[int, Meta(ge=0, le=SQL_INT_MAX)] = 0
    limit: Annotated[int, Meta(ge=1, le=1000)] = 100


class LogEntry(msgspec.Struct, kw_only=True):
    id: int
    level: str
    message: str
    fields: dict[str, Any]
    created_at: str


class LogPage(msgspec.Struct, kw_only=True):
    items: list[LogEntry]
    #: pass as ``after_id`` to continue (the last line's id; unchanged when none came)
    next_after_id: int


class StreamQuery(msgspec.Struct, kw_only=True):
    #: resume after this log line (``Last-Event-ID`` wins); without: the newest lines
    after_id: Annotated[int, Meta(ge=0, le=SQL_INT_MAX)] | None = None


class PriorityPatch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    priority: Priority


class Claim(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    types: Annotated[list[TypeName], Meta(min_length=1, max_length=100)]
    runner_id: RunnerId
    lease_seconds: LeaseSeconds = 60.0
    #: seconds to wait for a job when none is queued (long-poll); 0 answers at once
    wait: Annotated[float, Meta(ge=0, le=MAX_WAIT_SECONDS)] = 0.0


class Heartbeat(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    runner_id: RunnerId
    lease_seconds: LeaseSeconds = 60.0


class Lease(msgspec.Struct, kw_only=True):
    job_id: str
    status: Status
    #: stop and call ``/fail`` (or ``/complete``): the job will end cancelled
    cancel_requested: bool
    lease_expires_at: str | None


class ProgressReport(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    runner_id: RunnerId
    percent: Annotated[float, Meta(ge=0, le=100)] | None = None
    step: Annotated[str, Meta(max_length=500)] | None = None
    counters: Annotated[dict[Annotated[str, Meta(max_length=100)], int | float],
                        Meta(max_length=100)] = {}


class LineIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    level: Level = "info"
    message: Annotated[str, Meta(max_length=10_000)]
    fields: dict[str, Any] = {}


class LogBatch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    runner_id: RunnerId
    lines: Annotated[list[LineIn], Meta(min_length=1, max_length=1000)]


class Complete(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    runner_id: RunnerId
    result: Any = None
    output_asset_ids: Annotated[list[HexId], Meta(max_length=10_000)] = []


class Fail(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    runner_id: RunnerId
    error: Annotated[str, Meta(min_length=1, max_length=10_000)]
    #: queue it again while attempts are left (else fail it for good)
    retryable: bool = True


def to_job(job: dict[str, Any]) -> Job:
    return msgspec.convert({k: v for k, v in job.items() if k[0] != "_"}, Job)


def job_json(job: dict[str, Any]) -> bytes:
    return msgspec.json.encode(to_job(job))


def check_id(job_id: str) -> str:
    if not _ID.match(job_id):
        raise NotFound(f"no job with id {job_id!r}", code="job_not_found")
    return job_id


def routes(kernel: Kernel, queue: JobQueue) -> list[ApiRoute]:
    store = queue.store

    def job_of(request: Any) -> str:
        return check_id(request.path_params["job_id"])

    async def create_job(request: Any, body: JobCreate) -> Job:
        """Queue a job of a registered type; 202 with the job."""
        return to_job(await queue.submit(
            body.type, body.input, priority=body.priority, input_asset_id=body.input_asset_id,
            max_attempts=body.max_attempts))

    async def list_jobs(request: Any, query: ListQuery) -> JobPage:
        """Jobs, newest first; filter by status and type (each may repeat)."""
        jobs, cursor = await store.list(status=query.status, types=query.type,
                                        limit=query.limit, cursor=query.cursor)
        return JobPage(items=[to_job(j) for j in jobs], next_cursor=cursor)

    async def get_job(request: Any) -> Job:
        """One job: status, progress, result or error, attempts, who holds it."""
        return to_job(await store.get(job_of(request)))

    async def patch_job(request: Any, body: PriorityPatch) -> Job:
        """Change the priority of a queued job (409 once it runs)."""
        return to_job(await queue.set_priority(job_of(request), body.priority))

    async def job_log(request: Any, query: LogQuery) -> LogPage:
        """The job's log lines after ``after_id``, oldest first."""
        job_id = job_of(request)
        await store.get(job_id)
        lines = await store.log(job_id, query.after_id, query.limit)
        return LogPage(items=[LogEntry(**line) for line in lines],
                       next_after_id=lines[-1]["id"] if lines else query.after_id)

    async def stream_job(request: Any, query: StreamQuery) -> StreamingResponse:
        """Server-sent events: ``job`` (the job, whenever it changes), ``log`` (each line;
        its id is the line's id, so a reconnect resumes after ``Last-Event-ID``) and
        ``end`` (the final state; the stream then closes)."""
        job_id = job_of(request)
        after = parse_event_id(request.headers.get("last-event-id"))
        if after is None:
            after = query.after_id
        await store.get(job_id)  # 404 before the stream starts
        principal = request.scope["ff.principal"]

        async def alive() -> bool:
            return kernel.auth.still_valid(principal) and not await request.is_disconnected()

        async def events() -> AsyncIterator[bytes]:
            yield b"retry: 2000\n\n"
            async for kind, value in follow_job(store, job_id, after, alive):
                if kind == "log":
                    yield b"id: %d\nevent: log\ndata: %s\n\n" % (
                        value["id"], msgspec.json.encode(value))
                elif kind == "keepalive":
                    yield b": keepalive\n\n"
                else:
                    yield b"event: %s\ndata: %s\n\n" % (kind.encode(), job_json(value))

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache",
                                          "X-Accel-Buffering": "no"})

    async def cancel_job(request: Any) -> Job:
        """Cancel: a queued job at once; a running one at its handler's next await (in
        Core) or at its runner's next heartbeat.  409 once it has finished."""
        return to_job(await queue.cancel(job_of(request)))

    async def retry_job(request: Any) -> Job:
        """Queue a failed or cancelled job again, with a fresh set of attempts."""
        return to_job(await queue.retry(job_of(request)))

    # -- the runner protocol -----------------------------------------------------------------
    async def claim(request: Any, body: Claim) -> Any:
        """An out-of-process runner takes the next job of its types (highest priority,
        then oldest) with a lease; 204 when there is none within ``wait`` seconds."""
        async def waiting() -> bool:  # a runner that hung up must not be given a job
            return not await request.is_disconnected()

        job = await queue.claim(body.types, body.runner_id, body.lease_seconds, body.wait,
                                waiting)
        return to_job(job) if job is not None else None

    async def heartbeat(request: Any, body: Heartbeat) -> Lease:
        """Extend the lease; says whether a cancel was requested."""
        job = await queue.heartbeat(job_of(request), body.runner_id, body.lease_seconds)
        return Lease(job_id=job["job_id"], status=job["status"],
                     cancel_requested=job["cancel_requested"],
                     lease_expires_at=job["lease_expires_at"])

    async def report_progress(request: Any, body: ProgressReport) -> Lease:
        """The runner's progress (percent, step, counters)."""
        progress = msgspec.to_builtins(Progress(percent=body.percent, step=body.step,
                                                counters=body.counters))
        job = await queue.report(job_of(request), body.runner_id, progress, [])
        return Lease(job_id=job["job_id"], status=job["status"],
                     cancel_requested=job["cancel_requested"],
                     lease_expires_at=job["lease_expires_at"])

    async def append_log(request: Any, body: LogBatch) -> Lease:
        """A batch of log lines from the runner, saved in one write, in order."""
        now = kernel.now()
        lines = [LogLine(line.level, line.message, line.fields, now) for line in body.lines]
        job = await queue.report(job_of(request), body.runner_id, None, lines)
        return Lease(job_id=job["job_id"], status=job["status"],
                     cancel_requested=job["cancel_requested"],
                     lease_expires_at=job["lease_expires_at"])

    async def complete(request: Any, body: Complete) -> Job:
        """The runner finished: the result and the assets it produced (uploaded first)."""
        return to_job(await queue.complete(job_of(request), body.runner_id, body.result,
                                           body.output_asset_ids))

    async def fail(request: Any, body: Fail) -> Job:
        """The runner failed: queued again while ``retryable`` and attempts are left."""
        return to_job(await queue.fail(job_of(request), body.runner_id, body.error,
                                       body.retryable))

    one = "/jobs/{job_id}"
    tags = ["jobs"]
    runner = ["jobs: runner protocol"]
    return [
        ApiRoute(path="/jobs", endpoint=create_job, methods=["POST"], scope="jobs:write",
                 body=JobCreate, response=Job, status_code=202, tags=tags),
        ApiRoute(path="/jobs", endpoint=list_jobs, scope="jobs:read", query=ListQuery,
                 response=JobPage, tags=tags),
        ApiRoute(path="/jobs/claim", endpoint=claim, methods=["POST"], scope="jobs:run",
                 body=Claim, response=Job, tags=runner),
        ApiRoute(path=one, endpoint=get_job, scope="jobs:read", response=Job, tags=tags),
        ApiRoute(path=one, endpoint=patch_job, methods=["PATCH"], scope="jobs:write",
                 body=PriorityPatch, response=Job, tags=tags),
        ApiRoute(path=one + "/log", endpoint=job_log, scope="jobs:read", query=LogQuery,
                 response=LogPage, tags=tags),
        ApiRoute(path=one + "/stream", endpoint=stream_job, scope="jobs:read",
                 query=StreamQuery, media_type="text/event-stream", tags=tags),
        ApiRoute(path=one + "/cancel", endpoint=cancel_job, methods=["POST"],
                 scope="jobs:write", response=Job, tags=tags),
        ApiRoute(path=one + "/retry", endpoint=retry_job, methods=["POST"],
                 scope="jobs:write", response=Job, tags=tags),
        ApiRoute(path=one + "/heartbeat", endpoint=heartbeat, methods=["POST"],
                 scope="jobs:run", body=Heartbeat, response=Lease, tags=runner),
        ApiRoute(path=one + "/progress", endpoint=report_progress, methods=["POST"],
                 scope="jobs:run", body=ProgressReport, response=Lease, tags=runner),
        ApiRoute(path=one + "/log", endpoint=append_log, methods=["POST"], scope="jobs:run",
                 body=LogBatch, response=Lease, tags=runner),
        ApiRoute(path=one + "/complete", endpoint=complete, methods=["POST"],
                 scope="jobs:run", body=Complete, response=Job, tags=runner),
        ApiRoute(path=one + "/fail", endpoint=fail, methods=["POST"], scope="jobs:run",
                 body=Fail, response=Job, tags=runner),
    ]

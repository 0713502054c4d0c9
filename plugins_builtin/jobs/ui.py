"""The Jobs pages: the list with live progress, a job's page with its live log tail and its
buttons, the whole log page by page, and the shell's indicator of running work.

Live updates are server-sent events read by the vendored htmx SSE extension.  The list
listens at ``/ui/jobs/live``: ``job-<id>`` carries that row's cells, ``jobs-changed`` says a
job the table does not show yet belongs there (the table then reloads).  A job's page
listens at ``/ui/jobs/{id}/live``: ``job`` and ``end`` carry its state block, ``log`` one
more line.  Each event's data is a named block of the page's own template.  Without
JavaScript the pages are complete as served and the buttons are plain form posts answered
with a 303.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response, StreamingResponse

from ff_plugin_sdk import BadRequest, FaceForgeError, Kernel, UIPage, parse_event_id
from plugins_builtin.jobs.api import check_id
from plugins_builtin.jobs.queue import JobQueue
from plugins_builtin.jobs.store import FINAL, stamp_in
from plugins_builtin.jobs.watch import TAIL_LINES, follow_changes, follow_job

STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
PAGE_SIZE = 50
LOG_PAGE = 200
PRIORITY_LIMIT = 1_000_000
#: how far back a reconnecting list stream catches up (its ``since`` is the page's age)
CATCH_UP_SECONDS = 600.0
NOTICES = {"cancelled": "Cancel requested.", "retried": "The job is queued again.",
           "priority": "Priority changed."}
_STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def sse(event: str, data: str, event_id: int | None = None) -> bytes:
    """One server-sent event; each line of ``data`` gets its own ``data:`` field (a line
    break inside a field would end it)."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    body = "".join(f"data: {part}\n" for part in _LINE_BREAK.split(data.strip()))
    return f"{head}event: {event}\n{body}\n".encode()


def pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


def with_fields_text(line: dict[str, Any]) -> dict[str, Any]:
    """A log line with its fields as ``key=value`` text (values as JSON)."""
    text = " ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in line["fields"].items())
    return {**line, "fields_text": text}


def entered_at(job: dict[str, Any]) -> str:
    """When the job took its current status (retries aside: they keep ``created_at``)."""
    stamp = {"queued": job["created_at"], "running": job["started_at"]}.get(
        job["status"], job["finished_at"])
    return stamp or job["updated_at"]


def whole(text: str | None) -> int | None:
    """A non-negative whole number typed into a URL, else None."""
    return int(text) if text and text.isascii() and text.isdigit() and len(text) <= 18 else None


def pages(kernel: Kernel, queue: JobQueue) -> list[UIPage]:
    store = queue.store

    def alive_of(request: Request) -> Callable[[], Awaitable[bool]]:
        principal = kernel.auth.principal(request)

        async def alive() -> bool:
            return (principal is not None and kernel.auth.still_valid(principal)
                    and not await request.is_disconnected())

        return alive

    def stream(events: AsyncIterator[bytes]) -> StreamingResponse:
        return StreamingResponse(events, media_type="text/event-stream", headers=_SSE_HEADERS)

    def filters(request: Request) -> tuple[str, str, dict[str, str]]:
        """(status, type, {field: message}); a bad status is named and ignored."""
        params = request.query_params
        status = params.get("status", "").strip()
        job_type = params.get("type", "").strip()[:200]
        errors = {}
        if status and status not in STATUSES:
            errors["status"] = (f"{status[:50]!r} is not a job status; use one of: "
                                f"{', '.join(STATUSES)}.")
            status = ""
        return status, job_type, errors

    # -- the list --------------------------------------------------------------------------
    async def list_page(request: Request) -> Response:
        status, job_type, errors = filters(request)
        cursor = request.query_params.get("cursor") or None
        since = kernel.now()  # before the read: the live stream reports what came after

        async def read(at: str | None) -> tuple[list[dict[str, Any]], str | None]:
            return await store.list(status=[status] if status else [],
                                    types=[job_type] if job_type else [],
                                    limit=PAGE_SIZE, cursor=at)

        try:
            jobs, next_cursor = await read(cursor)
        except BadRequest as exc:  # a cursor from elsewhere, or hand-edited: start over
            if exc.code != "invalid_cursor":
                raise
            cursor = None
            jobs, next_cursor = await read(None)

        def link(**change: Any) -> str:
            query = {"status": status, "type": job_type} | change
            query = {k: v for k, v in query.items() if v}
            return "/ui/jobs" + ("?" + urlencode(query) if query else "")

        live = {"status": status, "type": job_type, "since": since}
        return kernel.templates.render(request, "jobs_list.html", {
            "jobs": jobs, "next_cursor": next_cursor, "cursor": cursor, "status": status,
            "job_type": job_type, "statuses": STATUSES, "errors": errors, "link": link,
            "types": sorted(set(queue.types) | ({job_type} if job_type else set())),
            "filtered": bool(status or job_type),
            "live_url": "/ui/jobs/live?" + urlencode({k: v for k, v in live.items() if v}),
            "can_import": "assets.importer" in kernel.services,
        }, block="results")

    async def live_list(request: Request) -> Response:
        """The list's events: every changed job's row cells; ``jobs-changed`` when a job
        that belongs in the table (its filters) took its status after the page was read."""
        status, job_type, _ = filters(request)
        given = request.query_params.get("since", "")
        now = kernel.now()
        since = max(given, stamp_in(-CATCH_UP_SECONDS, now)) if _STAMP.match(given) else now
        alive = alive_of(request)

        def belongs(job: dict[str, Any]) -> bool:
            if status:
                return job["status"] == status and entered_at(job) >= since
            return job["created_at"] >= since  # without a status filter: new jobs only

        async def events() -> AsyncIterator[bytes]:
            yield b"retry: 2000\n\n"
            told: set[str] = set()
            async for jobs in follow_changes(store, alive, since=since):
                if not jobs:
                    yield b": keepalive\n\n"
                    continue
                out = []
                for job in jobs:
                    if job_type and job["type"] != job_type:
                        continue
                    cells = kernel.templates.render_string(request, "jobs_list.html",
                                                    {"job": job}, block="row")
                    out.append(sse(f"job-{job['job_id']}", cells))
                    if belongs(job) and job["job_id"] not in told:
                        told.add(job["job_id"])
                        out.append(sse("jobs-changed", job["job_id"]))
                if out:
                    yield b"".join(out)

        return stream(events())

    # -- one job ---------------------------------------------------------------------------
    def state(job: dict[str, Any]) -> dict[str, Any]:
        """What the job's state block shows (rendered for the page and for each event)."""
        return {"job": job, "result_json": pretty(job["result"]),
                "assets_ui": "assets.store" in kernel.services}

    async def detail_page(request: Request, job_id: str, *, notice: str | None = None,
                          problem: str | None = None, status: int = 200) -> Response:
        job = await store.get(job_id)
        tail = [with_fields_text(line) for line in await store.tail(job_id, TAIL_LINES)]
        return kernel.templates.render(request, "jobs_detail.html", {
            **state(job), "tail": tail, "after_id": tail[-1]["id"] if tail else 0,
            "live": job["status"] not in FINAL, "input_json": pretty(job["input"]),
            "notice": notice, "problem": problem,
        }, status=status)

    async def detail(request: Request) -> Response:
        notice = NOTICES.get(request.query_params.get("notice", ""))
        return await detail_page(request, check_id(request.path_params["job_id"]),
                                 notice=notice)

    async def live_job(request: Request) -> Response:
        """A job's events: ``job`` and ``end`` (its state block), ``actions`` (its buttons,
        when they change), ``log`` (one line; its id is the line's, so a reconnect resumes
        after ``Last-Event-ID``)."""
        job_id = check_id(request.path_params["job_id"])
        after = parse_event_id(request.headers.get("last-event-id"))
        if after is None:
            after = whole(request.query_params.get("after_id"))
        await store.get(job_id)  # a 404 page rather than an empty stream
        alive = alive_of(request)

        def block(name: str, context: dict[str, Any]) -> str:
            return kernel.templates.render_string(request, "jobs_detail.html", context,
                                                  block=name)

        async def events() -> AsyncIterator[bytes]:
            yield b"retry: 2000\n\n"
            buttons: tuple[str, bool] | None = None
            async for kind, value in follow_job(store, job_id, after, alive):
                if kind == "keepalive":
                    yield b": keepalive\n\n"
                elif kind == "log":
                    yield sse("log", block("log_line", {"line": with_fields_text(value)}),
                              value["id"])
                else:
                    # the buttons are swapped only when they change: a button replaced
                    # under the pointer loses the click
                    now = (value["status"], value["cancel_requested"])
                    if now != buttons:
                        buttons = now
                        yield sse("actions", block("actions", {"job": value}))
                    yield sse(kind, block("state", state(value)))

        return stream(events())

    async def steer(request: Request, action: Callable[[str], Awaitable[Any]],
                    notice: str) -> Response:
        """Cancel, retry or re-prioritise, back to the job's page; a refusal (409: it has
        finished, it is not queued...) is shown there."""
        job_id = check_id(request.path_params["job_id"])
        try:
            await action(job_id)
        except FaceForgeError as exc:
            if exc.status not in (409, 422):
                raise
            return await detail_page(request, job_id, problem=exc.message, status=exc.status)
        return kernel.templates.redirect(request, f"/ui/jobs/{job_id}?notice={notice}")

    async def cancel(request: Request) -> Response:
        return await steer(request, queue.cancel, "cancelled")

    async def retry(request: Request) -> Response:
        return await steer(request, queue.retry, "retried")

    async def set_priority(request: Request) -> Response:
        text = str((await request.form()).get("priority") or "").strip()
        try:
            priority = int(text)
        except ValueError:
            priority = None
        if priority is None or abs(priority) > PRIORITY_LIMIT:
            return await detail_page(
                request, check_id(request.path_params["job_id"]), status=422,
                problem=f"A priority is a whole number from -{PRIORITY_LIMIT:,} to "
                        f"{PRIORITY_LIMIT:,}; got {text[:30]!r}.")
        return await steer(request, lambda job_id: queue.set_priority(job_id, priority),
                           "priority")

    async def log_page(request: Request) -> Response:
        job_id = check_id(request.path_params["job_id"])
        job = await store.get(job_id)
        after = whole(request.query_params.get("after_id")) or 0
        lines = await store.log(job_id, after, LOG_PAGE + 1)
        more = len(lines) > LOG_PAGE
        lines = lines[:LOG_PAGE]

        def link(cursor: int | None = None) -> str:
            return f"/ui/jobs/{job_id}/log" + (f"?after_id={cursor}" if cursor else "")

        return kernel.templates.render(request, "jobs_log.html", {
            "job": job, "lines": [with_fields_text(line) for line in lines], "after": after,
            "next_after": lines[-1]["id"] if more else None, "link": link,
        }, block="lines")

    # -- the shell's indicator -------------------------------------------------------------
    async def indicator(request: Request) -> Response:
        counts = await store.counts()
        return HTMLResponse(kernel.templates.render_string(request, "jobs_indicator.html",
                                                    {"counts": counts}))

    one = "/jobs/{job_id}"
    post = ["POST"]
    return [
        UIPage(path="/jobs", endpoint=list_page, name="jobs-list"),
        UIPage(path="/jobs/live", endpoint=live_list, name="jobs-live"),
        UIPage(path="/jobs/indicator", endpoint=indicator, name="jobs-indicator"),
        UIPage(path=one, endpoint=detail, name="jobs-detail"),
        UIPage(path=one + "/live", endpoint=live_job, name="jobs-detail-live"),
        UIPage(path=one + "/log", endpoint=log_page, name="jobs-log"),
        UIPage(path=one + "/cancel", endpoint=cancel, methods=post, name="jobs-cancel"),
        UIPage(path=one + "/retry", endpoint=retry, methods=post, name="jobs-retry"),
        UIPage(path=one + "/priority", endpoint=set_priority, methods=post,
               name="jobs-priority"),
    ]

"""Following jobs as they change: what the server-sent event streams (API and UI) send."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from plugins_builtin.jobs.store import FINAL, JobStore, stamp_in

#: how often a quiet stream checks that its caller is still there and still signed in
RECHECK_SECONDS = 1.0
KEEPALIVE_SECONDS = 15.0
#: log lines read per step
LOG_BATCH = 500
#: lines a new watcher (without a resume point) is shown first
TAIL_LINES = 100

#: how far back a watcher of all jobs looks for changes it may have missed
LOOK_BACK_SECONDS = 2.0

Alive = Callable[[], Awaitable[bool]]


async def follow_job(store: JobStore, job_id: str, after_id: int | None,
                     alive: Alive) -> AsyncIterator[tuple[str, Any]]:
    """("job", job) whenever it changes, ("log", line) for each new line (after
    ``after_id``; the newest lines when None), ("keepalive", None) when quiet, and finally
    ("end", job) once it has finished and every line was sent."""
    job = await store.get(job_id)
    hub = store.hub
    if after_id is None:
        tail = await store.tail(job_id, TAIL_LINES)
        after_id = tail[0]["id"] - 1 if tail else 0
    yield "job", job
    shown = job
    quiet = 0.0
    while True:
        seen = hub.token()
        job = await store.get(job_id)
        if job != shown:
            yield "job", job
            shown = job
        while lines := await store.log(job_id, after_id, LOG_BATCH):
            for line in lines:
                yield "log", line
            after_id = lines[-1]["id"]
            if len(lines) < LOG_BATCH:
                break
        if job["status"] in FINAL:
            yield "end", job
            return
        if hub.closed or not await alive():
            return
        if await hub.wait(RECHECK_SECONDS, seen):
            quiet = 0.0
            continue
        quiet += RECHECK_SECONDS
        if quiet >= KEEPALIVE_SECONDS:
            quiet = 0.0
            yield "keepalive", None


async def follow_changes(store: JobStore, alive: Alive, *,
                         since: str | None = None) -> AsyncIterator[list[dict[str, Any]]]:
    """Every job as it changes (a batch per commit), or [] as a keepalive when quiet."""
    hub = store.hub
    newest = since or store.kernel.now()
    # a write stamped just before another may commit just after it: look back a little,
    # and skip what was already sent
    sent: dict[str, str] = {}
    quiet = 0.0
    while not hub.closed and await alive():
        seen = hub.token()
        floor = stamp_in(-LOOK_BACK_SECONDS, newest)
        changed = [job for job in await store.changed_since(floor)
                   if sent.get(job["job_id"]) != job["updated_at"]]
        if changed:
            sent = {k: v for k, v in sent.items() if v >= floor}
            sent.update((job["job_id"], job["updated_at"]) for job in changed)
            newest = max(newest, *sent.values())
            yield changed
        if await hub.wait(RECHECK_SECONDS, seen):
            quiet = 0.0
            continue
        quiet += RECHECK_SECONDS
        if quiet >= KEEPALIVE_SECONDS:
            quiet = 0.0
            yield []

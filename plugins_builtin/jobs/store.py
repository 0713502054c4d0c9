"""Job rows and their logs: every state change is one write transaction that also records
its event and a log line, so a job's log tells its whole story."""

from __future__ import annotations

import asyncio
import base64
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from ff_plugin_sdk import SQL_INT_MAX, BadRequest, Conflict, Kernel, NotFound, WriteTx
from ff_plugin_sdk.jsontext import parse_json

#: the runner id of jobs run by Core's own worker pool
CORE = "core"
FINAL = ("succeeded", "failed", "cancelled")
COLUMNS = ("seq, job_id, type, status, priority, input, input_asset_id, progress, result,"
           " output_asset_ids, error, attempts, max_attempts, cancel_requested,"
           " correlation_id, runner_id, lease_expires_at, created_at, updated_at,"
           " started_at, finished_at")
_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
#: (``JobStore.list`` hides the builtin inside the class body)
Rows = list[dict[str, Any]]
Changes = list[tuple[str, str]]


def stamp_in(seconds: float, start: str | None = None) -> str:
    """The time ``seconds`` after ``start`` (default now), in the one timestamp format."""
    moment = (datetime.strptime(start, _FORMAT).replace(tzinfo=UTC) if start
              else datetime.now(UTC))
    return (moment + timedelta(seconds=seconds)).strftime(_FORMAT)


def seconds_until(stamp: str) -> float:
    moment = datetime.strptime(stamp, _FORMAT).replace(tzinfo=UTC)
    return (moment - datetime.now(UTC)).total_seconds()


def _j(value: Any) -> str:
    return msgspec.json.encode(value).decode()


def row_to_job(row: Any) -> dict[str, Any]:
    (seq, job_id, type_, status, priority, input_, input_asset_id, progress, result, outputs,
     error, attempts, max_attempts, cancel, correlation, runner, lease, created, updated,
     started, finished) = row
    return {"job_id": job_id, "type": type_, "status": status, "priority": priority,
            "input": msgspec.json.decode(input_), "input_asset_id": input_asset_id,
            "progress": msgspec.json.decode(progress),
            "result": msgspec.json.decode(result) if result is not None else None,
            "output_asset_ids": msgspec.json.decode(outputs), "error": error,
            "attempts": attempts, "max_attempts": max_attempts,
            "cancel_requested": bool(cancel), "correlation_id": correlation,
            "runner_id": runner, "lease_expires_at": lease, "created_at": created,
            "updated_at": updated, "started_at": started, "finished_at": finished,
            "_seq": seq}


def row_to_line(row: Any) -> dict[str, Any]:
    return {"id": row[0], "level": row[1], "message": row[2],
            "fields": msgspec.json.decode(row[3]), "created_at": row[4]}


def not_found(job_id: str) -> NotFound:
    return NotFound(f"no job with id {job_id!r}", code="job_not_found")


def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(msgspec.json.encode(["jobs", seq])).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        tag, seq = parse_json(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, TypeError) as exc:
        raise BadRequest("cursor is not one this server issued", code="invalid_cursor") from exc
    if tag != "jobs" or type(seq) is not int or abs(seq) > SQL_INT_MAX:
        raise BadRequest("cursor is not one this server issued", code="invalid_cursor")
    return seq


@dataclass
class LogLine:
    level: str
    message: str
    fields: dict[str, Any]
    created_at: str


class Hub:
    """Wakes whoever watches jobs (streams, long-polling claims, the worker pool) after a
    commit that changed one."""

    def __init__(self) -> None:
        self._changed = asyncio.Event()
        self.closed = False

    def changed(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def token(self) -> asyncio.Event:
        """Take before looking at the jobs; :meth:`wait` on it then misses no change made
        after the look."""
        return self._changed

    async def wait(self, timeout: float, token: asyncio.Event | None = None) -> bool:
        """Wait for a change (after ``token`` was taken); False on timeout."""
        # not asyncio.wait_for: on 3.11 it can swallow a cancel that arrives as the event
        # fires (a change at shutdown), and the cancelled task would wait on forever
        try:
            async with asyncio.timeout(timeout):
                await (token or self._changed).wait()
        except TimeoutError:
            return False
        return True

    def close(self) -> None:
        self.closed = True
        self.changed()


# -- statements shared by the transactions below (synchronous, on the writer) ---------------

def add_lines(tx: WriteTx, job_id: str, lines: Iterable[LogLine]) -> None:
    tx.executemany("INSERT INTO job_logs (job_id, level, message, fields, created_at)"
                   " VALUES (?, ?, ?, ?, ?)",
                   [(job_id, line.level, line.message, _j(line.fields), line.created_at)
                    for line in lines])


def _line(tx: WriteTx, job_id: str, level: str, message: str, now: str,
          **fields: Any) -> None:
    add_lines(tx, job_id, [LogLine(level, message, fields, now)])


def _row(tx: WriteTx, job_id: str) -> Any:
    row = tx.fetchone(f"SELECT {COLUMNS} FROM jobs WHERE job_id = ?", (job_id,))
    if row is None:
        raise not_found(job_id)
    return row


def _held(tx: WriteTx, job_id: str, runner_id: str) -> dict[str, Any]:
    """The job, if ``runner_id`` holds it (running, lease not given up); 409 otherwise."""
    job = row_to_job(_row(tx, job_id))
    if job["status"] != "running" or job["runner_id"] != runner_id:
        holder = (f"it is {job['status']}" if job["status"] != "running"
                  else f"runner {job['runner_id']!r} holds it")
        raise Conflict(f"runner {runner_id!r} does not hold job {job_id}: {holder}",
                       code="job_not_held")
    return job


def _event(tx: WriteTx, name: str, job: dict[str, Any], **extra: Any) -> None:
    tx.event(f"job.{name}", {"job_id": job["job_id"], "type": job["type"], **extra})


def finish(tx: WriteTx, job: dict[str, Any], status: str, now: str, *,
           result: Any = None, error: str | None = None,
           outputs: Sequence[str] | None = None) -> None:
    """End a job: succeeded, failed or cancelled (a cancel requested meanwhile wins over
    success: the user asked for it)."""
    if status == "succeeded" and job["cancel_requested"]:
        status, result = "cancelled", None
    sets = ("status = ?, finished_at = ?, updated_at = ?, lease_expires_at = NULL,"
            " result = ?, error = ?")
    values: list[Any] = [status, now, now, _j(result) if result is not None else None, error]
    if outputs is not None:
        sets += ", output_asset_ids = ?"
        values.append(_j(list(dict.fromkeys(outputs))))
    tx.execute(f"UPDATE jobs SET {sets} WHERE job_id = ?", (*values, job["job_id"]))
    if status == "succeeded":
        _line(tx, job["job_id"], "info", "succeeded", now)
    elif status == "failed":
        _line(tx, job["job_id"], "error", f"failed: {error}", now)
    else:
        _line(tx, job["job_id"], "warning", "cancelled", now)
    _event(tx, status, job, **({"error": error} if error else {}))


def requeue_or_fail(tx: WriteTx, job: dict[str, Any], reason: str, now: str, *,
                    retryable: bool = True, failure: bool = False) -> str:
    """A run ended without an answer (lease expired, Core stopped) or with a ``failure``
    (``reason`` is then its error): queue the job again while it has attempts left and
    the run allows it, else fail it; returns the status."""
    if job["cancel_requested"]:
        _line(tx, job["job_id"], "warning", reason, now)
        finish(tx, job, "cancelled", now)
        return "cancelled"
    if retryable and job["attempts"] < job["max_attempts"]:
        tx.execute("UPDATE jobs SET status = 'queued', runner_id = NULL,"
                   " lease_expires_at = NULL, updated_at = ? WHERE job_id = ?",
                   (now, job["job_id"]))
        _line(tx, job["job_id"], "warning",
              f"{'failed: ' if failure else ''}{reason}; queued again (attempt "
              f"{job['attempts']} of "
              f"{job['max_attempts']} used)", now)
        return "queued"
    error = (f"{reason} (after {job['attempts']} of {job['max_attempts']} attempts)"
             if retryable else reason)
    finish(tx, job, "failed", now, error=error)
    return "failed"


def claim_one(tx: WriteTx, job: dict[str, Any], runner_id: str, lease: str | None,
              now: str) -> dict[str, Any]:
    tx.execute("UPDATE jobs SET status = 'running', runner_id = ?, lease_expires_at = ?,"
               " attempts = attempts + 1, started_at = coalesce(started_at, ?),"
               " updated_at = ? WHERE job_id = ?", (runner_id, lease, now, now, job["job_id"]))
    attempt = job["attempts"] + 1
    who = "Core" if runner_id == CORE else f"runner {runner_id!r}"
    _line(tx, job["job_id"], "info",
          f"started by {who} (attempt {attempt} of {job['max_attempts']})", now,
          runner_id=runner_id, attempt=attempt)
    _event(tx, "started", job, runner_id=runner_id, attempt=attempt)
    return row_to_job(_row(tx, job["job_id"]))


def pick(tx: WriteTx, types: Sequence[str], limits: dict[str, int],
         count: int) -> list[dict[str, Any]]:
    """Up to ``count`` queued jobs of ``types``, highest priority first, then oldest,
    leaving each type within its concurrency limit."""
    types = list(dict.fromkeys(types))
    limited = [t for t in types if t in limits]
    running: dict[str, int] = {}
    if limited:
        marks = ",".join("?" * len(limited))
        running = {r[0]: r[1] for r in tx.fetchall(
            f"SELECT type, count(*) FROM jobs WHERE status = 'running' AND type IN ({marks})"
            f" GROUP BY type", limited)}
    candidates: list[dict[str, Any]] = []
    for job_type in types:
        room = min(count, limits[job_type] - running.get(job_type, 0)) if (
            job_type in limits) else count
        if room > 0:  # one walk of the queue index per type
            candidates += [row_to_job(r) for r in tx.fetchall(
                f"SELECT {COLUMNS} FROM jobs WHERE status = 'queued' AND type = ?"
                f" ORDER BY priority DESC, seq LIMIT ?", (job_type, room))]
    candidates.sort(key=lambda job: (-job["priority"], job["_seq"]))
    return candidates[:count]


class JobStore:
    def __init__(self, kernel: Kernel, hub: Hub) -> None:
        self.kernel = kernel
        self.db = kernel.db
        self.hub = hub

    async def write(self, fn: Any) -> Any:
        """One transaction; if it changed anything, watchers are woken once it has
        committed (a claim that found nothing must not wake the claimers again)."""

        def run(tx: WriteTx) -> Any:
            before = _total_changes(tx)
            result = fn(tx)
            if _total_changes(tx) != before:
                tx.after_commit(self.hub.changed)
            return result

        return await self.db.write(run)

    # -- reads -----------------------------------------------------------------------------
    async def find(self, job_id: str) -> dict[str, Any] | None:
        row = await self.db.fetchone(f"SELECT {COLUMNS} FROM jobs WHERE job_id = ?", (job_id,))
        return row_to_job(row) if row is not None else None

    async def get(self, job_id: str) -> dict[str, Any]:
        job = await self.find(job_id)
        if job is None:
            raise not_found(job_id)
        return job

    async def list(self, *, status: Sequence[str] = (), types: Sequence[str] = (),
                   limit: int = 50, cursor: str | None = None) -> tuple[list[dict[str, Any]],
                                                                      str | None]:
        where: list[str] = []
        params: list[Any] = []
        for column, values in (("status", status), ("type", types)):
            if values:
                where.append(f"{column} IN ({','.join('?' * len(values))})")
                params += list(values)
        if cursor:
            where.append("seq < ?")
            params.append(decode_cursor(cursor))
        rows = await self.db.fetchall(
            f"SELECT {COLUMNS} FROM jobs{' WHERE ' + ' AND '.join(where) if where else ''}"
            f" ORDER BY seq DESC LIMIT ?", (*params, limit + 1))
        jobs = [row_to_job(r) for r in rows[:limit]]
        return jobs, encode_cursor(jobs[-1]["_seq"]) if len(rows) > limit and jobs else None

    async def any_queued(self, types: Sequence[str]) -> bool:
        """Is a job of ``types`` waiting?  A read: the pool asks after every change, and
        a claim that finds nothing would still cost a turn of the single writer."""
        row = await self.db.fetchone(
            f"SELECT 1 FROM jobs WHERE status = 'queued' AND type IN"
            f" ({','.join('?' * len(types))}) LIMIT 1", list(types))
        return row is not None

    async def counts(self) -> dict[str, int]:
        """How many jobs are queued and running (the shell's indicator)."""
        rows = await self.db.fetchall(
            "SELECT status, count(*) FROM jobs WHERE status IN ('queued', 'running')"
            " GROUP BY status")
        return {"queued": 0, "running": 0} | {r[0]: r[1] for r in rows}

    async def changed_since(self, stamp: str, limit: int = 500) -> Rows:
        rows = await self.db.fetchall(f"SELECT {COLUMNS} FROM jobs WHERE updated_at >= ?"
                                      f" ORDER BY updated_at LIMIT ?", (stamp, limit))
        return [row_to_job(r) for r in rows]

    async def log(self, job_id: str, after_id: int = 0,
                  limit: int = 100) -> Rows:
        rows = await self.db.fetchall(
            "SELECT id, level, message, fields, created_at FROM job_logs"
            " WHERE job_id = ? AND id > ? ORDER BY id LIMIT ?", (job_id, after_id, limit))
        return [row_to_line(r) for r in rows]

    async def tail(self, job_id: str, limit: int) -> Rows:
        """The newest ``limit`` lines, oldest first."""
        rows = await self.db.fetchall(
            "SELECT id, level, message, fields, created_at FROM job_logs"
            " WHERE job_id = ? ORDER BY id DESC LIMIT ?", (job_id, limit))
        return [row_to_line(r) for r in reversed(rows)]

    # -- changes ---------------------------------------------------------------------------
    async def create(self, *, type: str, input: Any, priority: int, input_asset_id: str | None,
                     max_attempts: int, correlation_id: str | None) -> dict[str, Any]:
        job_id = secrets.token_bytes(32).hex()
        now = self.kernel.now()

        def create(tx: WriteTx) -> dict[str, Any]:
            tx.execute("INSERT INTO jobs (job_id, type, status, priority, input, input_asset_id,"
                       " max_attempts, correlation_id, created_at, updated_at)"
                       " VALUES (?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?)",
                       (job_id, type, priority, _j(input), input_asset_id, max_attempts,
                        correlation_id, now, now))
            _line(tx, job_id, "info", f"queued ({type}, priority {priority})", now)
            job = row_to_job(_row(tx, job_id))
            _event(tx, "created", job, priority=priority)
            return job

        return await self.write(create)

    async def claim(self, types: Sequence[str], runner_id: str, lease_seconds: float | None,
                    limits: dict[str, int], count: int = 1) -> Rows:
        now = self.kernel.now()
        lease = stamp_in(lease_seconds) if lease_seconds is not None else None

        def claim(tx: WriteTx) -> Rows:
            return [claim_one(tx, job, runner_id, lease, now)
                    for job in pick(tx, types, limits, count)]

        return await self.write(claim)

    async def heartbeat(self, job_id: str, runner_id: str,
                        lease_seconds: float) -> dict[str, Any]:
        now, lease = self.kernel.now(), stamp_in(lease_seconds)

        def heartbeat(tx: WriteTx) -> dict[str, Any]:
            job = _held(tx, job_id, runner_id)
            tx.execute("UPDATE jobs SET lease_expires_at = ?, updated_at = ? WHERE job_id = ?",
                       (lease, now, job_id))
            return job | {"lease_expires_at": lease}

        return await self.write(heartbeat)

    async def report(self, job_id: str, runner_id: str, *, progress: dict[str, Any] | None,
                     lines: Sequence[LogLine]) -> dict[str, Any]:
        """A runner's progress and log lines."""
        now = self.kernel.now()

        def report(tx: WriteTx) -> dict[str, Any]:
            job = _held(tx, job_id, runner_id)
            if progress is not None:
                tx.execute("UPDATE jobs SET progress = ?, updated_at = ? WHERE job_id = ?",
                           (_j(progress), now, job_id))
            add_lines(tx, job_id, lines)
            return job

        return await self.write(report)

    async def complete(self, job_id: str, runner_id: str, result: Any,
                       outputs: Sequence[str]) -> dict[str, Any]:
        now = self.kernel.now()

        def complete(tx: WriteTx) -> dict[str, Any]:
            finish(tx, _held(tx, job_id, runner_id), "succeeded", now, result=result,
                   outputs=outputs)
            return row_to_job(_row(tx, job_id))

        return await self.write(complete)

    async def fail(self, job_id: str, runner_id: str, error: str,
                   retryable: bool) -> dict[str, Any]:
        now = self.kernel.now()

        def fail(tx: WriteTx) -> dict[str, Any]:
            requeue_or_fail(tx, _held(tx, job_id, runner_id), error, now, failure=True,
                            retryable=retryable)
            return row_to_job(_row(tx, job_id))

        return await self.write(fail)

    async def request_cancel(self, job_id: str) -> dict[str, Any]:
        """A queued job is cancelled at once; a running one is asked to stop (the worker
        pool cancels its handler, a runner hears it at its next heartbeat)."""
        now = self.kernel.now()

        def cancel(tx: WriteTx) -> dict[str, Any]:
            job = row_to_job(_row(tx, job_id))
            if job["status"] in FINAL:
                raise Conflict(f"job {job_id} has already {_ended(job['status'])}",
                               code="job_finished")
            if job["status"] == "queued":
                finish(tx, job, "cancelled", now)
            elif not job["cancel_requested"]:
                tx.execute("UPDATE jobs SET cancel_requested = 1, updated_at = ?"
                           " WHERE job_id = ?", (now, job_id))
                _line(tx, job_id, "warning", "cancel requested", now)
            return row_to_job(_row(tx, job_id))

        return await self.write(cancel)

    async def retry(self, job_id: str) -> dict[str, Any]:
        now = self.kernel.now()

        def retry(tx: WriteTx) -> dict[str, Any]:
            job = row_to_job(_row(tx, job_id))
            if job["status"] not in ("failed", "cancelled"):
                raise Conflict(f"only a failed or cancelled job can be retried; job {job_id}"
                               f" is {job['status']}", code="job_not_retryable")
            tx.execute("UPDATE jobs SET status = 'queued', attempts = 0, cancel_requested = 0,"
                       " error = NULL, result = NULL, output_asset_ids = '[]',"
                       " runner_id = NULL, lease_expires_at = NULL, finished_at = NULL,"
                       " progress = '{}', updated_at = ? WHERE job_id = ?", (now, job_id))
            _line(tx, job_id, "info", f"retried after it {job['status']}; queued again", now)
            job = row_to_job(_row(tx, job_id))
            _event(tx, "created", job, priority=job["priority"], retry=True)
            return job

        return await self.write(retry)

    async def set_priority(self, job_id: str, priority: int) -> dict[str, Any]:
        now = self.kernel.now()

        def set_priority(tx: WriteTx) -> dict[str, Any]:
            job = row_to_job(_row(tx, job_id))
            if job["status"] != "queued":
                raise Conflict(f"the priority can only change while a job is queued; job "
                               f"{job_id} is {job['status']}", code="job_not_queued")
            if job["priority"] != priority:
                tx.execute("UPDATE jobs SET priority = ?, updated_at = ? WHERE job_id = ?",
                           (priority, now, job_id))
                _line(tx, job_id, "info", f"priority {job['priority']} -> {priority}", now)
            return row_to_job(_row(tx, job_id))

        return await self.write(set_priority)

    async def expire_leases(self) -> Changes:
        """Runs whose lease has run out: queued again, or failed after their attempts;
        returns (job id, new status) for each."""
        now = self.kernel.now()

        def expire(tx: WriteTx) -> Changes:
            done = []
            for row in tx.fetchall(f"SELECT {COLUMNS} FROM jobs WHERE status = 'running'"
                                   f" AND lease_expires_at < ?", (now,)):
                job = row_to_job(row)
                reason = (f"lease expired: runner {job['runner_id']!r} stopped "
                          f"heart-beating")
                done.append((job["job_id"], requeue_or_fail(tx, job, reason, now)))
            return done

        return await self.write(expire)

    async def next_lease_expiry(self) -> str | None:
        row = await self.db.fetchone("SELECT min(lease_expires_at) FROM jobs"
                                     " WHERE status = 'running'")
        return row[0] if row is not None else None

    async def recover(self, reason: str, *, count_attempt: bool = True) -> int:
        """Core's own runs that did not end (Core stopped or crashed): queued again, or
        failed after their attempts.  Returns how many."""
        now = self.kernel.now()

        def recover(tx: WriteTx) -> int:
            rows = tx.fetchall(f"SELECT {COLUMNS} FROM jobs WHERE status = 'running'"
                               f" AND runner_id = ?", (CORE,))
            for row in rows:
                job = row_to_job(row)
                if not count_attempt:
                    tx.execute("UPDATE jobs SET attempts = attempts - 1 WHERE job_id = ?",
                               (job["job_id"],))
                    job["attempts"] -= 1
                requeue_or_fail(tx, job, reason, now)
            return len(rows)

        return await self.write(recover)


def _total_changes(tx: WriteTx) -> int:
    row = tx.fetchone("SELECT total_changes()")
    return int(row[0]) if row is not None else 0


def _ended(status: str) -> str:
    return {"succeeded": "succeeded", "failed": "failed", "cancelled": "been cancelled"}[status]

"""``client.jobs``: queue, watch, cancel and retry jobs; and the runner protocol an
out-of-process runner speaks (claim, heartbeat, progress, log, complete, fail) — which
:class:`ff_plugin_sdk.runner.Runner` speaks for you."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from ff_plugin_sdk.client._group import Group, M, endpoint, pages, streaming
from ff_plugin_sdk.client._plan import Call, Feed, Plan, Sleep, seg
from ff_plugin_sdk.client.models import Job, JobStatus, Lease, LogPage, Page

#: seconds on top of a claim's ``wait`` before the answer is given up on
CLAIM_SLACK = 15.0


class Jobs(Group[M]):
    @endpoint
    def create(self, type: str, input: Mapping[str, Any] | None = None, *, priority: int = 0,
               input_asset_id: str | None = None,
               max_attempts: int | None = None) -> Plan[Job]:
        """Queue a job of a registered type (its input is checked: 422 naming the field)."""
        body = {"type": type, "input": dict(input or {}), "priority": priority,
                "input_asset_id": input_asset_id, "max_attempts": max_attempts}
        return self._fetch(Call("POST", "/v1/jobs", json=body), Job)

    @endpoint
    def get(self, job_id: str) -> Plan[Job]:
        return self._fetch(Call("GET", f"/v1/jobs/{seg(job_id)}"), Job)

    @endpoint
    def list(self, *, status: Sequence[JobStatus] = (), types: Sequence[str] = (),
             limit: int = 50, cursor: str | None = None) -> Plan[Page[Job]]:
        """Jobs, newest first, of any of ``status`` and any of ``types``."""
        return self._fetch(Call("GET", "/v1/jobs", params={
            "status": list(status), "type": list(types), "limit": limit, "cursor": cursor}),
            Page[Job])

    @streaming
    def every(self, *, status: Sequence[JobStatus] = (),
              types: Sequence[str] = ()) -> Feed[Job]:
        return pages(lambda cursor: Jobs.list.build(self, status=status, types=types,
                                                    limit=500, cursor=cursor))

    @endpoint
    def log(self, job_id: str, *, after_id: int = 0, limit: int = 100) -> Plan[LogPage]:
        """The job's log lines after ``after_id``, oldest first."""
        return self._fetch(Call("GET", f"/v1/jobs/{seg(job_id)}/log", params={
            "after_id": after_id, "limit": limit}), LogPage)

    @endpoint
    def cancel(self, job_id: str) -> Plan[Job]:
        """Cancel: a queued job at once, a running one when its handler or runner hears of
        it.  ``Conflict`` once it has finished."""
        return self._fetch(Call("POST", f"/v1/jobs/{seg(job_id)}/cancel", idempotent=True),
                           Job)

    @endpoint
    def retry(self, job_id: str) -> Plan[Job]:
        """Queue a failed or cancelled job again, with a fresh set of attempts."""
        return self._fetch(Call("POST", f"/v1/jobs/{seg(job_id)}/retry"), Job)

    @endpoint
    def set_priority(self, job_id: str, priority: int) -> Plan[Job]:
        """Change a queued job's priority (higher runs first)."""
        return self._fetch(Call("PATCH", f"/v1/jobs/{seg(job_id)}",
                                json={"priority": priority}), Job)

    @endpoint
    def wait(self, job_id: str, *, poll_seconds: float = 0.5,
             timeout: float | None = None) -> Plan[Job]:
        """The job once it has ended (succeeded, failed or cancelled), read every
        ``poll_seconds``; ``timeout`` seconds (None: no limit) raise ``TimeoutError``."""
        waited = 0.0
        while True:
            job = yield from Jobs.get.build(self, job_id)
            if job.status in ("succeeded", "failed", "cancelled"):
                return job
            if timeout is not None and waited >= timeout:
                raise TimeoutError(f"job {job_id} is still {job.status} after {timeout} s")
            yield Sleep(poll_seconds)
            waited += poll_seconds

    # -- the runner protocol ---------------------------------------------------------------
    @endpoint
    def claim(self, types: Sequence[str], runner_id: str, *, lease_seconds: float = 60.0,
              wait: float = 0.0) -> Plan[Job | None]:
        """Take the next queued job of ``types`` (highest priority, then oldest) and hold
        it for ``lease_seconds``; None when none comes within ``wait`` seconds (Core waits
        at most 30).  Not repeated after a failure that may have reached Core: that could
        take a second job (the first would come back when its lease ends)."""
        response = yield from self._send(Call(
            "POST", "/v1/jobs/claim", read_timeout=wait + CLAIM_SLACK, json={
                "types": list(types), "runner_id": runner_id, "lease_seconds": lease_seconds,
                "wait": wait}))
        return None if response.status_code == 204 else msgspec.json.decode(
            response.content, type=Job)

    @endpoint
    def heartbeat(self, job_id: str, runner_id: str, *,
                  lease_seconds: float = 60.0) -> Plan[Lease]:
        """Extend the lease; ``cancel_requested`` says the job should stop.  ``Conflict``
        (``job_not_held``) when this runner no longer holds it."""
        return self._runner_call(job_id, "heartbeat", Lease, {
            "runner_id": runner_id, "lease_seconds": lease_seconds})

    @endpoint
    def progress(self, job_id: str, runner_id: str, *, percent: float | None = None,
                 step: str | None = None,
                 counters: Mapping[str, int | float] | None = None) -> Plan[Lease]:
        """The newest progress (0-100), step and counters (the lease is not extended:
        that is :meth:`heartbeat`'s)."""
        return self._runner_call(job_id, "progress", Lease, {
            "runner_id": runner_id, "percent": percent, "step": step,
            "counters": dict(counters or {})})

    @endpoint
    def append_log(self, job_id: str, runner_id: str,
                   lines: Sequence[Mapping[str, Any]]) -> Plan[Lease]:
        """Append log lines (``{"level", "message", "fields"}``, at most 1,000), saved in
        one write, in order.  Not repeated after a failure that may have reached Core (the
        lines would be there twice)."""
        return self._fetch(Call("POST", f"/v1/jobs/{seg(job_id)}/log", json={
            "runner_id": runner_id, "lines": [dict(line) for line in lines]}), Lease)

    @endpoint
    def complete(self, job_id: str, runner_id: str, result: Any = None, *,
                 output_asset_ids: Sequence[str] = ()) -> Plan[Job]:
        """The job succeeded with ``result``, having produced ``output_asset_ids`` (upload
        them first)."""
        return self._runner_call(job_id, "complete", Job, {
            "runner_id": runner_id, "result": result,
            "output_asset_ids": list(output_asset_ids)})

    @endpoint
    def fail(self, job_id: str, runner_id: str, error: str, *,
             retryable: bool = True) -> Plan[Job]:
        """The job failed: queued again while ``retryable`` and attempts are left."""
        return self._runner_call(job_id, "fail", Job, {
            "runner_id": runner_id, "error": error or "failed", "retryable": retryable})

    def _runner_call(self, job_id: str, what: str, into: type[Any],
                     body: dict[str, Any]) -> Plan[Any]:
        # a repeat changes nothing: the lease or the ending is set again, or refused with
        # 409 job_not_held when the first try had ended the job
        return self._fetch(Call("POST", f"/v1/jobs/{seg(job_id)}/{what}", json=body,
                                idempotent=True), into)

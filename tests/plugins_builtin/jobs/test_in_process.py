"""Jobs run by Core's own worker pool: progress, log lines and result; failures and retries;
cancel (a running handler is cancelled at its current await, a queued or finished job is
answered at once) and retry."""

from __future__ import annotations

import pytest
from job_types import ECHO, FAIL, HOLD

from .conftest import (
    JOBS,
    error_of,
    get_job,
    job_events,
    log_of,
    messages,
    paths_of,
    submit,
    wait_status,
)

#: the bound on a cancel ending a handler blocked at an await
CANCEL_WITHIN = 2.0


async def test_a_handler_s_progress_log_and_result_are_kept(client) -> None:
    job = await submit(client, ECHO, {"text": "hello", "lines": 5})
    done = await wait_status(client, job["job_id"])
    assert done["status"] == "succeeded", done
    assert done["result"] == {"echo": "hello", "attempt": 1,
                              "correlation_id": job["correlation_id"]}
    assert done["progress"] == {"percent": 100.0, "step": "done", "counters": {"lines": 5}}
    assert done["runner_id"] == "core" and done["attempts"] == 1 and done["error"] is None
    assert done["started_at"] <= done["finished_at"]
    lines = await log_of(client, job["job_id"])
    assert [line["message"] for line in lines] == [
        f"queued ({ECHO}, priority 0)", "started by Core (attempt 1 of 3)",
        "line 0", "line 1", "line 2", "line 3", "line 4", "succeeded"]
    assert [line["fields"].get("n") for line in lines[2:7]] == [0, 1, 2, 3, 4]
    assert {line["level"] for line in lines} == {"info"}
    events = await job_events(client, job["job_id"])
    assert [e["type"] for e in events] == ["job.created", "job.started", "job.succeeded"]
    assert events[1]["data"] == {"job_id": job["job_id"], "type": ECHO, "runner_id": "core",
                                 "attempt": 1}


async def test_the_log_pages_with_after_id_and_next_after_id(client) -> None:
    job = await submit(client, ECHO, {"text": "x", "lines": 25})
    await wait_status(client, job["job_id"], "succeeded")
    every = await log_of(client, job["job_id"])
    assert len(every) == 28  # queued, started, 25 lines, succeeded
    ids = [line["id"] for line in every]
    assert ids == sorted(set(ids))
    pages, after = [], 0
    while True:
        r = await client.get(f"{JOBS}/{job['job_id']}/log",
                             params={"after_id": after, "limit": 10})
        assert r.status_code == 200, r.text
        page = r.json()
        if not page["items"]:
            assert page["next_after_id"] == after  # nothing new: the same place
            break
        assert page["next_after_id"] == page["items"][-1]["id"]
        pages.append(page["items"])
        after = page["next_after_id"]
    assert [len(p) for p in pages] == [10, 10, 8]
    assert [line for p in pages for line in p] == every
    middle = (await client.get(f"{JOBS}/{job['job_id']}/log",
                               params={"after_id": ids[4], "limit": 2})).json()
    assert [line["id"] for line in middle["items"]] == ids[5:7]


@pytest.mark.parametrize("params", [{"after_id": -1}, {"after_id": "x"}, {"limit": 0},
                                    {"limit": 1001}])
async def test_bad_log_parameters_are_a_422(client, params) -> None:
    job = await submit(client, ECHO, {"text": "x"})
    error = error_of(await client.get(f"{JOBS}/{job['job_id']}/log", params=params), 422)
    name = next(iter(params))
    assert any(name in str(path) for path in paths_of(error)), error


async def test_job_failed_fails_at_once_without_a_retry(client, control) -> None:
    job = await submit(client, FAIL, {"mode": "job_failed", "message": "no such model"})
    done = await wait_status(client, job["job_id"])
    assert done["status"] == "failed"
    assert "no such model" in done["error"] and done["attempts"] == 1
    assert control.started == ["job_failed"]
    assert "no such model" in (await messages(client, job["job_id"]))[-1]
    failed = [e for e in await job_events(client, job["job_id"]) if e["type"] == "job.failed"]
    assert [e["data"]["error"] for e in failed] == [done["error"]]


async def test_a_failed_job_s_error_is_what_the_handler_said(client) -> None:
    """The error is the handler's message (the status already says it failed), and the log
    says "failed: <message>" once, not "failed: failed: <message>"."""
    once = await submit(client, FAIL, {"mode": "job_failed", "message": "no such model"})
    spent = await submit(client, FAIL, {"mode": "retryable", "message": "busy"},
                         max_attempts=1)
    once = await wait_status(client, once["job_id"], "failed")
    spent = await wait_status(client, spent["job_id"], "failed")
    assert once["error"] == "no such model"
    assert spent["error"] == "busy (after 1 of 1 attempts)"
    for job in (once, spent):
        assert (await messages(client, job["job_id"]))[-1] == f"failed: {job['error']}"


async def test_a_retryable_failure_is_retried_until_max_attempts(client, control) -> None:
    job = await submit(client, FAIL, {"mode": "retryable", "message": "busy"},
                       max_attempts=3)
    done = await wait_status(client, job["job_id"])
    assert done["status"] == "failed" and done["attempts"] == 3
    assert "busy" in done["error"] and "3 of 3" in done["error"]
    assert control.started == ["retryable"] * 3
    said = await messages(client, job["job_id"])
    assert [m for m in said if m.startswith("started by")] == [
        f"started by Core (attempt {n} of 3)" for n in (1, 2, 3)]
    assert "failed: busy; queued again (attempt 1 of 3 used)" in said
    assert "failed: busy; queued again (attempt 2 of 3 used)" in said
    assert "busy" in said[-1] and "3 of 3" in said[-1]
    types = [e["type"] for e in await job_events(client, job["job_id"])]
    assert types == ["job.created"] + ["job.started"] * 3 + ["job.failed"]


async def test_an_unexpected_exception_is_logged_and_retried(client, control) -> None:
    job = await submit(client, FAIL, {"mode": "crash", "message": "boom"}, max_attempts=2)
    done = await wait_status(client, job["job_id"])
    assert done["status"] == "failed" and done["attempts"] == 2
    assert "RuntimeError: boom" in done["error"] and "2 of 2" in done["error"]
    assert control.started == ["crash", "crash"]
    lines = await log_of(client, job["job_id"])
    crashes = [line for line in lines if line["message"] == "RuntimeError: boom"]
    assert len(crashes) == 2 and {line["level"] for line in crashes} == {"error"}
    assert "raise RuntimeError" in crashes[0]["fields"]["traceback"]
    assert any("queued again (attempt 1 of 2 used)" in line["message"] for line in lines)


# -- cancel ---------------------------------------------------------------------------

async def test_cancel_stops_a_running_handler_at_its_await(client, control) -> None:
    job = await submit(client, HOLD, {"label": "forever"})
    await control.wait_started("forever")
    assert (await get_job(client, job["job_id"]))["status"] == "running"
    r = await client.post(f"{JOBS}/{job['job_id']}/cancel")
    assert r.status_code == 200, r.text
    assert r.json()["cancel_requested"] is True
    # the handler waits for an event nobody sets and checks no flag: only its cancel scope
    # can end it
    done = await wait_status(client, job["job_id"], "cancelled", timeout=CANCEL_WITHIN)
    assert done["finished_at"] is not None and done["result"] is None
    assert done["attempts"] == 1  # not queued again
    assert control.finally_ran == ["forever"]
    assert not control.gate("forever").is_set()
    said = await messages(client, job["job_id"])
    # (the handler's own line is buffered: saved when the run ends, after the request's)
    assert said[-1] == "cancelled" and said.count("cancel requested") == 1
    assert "holding forever" in said
    types = [e["type"] for e in await job_events(client, job["job_id"])]
    assert types == ["job.created", "job.started", "job.cancelled"]
    assert control.started == ["forever"]  # it does not run again


async def test_cancelling_twice_while_it_stops_is_harmless(client, control) -> None:
    job = await submit(client, HOLD, {"label": "twice"})
    await control.wait_started("twice")
    first = await client.post(f"{JOBS}/{job['job_id']}/cancel")
    second = await client.post(f"{JOBS}/{job['job_id']}/cancel")
    assert first.status_code == 200
    # either still stopping (200) or already ended (409): never an error of another kind
    assert second.status_code in (200, 409), second.text
    await wait_status(client, job["job_id"], "cancelled", timeout=CANCEL_WITHIN)
    assert (await messages(client, job["job_id"])).count("cancel requested") == 1


async def test_a_finished_job_cannot_be_cancelled(client) -> None:
    succeeded = await submit(client, ECHO, {"text": "x"})
    failed = await submit(client, FAIL, {"mode": "job_failed"})
    await wait_status(client, succeeded["job_id"], "succeeded")
    await wait_status(client, failed["job_id"], "failed")
    for job in (succeeded, failed):
        before = await get_job(client, job["job_id"])
        error = error_of(await client.post(f"{JOBS}/{job['job_id']}/cancel"), 409,
                         "job_finished")
        assert job["job_id"] in error["message"]
        assert await get_job(client, job["job_id"]) == before  # unchanged


async def test_a_cancelled_job_cannot_be_cancelled_again(client) -> None:
    job = await submit(client, "testjobs.remote")
    assert (await client.post(f"{JOBS}/{job['job_id']}/cancel")).json()["status"] == \
        "cancelled"
    error_of(await client.post(f"{JOBS}/{job['job_id']}/cancel"), 409, "job_finished")


# -- retry ---------------------------------------------------------------------------

async def test_a_failed_job_retried_runs_again_with_fresh_attempts(client, control) -> None:
    job = await submit(client, FAIL, {"mode": "job_failed", "message": "flaky"})
    await wait_status(client, job["job_id"], "failed")
    r = await client.post(f"{JOBS}/{job['job_id']}/retry")
    assert r.status_code == 200, r.text
    retried = r.json()
    assert retried["status"] == "queued" and retried["attempts"] == 0
    assert retried["error"] is None and retried["finished_at"] is None
    again = await wait_status(client, job["job_id"], "failed")
    assert again["attempts"] == 1 and "flaky" in again["error"]
    assert control.started == ["job_failed", "job_failed"]
    assert "retried after it failed; queued again" in await messages(client, job["job_id"])
    created = [e for e in await job_events(client, job["job_id"])
               if e["type"] == "job.created"]
    assert [e["data"].get("retry") for e in created] == [None, True]


async def test_a_cancelled_job_retried_runs_again_and_can_succeed(client, control) -> None:
    job = await submit(client, HOLD, {"label": "again"})
    await control.wait_started("again")
    await client.post(f"{JOBS}/{job['job_id']}/cancel")
    await wait_status(client, job["job_id"], "cancelled")
    control.entered.pop("again")
    control.release("again")  # the next run goes straight through
    r = await client.post(f"{JOBS}/{job['job_id']}/retry")
    assert r.status_code == 200 and r.json()["cancel_requested"] is False
    done = await wait_status(client, job["job_id"], "succeeded")
    assert done["result"] == {"label": "again"} and done["attempts"] == 1
    assert control.started == ["again", "again"]


async def test_only_failed_or_cancelled_jobs_can_be_retried(client, control) -> None:
    succeeded = await submit(client, ECHO, {"text": "x"})
    await wait_status(client, succeeded["job_id"], "succeeded")
    running = await submit(client, HOLD, {"label": "busy"})
    await control.wait_started("busy")
    queued = await submit(client, "testjobs.remote")
    for job, status in ((succeeded, "succeeded"), (running, "running"), (queued, "queued")):
        error = error_of(await client.post(f"{JOBS}/{job['job_id']}/retry"), 409,
                         "job_not_retryable")
        assert status in error["message"]
        assert (await get_job(client, job["job_id"]))["status"] == status

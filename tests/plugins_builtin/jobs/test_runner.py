"""The runner protocol: an out-of-process runner claims a job (or long-polls for one) with a
lease, heart-beats, reports progress and log lines, and completes or fails it; only the
runner holding a job may touch it; a cancel reaches it through the heartbeat; a lease that
runs out queues the job again until its attempts are spent."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from job_types import ECHO, REMOTE, REMOTE_ATTEMPTS, REMOTE_OTHER

from .conftest import (
    JOBS,
    UNKNOWN_ID,
    error_of,
    get_job,
    job_events,
    log_of,
    messages,
    submit,
    upload,
    wait_status,
)

RUNNER = "gpu-box.1"
CLAIM = f"{JOBS}/claim"


def moment(stamp: str) -> datetime:
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


async def claim(client, types=(REMOTE,), runner_id: str = RUNNER, **fields) -> dict | None:
    r = await client.post(CLAIM, json={"types": list(types), "runner_id": runner_id,
                                       **fields})
    if r.status_code == 204:
        assert r.content == b""
        return None
    assert r.status_code == 200, r.text
    return r.json()


async def claimed(client, types=(REMOTE,), runner_id: str = RUNNER, **fields) -> dict:
    job = await claim(client, types, runner_id, **fields)
    assert job is not None, "nothing to claim"
    return job


async def call(client, job_id: str, action: str, runner_id: str = RUNNER, **fields):
    return await client.post(f"{JOBS}/{job_id}/{action}",
                             json={"runner_id": runner_id, **fields})


# -- claim -------------------------------------------------------------------------------

async def test_a_claim_hands_out_the_job_with_a_lease(client) -> None:
    job = await submit(client, REMOTE, {"prompt": "a cat"})
    before = datetime.now(UTC)
    got = await claimed(client, lease_seconds=120)
    assert got["job_id"] == job["job_id"] and got["input"] == {"prompt": "a cat"}
    assert got["status"] == "running" and got["runner_id"] == RUNNER
    assert got["attempts"] == 1 and got["started_at"] is not None
    lease = (moment(got["lease_expires_at"]) - before).total_seconds()
    assert 110 < lease <= 121
    assert await get_job(client, job["job_id"]) == got
    said = await messages(client, job["job_id"])
    assert said[-1] == f"started by runner {RUNNER!r} (attempt 1 of {REMOTE_ATTEMPTS})"
    started = [e for e in await job_events(client, job["job_id"])
               if e["type"] == "job.started"]
    assert [e["data"]["runner_id"] for e in started] == [RUNNER]


async def test_nothing_to_claim_is_a_204(client) -> None:
    assert await claim(client) is None
    await submit(client, REMOTE_OTHER)  # queued, but not of the type asked for
    assert await claim(client, [REMOTE]) is None
    assert (await claimed(client, [REMOTE, REMOTE_OTHER]))["type"] == REMOTE_OTHER
    assert await claim(client, [REMOTE, REMOTE_OTHER]) is None  # each job once


async def test_claims_take_the_highest_priority_then_the_oldest(client) -> None:
    low = await submit(client, REMOTE, priority=-1)
    old = await submit(client, REMOTE_OTHER, priority=5)
    new = await submit(client, REMOTE, priority=5)
    top = await submit(client, REMOTE_OTHER, priority=9)
    order = [(await claimed(client, [REMOTE, REMOTE_OTHER]))["job_id"] for _ in range(4)]
    assert order == [top["job_id"], old["job_id"], new["job_id"], low["job_id"]]


@pytest.mark.parametrize("jobs_config", [{"concurrency": {REMOTE: 1}}])
async def test_a_type_s_concurrency_limit_holds_for_runners_too(client) -> None:
    first = await submit(client, REMOTE)
    second = await submit(client, REMOTE)
    assert (await claimed(client))["job_id"] == first["job_id"]
    assert await claim(client, runner_id="another") is None  # one at a time
    await call(client, first["job_id"], "complete")
    assert (await claimed(client, runner_id="another"))["job_id"] == second["job_id"]


async def test_a_waiting_claim_gets_a_job_submitted_meanwhile(client) -> None:
    waiting = asyncio.create_task(claim(client, wait=10))
    await asyncio.sleep(0.2)  # let the claim find the queue empty and start waiting
    assert not waiting.done()
    started = asyncio.get_running_loop().time()
    job = await submit(client, REMOTE)
    async with asyncio.timeout(5):
        got = await waiting
    assert got is not None and got["job_id"] == job["job_id"]
    assert asyncio.get_running_loop().time() - started < 5  # not held until wait ran out


async def test_a_waiting_claim_gives_up_after_its_wait(client) -> None:
    started = asyncio.get_running_loop().time()
    assert await claim(client, wait=0.5) is None
    assert asyncio.get_running_loop().time() - started >= 0.5


async def test_an_in_process_type_cannot_be_claimed(client) -> None:
    await submit(client, ECHO, {"text": "x"})
    error = error_of(await client.post(CLAIM, json={"types": [ECHO], "runner_id": RUNNER}),
                     422, "validation_error")
    assert ECHO in error["message"]
    error = error_of(await client.post(CLAIM, json={"types": ["testjobs.nope"],
                                                     "runner_id": RUNNER}), 422)
    assert REMOTE in error["message"]  # the known types are named


@pytest.mark.parametrize("body", [
    {"types": [REMOTE]},
    {"types": [], "runner_id": RUNNER},
    {"types": [REMOTE], "runner_id": "has spaces"},
    {"types": [REMOTE], "runner_id": ""},
    {"types": [REMOTE], "runner_id": RUNNER, "lease_seconds": 0.5},
    {"types": [REMOTE], "runner_id": RUNNER, "lease_seconds": 86_401},
    {"types": [REMOTE], "runner_id": RUNNER, "wait": 31},
    {"types": [REMOTE], "runner_id": RUNNER, "wait": -1},
    {"types": [REMOTE], "runner_id": RUNNER, "colour": "red"},
])
async def test_a_bad_claim_is_a_422_and_claims_nothing(client, body) -> None:
    job = await submit(client, REMOTE)
    error_of(await client.post(CLAIM, json=body), 422)
    assert (await get_job(client, job["job_id"]))["status"] == "queued"


# -- holding a job -----------------------------------------------------------------------

async def test_a_heartbeat_extends_the_lease(client) -> None:
    job = await submit(client, REMOTE)
    got = await claimed(client, lease_seconds=5)
    r = await call(client, job["job_id"], "heartbeat", lease_seconds=300)
    assert r.status_code == 200, r.text
    lease = r.json()
    assert lease == {"job_id": job["job_id"], "status": "running",
                     "cancel_requested": False, "lease_expires_at": lease["lease_expires_at"]}
    assert moment(lease["lease_expires_at"]) > moment(got["lease_expires_at"])
    assert (await get_job(client, job["job_id"]))["lease_expires_at"] == \
        lease["lease_expires_at"]


async def test_progress_and_log_lines_are_visible_to_everyone(client) -> None:
    job = await submit(client, REMOTE)
    await claimed(client)
    r = await call(client, job["job_id"], "progress", percent=40, step="sampling",
                   counters={"steps": 8, "seconds": 1.5})
    assert r.status_code == 200 and r.json()["cancel_requested"] is False
    assert (await get_job(client, job["job_id"]))["progress"] == {
        "percent": 40.0, "step": "sampling", "counters": {"steps": 8, "seconds": 1.5}}
    r = await call(client, job["job_id"], "log", lines=[
        {"level": "debug", "message": "loaded model", "fields": {"model": "sdxl"}},
        {"message": "step 8"},
        {"level": "warning", "message": "low memory"}])
    assert r.status_code == 200, r.text
    tail = (await log_of(client, job["job_id"]))[-3:]
    assert [(line["level"], line["message"], line["fields"]) for line in tail] == [
        ("debug", "loaded model", {"model": "sdxl"}), ("info", "step 8", {}),
        ("warning", "low memory", {})]


@pytest.mark.parametrize(("action", "fields"), [
    ("progress", {"percent": 101}),
    ("progress", {"counters": {"files": "many"}}),
    ("log", {"lines": []}),
    ("log", {"lines": [{"level": "loud", "message": "x"}]}),
    ("log", {"lines": [{"level": "info"}]}),
    ("complete", {"output_asset_ids": ["not-an-id"]}),
    ("fail", {"error": ""}),
    ("fail", {}),
    ("heartbeat", {"lease_seconds": 0}),
])
async def test_a_bad_report_is_a_422_and_changes_nothing(client, action, fields) -> None:
    job = await submit(client, REMOTE)
    got = await claimed(client)
    lines = await log_of(client, job["job_id"])
    error_of(await call(client, job["job_id"], action, **fields), 422)
    assert await get_job(client, job["job_id"]) == got
    assert await log_of(client, job["job_id"]) == lines


@pytest.mark.parametrize(("action", "fields"), [
    ("heartbeat", {}), ("progress", {"percent": 1}),
    ("log", {"lines": [{"message": "x"}]}), ("complete", {"result": {}}),
    ("fail", {"error": "x"}),
])
async def test_only_the_runner_holding_a_job_may_touch_it(client, action, fields) -> None:
    job = await submit(client, REMOTE)
    got = await claimed(client)
    error = error_of(await call(client, job["job_id"], action, "someone-else", **fields), 409,
                     "job_not_held")
    assert RUNNER in error["message"]  # says who holds it
    queued = await submit(client, REMOTE_OTHER)  # held by nobody
    error_of(await call(client, queued["job_id"], action, **fields), 409, "job_not_held")
    error_of(await call(client, UNKNOWN_ID, action, **fields), 404, "job_not_found")
    error_of(await call(client, "abc", action, **fields), 404, "job_not_found")
    assert await get_job(client, job["job_id"]) == got


async def test_complete_keeps_the_result_and_outputs(client) -> None:
    output = await upload(client, b"generated image")
    job = await submit(client, REMOTE)
    await claimed(client)
    r = await call(client, job["job_id"], "complete", result={"seed": 42},
                   output_asset_ids=[output["asset_id"], output["asset_id"]])
    assert r.status_code == 200, r.text
    done = r.json()
    assert done["status"] == "succeeded" and done["result"] == {"seed": 42}
    assert done["output_asset_ids"] == [output["asset_id"]]  # once
    assert done["lease_expires_at"] is None and done["finished_at"] is not None
    assert await get_job(client, job["job_id"]) == done
    assert [e["type"] for e in await job_events(client, job["job_id"])][-1] == \
        "job.succeeded"
    # it is no longer held: a late heartbeat or a second answer is refused
    error_of(await call(client, job["job_id"], "heartbeat"), 409, "job_not_held")
    error_of(await call(client, job["job_id"], "fail", error="late"), 409, "job_not_held")


async def test_complete_with_unknown_output_assets_is_a_422(client) -> None:
    job = await submit(client, REMOTE)
    got = await claimed(client)
    error = error_of(await call(client, job["job_id"], "complete",
                                output_asset_ids=[UNKNOWN_ID]), 422)
    assert UNKNOWN_ID in error["message"]
    assert await get_job(client, job["job_id"]) == got  # still running, still held
    assert (await call(client, job["job_id"], "complete")).json()["status"] == "succeeded"


async def test_a_retryable_failure_queues_again_until_the_attempts_are_spent(client) -> None:
    job = await submit(client, REMOTE)
    await claimed(client)
    r = await call(client, job["job_id"], "fail", error="CUDA out of memory")
    assert r.status_code == 200, r.text
    again = r.json()
    assert again["status"] == "queued" and again["attempts"] == 1
    assert again["runner_id"] is None and again["lease_expires_at"] is None
    assert "queued again (attempt 1 of 2 used)" in (await messages(client, job["job_id"]))[-1]
    second = await claimed(client, runner_id="other-box")
    assert second["job_id"] == job["job_id"] and second["attempts"] == 2
    done = (await call(client, job["job_id"], "fail", "other-box", error="CUDA again")).json()
    assert done["status"] == "failed" and "CUDA again" in done["error"]
    assert "2 of 2" in done["error"]
    assert await claim(client) is None


async def test_a_failure_that_is_not_retryable_fails_at_once(client) -> None:
    job = await submit(client, REMOTE)
    await claimed(client)
    done = (await call(client, job["job_id"], "fail", error="bad input file",
                       retryable=False)).json()
    assert done["status"] == "failed" and done["attempts"] == 1
    assert "bad input file" in done["error"]
    assert [e["type"] for e in await job_events(client, job["job_id"])][-1] == "job.failed"
    assert await claim(client) is None


# -- cancel ------------------------------------------------------------------------------

@pytest.mark.parametrize(("answer", "fields"), [("complete", {"result": {"done": 1}}),
                                                ("fail", {"error": "stopped"})])
async def test_a_cancel_reaches_the_runner_through_its_heartbeat(client, answer,
                                                                 fields) -> None:
    job = await submit(client, REMOTE)
    await claimed(client)
    r = await client.post(f"{JOBS}/{job['job_id']}/cancel")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "running" and r.json()["cancel_requested"] is True
    beat = (await call(client, job["job_id"], "heartbeat")).json()
    assert beat["cancel_requested"] is True and beat["status"] == "running"
    progress = (await call(client, job["job_id"], "progress", percent=50)).json()
    assert progress["cancel_requested"] is True
    done = (await call(client, job["job_id"], answer, **fields)).json()
    assert done["status"] == "cancelled", done
    assert await claim(client) is None  # not queued again
    types = [e["type"] for e in await job_events(client, job["job_id"])]
    assert types == ["job.created", "job.started", "job.cancelled"]


# -- leases ------------------------------------------------------------------------------

async def test_a_lease_that_runs_out_queues_the_job_again_then_fails_it(client) -> None:
    job = await submit(client, REMOTE)
    await claimed(client, lease_seconds=1)  # and never heart-beats
    again = await wait_status(client, job["job_id"], "queued", timeout=5)
    assert again["attempts"] == 1 and again["runner_id"] is None
    said = await messages(client, job["job_id"])
    assert said[-1] == (f"lease expired: runner {RUNNER!r} stopped heart-beating; queued "
                        f"again (attempt 1 of {REMOTE_ATTEMPTS} used)")
    # the runner that lost it can no longer report
    error_of(await call(client, job["job_id"], "heartbeat"), 409, "job_not_held")
    await claimed(client, runner_id="second", lease_seconds=1)
    done = await wait_status(client, job["job_id"], "failed", timeout=5)
    assert "lease expired" in done["error"] and "2 of 2" in done["error"]
    assert (await messages(client, job["job_id"]))[-1] == f"failed: {done['error']}"
    assert [e["type"] for e in await job_events(client, job["job_id"])] == [
        "job.created", "job.started", "job.started", "job.failed"]


async def test_a_runner_that_heart_beats_keeps_its_job(client) -> None:
    job = await submit(client, REMOTE)
    await claimed(client, lease_seconds=1)
    deadline = asyncio.get_running_loop().time() + 2.5  # well past the first lease
    while asyncio.get_running_loop().time() < deadline:
        r = await call(client, job["job_id"], "heartbeat", lease_seconds=1)
        assert r.status_code == 200, r.text
        await asyncio.sleep(0.3)  # the runner's heartbeat cadence
    assert (await get_job(client, job["job_id"]))["status"] == "running"
    assert (await call(client, job["job_id"], "complete")).json()["status"] == "succeeded"


async def test_a_cancelled_job_whose_lease_runs_out_ends_cancelled(client) -> None:
    job = await submit(client, REMOTE)
    await claimed(client, lease_seconds=1)
    await client.post(f"{JOBS}/{job['job_id']}/cancel")
    done = await wait_status(client, job["job_id"], *("cancelled", "queued", "failed"),
                             timeout=5)
    assert done["status"] == "cancelled"
    assert await claim(client) is None

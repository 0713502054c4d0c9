"""The queue's order and limits, with one in-process worker (``plugins.jobs.workers`` = 1):
highest priority first (then oldest), a priority changed while queued, per-type
concurrency limits (the type's own and ``plugins.jobs.concurrency``), and cancelling a job
still waiting for a worker."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from job_types import ECHO, HOLD, LIMITED

from .conftest import (
    JOBS,
    error_of,
    eventually,
    get_job,
    messages,
    submit,
    wait_status,
)


@pytest.fixture
def jobs_config() -> dict[str, Any]:
    return {"workers": 1, "concurrency": {HOLD: 1}}


async def hold(client, label: str, priority: int = 0) -> dict:
    return await submit(client, HOLD, {"label": label}, priority=priority)


async def statuses(client, jobs: list[dict]) -> list[str]:
    return [(await get_job(client, j["job_id"]))["status"] for j in jobs]


async def test_the_highest_priority_runs_first_then_the_oldest(client, control) -> None:
    blocker = await hold(client, "blocker")
    await control.wait_started("blocker")
    waiting = [await hold(client, "low", -5), await hold(client, "high", 10),
               await hold(client, "mid-1", 3), await hold(client, "mid-2", 3),
               await hold(client, "default")]
    assert await statuses(client, waiting) == ["queued"] * 5  # the one worker is busy
    for label in ("blocker", "low", "high", "mid-1", "mid-2", "default"):
        control.release(label)  # each runs straight through once it starts
    done = [await wait_status(client, j["job_id"], "succeeded")
            for j in [blocker, *waiting]]
    assert control.started == ["blocker", "high", "mid-1", "mid-2", "default", "low"]
    by_start = sorted(done, key=lambda j: j["started_at"])
    assert [j["input"]["label"] for j in by_start] == control.started
    # one worker: each started only after the one before it finished
    for before, after in itertools.pairwise(by_start):
        assert before["finished_at"] <= after["started_at"]


async def test_a_freed_worker_takes_the_next_job_at_once(client, control) -> None:
    """Not after the pool's idle wait (seconds): the run's end must wake it."""
    first = await hold(client, "first")
    await control.wait_started("first")
    second = await hold(client, "second")
    control.release("second")
    control.release("first")
    await wait_status(client, second["job_id"], "succeeded", timeout=1.5)
    first = await get_job(client, first["job_id"])
    assert first["status"] == "succeeded"


async def test_a_priority_changed_while_queued_moves_the_job(client, control) -> None:
    await hold(client, "blocker")
    await control.wait_started("blocker")
    first = await hold(client, "first", 5)
    second = await hold(client, "second", 1)
    r = await client.patch(f"{JOBS}/{second['job_id']}", json={"priority": 9})
    assert r.status_code == 200, r.text
    assert r.json()["priority"] == 9 and r.json()["status"] == "queued"
    assert "priority 1 -> 9" in await messages(client, second["job_id"])
    for label in ("blocker", "first", "second"):
        control.release(label)
    await wait_status(client, first["job_id"], "succeeded")
    await wait_status(client, second["job_id"], "succeeded")
    assert control.started == ["blocker", "second", "first"]


@pytest.mark.parametrize("body", [{"priority": "high"}, {"priority": 2_000_000}, {},
                                  {"priority": 1, "status": "running"}])
async def test_a_bad_priority_patch_is_a_422_and_changes_nothing(client, control,
                                                                body) -> None:
    await hold(client, "blocker")
    await control.wait_started("blocker")
    job = await hold(client, "queued", 2)
    error_of(await client.patch(f"{JOBS}/{job['job_id']}", json=body), 422)
    assert (await get_job(client, job["job_id"]))["priority"] == 2


async def test_the_priority_of_a_running_or_finished_job_cannot_change(client,
                                                                       control) -> None:
    running = await hold(client, "running")
    await control.wait_started("running")
    error = error_of(await client.patch(f"{JOBS}/{running['job_id']}",
                                        json={"priority": 4}), 409, "job_not_queued")
    assert "running" in error["message"]
    control.release("running")
    finished = await wait_status(client, running["job_id"], "succeeded")
    error_of(await client.patch(f"{JOBS}/{running['job_id']}", json={"priority": 4}), 409,
             "job_not_queued")
    assert (await get_job(client, running["job_id"]))["priority"] == finished["priority"] == 0


async def test_a_job_waiting_for_a_worker_is_cancelled_at_once(client, control) -> None:
    await hold(client, "blocker")
    await control.wait_started("blocker")
    queued = await hold(client, "never")
    r = await client.post(f"{JOBS}/{queued['job_id']}/cancel")
    assert r.status_code == 200, r.text
    job = r.json()
    assert job["status"] == "cancelled" and job["finished_at"] is not None
    assert job["attempts"] == 0 and job["started_at"] is None
    control.release("blocker")
    after = await hold(client, "after")  # the worker is free again: proof it looked
    control.release("after")
    await wait_status(client, after["job_id"], "succeeded")
    assert control.started == ["blocker", "after"]  # the cancelled job never ran
    assert (await get_job(client, queued["job_id"]))["status"] == "cancelled"
    assert (await messages(client, queued["job_id"]))[-1] == "cancelled"


# -- per-type limits, with more workers --------------------------------------------------

@pytest.mark.parametrize("jobs_config", [{"workers": 4, "concurrency": {HOLD: 2}}])
async def test_a_type_s_concurrency_limit_is_honoured(client, control) -> None:
    # LIMITED allows one at a time (its JobType); HOLD two (plugins.jobs.concurrency)
    limited = [await submit(client, LIMITED, {"label": f"limited-{n}"}) for n in range(2)]
    held = [await hold(client, f"hold-{n}") for n in range(3)]
    echo = await submit(client, ECHO, {"text": "free"})
    # an unlimited type is not held up by the limited ones waiting
    await wait_status(client, echo["job_id"], "succeeded")
    await control.wait_started("limited-0")
    await control.wait_started("hold-0")
    await control.wait_started("hold-1")

    async def settled() -> bool:  # the pool has looked again after the last start
        return await statuses(client, limited) == ["running", "queued"] and \
            await statuses(client, held) == ["running", "running", "queued"]

    await eventually(settled, what="two HOLD and one LIMITED running")
    assert sorted(control.started) == ["hold-0", "hold-1", "limited-0"]
    control.release("limited-0")
    await control.wait_started("limited-1")
    control.release("hold-0")
    await control.wait_started("hold-2")
    assert await statuses(client, held) == ["succeeded", "running", "running"]
    for label in ("limited-1", "hold-1", "hold-2"):
        control.release(label)
    for job in [*limited, *held]:
        await wait_status(client, job["job_id"], "succeeded")

"""Jobs across Core's stops and starts, on one real SQLite home: a graceful stop queues a
running job again without spending an attempt; a job Core was running when it crashed is
queued again (or failed once its attempts are spent) at the next start, with a log line
saying so; a runner's job left running has its lease expire.  No job stays ``running``."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import job_types
import pytest
from job_types import HOLD, REMOTE

from kernel.config import Settings
from kernel.errors import PluginError

from .conftest import (
    configure,
    get_job,
    job_events,
    messages,
    started,
    submit,
    wait_status,
)

CRASHED = "Core stopped or crashed while the job ran"


@asynccontextmanager
async def core(make_app, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A Core on the test home, with the test job types; stopped gracefully on leaving."""
    app = make_app(extra_plugins=[("job_types", job_types)])
    async with started(app, settings.install_token) as client:
        yield client


def crash_leaves(settings: Settings, job_id: str, *, runner_id: str = "core",
                 attempts: int = 1, lease_expires_at: str | None = None) -> None:
    """Write what a Core killed mid-run leaves in the database: the job ``running``."""
    with sqlite3.connect(settings.paths.db_file) as conn:
        changed = conn.execute(
            "UPDATE jobs SET status = 'running', runner_id = ?, attempts = ?,"
            " lease_expires_at = ?, started_at = coalesce(started_at, updated_at),"
            " finished_at = NULL WHERE job_id = ?",
            (runner_id, attempts, lease_expires_at, job_id)).rowcount
    assert changed == 1


def stored(settings: Settings, job_id: str) -> tuple[str, str | None, int]:
    """The job's status, runner and attempts as the database holds them (Core stopped)."""
    with sqlite3.connect(settings.paths.db_file) as conn:
        return conn.execute("SELECT status, runner_id, attempts FROM jobs WHERE job_id = ?",
                            (job_id,)).fetchone()


def stored_log(settings: Settings, job_id: str) -> list[str]:
    with sqlite3.connect(settings.paths.db_file) as conn:
        return [r[0] for r in conn.execute(
            "SELECT message FROM job_logs WHERE job_id = ? ORDER BY id", (job_id,))]


async def test_a_graceful_stop_queues_a_running_job_without_spending_an_attempt(
        make_app, settings, control) -> None:
    async with core(make_app, settings) as client:
        job = await submit(client, HOLD, {"label": "interrupted"})
        await control.wait_started("interrupted")
    assert control.finally_ran == ["interrupted"]  # the handler was cancelled, cleanly
    # what the stop left: queued, held by nobody, the attempt given back, and no run of it
    # started after the stop queued it again
    assert stored(settings, job["job_id"]) == ("queued", None, 0)
    said = stored_log(settings, job["job_id"])
    assert said[-1] == "Core stopped while the job ran; queued again (attempt 0 of 3 used)"
    control.reset()
    control.release("interrupted")
    async with core(make_app, settings) as client:
        said = await messages(client, job["job_id"])
        assert "Core stopped while the job ran; queued again (attempt 0 of 3 used)" in said
        done = await wait_status(client, job["job_id"], "succeeded")
        assert done["attempts"] == 1  # the interrupted run did not count
        assert (await messages(client, job["job_id"])).count(
            "started by Core (attempt 1 of 3)") == 2
        assert control.started == ["interrupted"]


async def test_a_job_core_was_running_when_it_crashed_runs_again_at_the_next_start(
        make_app, settings, control) -> None:
    async with core(make_app, settings) as client:
        job = await submit(client, HOLD, {"label": "crashed"})
        await control.wait_started("crashed")
    crash_leaves(settings, job["job_id"], attempts=1)
    control.reset()
    control.release("crashed")
    async with core(make_app, settings) as client:
        done = await wait_status(client, job["job_id"], "succeeded")
        assert done["attempts"] == 2
        said = await messages(client, job["job_id"])
        assert f"{CRASHED}; queued again (attempt 1 of 3 used)" in said
        assert said.index(f"{CRASHED}; queued again (attempt 1 of 3 used)") < said.index(
            "started by Core (attempt 2 of 3)")
        assert control.started == ["crashed"]


async def test_a_crashed_job_with_no_attempts_left_is_failed_at_the_next_start(
        make_app, settings, control) -> None:
    async with core(make_app, settings) as client:
        job = await submit(client, HOLD, {"label": "last-try"}, max_attempts=2)
        await control.wait_started("last-try")
    crash_leaves(settings, job["job_id"], attempts=2)
    control.reset()
    async with core(make_app, settings) as client:
        done = await get_job(client, job["job_id"])
        assert done["status"] == "failed" and done["finished_at"] is not None
        assert CRASHED in done["error"] and "2 of 2" in done["error"]
        assert (await messages(client, job["job_id"]))[-1] == f"failed: {done['error']}"
        assert [e["type"] for e in await job_events(client, job["job_id"])][-1] == \
            "job.failed"
        assert control.started == []  # not run again


async def test_a_crashed_job_that_was_asked_to_cancel_ends_cancelled(
        make_app, settings, control) -> None:
    async with core(make_app, settings) as client:
        job = await submit(client, HOLD, {"label": "cancel-me"})
        await control.wait_started("cancel-me")
    crash_leaves(settings, job["job_id"])
    with sqlite3.connect(settings.paths.db_file) as conn:
        conn.execute("UPDATE jobs SET cancel_requested = 1 WHERE job_id = ?", (job["job_id"],))
    control.reset()
    async with core(make_app, settings) as client:
        assert (await get_job(client, job["job_id"]))["status"] == "cancelled"
        assert control.started == []


async def test_a_runner_s_job_left_running_has_its_lease_expire_after_a_restart(
        make_app, settings) -> None:
    async with core(make_app, settings) as client:
        job = await submit(client, REMOTE)
        r = await client.post("/v1/jobs/claim", json={"types": [REMOTE],
                                                      "runner_id": "gone-box"})
        assert r.status_code == 200, r.text
    crash_leaves(settings, job["job_id"], runner_id="gone-box",
                 lease_expires_at="2000-01-01T00:00:00.000000Z")
    async with core(make_app, settings) as client:
        again = await wait_status(client, job["job_id"], "queued")
        assert again["runner_id"] is None
        assert "lease expired: runner 'gone-box' stopped heart-beating" in \
            (await messages(client, job["job_id"]))[-1]


# -- the queue's wake-ups ---------------------------------------------------------------

@pytest.mark.parametrize("turns", range(6))
async def test_a_watcher_cancelled_as_it_is_woken_stops(kernel, turns) -> None:
    """The pool and the lease sweeper wait on the queue's hub; Core's stop cancels them.
    A cancel arriving just as a change wakes them must still stop them, or the stop waits
    for them forever (Python 3.11's ``asyncio.wait_for`` returns the result instead)."""
    hub = kernel.services["jobs.queue"].hub
    waiter = asyncio.create_task(hub.wait(30, hub.token()))
    for _ in range(3):
        await asyncio.sleep(0)  # it is waiting
    assert not waiter.done()
    hub.changed()
    for _ in range(turns):  # every interleaving of the wake-up and the cancel
        await asyncio.sleep(0)
    if waiter.cancel():  # still running: it must end cancelled
        with pytest.raises(asyncio.CancelledError):
            async with asyncio.timeout(5):
                await waiter
    else:
        assert waiter.result() is True


# -- settings ----------------------------------------------------------------------------

@pytest.mark.parametrize(("jobs", "says"), [
    ({"workers": 0}, "plugins.jobs.workers"),
    ({"workers": "4"}, "plugins.jobs.workers"),
    ({"workers": 2.5}, "plugins.jobs.workers"),
    ({"concurrency": {HOLD: 0}}, "plugins.jobs.concurrency"),
    ({"concurrency": [1]}, "plugins.jobs.concurrency"),
    # a misspelt key would silently leave the default: it is named, with the valid ones
    ({"worker": 1}, "worker"),
])
def test_bad_jobs_settings_stop_the_build_naming_the_key(make_app, home, jobs,
                                                         says) -> None:
    settings = configure(home, jobs)
    with pytest.raises(PluginError) as info:
        make_app(extra_plugins=[("job_types", job_types)], settings=settings)
    assert says in str(info.value)
    if "worker" in jobs:
        assert "workers" in str(info.value) and "concurrency" in str(info.value)

"""The SDK's job ``Runner`` against a real Core in process: results, progress and logs,
failures (retryable or not), cancels, input types, outputs, concurrency, transient errors,
a lost lease and a graceful stop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import msgspec
import pytest

from ff_plugin_sdk import Unauthorized, ValidationFailed
from ff_plugin_sdk.client import AsyncFaceForge, Job, Retry
from ff_plugin_sdk.jobs import JobFailed
from ff_plugin_sdk.runner import JobContext, Retryable, Runner
from tests.ff_plugin_sdk.sdk_core import BOUND_SECONDS, flaky, in_process
from tests.kernel.conftest import eventually
from tests.plugins import job_types

REMOTE, OTHER = job_types.REMOTE, job_types.REMOTE_OTHER



class Running:
    """A runner's ``run()`` in a task; :meth:`stop` stops it and waits."""

    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        self.task = asyncio.create_task(runner.run(handle_signals=False))

    async def stop(self) -> None:
        self.runner.stop()
        await asyncio.wait_for(self.task, BOUND_SECONDS)


@pytest.fixture
async def start() -> AsyncIterator[Callable[[Runner], Running]]:
    started: list[Running] = []

    def run(runner: Runner) -> Running:
        started.append(Running(runner))
        return started[-1]

    yield run
    for running in started:
        if not running.task.done():
            await running.stop()


async def ended(ff: AsyncFaceForge, job: Job) -> Job:
    return await ff.jobs.wait(job.job_id, poll_seconds=0.02, timeout=BOUND_SECONDS)


async def test_a_job_completes_with_its_result_progress_and_log(
        ff: AsyncFaceForge, start: Callable[[Runner], Running]) -> None:
    runner = Runner(ff, runner_id="test-runner")

    @runner.job(REMOTE)
    async def handle(ctx: JobContext) -> dict[str, Any]:
        await ctx.log("starting", count=3)
        for n in range(3):
            await ctx.progress(100 * (n + 1) / 3, step=f"step {n}", counters={"done": n + 1})
            await ctx.log(f"line {n}", level="debug", n=n)
        return {"echo": ctx.input["text"], "attempt": ctx.attempt, "type": ctx.type}

    start(runner)
    job = await ended(ff, await ff.jobs.create(REMOTE, {"text": "hi"}))
    assert job.status == "succeeded" and job.runner_id == "test-runner"
    assert job.result == {"echo": "hi", "attempt": 1, "type": REMOTE}
    assert (job.progress.percent, job.progress.step) == (100, "step 2")
    assert job.progress.counters == {"done": 3}
    lines = [(line.level, line.message, line.fields) for line in
             (await ff.jobs.log(job.job_id)).items]
    ours = [line for line in lines if line[1] == "starting" or line[1].startswith("line")]
    assert ours == [("info", "starting", {"count": 3}),
                    *[("debug", f"line {n}", {"n": n}) for n in range(3)]]


async def test_a_plain_function_is_a_handler_too(ff: AsyncFaceForge,
                                                  start: Callable[[Runner], Running]) -> None:
    runner = Runner(ff)
    runner.job(REMOTE)(lambda ctx: {"sum": sum(ctx.input["numbers"])})
    start(runner)
    job = await ended(ff, await ff.jobs.create(REMOTE, {"numbers": [1, 2, 3]}))
    assert (job.status, job.result) == ("succeeded", {"sum": 6})


async def test_failures_retryable_or_not(ff: AsyncFaceForge,
                                         start: Callable[[Runner], Running]) -> None:
    runner = Runner(ff)
    runs: list[str] = []

    @runner.job(REMOTE)
    async def handle(ctx: JobContext) -> None:
        runs.append(ctx.input["mode"])
        if ctx.input["mode"] == "crash":
            raise RuntimeError("the disk is on fire")
        if ctx.input["mode"] == "final":
            raise JobFailed("bad input, do not retry")
        raise Retryable("the GPU is busy")

    start(runner)
    crash = await ended(ff, await ff.jobs.create(REMOTE, {"mode": "crash"}))
    assert crash.status == "failed" and crash.attempts == 1
    assert crash.error == "RuntimeError: the disk is on fire"
    trace = [line for line in (await ff.jobs.log(crash.job_id)).items
             if "traceback" in line.fields]
    assert "the disk is on fire" in trace[0].fields["traceback"]
    final = await ended(ff, await ff.jobs.create(REMOTE, {"mode": "final"}))
    assert (final.status, final.attempts, final.error) == (
        "failed", 1, "bad input, do not retry")
    busy = await ended(ff, await ff.jobs.create(REMOTE, {"mode": "busy"}))
    assert busy.status == "failed" and busy.attempts == job_types.REMOTE_ATTEMPTS
    assert busy.error is not None and "the GPU is busy" in busy.error
    assert runs == ["crash", "final", "busy", "busy"]


async def test_a_cancel_stops_the_handler(ff: AsyncFaceForge,
                                          start: Callable[[Runner], Running]) -> None:
    runner = Runner(ff, lease_seconds=3)
    entered, stopped = asyncio.Event(), asyncio.Event()

    @runner.job(REMOTE)
    async def handle(ctx: JobContext) -> None:
        entered.set()
        try:
            await asyncio.Event().wait()  # never set: only a cancel ends this
        finally:
            assert ctx.cancelled
            with pytest.raises(Exception, match="stopping"):
                ctx.check_cancelled()
            stopped.set()

    start(runner)
    job = await ff.jobs.create(REMOTE)
    await asyncio.wait_for(entered.wait(), BOUND_SECONDS)
    await ff.jobs.cancel(job.job_id)
    done = await ended(ff, job)
    assert done.status == "cancelled" and stopped.is_set()


class TrainInput(msgspec.Struct, forbid_unknown_fields=True):
    entity_id: str
    steps: int = 10


class TrainResult(msgspec.Struct):
    steps: int


async def test_typed_input_and_outputs(ff: AsyncFaceForge,
                                       start: Callable[[Runner], Running]) -> None:
    runner = Runner(ff)

    @runner.job(REMOTE, input=TrainInput)
    async def train(ctx: JobContext) -> TrainResult:
        data: TrainInput = ctx.input
        asset = await ctx.client.assets.upload(f"weights {data.steps}".encode(),
                                               filename="w.bin", entity_ids=[data.entity_id])
        ctx.add_output(asset.asset_id)
        return TrainResult(steps=data.steps)

    start(runner)
    person = await ff.entities.create("Trainee")
    job = await ended(ff, await ff.jobs.create(REMOTE, {"entity_id": person.entity_id,
                                                        "steps": 5}))
    assert job.status == "succeeded" and job.result == {"steps": 5}
    [output] = job.output_asset_ids
    assert (await ff.assets.get(output)).linked_entity_ids == [person.entity_id]
    bad = await ended(ff, await ff.jobs.create(REMOTE, {"steps": "many"}))
    assert bad.status == "failed" and bad.attempts == 1
    assert bad.error is not None and bad.error.startswith("invalid input")


async def test_jobs_run_side_by_side_up_to_the_concurrency(
        ff: AsyncFaceForge, start: Callable[[Runner], Running]) -> None:
    runner = Runner(ff, concurrency=3)
    gate, running, most = asyncio.Event(), set(), [0]

    @runner.job(REMOTE)
    @runner.job(OTHER)
    async def hold(ctx: JobContext) -> None:
        running.add(ctx.job_id)
        most[0] = max(most[0], len(running))
        await gate.wait()
        running.discard(ctx.job_id)

    start(runner)
    jobs = [await ff.jobs.create(REMOTE if n % 2 else OTHER) for n in range(5)]

    async def three() -> bool:
        return len(running) == 3

    await eventually(three, what="three jobs running", timeout=BOUND_SECONDS)
    queued = await ff.jobs.list(status=["queued"])
    assert len(queued.items) == 2
    gate.set()
    assert [(await ended(ff, job)).status for job in jobs] == ["succeeded"] * 5
    assert most[0] == 3


async def test_many_log_lines_arrive_in_order(ff: AsyncFaceForge,
                                              start: Callable[[Runner], Running]) -> None:
    runner = Runner(ff)

    @runner.job(REMOTE)
    async def chatty(ctx: JobContext) -> None:
        for n in range(2500):
            await ctx.log(f"n={n}")

    start(runner)
    job = await ended(ff, await ff.jobs.create(REMOTE))
    messages, after = [], 0
    while page := (await ff.jobs.log(job.job_id, after_id=after, limit=1000)).items:
        messages += [line.message for line in page if line.message.startswith("n=")]
        after = page[-1].id
    assert messages == [f"n={n}" for n in range(2500)]


@pytest.mark.parametrize("fail", ["refused", "503"])
async def test_transient_errors_are_retried(ff: AsyncFaceForge, core: Any, settings: Any,
                                            fail: str,
                                            start: Callable[[Runner], Running]) -> None:
    transport = flaky(core, 3, fail)  # the client's one retry is not enough: the runner's
    async with AsyncFaceForge(token=settings.install_token, transport=transport,
                              retries=Retry(retries=1, backoff=0.01)) as shaky:
        runner = Runner(shaky, retry=Retry(backoff=0.01, max_backoff=0.05))

        @runner.job(REMOTE)
        async def handle(ctx: JobContext) -> dict[str, str]:
            return {"survived": fail}

        running = start(runner)
        job = await ended(ff, await ff.jobs.create(REMOTE))
        assert job.status == "succeeded" and job.result == {"survived": fail}
        await running.stop()
    assert transport.seen[:3] == ["POST /v1/jobs/claim"] * 3


async def test_a_lost_lease_is_not_reported_over(ff: AsyncFaceForge,
                                                 start: Callable[[Runner], Running]) -> None:
    runner = Runner(ff, runner_id="holder", lease_seconds=3)
    attempts: list[int] = []
    stopped = asyncio.Event()

    @runner.job(REMOTE)
    async def handle(ctx: JobContext) -> dict[str, int]:
        attempts.append(ctx.attempt)
        if ctx.attempt == 1:
            try:
                await asyncio.Event().wait()
            finally:
                stopped.set()
        return {"attempt": ctx.attempt}

    start(runner)
    job = await ff.jobs.create(REMOTE)

    async def held() -> bool:
        return bool(attempts)

    await eventually(held, what="the first attempt", timeout=BOUND_SECONDS)
    # Core takes the job back (as when the lease expires): the next heartbeat hears 409
    await ff.jobs.fail(job.job_id, "holder", "lease expired", retryable=True)
    await asyncio.wait_for(stopped.wait(), BOUND_SECONDS)
    done = await ended(ff, job)
    assert (done.status, done.result, attempts) == ("succeeded", {"attempt": 2}, [1, 2])


async def test_stop_lets_running_jobs_finish_within_the_grace(
        ff: AsyncFaceForge, start: Callable[[Runner], Running]) -> None:
    runner = Runner(ff, grace_seconds=BOUND_SECONDS)
    entered, gate = asyncio.Event(), asyncio.Event()

    @runner.job(REMOTE)
    async def handle(ctx: JobContext) -> str:
        entered.set()
        await gate.wait()
        return "finished"

    running = start(runner)
    job = await ff.jobs.create(REMOTE)
    await asyncio.wait_for(entered.wait(), BOUND_SECONDS)
    runner.stop()
    waiting = await ff.jobs.create(REMOTE)  # not claimed any more
    gate.set()
    await asyncio.wait_for(running.task, BOUND_SECONDS)
    assert (await ff.jobs.get(job.job_id)).result == "finished"
    assert (await ff.jobs.get(waiting.job_id)).status == "queued"


async def test_stop_past_the_grace_hands_jobs_back_to_core(
        ff: AsyncFaceForge, start: Callable[[Runner], Running]) -> None:
    runner = Runner(ff, grace_seconds=0.2)
    entered, finally_ran = asyncio.Event(), asyncio.Event()

    @runner.job(REMOTE)
    async def handle(ctx: JobContext) -> None:
        entered.set()
        try:
            await asyncio.Event().wait()
        finally:
            finally_ran.set()

    running = start(runner)
    job = await ff.jobs.create(REMOTE)
    await asyncio.wait_for(entered.wait(), BOUND_SECONDS)
    await running.stop()
    after = await ff.jobs.get(job.job_id)
    assert finally_ran.is_set()
    assert (after.status, after.attempts, after.runner_id) == ("queued", 1, None)
    lines = [line.message for line in (await ff.jobs.log(job.job_id)).items]
    assert any("the runner stopped before the job finished" in m for m in lines)


@pytest.mark.parametrize("problem", ["unknown type", "bad token"])
async def test_a_runner_core_refuses_stops_with_the_reason(core: Any, settings: Any,
                                                           problem: str) -> None:
    token = "wrong" if problem == "bad token" else settings.install_token
    async with in_process(core, token) as ff:
        runner = Runner(ff)
        runner.job(REMOTE if problem == "bad token" else "nobody.knows")(_noop)
        expected = Unauthorized if problem == "bad token" else ValidationFailed
        with pytest.raises(expected):
            await asyncio.wait_for(runner.run(handle_signals=False), BOUND_SECONDS)


async def _noop(ctx: JobContext) -> None:
    return None


def test_a_runner_needs_handlers_once_each() -> None:
    runner = Runner(AsyncFaceForge("http://127.0.0.1:9", "t"))
    runner.job(REMOTE)(_noop)
    with pytest.raises(ValueError, match="already"):
        runner.job(REMOTE)(_noop)
    assert list(runner.handlers) == [REMOTE]
    with pytest.raises(RuntimeError, match="no job types"):
        asyncio.run(Runner(AsyncFaceForge("http://127.0.0.1:9", "t")).run())


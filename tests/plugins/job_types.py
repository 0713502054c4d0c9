"""Throwaway plugin: job types for the jobs plugin's tests.

In-process handlers the test steers through :data:`control` (gates a handler waits at,
the order runs started in, which ``finally`` blocks ran) and out-of-process types (no
handler) a test claims over HTTP as a runner.  Handlers run on the test's event loop, so a
test opens a gate or waits for a run to start with plain ``anyio`` events.
"""

from __future__ import annotations

from typing import Literal

import anyio
import msgspec

from ff_plugin_sdk import JobType, hookimpl
from ff_plugin_sdk.jobs import JobContext, JobFailed

ECHO = "testjobs.echo"
HOLD = "testjobs.hold"
LIMITED = "testjobs.limited"
FAIL = "testjobs.fail"
REMOTE = "testjobs.remote"
REMOTE_OTHER = "testjobs.remote_other"
#: what a remote job allows before it is failed for good
REMOTE_ATTEMPTS = 2


class Control:
    """What the handlers did and the gates they wait at; :meth:`reset` before each test."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.gates: dict[str, anyio.Event] = {}
        self.entered: dict[str, anyio.Event] = {}
        #: labels, in the order their runs started (one entry per run)
        self.started: list[str] = []
        #: labels whose handler's ``finally`` ran
        self.finally_ran: list[str] = []

    def gate(self, label: str) -> anyio.Event:
        return self.gates.setdefault(label, anyio.Event())

    def entry(self, label: str) -> anyio.Event:
        return self.entered.setdefault(label, anyio.Event())

    def release(self, label: str) -> None:
        self.gate(label).set()

    async def wait_started(self, label: str, timeout: float = 10.0) -> None:
        with anyio.fail_after(timeout):
            await self.entry(label).wait()


control = Control()


class EchoInput(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    text: str
    #: log lines to write ("line 0", "line 1", ...)
    lines: int = 0


class HoldInput(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    label: str


class FailInput(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    #: job_failed: JobFailed (not retryable); retryable: JobFailed(retryable=True);
    #: crash: a plain exception
    mode: Literal["job_failed", "retryable", "crash"]
    message: str = "it broke"


async def echo(ctx: JobContext) -> dict:
    data: EchoInput = ctx.input
    for n in range(data.lines):
        ctx.log("info", f"line {n}", n=n)
        ctx.progress(percent=100 * (n + 1) / data.lines, step="echoing", lines=n + 1)
    ctx.progress(percent=100, step="done")
    return {"echo": data.text, "attempt": ctx.attempt,
            "correlation_id": ctx.correlation_id}


async def hold(ctx: JobContext) -> dict:
    """Waits at its label's gate (which may never open) and records its ``finally``."""
    label = ctx.input.label
    control.started.append(label)
    ctx.log("info", f"holding {label}")
    ctx.progress(step="holding")
    control.entry(label).set()
    try:
        await control.gate(label).wait()
    finally:
        control.finally_ran.append(label)
    return {"label": label}


async def fail(ctx: JobContext) -> None:
    data: FailInput = ctx.input
    control.started.append(data.mode)
    if data.mode == "crash":
        raise RuntimeError(data.message)
    raise JobFailed(data.message, retryable=data.mode == "retryable")


@hookimpl
def faceforge_job_types(kernel):
    return [
        JobType(name=ECHO, summary="echoes its text", handler=echo, input_schema=EchoInput),
        JobType(name=HOLD, summary="waits at a gate", handler=hold, input_schema=HoldInput),
        JobType(name=LIMITED, summary="waits at a gate, one at a time", handler=hold,
                input_schema=HoldInput, concurrency=1),
        JobType(name=FAIL, summary="fails as asked", handler=fail, input_schema=FailInput),
        JobType(name=REMOTE, summary="run by an out-of-process runner",
                max_attempts=REMOTE_ATTEMPTS),
        JobType(name=REMOTE_OTHER, summary="another out-of-process type"),
    ]

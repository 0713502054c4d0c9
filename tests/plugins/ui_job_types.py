"""Throwaway plugin: job types for the Jobs pages' tests.

``uitest.echo`` writes log lines and progress and returns a result; ``uitest.hold`` waits
at a gate the test opens (handlers run on the test's event loop); ``uitest.fail`` fails
with a message; ``uitest.remote`` has no handler, so it stays queued until a runner
claims it over HTTP.
"""

from __future__ import annotations

import msgspec
from job_types import Control, EchoInput, HoldInput  # the jobs tests' own

from ff_plugin_sdk import JobType, hookimpl
from ff_plugin_sdk.jobs import JobContext, JobFailed

ECHO = "uitest.echo"
HOLD = "uitest.hold"
FAIL = "uitest.fail"
REMOTE = "uitest.remote"


#: the gates ``hold`` waits at; reset by the tests' fixture
control = Control()


class FailInput(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    message: str


async def echo(ctx: JobContext) -> dict:
    data: EchoInput = ctx.input
    for n in range(data.lines):
        ctx.log("info", f"line {n}", n=n)
    ctx.progress(percent=100, step="echoed", lines=data.lines)
    return {"echo": data.text}


async def hold(ctx: JobContext) -> dict:
    label = ctx.input.label
    ctx.log("info", f"holding {label}")
    ctx.progress(percent=40, step="holding", files=2)
    await ctx.flush()
    control.entry(label).set()
    await control.gate(label).wait()
    return {"label": label}


async def fail(ctx: JobContext) -> None:
    raise JobFailed(ctx.input.message)


@hookimpl
def faceforge_job_types(kernel):
    return [
        JobType(name=ECHO, summary="echoes its text", handler=echo, input_schema=EchoInput),
        JobType(name=HOLD, summary="waits at a gate", handler=hold, input_schema=HoldInput),
        JobType(name=FAIL, summary="fails with its message", handler=fail,
                input_schema=FailInput, max_attempts=1),
        JobType(name=REMOTE, summary="run by an out-of-process runner"),
    ]

"""``GET /v1/jobs/{id}/stream`` over a real Hypercorn socket: the job first, each log line
with its id, a ``job`` event on every change, ``end`` with the final state and then the
stream closes; a reconnect with ``Last-Event-ID`` (or ``?after_id=``) resumes exactly after
that line; an unknown job is a 404 before any streaming."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
import pytest
from job_types import ECHO, HOLD, REMOTE

from .conftest import (
    JOBS,
    UNKNOWN_ID,
    WAIT,
    error_of,
    live_core,
    log_of,
    submit,
    wait_status,
)

RUNNER = "stream-runner"


@dataclass
class Event:
    event: str
    data: dict
    id: int | None


class Stream:
    """An open event stream, read event by event."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.lines = response.aiter_lines()
        self.ended = False

    async def next(self) -> Event | None:
        """The next event (comments and the retry hint skipped); None once it closed."""
        fields: dict[str, str] = {}
        async with asyncio.timeout(WAIT):
            async for line in self.lines:
                if line == "":
                    if "event" in fields or "data" in fields:
                        return Event(fields.get("event", "message"),
                                     json.loads(fields.get("data", "null")),
                                     int(fields["id"]) if "id" in fields else None)
                    fields = {}
                    continue
                if line.startswith(":"):
                    continue
                name, _, value = line.partition(":")
                fields[name] = value.removeprefix(" ")
        self.ended = True
        return None

    async def until(self, kind: str) -> list[Event]:
        """Every event up to and including the next ``kind``."""
        seen: list[Event] = []
        while (event := await self.next()) is not None:
            seen.append(event)
            if event.event == kind:
                return seen
        pytest.fail(f"the stream closed before a {kind!r} event; it sent {seen}")

    async def rest(self) -> list[Event]:
        """Everything until the server closes the stream."""
        seen = []
        while (event := await self.next()) is not None:
            seen.append(event)
        return seen


@asynccontextmanager
async def stream(client: httpx.AsyncClient, job_id: str, *, headers: dict | None = None,
                 params: dict | None = None) -> AsyncIterator[Stream]:
    async with client.stream("GET", f"{JOBS}/{job_id}/stream", headers=headers or {},
                             params=params or {}) as response:
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-cache"
        yield Stream(response)


@pytest.fixture
async def live(app, settings) -> AsyncIterator[httpx.AsyncClient]:
    async with live_core(app, settings.install_token) as client:
        yield client


async def runner_log(client: httpx.AsyncClient, job_id: str, *messages: str) -> None:
    r = await client.post(f"{JOBS}/{job_id}/log", json={
        "runner_id": RUNNER, "lines": [{"message": m} for m in messages]})
    assert r.status_code == 200, r.text


async def claim(client: httpx.AsyncClient) -> dict:
    r = await client.post(f"{JOBS}/claim", json={"types": [REMOTE], "runner_id": RUNNER})
    assert r.status_code == 200, r.text
    return r.json()


async def test_a_running_job_streams_its_changes_and_ends(live, control) -> None:
    job = await submit(live, HOLD, {"label": "streamed"})
    await control.wait_started("streamed")
    async with stream(live, job["job_id"]) as events:
        first = await events.next()
        assert first is not None and first.event == "job" and first.id is None
        assert first.data["job_id"] == job["job_id"] and first.data["status"] == "running"
        control.release("streamed")
        seen = await events.until("end")
        assert await events.rest() == []  # the server closed the stream after `end`
    end = seen[-1]
    assert end.data["status"] == "succeeded" and end.data["result"] == {"label": "streamed"}
    lines = [e for e in seen if e.event == "log"]
    assert all(e.id == e.data["id"] for e in lines)
    every = await log_of(live, job["job_id"])
    # the lines already there were sent first, then each new one: the whole log, in order
    assert [e.data for e in lines] == every
    assert every[-1]["message"] == "succeeded"


async def test_runner_progress_and_lines_arrive_as_they_happen(live) -> None:
    job = await submit(live, REMOTE)
    await claim(live)
    async with stream(live, job["job_id"]) as events:
        assert (await events.next()).event == "job"
        await events.until("log")  # the tail so far: queued, started
        await live.post(f"{JOBS}/{job['job_id']}/progress",
                        json={"runner_id": RUNNER, "percent": 30, "step": "warming up"})
        changed = await events.until("job")
        assert changed[-1].data["progress"] == {"percent": 30.0, "step": "warming up"}
        await runner_log(live, job["job_id"], "first", "second")
        got = [(await events.until("log"))[-1], await events.next()]
        assert [(e.event, e.data["message"]) for e in got] == [("log", "first"),
                                                               ("log", "second")]
        r = await live.post(f"{JOBS}/{job['job_id']}/complete",
                            json={"runner_id": RUNNER, "result": {"ok": True}})
        assert r.status_code == 200, r.text
        tail = await events.until("end")
        assert tail[-1].data["status"] == "succeeded"
        assert [e.data["message"] for e in tail if e.event == "log"][-1] == "succeeded"
        assert await events.rest() == []


async def test_a_reconnect_resumes_exactly_after_the_last_event_id(live) -> None:
    job = await submit(live, REMOTE)
    await claim(live)
    await runner_log(live, job["job_id"], "one", "two", "three")
    received: list[dict] = []
    async with stream(live, job["job_id"]) as events:
        while not received or received[-1]["message"] != "three":
            event = await events.next()
            assert event is not None
            if event.event == "log":
                received.append(event.data)
    last = received[-1]["id"]
    await runner_log(live, job["job_id"], "four", "five")  # while nobody listens
    async with stream(live, job["job_id"], headers={"Last-Event-ID": str(last)}) as events:
        assert (await events.next()).event == "job"
        await runner_log(live, job["job_id"], "six")
        await live.post(f"{JOBS}/{job['job_id']}/complete", json={"runner_id": RUNNER})
        rest = await events.until("end")
        received += [e.data for e in rest if e.event == "log"]
    every = await log_of(live, job["job_id"])
    assert received == every  # no line repeated, none missed
    assert [line["message"] for line in every][-4:] == ["four", "five", "six", "succeeded"]


async def test_a_finished_job_streams_from_a_resume_point_then_ends(live) -> None:
    job = await submit(live, ECHO, {"text": "x", "lines": 10})
    await wait_status(live, job["job_id"], "succeeded")
    every = await log_of(live, job["job_id"])
    after = every[4]["id"]
    for how in ({"headers": {"Last-Event-ID": str(after)}}, {"params": {"after_id": after}},
                # the header wins over the query
                {"headers": {"Last-Event-ID": str(after)}, "params": {"after_id": 0}}):
        async with stream(live, job["job_id"], **how) as events:
            sent = await events.rest()
        assert sent[0].event == "job" and sent[-1].event == "end"
        assert sent[-1].data["status"] == "succeeded"
        assert [e.data for e in sent if e.event == "log"] == every[5:], how


async def test_without_a_resume_point_the_newest_100_lines_come_first(live) -> None:
    job = await submit(live, ECHO, {"text": "x", "lines": 150})
    await wait_status(live, job["job_id"], "succeeded")
    every = await log_of(live, job["job_id"])
    assert len(every) == 153
    async with stream(live, job["job_id"]) as events:
        sent = await events.rest()
    assert [e.data for e in sent if e.event == "log"] == every[-100:]
    assert sent[-1].event == "end"


@pytest.mark.parametrize("job_id", [UNKNOWN_ID, "abc"])
async def test_an_unknown_job_is_a_404_before_any_streaming(live, job_id) -> None:
    r = await live.get(f"{JOBS}/{job_id}/stream")
    error_of(r, 404, "job_not_found")


async def test_a_bad_resume_point_is_a_422(live) -> None:
    job = await submit(live, REMOTE)
    error_of(await live.get(f"{JOBS}/{job['job_id']}/stream", params={"after_id": -1}), 422)

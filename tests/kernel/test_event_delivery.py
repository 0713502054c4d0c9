"""Event delivery is at least once, in id order, from a durable cursor per subscriber:
what was committed but not delivered when Core stopped or crashed arrives after the next
start, and shutdown drains the queue (bounded) before plugins' shutdown hooks run."""

from __future__ import annotations

import asyncio

import pytest
from slow_subscriber import Gate
from subscribers import Collecting, Failing

import kernel.app as kernel_app
from tests.conftest import running

from .conftest import eventually, kernel_of


async def record(kernel, type: str, n: int = 0) -> int:
    return await kernel.db.write(lambda tx: tx.event(type, {"n": n}))


async def cursor(kernel, name: str) -> int | None:
    row = await kernel.db.fetchone(
        "SELECT last_id FROM event_cursors WHERE subscriber = ?", (name,))
    return None if row is None else row["last_id"]


async def test_each_subscriber_has_a_durable_cursor(make_app, settings) -> None:
    collecting = Collecting()
    app = make_app(extra_plugins=[("collecting", collecting)])
    async with running(app, settings.install_token):
        kernel = kernel_of(app)
        ids = [await record(kernel, "cursor.test", n) for n in range(3)]
        await eventually(lambda: len(collecting.events) == 3, what="three deliveries")
        await eventually(lambda: cursor(kernel, "collecting"),
                         what="the cursor to be saved")
        assert await cursor(kernel, "collecting") == ids[-1]
    assert [e.id for e in collecting.events] == ids


async def test_a_new_subscriber_starts_from_now(make_app, settings) -> None:
    app = make_app()
    async with running(app, settings.install_token):
        old = await record(kernel_of(app), "before.subscriber")
    collecting = Collecting()
    app = make_app(extra_plugins=[("collecting", collecting)])
    async with running(app, settings.install_token):
        kernel = kernel_of(app)
        assert await cursor(kernel, "collecting") == old
        new = await record(kernel, "after.subscriber")
        await eventually(lambda: collecting.events, what="the new event")
    assert [e.id for e in collecting.events] == [new]


async def test_events_not_delivered_at_stop_arrive_after_the_next_start_in_order(
        make_app, settings, monkeypatch) -> None:
    monkeypatch.setattr(kernel_app, "DRAIN_SECONDS", 0.05)  # give up draining quickly
    gate = Gate()
    app = make_app(extra_plugins=[("gated", gate)])
    async with running(app, settings.install_token):
        kernel = kernel_of(app)
        start = await cursor(kernel, "gated")
        ids = [await record(kernel, "held.event", n) for n in range(5)]
    # stopped while the subscriber was still holding the first event
    assert gate.events == []
    assert "shutdown" in gate.log

    again = Gate()
    again.open.set()
    app = make_app(extra_plugins=[("gated", again)])
    async with running(app, settings.install_token):
        await eventually(lambda: len(again.events) >= 5, what="the held events")
    assert [e.id for e in again.events] == ids
    assert [e.type for e in again.events] == ["held.event"] * 5
    assert start is not None and start < ids[0]


async def test_shutdown_drains_delivery_before_plugin_shutdown_hooks(make_app,
                                                                    settings) -> None:
    gate = Gate()
    app = make_app(extra_plugins=[("gated", gate)])
    async with running(app, settings.install_token):
        kernel = kernel_of(app)
        ids = [await record(kernel, "drain.event", n) for n in range(3)]
        # let the subscriber through only once shutdown has begun
        asyncio.get_running_loop().call_later(0.05, gate.open.set)
    assert gate.log == [f"event {i}" for i in ids] + ["shutdown"]


async def test_a_subscriber_that_raises_is_logged_and_its_cursor_moves_on(
        make_app, settings) -> None:
    collecting = Collecting()
    app = make_app(extra_plugins=[("failing", Failing()), ("collecting", collecting)])
    async with running(app, settings.install_token):
        kernel = kernel_of(app)
        last = await record(kernel, "poison.event")
        await eventually(lambda: collecting.events, what="delivery to the healthy one")
        await eventually(lambda: _at(kernel, "failing", last), what="the failing cursor")


async def _at(kernel, name: str, event_id: int) -> bool:
    return await cursor(kernel, name) == event_id


@pytest.mark.parametrize("count", [250])
async def test_delivery_of_a_backlog_is_complete_and_ordered(make_app, settings,
                                                             count) -> None:
    """More than one read batch, recorded concurrently (so grouped under one commit)."""
    collecting = Collecting()
    app = make_app(extra_plugins=[("collecting", collecting)])
    async with running(app, settings.install_token):
        kernel = kernel_of(app)
        ids = await asyncio.gather(*(record(kernel, "bulk.event", n) for n in range(count)))
        await eventually(lambda: len(collecting.events) >= count, what="every event")
    assert [e.id for e in collecting.events] == sorted(ids)

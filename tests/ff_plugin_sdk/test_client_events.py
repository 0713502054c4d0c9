"""``events.follow()`` over a real socket: live delivery in order, type filters, and
resuming after dropped connections without losing or repeating an event."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import aclosing
from typing import Any

import pytest

from ff_plugin_sdk import Unauthorized
from ff_plugin_sdk.client import AsyncFaceForge, Event, FaceForge, Retry, Unreachable
from tests.ff_plugin_sdk.sdk_core import BOUND_SECONDS, Relay, Served
from tests.kernel.conftest import eventually

FAST = Retry(retries=3, backoff=0.01, max_backoff=0.05)


@pytest.fixture
def served(app: Any) -> Iterator[Served]:
    with Served(app) as server:
        yield server


@pytest.fixture
async def ff(served: Served, settings: Any) -> AsyncIterator[AsyncFaceForge]:
    async with AsyncFaceForge(served.url, settings.install_token, retries=FAST) as client:
        yield client


class Follower:
    """Follows in a task, keeping what arrives."""

    def __init__(self, events: AsyncIterator[Event]) -> None:
        self.seen: list[Event] = []
        self.error: BaseException | None = None
        self.task = asyncio.create_task(self._run(events))

    async def _run(self, events: AsyncIterator[Event]) -> None:
        try:
            async with aclosing(events):  # type: ignore[type-var]
                async for event in events:
                    self.seen.append(event)
        except Exception as exc:  # the test looks at it
            self.error = exc

    async def until(self, count: int) -> list[Event]:
        async def enough() -> bool:
            if self.error is not None:
                raise self.error
            return len(self.seen) >= count

        await eventually(enough, what=f"{count} events (have {len(self.seen)})",
                         timeout=BOUND_SECONDS)
        return self.seen

    async def stop(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


async def names(ff: AsyncFaceForge, *display_names: str) -> list[str]:
    return [(await ff.entities.create(name)).entity_id for name in display_names]


async def test_list_reads_events_page_by_page(ff: AsyncFaceForge) -> None:
    start = await ff.events.last_id()
    ids = await names(ff, "a", "b", "c")
    page = await ff.events.list(start, type="entity.created", limit=2)
    assert [e.data["entity_id"] for e in page.items] == ids[:2]
    assert page.next_cursor and page.last_id >= page.items[-1].id
    rest = await ff.events.list(int(page.next_cursor), type="entity.created")
    assert [e.data["entity_id"] for e in rest.items] == ids[2:]


async def test_follow_delivers_what_happens_from_now_on(ff: AsyncFaceForge) -> None:
    before = await names(ff, "before")
    follower = Follower(ff.events.follow(types="entity.created"))
    made: list[str] = []

    async def arrived() -> bool:  # made until the follower hears one: it is listening
        made.extend(await names(ff, f"after {len(made)}"))
        return bool(follower.seen)

    await eventually(arrived, what="a live event", timeout=BOUND_SECONDS)
    made.extend(await names(ff, "final"))

    async def final() -> bool:
        return any(e.data["entity_id"] == made[-1] for e in follower.seen)

    await eventually(final, what="the final event", timeout=BOUND_SECONDS)
    seen = follower.seen
    await follower.stop()
    ids = [e.data["entity_id"] for e in seen]
    assert before[0] not in ids
    assert ids == made[-len(ids):] and len(ids) == len(set(ids))
    assert [e.id for e in seen] == sorted(e.id for e in seen)


async def test_follow_filters_several_types(ff: AsyncFaceForge) -> None:
    start = await ff.events.last_id()
    first, second = await names(ff, "one", "two")
    await ff.entities.update(first, tags=["x"])
    await ff.entities.delete(second)
    follower = Follower(ff.events.follow(after=start, types=["entity.deleted",
                                                             "entity.updated"]))
    seen = await follower.until(2)
    await names(ff, "three")  # created: not asked for
    await ff.entities.update(first, tags=["y"])
    seen = await follower.until(3)
    await follower.stop()
    assert [(e.type, e.data["entity_id"]) for e in seen] == [
        ("entity.updated", first), ("entity.deleted", second), ("entity.updated", first)]


async def test_follow_resumes_after_a_dropped_connection(served: Served,
                                                         settings: Any) -> None:
    async with AsyncFaceForge(served.url, settings.install_token) as direct:
        start = await direct.events.last_id()
        with Relay(served.port) as relay:
            async with AsyncFaceForge(relay.url, settings.install_token,
                                      retries=FAST) as via_relay:
                follower = Follower(via_relay.events.follow(after=start,
                                                            types="entity.created"))
                made = await names(direct, "a", "b", "c")
                await follower.until(3)
                relay.refuse = True  # the network is down for a while
                relay.drop()
                made += await names(direct, *(f"gap {n}" for n in range(5)))
                relay.refuse = False
                made += await names(direct, "after")
                seen = await follower.until(len(made))
                relay.drop()  # once more, with nothing missed meanwhile
                made += await names(direct, "last")
                seen = await follower.until(len(made))
                await follower.stop()
    assert [e.data["entity_id"] for e in seen] == made
    assert len({e.id for e in seen}) == len(seen)


async def test_follow_gives_up_after_the_failures_allowed(served: Served,
                                                         settings: Any) -> None:
    with Relay(served.port) as relay:
        async with AsyncFaceForge(relay.url, settings.install_token, retries=FAST) as ff:
            start = await ff.events.last_id()
            follower = Follower(ff.events.follow(after=start, max_failures=2))
            await names(ff, "one")
            await follower.until(1)
            relay.refuse = True
            relay.drop()
            await asyncio.wait_for(follower.task, BOUND_SECONDS)
    assert isinstance(follower.error, Unreachable)


async def test_follow_with_a_refused_token_raises_at_once(served: Served) -> None:
    async with AsyncFaceForge(served.url, "wrong", retries=FAST) as ff:
        follower = Follower(ff.events.follow(after=0))
        await asyncio.wait_for(follower.task, BOUND_SECONDS)
    assert isinstance(follower.error, Unauthorized) and follower.error.status == 401


def test_the_blocking_client_follows_too(served: Served, settings: Any) -> None:
    with FaceForge(served.url, settings.install_token) as ff:
        start = ff.events.last_id()
        made = [ff.entities.create(f"sync {n}").entity_id for n in range(3)]
        seen = []
        for event in ff.events.follow(after=start, types="entity.created"):
            seen.append(event.data["entity_id"])
            if len(seen) == 3:
                break
    assert seen == made

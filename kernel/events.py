"""The append-only events table and its delivery.

An event is written by ``tx.event(...)`` inside the transaction it records (see
:mod:`kernel.db`), so it exists exactly when its change does.  Delivery to in-process
subscribers (the ``faceforge_event`` hook) is at least once, in id order, from a durable
per-subscriber cursor (``event_cursors``): events committed but not yet delivered when Core
stopped or crashed are delivered after the next start.  Commits also wake the server-sent
event streams.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from ff_plugin_sdk.types import Event
from kernel.clock import utc_now
from kernel.db import Database

log = logging.getLogger("faceforge.events")

Deliver = Callable[[Event], Awaitable[None]]
#: events read and delivered per step; the cursor is saved after each step, so a crash
#: delivers at most this many events a second time
BATCH = 100


def row_to_event(row: Any) -> Event:
    return Event(id=row["id"], type=row["type"], created_at=row["created_at"],
                 data=msgspec.json.decode(row["data"]), correlation_id=row["correlation_id"])


@dataclass(eq=False)
class Subscriber:
    """One in-process subscriber (a plugin implementing ``faceforge_event``)."""

    name: str
    deliver: Deliver
    cursor: int = 0
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    moved: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None


class EventBus:
    def __init__(self, db: Database) -> None:
        self.db = db
        # replaced on every commit; waiters hold the one that was current when they began
        self._changed = asyncio.Event()
        self.subscribers: list[Subscriber] = []
        self.last_id = 0
        self.closed = asyncio.Event()
        db.event_listeners.append(self._committed)

    def _committed(self, newest: int) -> None:
        """Called on the loop after a commit that wrote events (newest id ``newest``)."""
        self.last_id = max(self.last_id, newest)
        self._signal()
        for sub in self.subscribers:
            sub.wake.set()

    def _signal(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def start(self, subscribers: Sequence[tuple[str, Deliver]]) -> None:
        """Resume every subscriber from its saved cursor; a new one starts from now."""
        row = await self.db.fetchone("SELECT max(id) AS id FROM events")
        self.last_id = max(self.last_id, row["id"] or 0)
        saved = {r["subscriber"]: r["last_id"] for r in
                 await self.db.fetchall("SELECT subscriber, last_id FROM event_cursors")}
        new = [name for name, _ in subscribers if name not in saved]
        if new:
            now, start = utc_now(), self.last_id
            await self.db.write(lambda tx: tx.executemany(
                "INSERT OR IGNORE INTO event_cursors (subscriber, last_id, updated_at)"
                " VALUES (?, ?, ?)", [(name, start, now) for name in new]))
        for name, deliver in subscribers:
            sub = Subscriber(name, deliver, saved.get(name, self.last_id))
            self.subscribers.append(sub)
            sub.task = asyncio.create_task(self._run(sub), name=f"faceforge-events-{name}")

    async def _run(self, sub: Subscriber) -> None:
        while True:
            if sub.cursor >= self.last_id:
                sub.wake.clear()
                if sub.cursor >= self.last_id:  # nothing arrived while clearing
                    await sub.wake.wait()
                continue
            events = await self.list(sub.cursor, None, BATCH)
            if not events:  # nothing visible yet: wait for the next commit, never skip ahead
                sub.wake.clear()
                await sub.wake.wait()
                continue
            for event in events:
                await sub.deliver(event)  # failures are logged by the hook caller
                sub.cursor = event.id
            await self._save(sub)

    async def _save(self, sub: Subscriber) -> None:
        cursor, now = sub.cursor, utc_now()
        await self.db.write(lambda tx: tx.execute(
            "UPDATE event_cursors SET last_id = ?, updated_at = ? WHERE subscriber = ?",
            (cursor, now, sub.name)))
        sub.moved.set()

    async def drain(self, timeout: float) -> bool:
        """Wait (at most ``timeout`` s) until every subscriber has had every event committed
        so far; True if they have."""
        target = self.last_id
        try:
            async with asyncio.timeout(timeout):
                for sub in self.subscribers:
                    while sub.cursor < target and sub.task is not None and not sub.task.done():
                        sub.moved.clear()
                        await sub.moved.wait()
        except TimeoutError:
            behind = [s.name for s in self.subscribers if s.cursor < target]
            log.warning("stopping with events not yet delivered to %s; they will be "
                        "delivered after the next start", ", ".join(behind))
            return False
        return True

    async def forget(self, name: str) -> None:
        """Stop delivering to ``name`` and drop its cursor: a disabled plugin hears nothing,
        and once enabled again it hears what happens from then on."""
        for sub in [s for s in self.subscribers if s.name == name]:
            self.subscribers.remove(sub)
            if sub.task is not None:
                sub.task.cancel()
                await asyncio.gather(sub.task, return_exceptions=True)
        await self.db.write(lambda tx: tx.execute(
            "DELETE FROM event_cursors WHERE subscriber = ?", (name,)))

    async def close_streams(self) -> None:
        """End every open event stream (server shutdown must not wait for them)."""
        self.closed.set()
        self._signal()

    async def stop(self) -> None:
        """End delivery and every open stream (call :meth:`drain` first)."""
        await self.close_streams()
        for sub in self.subscribers:
            if sub.task is not None:
                sub.task.cancel()
        await asyncio.gather(*(s.task for s in self.subscribers if s.task),
                             return_exceptions=True)
        self.subscribers.clear()

    async def list(self, after: int = 0, type_prefix: str | None = None,
                   limit: int = 100, *, before: int | None = None) -> list[Event]:
        """Oldest first after ``after``; or, given ``before``, the newest ones below it,
        newest first (for reading the log backwards)."""
        sql = "SELECT * FROM events WHERE id > ?"
        params: list[Any] = [after]
        if before is not None:
            sql += " AND id < ?"
            params.append(before)
        if type_prefix:
            # prefix match without LIKE wildcards leaking from user input
            sql += " AND substr(type, 1, ?) = ?"
            params += [len(type_prefix), type_prefix]
        sql += f" ORDER BY id {'DESC' if before is not None else 'ASC'} LIMIT ?"
        params.append(limit)
        return [row_to_event(r) for r in await self.db.fetchall(sql, params)]

    async def wait(self, after: int, timeout: float) -> bool:
        """Wait until an event newer than ``after`` commits; False on timeout or close."""
        while self.last_id <= after and not self.closed.is_set():
            try:  # not wait_for: on 3.11 it can swallow a cancel arriving with the wake-up
                async with asyncio.timeout(timeout):
                    await self._changed.wait()
            except TimeoutError:
                return False
        return self.last_id > after

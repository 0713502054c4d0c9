"""The append-only events table and its delivery.

:meth:`EventBus.record` inserts inside the caller's transaction, so an event exists exactly
when its change does.  After commit, events go (in id order) to in-process subscribers
through the ``faceforge_event`` hook, and wake any server-sent-event streams.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from ff_plugin_sdk.types import SQL_INT_MAX, Event
from kernel.clock import utc_now
from kernel.correlation import correlation_id
from kernel.db import Database, Transaction

log = logging.getLogger("faceforge.events")

Deliver = Callable[[Event], Awaitable[None]]


def parse_event_id(text: str | None) -> int | None:
    """An event id from text (``Last-Event-ID``, a link); None unless it is one."""
    if not text or not text.isdigit() or len(text) > 19:
        return None
    value = int(text)
    return value if value <= SQL_INT_MAX else None


def row_to_event(row: Any) -> Event:
    return Event(id=row["id"], type=row["type"], created_at=row["created_at"],
                 data=msgspec.json.decode(row["data"]), correlation_id=row["correlation_id"])


class EventBus:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._queue: asyncio.Queue[Event | None] = asyncio.Queue()
        # replaced on every commit; waiters hold the one that was current when they began
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.last_id = 0
        self.closed = asyncio.Event()

    async def record(self, tx: Transaction, type: str, data: dict[str, Any]) -> int:
        """Append an event in ``tx``; delivered only if ``tx`` commits."""
        created_at, cid = utc_now(), correlation_id.get()
        event_id = await tx.execute(
            "INSERT INTO events (type, created_at, data, correlation_id) VALUES (?, ?, ?, ?)",
            (type, created_at, msgspec.json.encode(data).decode(), cid),
        )
        event = Event(id=event_id, type=type, created_at=created_at, data=data,
                      correlation_id=cid)
        tx.after_commit(lambda: self._committed(event))
        return event_id

    def _committed(self, event: Event) -> None:
        self.last_id = max(self.last_id, event.id)
        self._queue.put_nowait(event)
        self._signal()

    def _signal(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def start(self, deliver: Deliver) -> None:
        row = await self.db.fetchone("SELECT max(id) AS id FROM events")
        self.last_id = row["id"] or 0
        self._task = asyncio.create_task(self._deliver_loop(deliver), name="faceforge-events")

    async def _deliver_loop(self, deliver: Deliver) -> None:
        while (event := await self._queue.get()) is not None:
            await deliver(event)  # hook failures are logged by the hook caller

    async def close_streams(self) -> None:
        """End every open event stream (server shutdown must not wait for them)."""
        self.closed.set()
        self._signal()

    async def stop(self) -> None:
        """Deliver what is queued, then end delivery and every open stream."""
        await self.close_streams()
        if self._task is not None:
            self._queue.put_nowait(None)
            await self._task
            self._task = None

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
            try:
                await asyncio.wait_for(self._changed.wait(), timeout)
            except TimeoutError:
                return False
        return self.last_id > after

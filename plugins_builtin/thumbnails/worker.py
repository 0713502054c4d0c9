"""A bounded pool of tasks working through queued asset ids, off the request path.

Two queues: ids from new uploads (the hook: never blocks, never refuses) and the backlog the
start-up catch-up feeds (its producer waits for room, so a library of a million images is
never held in memory).  New uploads go first: a user waiting for their photo's thumbnail
does not wait behind the backlog.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable

Job = Callable[[str], Awaitable[None]]
Backlog = Callable[[], AsyncIterator[str]]


class Worker:
    """Runs ``job(asset_id)`` for each queued id, at most ``concurrency`` at once; at start,
    also for every id ``backlog()`` yields."""

    def __init__(self, job: Job, concurrency: int, log: logging.Logger,
                 backlog: Backlog | None = None) -> None:
        self._job = job
        self._backlog_source = backlog
        self._feeder: asyncio.Task[None] | None = None
        self.concurrency = concurrency
        self._log = log
        self._live: deque[str] = deque()
        self._backlog: deque[str] = deque()
        #: every id queued or running: the same id is never worked on twice at once
        self._known: set[str] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._running: dict[asyncio.Task[None], str] = {}
        self._changed = asyncio.Event()
        self._closed = False

    # -- taking work -----------------------------------------------------------------------
    def submit(self, asset_id: str) -> bool:
        """Queue a new upload's id; returns at once.  False once stopping (or if queued)."""
        if self._closed or asset_id in self._known:
            return False
        self._known.add(asset_id)
        self._live.append(asset_id)
        self._notify()
        return True

    async def submit_backlog(self, asset_id: str) -> bool:
        """Queue an id found by the catch-up, waiting while the backlog is full."""
        while not self._closed and len(self._backlog) >= 2 * self.concurrency:
            await self._next_change()
        if self._closed or asset_id in self._known:
            return False
        self._known.add(asset_id)
        self._backlog.append(asset_id)
        self._notify()
        return True

    # -- waiting ---------------------------------------------------------------------------
    @property
    def pending(self) -> int:
        """Ids queued or being worked on."""
        return len(self._known)

    async def join(self) -> None:
        """Return once the backlog was read and nothing is queued or running (work
        submitted meanwhile included)."""
        if self._feeder is not None:
            await asyncio.wait([self._feeder])
        while self._known and not self._closed:
            await self._next_change()

    # -- life ------------------------------------------------------------------------------
    def start(self) -> None:
        self._closed = False
        self._tasks = [asyncio.create_task(self._run(), name=f"faceforge-thumbnails-{n}")
                       for n in range(self.concurrency)]
        if self._backlog_source is not None:
            self._feeder = asyncio.create_task(self._feed(self._backlog_source()),
                                               name="faceforge-thumbnails-backlog")

    async def stop(self, grace: float) -> None:
        """Take no more work, drop what is queued, give running jobs ``grace`` seconds to
        finish, then cancel them (a cancelled job leaves its asset for the next catch-up)."""
        self._closed = True
        if self._feeder is not None:
            self._feeder.cancel()
        dropped = len(self._live) + len(self._backlog)
        self._live.clear()
        self._backlog.clear()
        self._known = set(self._running.values())
        self._notify()
        idle = [t for t in self._tasks if t not in self._running]
        for task in idle:
            task.cancel()
        busy = list(self._running)
        if busy:
            _, late = await asyncio.wait(busy, timeout=grace)
            for task in late:
                task.cancel()
        await asyncio.gather(*self._tasks, *filter(None, [self._feeder]),
                             return_exceptions=True)
        self._tasks, self._feeder = [], None
        if dropped:
            self._log.info("stopped with %d image(s) waiting for thumbnails; they are made "
                           "after the next start", dropped)

    async def _feed(self, backlog: AsyncIterator[str]) -> None:
        queued = 0
        try:
            async for asset_id in backlog:
                if self._closed:
                    break
                queued += await self.submit_backlog(asset_id)
        except Exception:
            self._log.exception("could not read the backlog")
        if queued:
            self._log.info("queued %d earlier image(s) without thumbnails", queued)

    async def _run(self) -> None:
        task = asyncio.current_task()
        assert task is not None
        while not self._closed:
            if not (self._live or self._backlog):
                await self._next_change()
                continue
            asset_id = (self._live or self._backlog).popleft()
            self._running[task] = asset_id
            try:
                await self._job(asset_id)
            except Exception:
                self._log.exception("making thumbnails failed for asset %s", asset_id)
            finally:
                del self._running[task]
                self._known.discard(asset_id)
                self._notify()

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def _next_change(self) -> None:
        await self._changed.wait()

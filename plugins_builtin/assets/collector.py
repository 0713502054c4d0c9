"""The blob collector: removes the bytes of deleted assets, in the background."""

from __future__ import annotations

import asyncio
import contextlib

from plugins_builtin.assets.store import AssetStore

#: a sweep runs at least this often, and soon after every delete
DEFAULT_INTERVAL_SECONDS = 300.0


class Collector:
    def __init__(self, store: AssetStore, interval: float = DEFAULT_INTERVAL_SECONDS) -> None:
        self.store = store
        store.on_deleted = self.wake  # a delete is a reason to sweep soon
        self.interval = interval
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def sweep(self) -> int:
        """Collect now; returns how many blobs were removed."""
        return await self.store.collect()

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)
            self._wake.clear()
            try:
                await self.sweep()
            except Exception:
                self.store.log.exception("the blob collector failed; retrying later")

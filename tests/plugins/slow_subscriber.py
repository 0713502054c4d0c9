"""Throwaway plugin: a subscriber that holds each event until told to let it through, and
notes when its shutdown hook runs (to check that delivery drains before it)."""

import asyncio

from ff_plugin_sdk import hookimpl


class Gate:
    def __init__(self) -> None:
        self.open = asyncio.Event()
        self.events: list = []
        self.log: list[str] = []

    @hookimpl
    async def faceforge_event(self, kernel, event):
        await self.open.wait()
        self.events.append(event)
        self.log.append(f"event {event.id}")

    @hookimpl
    def faceforge_shutdown(self, kernel):
        self.log.append("shutdown")

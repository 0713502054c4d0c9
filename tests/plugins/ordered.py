"""Throwaway plugin: records, in a shared list, when each of its async hooks ran.

Register two instances under different names to see the order plugins are called in.
"""

import asyncio

from ff_plugin_sdk import AssetKind, hookimpl


class Ordered:
    def __init__(self, label: str, log: list) -> None:
        self.label = label
        self.log = log

    async def _yield(self) -> None:
        # Give a caller that (wrongly) ran implementations concurrently the chance to let
        # the next plugin overtake this one.
        for _ in range(3):
            await asyncio.sleep(0)

    @hookimpl
    async def faceforge_startup(self, kernel):
        await self._yield()
        self.log.append(("startup", self.label))

    @hookimpl
    async def faceforge_ready(self, kernel):
        await self._yield()
        self.log.append(("ready", self.label))

    @hookimpl
    async def faceforge_shutdown(self, kernel):
        await self._yield()
        self.log.append(("shutdown", self.label))

    @hookimpl
    async def faceforge_asset_kinds(self):
        await self._yield()
        return [AssetKind(name=f"{self.label}.kind")]

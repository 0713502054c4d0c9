"""Throwaway plugin: contributes whatever migrations it is built with."""

from ff_plugin_sdk import Migration, hookimpl


class Schema:
    def __init__(self, *steps: Migration) -> None:
        self.steps = list(steps)

    @hookimpl
    async def faceforge_migrations(self):
        return self.steps

"""Throwaway plugins: notification subscribers, one collecting and one always failing."""

from ff_plugin_sdk import hookimpl


class Collecting:
    """Keeps every event and ingested asset it is told about."""

    def __init__(self) -> None:
        self.events: list = []
        self.assets: list = []

    @hookimpl
    async def faceforge_event(self, kernel, event):
        self.events.append(event)

    @hookimpl
    def faceforge_asset_ingested(self, kernel, asset):
        self.assets.append(asset)


class Failing:
    @hookimpl
    def faceforge_event(self, kernel, event):
        raise RuntimeError("subscriber is broken")

    @hookimpl
    async def faceforge_asset_ingested(self, kernel, asset):
        raise RuntimeError("thumbnailer is broken")

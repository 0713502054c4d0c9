"""Throwaway plugin: ``faceforge_routes`` is sync-only, and this one is ``async def``."""

from ff_plugin_sdk import hookimpl


@hookimpl
async def faceforge_routes(kernel):
    return []

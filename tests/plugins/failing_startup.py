"""Throwaway plugin: fails in ``faceforge_startup`` and again in ``faceforge_shutdown``."""

from ff_plugin_sdk import hookimpl


@hookimpl
async def faceforge_startup(kernel):
    raise RuntimeError("no GPU found")


@hookimpl
def faceforge_shutdown(kernel):
    raise RuntimeError("shutdown went wrong")

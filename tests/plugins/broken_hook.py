"""Throwaway plugin: implements ``faceforge_rotes``, a misspelt ``faceforge_routes``."""

from ff_plugin_sdk import hookimpl


@hookimpl
def faceforge_rotes(kernel):
    return []

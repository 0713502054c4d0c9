"""Throwaway plugin: a real hook name asking for an argument the spec does not have."""

from ff_plugin_sdk import hookimpl


@hookimpl
def faceforge_startup(kernel, app):
    pass

"""Kernel errors: the HTTP error classes (shared with the SDK) plus start-up failures."""

from __future__ import annotations

from ff_plugin_sdk.errors import (
    BadRequest,
    Conflict,
    FaceForgeError,
    Forbidden,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    PreconditionFailed,
    RangeNotSatisfiable,
    Unauthorized,
    ValidationFailed,
)

__all__ = [
    "BadRequest",
    "ConfigError",
    "Conflict",
    "FaceForgeError",
    "Forbidden",
    "MethodNotAllowed",
    "NotFound",
    "PayloadTooLarge",
    "PluginError",
    "PreconditionFailed",
    "RangeNotSatisfiable",
    "StartupError",
    "Unauthorized",
    "ValidationFailed",
]


class StartupError(Exception):
    """Core cannot start; the message is one line for the user, shown without a traceback."""


class ConfigError(StartupError):
    """A config file is unreadable or invalid; the message names the file and the key."""


class PluginError(StartupError):
    """A plugin failed to load or a hook implementation failed; the message names it."""

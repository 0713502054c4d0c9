"""The public surface for FaceForge plugin authors.

In-process plugins use :data:`hookimpl` and the types in :mod:`ff_plugin_sdk.types`;
out-of-process plugins use :class:`ff_plugin_sdk.client.FaceForgeClient`.  Nothing here
imports the server.
"""

from __future__ import annotations

import pluggy

from ff_plugin_sdk.errors import (
    BadRequest,
    Conflict,
    FaceForgeError,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    Unauthorized,
    ValidationFailed,
)
from ff_plugin_sdk.types import (
    SCOPES,
    SQL_INT_MAX,
    ApiRoute,
    AssetKind,
    EntityTab,
    Event,
    JobType,
    Migration,
    NavEntry,
    SqlInt,
    StaticDir,
    StorageProviderType,
    UIPage,
)

PROJECT_NAME = "faceforge"
#: Marks a function as a FaceForge hook implementation.
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

__all__ = [
    "PROJECT_NAME",
    "SCOPES",
    "SQL_INT_MAX",
    "ApiRoute",
    "AssetKind",
    "BadRequest",
    "Conflict",
    "EntityTab",
    "Event",
    "FaceForgeError",
    "Forbidden",
    "JobType",
    "Migration",
    "NavEntry",
    "NotFound",
    "PayloadTooLarge",
    "SqlInt",
    "StaticDir",
    "StorageProviderType",
    "UIPage",
    "Unauthorized",
    "ValidationFailed",
    "hookimpl",
]

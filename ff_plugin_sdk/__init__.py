"""The public surface for FaceForge plugin authors.

In-process plugins use :data:`hookimpl`, the types in :mod:`ff_plugin_sdk.types` and the
:class:`~ff_plugin_sdk.kernel.Kernel` protocol (everything they may use of the server);
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
    PreconditionFailed,
    Unauthorized,
    ValidationFailed,
)
from ff_plugin_sdk.kernel import Kernel, WriteTx
from ff_plugin_sdk.types import (
    PUBLIC,
    SQL_INT_MAX,
    ApiRoute,
    AssetKind,
    EntityTab,
    Event,
    JobType,
    Migration,
    NavEntry,
    Principal,
    Scope,
    ShellWidget,
    SqlInt,
    StaticDir,
    StatusLine,
    StorageProviderType,
    UIPage,
    parse_event_id,
)

PROJECT_NAME = "faceforge"
#: Marks a function as a FaceForge hook implementation.
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

__all__ = [
    "PROJECT_NAME",
    "PUBLIC",
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
    "Kernel",
    "Migration",
    "NavEntry",
    "NotFound",
    "PayloadTooLarge",
    "PreconditionFailed",
    "Principal",
    "Scope",
    "ShellWidget",
    "SqlInt",
    "StaticDir",
    "StatusLine",
    "StorageProviderType",
    "UIPage",
    "Unauthorized",
    "ValidationFailed",
    "WriteTx",
    "hookimpl",
    "parse_event_id",
]

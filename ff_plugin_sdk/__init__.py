"""The public surface for FaceForge plugin authors.

In-process plugins use :data:`hookimpl`, the types in :mod:`ff_plugin_sdk.types` and the
:class:`~ff_plugin_sdk.kernel.Kernel` protocol (everything they may use of the server);
out-of-process plugins use the HTTP clients :class:`AsyncFaceForge` and :class:`FaceForge`
(:mod:`ff_plugin_sdk.client`, imported on first use) and :class:`ff_plugin_sdk.runner.Runner`.
Nothing here imports the server.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from ff_plugin_sdk.client import AsyncFaceForge, FaceForge

PROJECT_NAME = "faceforge"
#: Marks a function as a FaceForge hook implementation.
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

#: the clients, imported when first asked for (in-process plugins never need httpx)
_CLIENTS = ("AsyncFaceForge", "FaceForge")


def __getattr__(name: str) -> Any:
    if name in _CLIENTS:
        from ff_plugin_sdk import client

        return getattr(client, name)
    raise AttributeError(f"module 'ff_plugin_sdk' has no attribute {name!r}")


__all__ = [
    "PROJECT_NAME",
    "PUBLIC",
    "SQL_INT_MAX",
    "ApiRoute",
    "AssetKind",
    "AsyncFaceForge",
    "BadRequest",
    "Conflict",
    "EntityTab",
    "Event",
    "FaceForge",
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

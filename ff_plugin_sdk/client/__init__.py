"""The HTTP client for Core's ``/v1`` API, for out-of-process plugins and tools.

    async with AsyncFaceForge() as ff:          # FACEFORGE_URL / FACEFORGE_TOKEN
        entity = await ff.entities.create("Ada Lovelace", tags=["math"])
        asset = await ff.assets.upload("portrait.jpg", entity_ids=[entity.entity_id])
        async for event in ff.events.follow(types=["entity."]):
            ...

:class:`FaceForge` is the same for blocking code (``ff.entities.create(...)`` returns the
entity).  Answers are typed Structs (:mod:`ff_plugin_sdk.client.models`); Core's errors
raise the exceptions of :mod:`ff_plugin_sdk.errors` (``NotFound``, ``Conflict``,
``ValidationFailed``, ...) with the envelope's ``code``, ``message``, ``details`` and
``status``; :class:`Unreachable` when Core cannot be reached after the retries allowed.
"""

from __future__ import annotations

from ff_plugin_sdk.client._client import AsyncFaceForge, FaceForge
from ff_plugin_sdk.client._plan import Retry, Unreachable
from ff_plugin_sdk.client.models import (
    Asset,
    BulkResult,
    Descriptor,
    Entity,
    Event,
    EventPage,
    FieldDef,
    Job,
    Lease,
    LogEntry,
    LogPage,
    Page,
    Ping,
    Relationship,
    RelationType,
)

__all__ = [
    "Asset",
    "AsyncFaceForge",
    "BulkResult",
    "Descriptor",
    "Entity",
    "Event",
    "EventPage",
    "FaceForge",
    "FieldDef",
    "Job",
    "Lease",
    "LogEntry",
    "LogPage",
    "Page",
    "Ping",
    "RelationType",
    "Relationship",
    "Retry",
    "Unreachable",
]

"""What Core answers, as typed Structs.

Decoded leniently on purpose: a field a newer Core adds is ignored, and most fields have a
default, so a plugin written against this SDK keeps working when Core grows.  Rarely used
answers (system info, plugin configuration) stay plain dicts.
"""

from __future__ import annotations

from typing import Any, Generic, Literal, TypeVar

import msgspec

T = TypeVar("T")
JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]


class Model(msgspec.Struct, kw_only=True, forbid_unknown_fields=False):
    """Base of every answer: unknown fields are ignored."""


class Page(Model, Generic[T]):
    """One page of a list; pass ``next_cursor`` back as ``cursor`` for the next (None: the
    last page)."""

    items: list[T]
    next_cursor: str | None = None
    #: entities only, when asked for with ``include_total=True``
    total: int | None = None


class Ping(Model):
    ok: bool
    version: str
    time: str = ""


class Entity(Model):
    entity_id: str
    display_name: str
    aliases: list[str] = []
    tags: list[str] = []
    fields: dict[str, Any] = {}
    external_ids: dict[str, str] = {}
    plugin_data: dict[str, Any] = {}
    primary_thumbnail_asset_id: str | None = None
    created_at: str = ""
    updated_at: str = ""
    deleted_at: str | None = None
    #: bumped by every change: pass it as ``if_version`` to change only what you read
    version: int = 0


class ItemError(Model):
    code: str
    message: str
    details: list[Any] = []


class ItemResult(Model):
    """The outcome of one item of a bulk upsert."""

    index: int
    entity_id: str | None
    status: Literal["created", "updated", "unchanged", "error"]
    error: ItemError | None = None


class BulkResult(Model):
    results: list[ItemResult]


class Owner(Model):
    type: str
    id: str | None = None


class Asset(Model):
    #: the SHA-256 of the bytes: the same file has the same id on every install
    asset_id: str
    content_hash: str = ""
    kind: str = ""
    filename: str = ""
    mime_type: str = ""
    size: int = 0
    provider: str = ""
    owner: Owner | None = None
    linked_entity_ids: list[str] = []
    derived_from_asset_id: str | None = None
    extracted_metadata: dict[str, Any] = {}
    user_metadata: dict[str, Any] = {}
    plugin_data: dict[str, Any] = {}
    created_at: str = ""
    updated_at: str = ""
    deleted_at: str | None = None
    version: int = 0
    #: False once the bytes of a deleted asset were removed
    blob_present: bool = True
    width: int | None = None
    height: int | None = None
    duration_seconds: float | None = None
    #: an upload's answer: these bytes were stored already (the existing asset, with the
    #: upload's kind, metadata and links applied)
    deduplicated: bool = False
    #: an entity's asset list: the link's role
    role: str | None = None


class Progress(Model):
    percent: float | None = None
    step: str | None = None
    counters: dict[str, int | float] = {}


class Job(Model):
    job_id: str
    type: str
    status: JobStatus
    priority: int = 0
    input: Any = None
    input_asset_id: str | None = None
    progress: Progress = msgspec.field(default_factory=Progress)
    result: Any = None
    output_asset_ids: list[str] = []
    error: str | None = None
    #: this run's number, from 1 (more after a retry or a recovered lease)
    attempts: int = 0
    max_attempts: int = 1
    cancel_requested: bool = False
    correlation_id: str | None = None
    runner_id: str | None = None
    lease_expires_at: str | None = None
    created_at: str = ""
    updated_at: str = ""
    started_at: str | None = None
    finished_at: str | None = None


class Lease(Model):
    """A runner's answer from a heartbeat, progress or log report."""

    job_id: str
    status: JobStatus
    #: stop: the job will end cancelled
    cancel_requested: bool = False
    lease_expires_at: str | None = None


class LogEntry(Model):
    id: int
    level: str
    message: str
    fields: dict[str, Any] = {}
    created_at: str = ""


class LogPage(Model):
    items: list[LogEntry]
    #: pass as ``after_id`` for the lines after these
    next_after_id: int = 0


class Event(Model):
    id: int
    type: str
    created_at: str = ""
    data: dict[str, Any] = {}
    correlation_id: str | None = None


class EventPage(Model):
    items: list[Event]
    #: pass as ``after`` to continue; None when nothing newer has happened yet
    next_cursor: str | None = None
    #: the newest event's id when the page was read
    last_id: int = 0


class Descriptor(Model):
    descriptor_id: str
    entity_id: str
    key: str
    value: Any = None
    valid_from: str | None = None
    valid_to: str | None = None
    source: str | None = None
    notes: str | None = None
    created_at: str = ""
    updated_at: str = ""
    deleted_at: str | None = None


class FieldDef(Model):
    field_def_id: str
    field_key: str
    scope: str = "entity"
    field_type: str = "string"
    label: str = ""
    help: str = ""
    required: bool = False
    regex: str | None = None
    min: int | float | str | None = None
    max: int | float | str | None = None
    options: list[str] | None = None
    created_at: str = ""
    updated_at: str = ""
    deleted_at: str | None = None
    version: int = 0


class Relationship(Model):
    relationship_id: str
    from_entity_id: str
    to_entity_id: str
    type: str
    fields: dict[str, Any] = {}
    valid_from: str | None = None
    valid_to: str | None = None
    created_at: str = ""
    updated_at: str = ""
    #: in an entity's list: which way it points from that entity, its label from that
    #: side, and the entity at the other end
    direction: Literal["incoming", "outgoing"] | None = None
    label: str | None = None
    other_entity_id: str | None = None
    other_display_name: str | None = None


class RelationType(Model):
    name: str
    inverse: str | None = None
    symmetric: bool = False
    uses: int = 0

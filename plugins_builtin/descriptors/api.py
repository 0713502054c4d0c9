"""``/v1/entities/{entity_id}/descriptors`` and ``/v1/descriptors/{descriptor_id}``."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any

import msgspec
from msgspec import UNSET, Meta, UnsetType

from ff_plugin_sdk import SQL_INT_MAX, ApiRoute, NotFound, ValidationFailed
from plugins_builtin.descriptors.store import CHANGEABLE, DescriptorStore

#: the same rule as field-definition keys, so any descriptor key can be given a definition
KEY_PATTERN = "^[A-Za-z_][A-Za-z0-9_]{0,63}$"
DescriptorKey = Annotated[str, Meta(
    pattern=KEY_PATTERN, description="a letter or _, then up to 63 letters, digits or _")]
Day = Annotated[date, Meta(description="a calendar day, YYYY-MM-DD; inclusive")]
Source = Annotated[str, Meta(max_length=1000)]
Notes = Annotated[str, Meta(max_length=10_000)]
_HEX_ID = re.compile("^[0-9a-f]{64}$")


class Descriptor(msgspec.Struct, kw_only=True):
    descriptor_id: str
    entity_id: str
    key: str
    #: any JSON value; normalized by the key's descriptor-scope field definition, if any
    value: Any
    #: first day the fact holds (YYYY-MM-DD, inclusive); null: since always
    valid_from: str | None
    #: last day the fact holds (YYYY-MM-DD, inclusive); null: still holds
    valid_to: str | None
    source: str | None
    notes: str | None
    created_at: str
    updated_at: str
    deleted_at: str | None


class DescriptorCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    key: DescriptorKey
    value: Any
    valid_from: Day | None = None
    valid_to: Day | None = None
    #: where the fact comes from (a document, a URL); blank means none
    source: Source | None = None
    notes: Notes | None = None


class DescriptorPatch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Partial update; ``null`` clears valid_from, valid_to, source or notes (for ``value``
    it is the JSON value null)."""

    #: the key cannot change (a different key is a different fact): accepted only unchanged
    key: str | UnsetType = UNSET
    value: Any | UnsetType = UNSET
    valid_from: Day | UnsetType | None = UNSET
    valid_to: Day | UnsetType | None = UNSET
    source: Source | UnsetType | None = UNSET
    notes: Notes | UnsetType | None = UNSET


class DescriptorPage(msgspec.Struct, kw_only=True):
    items: list[Descriptor]
    next_cursor: str | None


class ListQuery(msgspec.Struct, kw_only=True):
    #: only this key
    key: DescriptorKey | None = None
    #: only descriptors valid today (UTC date): valid_from <= today <= valid_to, nulls open
    current: bool = False
    #: only descriptors valid on this day (same rule); not with ``current``
    at: Day | None = None
    #: soft-deleted descriptors too
    include_deleted: bool = False
    limit: Annotated[int, Meta(ge=1, le=500)] = 50
    cursor: str | None = None
    offset: Annotated[int, Meta(ge=0, le=SQL_INT_MAX)] | None = None


class GetQuery(msgspec.Struct, kw_only=True):
    include_deleted: bool = False


def check_entity_id(entity_id: str) -> str:
    if not _HEX_ID.match(entity_id):
        raise NotFound(f"no entity with id {entity_id!r}", code="entity_not_found")
    return entity_id


def check_id(descriptor_id: str) -> str:
    if not _HEX_ID.match(descriptor_id):
        raise NotFound(f"no descriptor with id {descriptor_id!r}",
                       code="descriptor_not_found")
    return descriptor_id


def _text(value: str | None) -> str | None:
    """Trimmed; blank is none."""
    if value is None:
        return None
    return value.strip() or None


def _day(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


def normalize(data: dict[str, Any]) -> dict[str, Any]:
    """Shared by API and UI: days as ``YYYY-MM-DD`` text, source and notes trimmed."""
    for name in ("valid_from", "valid_to"):
        if name in data:
            data[name] = _day(data[name])
    for name in ("source", "notes"):
        if name in data:
            data[name] = _text(data[name])
    return data


def routes(store: DescriptorStore) -> list[ApiRoute]:
    async def list_descriptors(request: Any, query: ListQuery) -> DescriptorPage:
        """An entity's descriptors by key, newest ``valid_from`` first; ``current`` or
        ``at`` keep those valid on a day (bounds inclusive)."""
        entity_id = check_entity_id(request.path_params["entity_id"])
        if query.current and query.at is not None:
            why = "give either current=true or at=<day>, not both"
            raise ValidationFailed(why, details=[{"path": "query.at", "message": why}])
        await store.live_entity(entity_id)
        at = store.today() if query.current else _day(query.at)
        page = await store.list(entity_id, key=query.key, at=at,
                                include_deleted=query.include_deleted, limit=query.limit,
                                cursor=query.cursor, offset=query.offset)
        return DescriptorPage(items=[Descriptor(**d) for d in page.rows],
                              next_cursor=page.next_cursor)

    async def create_descriptor(request: Any, body: DescriptorCreate) -> Descriptor:
        """Record a fact about a live entity; validated by the key's descriptor-scope
        field definition when there is one."""
        entity_id = check_entity_id(request.path_params["entity_id"])
        data = normalize(msgspec.structs.asdict(body))
        return Descriptor(**await store.create(entity_id, data))

    async def get_descriptor(request: Any, query: GetQuery) -> Descriptor:
        """One descriptor; soft-deleted ones only with ``include_deleted``."""
        descriptor_id = check_id(request.path_params["descriptor_id"])
        return Descriptor(**await store.get(descriptor_id,
                                            include_deleted=query.include_deleted))

    async def patch_descriptor(request: Any, body: DescriptorPatch) -> Descriptor:
        """Change value, validity, source or notes; the key cannot change."""
        descriptor_id = check_id(request.path_params["descriptor_id"])
        data = {k: v for k, v in msgspec.structs.asdict(body).items() if v is not UNSET}
        if "key" in data:
            current = await store.get(descriptor_id)
            if data.pop("key") != current["key"]:
                why = ("the key of a descriptor cannot change; delete it and record the "
                       "value under the other key")
                raise ValidationFailed(why, details=[{"path": "$.key", "message": why}])
        changes = normalize({k: v for k, v in data.items() if k in CHANGEABLE})
        return Descriptor(**await store.update(descriptor_id, changes))

    async def delete_descriptor(request: Any) -> None:
        """Soft delete: 404 from then on; the same fact can be recorded again."""
        await store.delete(check_id(request.path_params["descriptor_id"]))

    many = "/entities/{entity_id}/descriptors"
    one = "/descriptors/{descriptor_id}"
    tags = ["descriptors"]
    return [
        ApiRoute(path=many, endpoint=list_descriptors, scope="descriptors:read",
                 query=ListQuery, response=DescriptorPage, tags=tags),
        ApiRoute(path=many, endpoint=create_descriptor, methods=["POST"],
                 scope="descriptors:write", body=DescriptorCreate, response=Descriptor,
                 status_code=201, tags=tags),
        ApiRoute(path=one, endpoint=get_descriptor, scope="descriptors:read",
                 query=GetQuery, response=Descriptor, tags=tags),
        ApiRoute(path=one, endpoint=patch_descriptor, methods=["PATCH"],
                 scope="descriptors:write", body=DescriptorPatch, response=Descriptor,
                 tags=tags),
        ApiRoute(path=one, endpoint=delete_descriptor, methods=["DELETE"],
                 scope="descriptors:write", status_code=204, tags=tags),
    ]

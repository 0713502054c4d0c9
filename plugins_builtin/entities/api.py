"""``/v1/entities``: the HTTP surface of the entities plugin."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType
from starlette.responses import Response

from ff_plugin_sdk import SQL_INT_MAX, ApiRoute, NotFound, ValidationFailed
from ff_plugin_sdk.conditional import if_match, version_etag
from ff_plugin_sdk.conditional import not_modified as conditional_not_modified
from plugins_builtin.entities.field_filters import parse_field_filters
from plugins_builtin.entities.store import MAX_TAG_FILTERS, EntityStore

EntityId = Annotated[str, Meta(pattern="^[0-9a-f]{64}$", description="SHA-256 hex")]
Name = Annotated[str, Meta(min_length=1, max_length=500)]
Label = Annotated[str, Meta(min_length=1, max_length=200)]
PluginKey = Annotated[str, Meta(pattern=r"^[A-Za-z0-9_.\-]{1,100}$")]
FieldKey = Annotated[str, Meta(min_length=1, max_length=200)]
#: an external system's name for its ids (``stash``, ``tpdb``)
Namespace = Annotated[str, Meta(pattern=r"^[a-z0-9][a-z0-9_.\-]{0,63}$",
                                description="lowercase letters, digits, _ . -")]
ExternalValue = Annotated[str, Meta(min_length=1, max_length=500)]
_ID = re.compile("^[0-9a-f]{64}$")


class Entity(msgspec.Struct, kw_only=True):
    entity_id: str
    display_name: str
    aliases: list[str]
    tags: list[str]
    fields: dict[str, Any]
    #: ``{namespace: id}`` in other systems; one live entity per namespace and id
    external_ids: dict[str, str]
    plugin_data: dict[str, Any]
    primary_thumbnail_asset_id: str | None
    created_at: str
    updated_at: str
    deleted_at: str | None
    #: bumped by every change; the ``ETag`` is this number quoted (``"3"``)
    version: int


class EntityCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    display_name: Name
    aliases: Annotated[list[Label], Meta(max_length=100)] = []
    tags: Annotated[list[Label], Meta(max_length=100)] = []
    #: checked against the entity field definitions; other keys are kept as they are
    fields: dict[FieldKey, Any] = {}
    external_ids: dict[Namespace, ExternalValue] = {}
    #: keyed by plugin id; each value is that plugin's own object
    plugin_data: dict[PluginKey, dict[str, Any]] = {}
    primary_thumbnail_asset_id: EntityId | None = None


class EntityPatch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Partial update.  ``fields``, ``external_ids`` and ``plugin_data`` merge by key;
    ``null`` removes a key."""

    display_name: Name | UnsetType = UNSET
    aliases: Annotated[list[Label], Meta(max_length=100)] | UnsetType = UNSET
    tags: Annotated[list[Label], Meta(max_length=100)] | UnsetType = UNSET
    fields: dict[FieldKey, Any] | UnsetType = UNSET
    external_ids: dict[Namespace, ExternalValue | None] | UnsetType = UNSET
    plugin_data: dict[PluginKey, dict[str, Any] | None] | UnsetType = UNSET
    primary_thumbnail_asset_id: EntityId | UnsetType | None = UNSET


class EntityPage(msgspec.Struct, kw_only=True):
    items: list[Entity]
    next_cursor: str | None
    #: only when asked for with ``include_total=true``
    total: int | None = None


class ListQuery(msgspec.Struct, kw_only=True):
    limit: Annotated[int, Meta(ge=1, le=500)] = 50
    cursor: str | None = None
    offset: Annotated[int, Meta(ge=0, le=SQL_INT_MAX)] | None = None
    sort_by: Literal["created_at", "updated_at", "display_name"] = "created_at"
    sort_order: Literal["asc", "desc"] = "desc"
    #: full-text search over name, aliases, tags and field values (prefix match)
    q: str | None = None
    #: repeatable; every tag must match
    tag: Annotated[list[str], Meta(max_length=MAX_TAG_FILTERS)] = []
    include_deleted: bool = False
    #: only soft-deleted entities (the UI's "deleted" filter)
    only_deleted: bool = False
    include_total: bool = False
    #: ``namespace:id``: the entity another system knows by that id
    external_id: str | None = None


class GetQuery(msgspec.Struct, kw_only=True):
    include_deleted: bool = False


def clean_list(values: list[str]) -> list[str]:
    """Trim, drop empties, de-duplicate case-insensitively keeping the first spelling."""
    seen: dict[str, str] = {}
    for value in values:
        value = value.strip()
        if value and value.casefold() not in seen:
            seen[value.casefold()] = value
    return list(seen.values())


def normalize(data: dict[str, Any]) -> dict[str, Any]:
    """Shared by API and UI: trimmed name, cleaned lists."""
    if "display_name" in data:
        data["display_name"] = data["display_name"].strip()
        if not data["display_name"]:
            raise ValidationFailed("display_name must not be blank", details=[
                {"path": "$.display_name", "message": "must not be blank"}])
    for key in ("aliases", "tags"):
        if key in data:
            data[key] = clean_list(data[key])
    return data


#: the object-valued keys a patch merges by key (``null`` removes one)
MERGED = ("fields", "external_ids", "plugin_data")


def parse_external_id(text: str | None) -> tuple[str, str] | None:
    """``stash:1234`` -> ("stash", "1234")."""
    if text is None:
        return None
    namespace, sep, value = text.partition(":")
    if not (sep and namespace and value):
        raise ValidationFailed("external_id: write namespace:id, such as stash:1234",
                               details=[{"path": "query.external_id",
                                         "message": "write namespace:id"}])
    return namespace, value


def check_id(entity_id: str) -> str:
    if not _ID.match(entity_id):
        raise NotFound(f"no entity with id {entity_id!r}", code="entity_not_found")
    return entity_id


def to_entity(data: dict[str, Any]) -> Entity:
    return Entity(**data)


_encoder = msgspec.json.Encoder()
etag = version_etag


def with_etag(entity: dict[str, Any], status: int = 200) -> Response:
    """The entity as JSON with its ``ETag`` (the version a later ``If-Match`` names)."""
    return Response(_encoder.encode(to_entity(entity)), status_code=status,
                    media_type="application/json", headers={"ETag": etag(entity)})


def not_modified(request: Any, entity: dict[str, Any]) -> bool:
    return conditional_not_modified(request, etag(entity))


def routes(store: EntityStore) -> list[ApiRoute]:
    async def list_entities(request: Any, query: ListQuery) -> EntityPage:
        """List entities: keyset pages, search, tag filter, sorting.

        Defined fields filter with ``field.<key>=value`` (equality, any type) and
        ``field.<key>.gte|gt|lte|lt=value`` (ranges of numbers and dates); every filter
        applies.
        """
        deleted = "only" if query.only_deleted else (
            "include" if query.include_deleted else "exclude")
        result = await store.list(
            limit=query.limit, cursor=query.cursor, offset=query.offset,
            sort_by=query.sort_by, sort_order=query.sort_order, q=query.q, tags=query.tag,
            deleted=deleted, include_total=query.include_total,
            field_filters=parse_field_filters(request.query_params.multi_items()),
            external_id=parse_external_id(query.external_id))
        return EntityPage(items=[to_entity(r) for r in result.rows],
                          next_cursor=result.next_cursor, total=result.total)

    async def create_entity(request: Any, body: EntityCreate) -> Response:
        """Create an entity; its id is assigned here and never changes."""
        data = normalize(msgspec.structs.asdict(body))
        return with_etag(await store.create(data), 201)

    async def get_entity(request: Any, query: GetQuery) -> Response:
        """One entity, with its ``ETag``; soft-deleted ones only with ``include_deleted``."""
        entity_id = check_id(request.path_params["entity_id"])
        entity = await store.get(entity_id, include_deleted=query.include_deleted)
        if not_modified(request, entity):
            return Response(status_code=304, headers={"ETag": etag(entity)})
        return with_etag(entity)

    async def patch_entity(request: Any, body: EntityPatch) -> Response:
        """Change some fields; ``fields``/``plugin_data`` merge by key, null removes.
        With ``If-Match``, only if nobody changed the entity since (else 412)."""
        entity_id = check_id(request.path_params["entity_id"])
        versions = if_match(request)
        data = {k: v for k, v in msgspec.structs.asdict(body).items() if v is not UNSET}
        normalize(data)
        merges = {k: data.pop(k) for k in MERGED if k in data}
        return with_etag(await store.update(entity_id, data, merges, if_match=versions))

    async def delete_entity(request: Any) -> None:
        """Soft-delete; the entity can be restored.  Honours ``If-Match`` (412)."""
        entity_id = check_id(request.path_params["entity_id"])
        await store.set_deleted(entity_id, True, if_match=if_match(request))

    async def restore_entity(request: Any) -> Response:
        """Undo a soft delete.  Honours ``If-Match`` (412)."""
        entity_id = check_id(request.path_params["entity_id"])
        return with_etag(await store.set_deleted(entity_id, False,
                                                 if_match=if_match(request)))

    one = "/entities/{entity_id}"
    tags = ["entities"]
    return [
        ApiRoute(path="/entities", endpoint=list_entities, scope="entities:read",
                 query=ListQuery, response=EntityPage, tags=tags),
        ApiRoute(path="/entities", endpoint=create_entity, methods=["POST"],
                 scope="entities:write", body=EntityCreate, response=Entity, status_code=201,
                 tags=tags),
        ApiRoute(path=one, endpoint=get_entity, scope="entities:read", query=GetQuery,
                 response=Entity, tags=tags),
        ApiRoute(path=one, endpoint=patch_entity, methods=["PATCH"], scope="entities:write",
                 body=EntityPatch, response=Entity, tags=tags),
        ApiRoute(path=one, endpoint=delete_entity, methods=["DELETE"], scope="entities:write",
                 status_code=204, tags=tags),
        ApiRoute(path=one + "/restore", endpoint=restore_entity, methods=["POST"],
                 scope="entities:write", response=Entity, tags=tags),
    ]

"""``/v1/relationships`` and ``/v1/relation-types``: the HTTP surface of the plugin."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType
from starlette.responses import Response

from ff_plugin_sdk import ApiRoute, NotFound
from plugins_builtin.relationships import bounds
from plugins_builtin.relationships.store import TYPE_NAME, RelationshipStore, is_id

EntityId = Annotated[str, Meta(pattern="^[0-9a-f]{64}$", description="SHA-256 hex")]
TypeName = Annotated[str, Meta(pattern=TYPE_NAME.pattern,
                               description="lowercase letters, digits and _")]
FieldKey = Annotated[str, Meta(min_length=1, max_length=200)]
Bound = Annotated[str, Meta(max_length=64, description=bounds.EXPECTED)]
Direction = Literal["outgoing", "incoming"]


class Relationship(msgspec.Struct, kw_only=True):
    relationship_id: str
    from_entity_id: str
    to_entity_id: str
    type: str
    fields: dict[str, Any]
    valid_from: str | None
    valid_to: str | None
    created_at: str
    updated_at: str


class RelationshipItem(Relationship, kw_only=True):
    """A relationship as one of its entities sees it."""

    #: "outgoing": the listed entity is ``from_entity_id``
    direction: Direction
    #: the type read from the listed entity: the type itself when outgoing (or symmetric),
    #: its inverse name when incoming; null when incoming and the type has no inverse
    label: str | None
    other_entity_id: str
    #: null when the list was asked for with ``names=false``
    other_display_name: str | None


class RelationshipPage(msgspec.Struct, kw_only=True):
    items: list[RelationshipItem]
    next_cursor: str | None


class RelationshipCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    from_entity_id: EntityId
    to_entity_id: EntityId
    #: a registered type, or a new name (registered on first use)
    type: TypeName
    fields: dict[FieldKey, Any] = {}
    valid_from: Bound | None = None
    valid_to: Bound | None = None


class RelationshipPatch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Partial update.  ``fields`` merge by key (``null`` removes one); a bound set to
    ``null`` is removed."""

    type: TypeName | UnsetType = UNSET
    fields: dict[FieldKey, Any] | UnsetType = UNSET
    valid_from: Bound | UnsetType | None = UNSET
    valid_to: Bound | UnsetType | None = UNSET


class ListQuery(msgspec.Struct, kw_only=True):
    entity_id: str
    limit: Annotated[int, Meta(ge=1, le=500)] = 50
    cursor: str | None = None
    #: only relationships of this (stored) type, in either direction
    type: str | None = None
    #: false: ``other_display_name`` is null (a read of the other ends fewer)
    names: bool = True


class RelationType(msgspec.Struct, kw_only=True):
    name: str
    #: the name read from the other end; the name itself for a symmetric type
    inverse: str | None
    symmetric: bool
    #: shown relationships of this type or its inverse
    uses: int


class RelationTypePage(msgspec.Struct, kw_only=True):
    items: list[RelationType]
    next_cursor: str | None


class RelationTypeCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: TypeName
    inverse: TypeName | None = None
    symmetric: bool = False


class TypeQuery(msgspec.Struct, kw_only=True):
    #: the start of a name (or of an inverse name, itself a type)
    query: Annotated[str, Meta(max_length=100)] = ""
    limit: Annotated[int, Meta(ge=1, le=500)] = 50
    cursor: str | None = None


def check_entity_id(entity_id: str) -> str:
    if not is_id(entity_id):
        raise NotFound(f"no entity with id {entity_id!r}", code="entity_not_found")
    return entity_id


def label(rel: dict[str, Any], kind: dict[str, Any] | None) -> str | None:
    if rel["direction"] == "outgoing":
        return rel["type"]
    return kind["inverse"] if kind is not None else None


async def entity_page(store: RelationshipStore, entity_id: str, *, limit: int = 50,
                      cursor: str | None = None, type: str | None = None,
                      names: bool = True) -> tuple[list[dict[str, Any]], str | None]:
    """One page of an entity's relationships, labelled from its side (API and UI)."""
    await store.entities().get(entity_id)  # 404 for an unknown or deleted entity
    page = await store.list(entity_id, limit=limit, cursor=cursor, type=type)
    kinds = await store.type_info([r["type"] for r in page.rows])
    others = [r["to_entity_id"] if r["direction"] == "outgoing" else r["from_entity_id"]
              for r in page.rows]
    found = await store.names(others) if names else {}
    items = [{**r, "label": label(r, kinds.get(r["type"])), "other_entity_id": other,
              "other_display_name": found.get(other)}
             for r, other in zip(page.rows, others, strict=True)]
    return items, page.next_cursor


def normalize_create(body: RelationshipCreate) -> dict[str, Any]:
    data = msgspec.structs.asdict(body)
    for key in ("valid_from", "valid_to"):
        data[key] = bounds.normalize(key, data[key])
    bounds.check_order(data["valid_from"], data["valid_to"])
    return data


def _relationship(rel: dict[str, Any]) -> Relationship:
    return Relationship(**{f: rel[f] for f in Relationship.__struct_fields__})


def routes(store: RelationshipStore) -> list[ApiRoute]:
    async def list_relationships(request: Any, query: ListQuery) -> RelationshipPage:
        """An entity's relationships, both directions, each labelled from its side."""
        items, next_cursor = await entity_page(
            store, check_entity_id(query.entity_id), limit=query.limit, cursor=query.cursor,
            type=query.type, names=query.names)
        return RelationshipPage(items=[RelationshipItem(**{
            f: i[f] for f in RelationshipItem.__struct_fields__}) for i in items],
            next_cursor=next_cursor)

    async def create_relationship(request: Any, body: RelationshipCreate) -> Response:
        """Relate two live entities; an unknown type name is registered on first use."""
        rel = await store.create(normalize_create(body))
        return Response(msgspec.json.encode(_relationship(rel)), status_code=201,
                        media_type="application/json")

    async def get_relationship(request: Any) -> Relationship:
        """One relationship; 404 once deleted, or while either entity is deleted."""
        return _relationship(await store.get(request.path_params["relationship_id"]))

    async def patch_relationship(request: Any, body: RelationshipPatch) -> Relationship:
        """Change the type, fields or time bounds (a new type is checked for duplicates)."""
        changes = {k: v for k, v in msgspec.structs.asdict(body).items() if v is not UNSET}
        fields = changes.pop("fields", None)
        for key in ("valid_from", "valid_to"):
            if key in changes:
                changes[key] = bounds.normalize(key, changes[key])
        return _relationship(await store.update(request.path_params["relationship_id"],
                                                changes, fields))

    async def delete_relationship(request: Any) -> None:
        """Soft delete: the relationship is gone (404 from then on)."""
        await store.delete(request.path_params["relationship_id"])

    async def list_types(request: Any, query: TypeQuery) -> RelationTypePage:
        """Relation types starting with ``query``, most used first (then by name)."""
        page = await store.types(query.query, limit=query.limit, cursor=query.cursor)
        return RelationTypePage(items=[RelationType(**t) for t in page.rows],
                                next_cursor=page.next_cursor)

    async def create_type(request: Any, body: RelationTypeCreate) -> Response:
        """Register a type with its inverse (a type of its own) or as symmetric; 200 if it
        exists exactly so, 409 if it exists otherwise."""
        kind, created = await store.create_type(body.name, body.inverse, body.symmetric)
        return Response(msgspec.json.encode(RelationType(**kind)),
                        status_code=201 if created else 200, media_type="application/json")

    one = "/relationships/{relationship_id}"
    tags = ["relationships"]
    read, write = "relationships:read", "relationships:write"
    return [
        ApiRoute(path="/relationships", endpoint=list_relationships, scope=read,
                 query=ListQuery, response=RelationshipPage, tags=tags),
        ApiRoute(path="/relationships", endpoint=create_relationship, methods=["POST"],
                 scope=write, body=RelationshipCreate, response=Relationship,
                 status_code=201, tags=tags),
        ApiRoute(path=one, endpoint=get_relationship, scope=read, response=Relationship,
                 tags=tags),
        ApiRoute(path=one, endpoint=patch_relationship, methods=["PATCH"], scope=write,
                 body=RelationshipPatch, response=Relationship, tags=tags),
        ApiRoute(path=one, endpoint=delete_relationship, methods=["DELETE"], scope=write,
                 status_code=204, tags=tags),
        ApiRoute(path="/relation-types", endpoint=list_types, scope=read, query=TypeQuery,
                 response=RelationTypePage, tags=tags),
        ApiRoute(path="/relation-types", endpoint=create_type, methods=["POST"],
                 scope=write, body=RelationTypeCreate, response=RelationType,
                 status_code=201, tags=tags),
    ]

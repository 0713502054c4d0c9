"""``client.relationships`` (typed, dated links between two entities) and
``client.relation_types`` (their names, inverses and symmetry)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from msgspec import UNSET, UnsetType

from ff_plugin_sdk.client._group import Group, M, endpoint, pages, streaming
from ff_plugin_sdk.client._plan import Call, Feed, Plan, seg
from ff_plugin_sdk.client.entities import given
from ff_plugin_sdk.client.models import Page, Relationship, RelationType


class Relationships(Group[M]):
    @endpoint
    def list(self, entity_id: str, *, type: str | None = None, names: bool = True,
             limit: int = 50, cursor: str | None = None) -> Plan[Page[Relationship]]:
        """An entity's relationships, both directions, each labelled from its side
        (``direction``, ``label``, ``other_entity_id``; ``other_display_name`` with
        ``names``)."""
        params = {"entity_id": entity_id, "type": type, "names": names, "limit": limit,
                  "cursor": cursor}
        return self._fetch(Call("GET", "/v1/relationships", params=params),
                           Page[Relationship])

    @streaming
    def every(self, entity_id: str, *, type: str | None = None,
              names: bool = True) -> Feed[Relationship]:
        return pages(lambda cursor: Relationships.list.build(
            self, entity_id, type=type, names=names, limit=500, cursor=cursor))

    @endpoint
    def get(self, relationship_id: str) -> Plan[Relationship]:
        return self._fetch(Call("GET", f"/v1/relationships/{seg(relationship_id)}"),
                           Relationship)

    @endpoint
    def create(self, from_entity_id: str, to_entity_id: str, type: str, *,
               fields: Mapping[str, Any] | None = None, valid_from: str | None = None,
               valid_to: str | None = None) -> Plan[Relationship]:
        """Relate two live entities; a type not seen before is registered."""
        body = {"from_entity_id": from_entity_id, "to_entity_id": to_entity_id, "type": type,
                "fields": dict(fields or {}), "valid_from": valid_from, "valid_to": valid_to}
        return self._fetch(Call("POST", "/v1/relationships", json=body), Relationship)

    @endpoint
    def update(self, relationship_id: str, *, type: str | UnsetType = UNSET,
               fields: Mapping[str, Any] | UnsetType = UNSET,
               valid_from: str | UnsetType | None = UNSET,
               valid_to: str | UnsetType | None = UNSET) -> Plan[Relationship]:
        body = given(type=type, fields=fields, valid_from=valid_from, valid_to=valid_to)
        return self._fetch(Call("PATCH", f"/v1/relationships/{seg(relationship_id)}",
                                json=body), Relationship)

    @endpoint
    def delete(self, relationship_id: str) -> Plan[None]:
        return self._none(Call("DELETE", f"/v1/relationships/{seg(relationship_id)}"))


class RelationTypes(Group[M]):
    @endpoint
    def list(self, query: str = "", *, limit: int = 50,
             cursor: str | None = None) -> Plan[Page[RelationType]]:
        """Types whose name starts with ``query``, most used first."""
        return self._fetch(Call("GET", "/v1/relation-types", params={
            "query": query, "limit": limit, "cursor": cursor}), Page[RelationType])

    @endpoint
    def create(self, name: str, *, inverse: str | None = None,
               symmetric: bool = False) -> Plan[RelationType]:
        """Register a type with its inverse (``parent_of`` / ``child_of``) or as symmetric
        (``sibling_of``); the same registration again answers the existing type."""
        return self._fetch(Call("POST", "/v1/relation-types", idempotent=True, json={
            "name": name, "inverse": inverse, "symmetric": symmetric}), RelationType)

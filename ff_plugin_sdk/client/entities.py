"""``client.entities``: people and things, their soft delete, and bulk upsert."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from msgspec import UNSET, UnsetType

from ff_plugin_sdk.client._group import Group, M, endpoint, pages, streaming
from ff_plugin_sdk.client._plan import Call, Feed, Plan, seg
from ff_plugin_sdk.client.models import BulkResult, Entity, Page


def if_match(version: int | None) -> dict[str, str] | None:
    """``If-Match`` for a version read earlier: the change is refused (412
    ``PreconditionFailed``) if someone changed the record since."""
    return None if version is None else {"If-Match": f'"{version}"'}


def given(**values: Any) -> dict[str, Any]:
    """The keyword arguments a caller gave (UNSET left out; None kept: it clears)."""
    return {key: value for key, value in values.items() if value is not UNSET}


class Entities(Group[M]):
    @endpoint
    def list(self, *, q: str | None = None, tags: Sequence[str] = (),
             external_id: str | None = None, fields: Mapping[str, Any] | None = None,
             sort_by: Literal["created_at", "updated_at", "display_name"] = "created_at",
             sort_order: Literal["asc", "desc"] = "desc", limit: int = 50,
             cursor: str | None = None, include_deleted: bool = False,
             only_deleted: bool = False, include_total: bool = False) -> Plan[Page[Entity]]:
        """One page of entities.  ``q`` searches names, aliases, tags and field values;
        every tag in ``tags`` must match; ``external_id`` is ``namespace:id``; ``fields``
        filters defined fields: ``{"age": 30}`` or ``{"age.gte": 18}``."""
        params: dict[str, Any] = {
            "q": q, "tag": list(tags), "external_id": external_id, "sort_by": sort_by,
            "sort_order": sort_order, "limit": limit, "cursor": cursor,
            "include_deleted": include_deleted or None, "only_deleted": only_deleted or None,
            "include_total": include_total or None}
        params |= {f"field.{key}": value for key, value in (fields or {}).items()}
        return self._fetch(Call("GET", "/v1/entities", params=params), Page[Entity])

    @streaming
    def every(self, *, q: str | None = None, tags: Sequence[str] = (),
              external_id: str | None = None, fields: Mapping[str, Any] | None = None,
              sort_by: Literal["created_at", "updated_at", "display_name"] = "created_at",
              sort_order: Literal["asc", "desc"] = "desc", include_deleted: bool = False,
              page_size: int = 200) -> Feed[Entity]:
        """Every entity that matches, page after page, as the iteration goes."""
        return pages(lambda cursor: Entities.list.build(
            self, q=q, tags=tags, external_id=external_id, fields=fields, sort_by=sort_by,
            sort_order=sort_order, include_deleted=include_deleted, limit=page_size,
            cursor=cursor))

    @endpoint
    def get(self, entity_id: str, *, include_deleted: bool = False) -> Plan[Entity]:
        return self._fetch(Call("GET", f"/v1/entities/{seg(entity_id)}",
                                params={"include_deleted": include_deleted or None}), Entity)

    @endpoint
    def create(self, display_name: str, *, aliases: Sequence[str] = (),
               tags: Sequence[str] = (), fields: Mapping[str, Any] | None = None,
               external_ids: Mapping[str, str] | None = None,
               plugin_data: Mapping[str, Any] | None = None,
               primary_thumbnail_asset_id: str | None = None) -> Plan[Entity]:
        """A new entity; Core assigns its id."""
        body = {"display_name": display_name, "aliases": list(aliases), "tags": list(tags),
                "fields": dict(fields or {}), "external_ids": dict(external_ids or {}),
                "plugin_data": dict(plugin_data or {}),
                "primary_thumbnail_asset_id": primary_thumbnail_asset_id}
        return self._fetch(Call("POST", "/v1/entities", json=body), Entity)

    @endpoint
    def update(self, entity_id: str, *, display_name: str | UnsetType = UNSET,
               aliases: Sequence[str] | UnsetType = UNSET,
               tags: Sequence[str] | UnsetType = UNSET,
               fields: Mapping[str, Any] | UnsetType = UNSET,
               external_ids: Mapping[str, str | None] | UnsetType = UNSET,
               plugin_data: Mapping[str, Any] | UnsetType = UNSET,
               primary_thumbnail_asset_id: str | UnsetType | None = UNSET,
               if_version: int | None = None) -> Plan[Entity]:
        """Change what is given; ``fields``, ``external_ids`` and ``plugin_data`` merge by
        key (None removes a key).  ``if_version``: only if the entity is still at that
        version (else ``PreconditionFailed``)."""
        body = given(display_name=display_name, aliases=aliases, tags=tags, fields=fields,
                     external_ids=external_ids, plugin_data=plugin_data,
                     primary_thumbnail_asset_id=primary_thumbnail_asset_id)
        return self._fetch(Call("PATCH", f"/v1/entities/{seg(entity_id)}", json=body,
                                headers=if_match(if_version)), Entity)

    @endpoint
    def delete(self, entity_id: str, *, if_version: int | None = None) -> Plan[None]:
        """Soft delete: :meth:`restore` undoes it."""
        return self._none(Call("DELETE", f"/v1/entities/{seg(entity_id)}",
                               headers=if_match(if_version)))

    @endpoint
    def restore(self, entity_id: str, *, if_version: int | None = None) -> Plan[Entity]:
        return self._fetch(Call("POST", f"/v1/entities/{seg(entity_id)}/restore",
                                headers=if_match(if_version), idempotent=True), Entity)

    @endpoint
    def bulk_upsert(self, items: Sequence[Mapping[str, Any]],
                    mode: Literal["merge", "replace"] = "merge") -> Plan[BulkResult]:
        """Create or update up to 10,000 entities in one transaction: an item with an
        ``entity_id`` updates it, one whose ``external_ids`` name a live entity updates
        that one, any other is created.  Each item reports its own outcome (a bad item
        never stops the others); sending the same batch again changes nothing."""
        return self._fetch(Call("POST", "/v1/entities/bulk-upsert",
                                json={"items": [dict(item) for item in items], "mode": mode},
                                read_timeout=300.0), BulkResult)

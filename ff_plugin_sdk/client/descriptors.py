"""``client.descriptors``: dated facts about an entity (key, value, validity, source)."""

from __future__ import annotations

from typing import Any

from msgspec import UNSET, UnsetType

from ff_plugin_sdk.client._group import Group, M, endpoint, pages, streaming
from ff_plugin_sdk.client._plan import Call, Feed, Plan, seg
from ff_plugin_sdk.client.entities import given
from ff_plugin_sdk.client.models import Descriptor, Page


class Descriptors(Group[M]):
    @endpoint
    def list(self, entity_id: str, *, key: str | None = None, current: bool = False,
             at: str | None = None, include_deleted: bool = False, limit: int = 50,
             cursor: str | None = None) -> Plan[Page[Descriptor]]:
        """An entity's descriptors, newest ``valid_from`` first.  ``current``: only those
        valid today; ``at`` (YYYY-MM-DD): only those valid that day."""
        params = {"key": key, "current": current or None, "at": at, "limit": limit,
                  "include_deleted": include_deleted or None, "cursor": cursor}
        return self._fetch(Call("GET", f"/v1/entities/{seg(entity_id)}/descriptors",
                                params=params), Page[Descriptor])

    @streaming
    def every(self, entity_id: str, *, key: str | None = None, current: bool = False,
              at: str | None = None, include_deleted: bool = False) -> Feed[Descriptor]:
        return pages(lambda cursor: Descriptors.list.build(
            self, entity_id, key=key, current=current, at=at,
            include_deleted=include_deleted, limit=500, cursor=cursor))

    @endpoint
    def get(self, descriptor_id: str, *, include_deleted: bool = False) -> Plan[Descriptor]:
        return self._fetch(Call("GET", f"/v1/descriptors/{seg(descriptor_id)}",
                                params={"include_deleted": include_deleted or None}),
                           Descriptor)

    @endpoint
    def create(self, entity_id: str, key: str, value: Any, *, valid_from: str | None = None,
               valid_to: str | None = None, source: str | None = None,
               notes: str | None = None) -> Plan[Descriptor]:
        """Record a fact; a descriptor-scope field definition of ``key`` validates it."""
        body = {"key": key, "value": value, "valid_from": valid_from, "valid_to": valid_to,
                "source": source, "notes": notes}
        return self._fetch(Call("POST", f"/v1/entities/{seg(entity_id)}/descriptors",
                                json=body), Descriptor)

    @endpoint
    def update(self, descriptor_id: str, *, value: Any = UNSET,
               valid_from: str | UnsetType | None = UNSET,
               valid_to: str | UnsetType | None = UNSET,
               source: str | UnsetType | None = UNSET,
               notes: str | UnsetType | None = UNSET) -> Plan[Descriptor]:
        """Change what is given (None clears a date, the source or the notes)."""
        body = given(value=value, valid_from=valid_from, valid_to=valid_to, source=source,
                     notes=notes)
        return self._fetch(Call("PATCH", f"/v1/descriptors/{seg(descriptor_id)}", json=body),
                           Descriptor)

    @endpoint
    def delete(self, descriptor_id: str) -> Plan[None]:
        return self._none(Call("DELETE", f"/v1/descriptors/{seg(descriptor_id)}"))

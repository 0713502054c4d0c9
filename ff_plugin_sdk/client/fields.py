"""``client.fields``: field definitions (``/v1/admin/field-defs``), the typed keys that
validate entity ``fields`` and descriptor values and make them filterable."""

from __future__ import annotations

from typing import Any, Literal

from ff_plugin_sdk.client._group import Group, M, endpoint
from ff_plugin_sdk.client._plan import Call, Plan, seg
from ff_plugin_sdk.client.models import FieldDef, Page

FieldType = Literal["bool", "date", "datetime", "enum", "float", "int", "json", "multi_enum",
                    "string", "text", "url"]


class FieldDefs(Group[M]):
    @endpoint
    def list(self, *, scope: Literal["entity", "descriptor"] | None = None,
             include_deleted: bool = False) -> Plan[Page[FieldDef]]:
        """Every definition (a few hundred at most: one page)."""
        return self._fetch(Call("GET", "/v1/admin/field-defs", params={
            "scope": scope, "include_deleted": include_deleted or None}), Page[FieldDef])

    @endpoint
    def get(self, field_key: str) -> Plan[FieldDef]:
        return self._fetch(Call("GET", f"/v1/admin/field-defs/{seg(field_key)}"), FieldDef)

    @endpoint
    def create(self, field_key: str, field_type: FieldType, *,
               scope: Literal["entity", "descriptor"] = "entity", **rules: Any) -> Plan[FieldDef]:
        """Define a key; ``rules``: ``label``, ``help``, ``required``, ``regex``, ``min``,
        ``max``, ``options`` (as ``POST /v1/admin/field-defs`` takes them)."""
        body = {"field_key": field_key, "field_type": field_type, "scope": scope, **rules}
        return self._fetch(Call("POST", "/v1/admin/field-defs", json=body), FieldDef)

    @endpoint
    def update(self, field_key: str, **changes: Any) -> Plan[FieldDef]:
        """Change the label, help or rules (None clears a rule)."""
        return self._fetch(Call("PATCH", f"/v1/admin/field-defs/{seg(field_key)}",
                                json=changes), FieldDef)

    @endpoint
    def delete(self, field_key: str) -> Plan[None]:
        """Soft delete: stored values stay; the key can be defined again."""
        return self._none(Call("DELETE", f"/v1/admin/field-defs/{seg(field_key)}"))

"""``/v1/admin/field-defs``: define, change and delete field definitions (spec §9.2.3)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from ff_plugin_sdk import ApiRoute
from plugins_builtin.entities.field_defs import FieldDefs
from plugins_builtin.entities.field_types import MAX_OPTIONS

FieldKey = Annotated[str, Meta(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$",
                               description="a letter or _, then letters, digits or _")]
FieldType = Literal["string", "text", "int", "float", "bool", "date", "datetime", "url",
                    "enum", "multi_enum", "json"]
Scope = Literal["entity", "descriptor"]
Label = Annotated[str, Meta(max_length=200)]
Help = Annotated[str, Meta(max_length=2000)]
Regex = Annotated[str, Meta(min_length=1, max_length=500)]
#: a number (int, float), a length or count (string types, multi_enum), or a date
Bound = int | float | str
Options = Annotated[list[Annotated[str, Meta(min_length=1, max_length=200)]],
                    Meta(max_length=MAX_OPTIONS)]


class FieldDef(msgspec.Struct, kw_only=True):
    field_def_id: str
    field_key: str
    scope: str
    field_type: str
    label: str
    help: str
    required: bool
    regex: str | None
    min: Bound | None
    max: Bound | None
    options: list[str] | None
    created_at: str
    updated_at: str
    deleted_at: str | None
    version: int


class FieldDefCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    field_key: FieldKey
    field_type: FieldType
    #: ``entity`` validates entity ``fields``; ``descriptor`` validates descriptor values
    scope: Scope = "entity"
    #: shown in forms; the key when empty
    label: Label = ""
    help: Help = ""
    #: new entities must have it, and a patch may not remove it
    required: bool = False
    #: string, text and url fields: the value must contain a match (anchor with ^ and $)
    regex: Regex | None = None
    #: numbers: the value; string types: the length; multi_enum: how many choices; dates
    min: Bound | None = None
    max: Bound | None = None
    #: enum and multi_enum: the choices
    options: Options | None = None


class FieldDefPatch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Change rules; ``null`` clears one.  ``scope`` and ``field_type`` cannot change."""

    scope: Scope | UnsetType = UNSET
    field_type: FieldType | UnsetType = UNSET
    label: Label | UnsetType = UNSET
    help: Help | UnsetType = UNSET
    required: bool | UnsetType = UNSET
    regex: Regex | UnsetType | None = UNSET
    min: Bound | UnsetType | None = UNSET
    max: Bound | UnsetType | None = UNSET
    options: Options | UnsetType | None = UNSET


class FieldDefList(msgspec.Struct, kw_only=True):
    items: list[FieldDef]
    next_cursor: str | None = None


class ListQuery(msgspec.Struct, kw_only=True):
    scope: Scope | None = None
    #: soft-deleted definitions too (a key may appear more than once)
    include_deleted: bool = False


def routes(fields: FieldDefs) -> list[ApiRoute]:
    async def list_defs(request: Any, query: ListQuery) -> FieldDefList:
        """Every field definition, by key (a few hundred at most: not paged)."""
        rows = await fields.list(scope=query.scope, include_deleted=query.include_deleted)
        return FieldDefList(items=[FieldDef(**r) for r in rows])

    async def create_def(request: Any, body: FieldDefCreate) -> FieldDef:
        """Define a key.  Stored entity values that fit it become filterable at once."""
        data = msgspec.structs.asdict(body)
        data["label"] = data["label"].strip()
        return FieldDef(**await fields.create(data))

    async def get_def(request: Any) -> FieldDef:
        """One live definition."""
        return FieldDef(**await fields.get(request.path_params["field_key"]))

    async def patch_def(request: Any, body: FieldDefPatch) -> FieldDef:
        """Change a definition's label, help or rules."""
        changes = {k: v for k, v in msgspec.structs.asdict(body).items() if v is not UNSET}
        if "label" in changes:
            changes["label"] = changes["label"].strip()
        return FieldDef(**await fields.update(request.path_params["field_key"], changes))

    async def delete_def(request: Any) -> None:
        """Soft delete: values stay in the records; the key can be defined again."""
        await fields.delete(request.path_params["field_key"])

    one = "/admin/field-defs/{field_key}"
    tags = ["field definitions"]
    return [
        ApiRoute(path="/admin/field-defs", endpoint=list_defs, scope="entities:read",
                 query=ListQuery, response=FieldDefList, tags=tags),
        ApiRoute(path="/admin/field-defs", endpoint=create_def, methods=["POST"],
                 scope="fields:admin", body=FieldDefCreate, response=FieldDef,
                 status_code=201, tags=tags),
        ApiRoute(path=one, endpoint=get_def, scope="entities:read", response=FieldDef,
                 tags=tags),
        ApiRoute(path=one, endpoint=patch_def, methods=["PATCH"], scope="fields:admin",
                 body=FieldDefPatch, response=FieldDef, tags=tags),
        ApiRoute(path=one, endpoint=delete_def, methods=["DELETE"], scope="fields:admin",
                 status_code=204, tags=tags),
    ]

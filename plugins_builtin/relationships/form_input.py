"""What a person typed in the Relationships tab's add and edit forms, read and checked
by the API's rules (:mod:`.bounds`, the type name rule) so that each input gets its own
message; and a relationship's fields written back as text for the edit form."""

from __future__ import annotations

import re
from typing import Any

import msgspec

from ff_plugin_sdk import Conflict, ValidationFailed
from ff_plugin_sdk.jsontext import NotJson, parse_json
from plugins_builtin.relationships import bounds
from plugins_builtin.relationships.store import TYPE_NAME, TYPE_RULE, RelationshipStore

EDIT_KEYS = ("type", "valid_from", "valid_to", "fields")
FORM_KEYS = ("direction", "other_q", "other_entity_id", "inverse", "symmetric", *EDIT_KEYS)
_NEWLINE = re.compile(r"\r\n|\r|\n")


def type_name(text: str) -> str:
    """What a person types -> a type name: "Spouse of" -> "spouse_of"."""
    return re.sub(r"[\s-]+", "_", text.strip().lower())


def _value(text: str) -> Any:
    """A field's value as typed: one that is JSON (a number, true, a list) keeps its type."""
    text = text.strip()
    try:
        return parse_json(text) if text else ""
    except NotJson:
        return text


def parse_fields(text: str) -> tuple[dict[str, Any], str | None]:
    """``name: value`` lines -> {name: value}."""
    fields: dict[str, Any] = {}
    for number, line in enumerate(_NEWLINE.split(text), 1):
        if not line.strip():
            continue
        key, sep, value = line.partition(":")
        if not sep or not key.strip():
            return fields, f"Line {number}: write each field as 'name: value'."
        fields[key.strip()] = _value(value)
    return fields, None


def writable(key: str) -> bool:
    """A key :func:`parse_fields` reads back as itself (no colon, line break or edge
    space); the edit form leaves the others as they are."""
    return bool(key) and key == key.strip() and ":" not in key and not _NEWLINE.search(key)


def _written(value: Any) -> str:
    """A value as the edit form writes it: as is if :func:`_value` reads it back as
    itself, else as JSON (so "1815" stays a string and a line break does not split it)."""
    if isinstance(value, str) and not _NEWLINE.search(value) and _value(value) == value:
        return value
    return msgspec.json.encode(value).decode()


def format_fields(fields: dict[str, Any]) -> str:
    """The inverse of :func:`parse_fields`: saving the edit form unchanged changes nothing."""
    return "\n".join(f"{k}: {_written(v)}" for k, v in fields.items() if writable(k))


def fields_patch(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """The merge (None removes a key) that turns ``old`` into what the form says; only
    what changed, so a value stored as ``null`` and left alone stays."""
    enc = msgspec.json.encode
    patch = {k: v for k, v in new.items() if k not in old or enc(old[k]) != enc(v)}
    patch.update((k, None) for k in old if k not in new and writable(k))
    return patch


def form_values(form: Any = None, keys: tuple[str, ...] = FORM_KEYS) -> dict[str, str]:
    values = {k: str((form or {}).get(k) or "") for k in keys}
    if values.get("direction") not in ("from", "to"):
        values["direction"] = "from"
    return values


def check_values(values: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """The type, bounds and fields typed in a form, checked by the API's rules:
    (normalized data, {input: message})."""
    errors: dict[str, str] = {}
    data: dict[str, Any] = {"type": type_name(values["type"])}
    if not data["type"]:
        errors["type"] = "Choose a relationship type or type a new one."
    elif not TYPE_NAME.match(data["type"]):
        errors["type"] = f"A type is {TYPE_RULE}."
    for key in ("valid_from", "valid_to"):
        try:
            data[key] = bounds.normalize(key, values[key].strip() or None)
        except ValidationFailed:
            errors[key] = f"Write {bounds.EXPECTED}."
    data["fields"], fields_error = parse_fields(values["fields"])
    if fields_error:
        errors["fields"] = fields_error
    if "valid_from" not in errors and "valid_to" not in errors:
        try:
            bounds.check_order(data["valid_from"], data["valid_to"])
        except ValidationFailed:
            errors["valid_to"] = "The end must not be before the start."
    return data, errors


async def new_type_inputs(store: RelationshipStore, name: str, values: dict[str, str]
                          ) -> tuple[str | None, bool, dict[str, str]]:
    """(inverse, symmetric) typed for ``name`` if it is a new type, else (None, False): an
    existing type keeps its own, as on the API's create.  Or {input: message} if refused."""
    inverse, symmetric = type_name(values["inverse"]) or None, bool(values["symmetric"])
    if not (inverse or symmetric) or not TYPE_NAME.match(name) \
            or await store.type_info([name]):
        return None, False, {}
    if inverse is not None and not TYPE_NAME.match(inverse):
        return None, False, {"inverse": f"An inverse is {TYPE_RULE}."}
    if symmetric and inverse not in (None, name):
        return None, False, {"inverse": "A symmetric type is its own inverse: leave this "
                                        "empty or untick “same both ways”."}
    return inverse, symmetric, {}


async def register_type(store: RelationshipStore, name: str, inverse: str | None,
                        symmetric: bool) -> dict[str, str]:
    """Register the new type ``name`` with its inverse or as symmetric; {input: message}
    when refused."""
    try:
        await store.create_type(name, inverse, symmetric)
    except Conflict as exc:  # the inverse is a type already, or ``name`` was just added
        if exc.details and exc.details[0].get("name") == name:
            return {"type": exc.message}
        return {"inverse": f"“{inverse}” is already a relation type: choose another name "
                           "for the inverse."}
    return {}

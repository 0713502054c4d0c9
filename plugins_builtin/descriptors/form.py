"""The descriptor form: which input a key's definition asks for, what a posted form means,
and an existing descriptor as the form shows it.

A key with a definition gets a typed input (a date picker for ``date``, a number for
``int``/``float``, a select for ``enum``...) and its text is turned into that type here;
the definition itself then judges the value (``entities.fields``).  A key without one gets
a text box whose content keeps its JSON type when it is JSON (``1815``, ``true``,
``["a", "b"]``) and is text otherwise, as in the entity form's fields; saving an unchanged
form keeps the value.
"""

from __future__ import annotations

import math
import re
from typing import Any

import msgspec

from ff_plugin_sdk import ValidationFailed
from ff_plugin_sdk.jsontext import NotJson, parse_json
from plugins_builtin.descriptors.api import KEY_PATTERN, Day, Notes, Source, normalize

#: field_type -> the input shown (anything else is a one-line text input)
INPUTS = {"date": "date", "int": "int", "float": "float", "enum": "enum",
          "multi_enum": "multi_enum", "bool": "bool", "text": "text", "json": "json",
          "url": "url", "datetime": "datetime"}
FIELDS = ("value", "valid_from", "valid_to", "source", "notes")
_KEY = re.compile(KEY_PATTERN)
_CRLF = re.compile(r"\r\n?")
_encoder = msgspec.json.Encoder(order="sorted")


def input_kind(definition: dict[str, Any] | None) -> str:
    """``free`` without a definition; else the input its ``field_type`` asks for."""
    if definition is None:
        return "free"
    return INPUTS.get(str(definition.get("field_type")), "string")


def options_of(definition: dict[str, Any] | None) -> list[tuple[str, str]]:
    """An enum's choices as (value, label); ``options`` may be a list or ``{"options":
    [...]}``, each a string or ``{"value", "label"}``."""
    raw: Any = (definition or {}).get("options") or []
    if isinstance(raw, dict):
        raw = raw.get("options") or []
    choices = []
    for option in raw if isinstance(raw, list) else []:
        if isinstance(option, dict):
            value = str(option.get("value", ""))
            choices.append((value, str(option.get("label") or value)))
        else:
            choices.append((str(option), str(option)))
    return choices


def check_key(text: str) -> tuple[str, str | None]:
    """The key typed, trimmed, and why it is not a key (or None)."""
    key = text.strip()
    if not key:
        return key, "Enter a key."
    if not _KEY.match(key):
        return key, ("A key starts with a letter or _ and has up to 64 letters, digits "
                     "or _ (no spaces).")
    return key, None


def _json_text(value: Any) -> str:
    return _encoder.encode(value).decode()


def _plain(value: Any) -> bool:
    """A string the free input reads back as itself ("1815" or "true" would change type)."""
    if not isinstance(value, str) or value != value.strip():
        return False
    try:
        parse_json(value)
    except NotJson:
        return True
    return False


def value_text(value: Any, kind: str) -> Any:
    """A stored value as its input shows it."""
    if kind == "bool":
        return value is True
    if kind == "multi_enum":
        return [str(v) for v in value] if isinstance(value, list) else []
    if kind == "json":
        return msgspec.json.format(_json_text(value), indent=2)
    if kind == "free":
        return value if _plain(value) else _json_text(value)
    if isinstance(value, str):
        return value
    return _json_text(value) if not isinstance(value, int | float) else str(value)


def form_values(descriptor: dict[str, Any], kind: str) -> dict[str, Any]:
    """An existing descriptor as the edit form shows it."""
    return {"value": value_text(descriptor["value"], kind),
            "valid_from": descriptor["valid_from"] or "", "valid_to": descriptor["valid_to"] or "",
            "source": descriptor["source"] or "", "notes": descriptor["notes"] or ""}


def posted_values(form: Any, kind: str) -> dict[str, Any]:
    """The form as typed, to show it again next to its errors."""
    values: dict[str, Any] = {name: str(form.get(name) or "") for name in FIELDS}
    if kind == "bool":
        values["value"] = "value" in form
    elif kind == "multi_enum":
        values["value"] = [str(v) for v in form.getlist("value")]
    return values


def _value(form: Any, kind: str) -> Any:
    """The posted value in its type; raises ValueError with what to fix."""
    if kind == "bool":
        return "value" in form
    if kind == "multi_enum":
        return [str(v) for v in form.getlist("value")]
    text = _CRLF.sub("\n", str(form.get("value") or ""))
    if kind not in ("text",):
        text = text.strip()
    if not text.strip():
        raise ValueError("Enter a value.")
    if kind == "int":
        try:
            return int(text)
        except ValueError:
            raise ValueError("Enter a whole number.") from None
    if kind == "float":
        try:
            number = float(text)
        except ValueError:
            raise ValueError("Enter a number.") from None
        if not math.isfinite(number):
            raise ValueError("Enter a finite number.")
        return number
    if kind in ("json", "free"):
        try:
            return parse_json(text)
        except NotJson as exc:
            if kind == "json":
                raise ValueError(f"This is not valid JSON: {exc}.") from None
            return text
    return text


def _check(value: str, kind: Any, name: str, errors: dict[str, str], message: str) -> Any:
    try:
        return msgspec.convert(value, kind)
    except msgspec.ValidationError:
        errors[name] = message
        return None


def parse(form: Any, kind: str) -> tuple[dict[str, Any], dict[str, str]]:
    """Posted fields -> (descriptor data without the key, {field: message}), checked as
    the API's body is (the definition and the order of the days are the store's)."""
    errors: dict[str, str] = {}
    data: dict[str, Any] = {}
    try:
        data["value"] = _value(form, kind)
    except ValueError as exc:
        errors["value"] = str(exc)
    for name in ("valid_from", "valid_to"):
        text = str(form.get(name) or "").strip()
        data[name] = _check(text, Day, name, errors, "Enter a date as YYYY-MM-DD.") \
            if text else None
    data["source"] = _check(str(form.get("source") or ""), Source, "source", errors,
                            "A source is at most 1,000 characters.")
    data["notes"] = _check(_CRLF.sub("\n", str(form.get("notes") or "")), Notes, "notes",
                           errors, "Notes are at most 10,000 characters.")
    return normalize(data), errors


def error_fields(exc: ValidationFailed) -> dict[str, str]:
    """A store's 422 -> {field: message}, by the ``$.<field>`` path in its details."""
    errors: dict[str, str] = {}
    for detail in exc.details:
        if not isinstance(detail, dict):
            continue
        path = str(detail.get("path") or "")
        name = path[2:].split(".")[0].split("[")[0] if path.startswith("$.") else ""
        if name in FIELDS and name not in errors:
            errors[name] = str(detail.get("message") or exc.message)
    if not errors:
        errors["value"] = exc.message
    return errors

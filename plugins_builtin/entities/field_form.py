"""The entity form's typed inputs for defined fields: what each input shows, and the form's
strings back to typed values.

Each defined entity-scope field gets one input named ``f.<key>`` (a hidden ``shown`` input
lists the keys the form rendered, so a definition made while the form was open does not
read as a cleared value).  Saving an edit sends only the keys whose input changed: a value
stored before a later rule stays as it is until someone edits it.  A stored value the input
cannot show (``"1815"`` under a date field) is shown as text (``raw``), like the free-form
fields textarea shows it.
"""

from __future__ import annotations

import contextlib
import re
from typing import Any

import msgspec

from ff_plugin_sdk.jsontext import NotJson, parse_json
from plugins_builtin.entities.field_types import BadValue, check_value

PREFIX = "f."
_INT = re.compile(r"^[+-]?\d+$")
_FLOAT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
#: what <input type=datetime-local> sends: no zone (the form says it is UTC)
_LOCAL = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?$")
WIDGETS = {"string": "text", "text": "textarea", "int": "number", "float": "number",
           "bool": "checkbox", "date": "date", "datetime": "datetime", "url": "url",
           "enum": "select", "multi_enum": "checkboxes", "json": "json"}


def name_of(key: str) -> str:
    return PREFIX + key


def _type_only(defn: dict[str, Any]) -> dict[str, Any]:
    """The definition without its rules: does a value fit the input at all?"""
    return {"field_type": defn["field_type"], "options": defn.get("options")}


def shows_raw(defn: dict[str, Any], value: Any) -> bool:
    """Whether a stored value needs the plain text input (the typed one would lose it)."""
    if value is None:
        return False
    try:
        typed = check_value(_type_only(defn), value)
    except BadValue:
        return True
    # datetime-local keeps milliseconds at most
    return defn["field_type"] == "datetime" and len(typed.partition(".")[2]) > 4


def raw_text(value: Any) -> str:
    """A value as the fields textarea writes it: a plain string, or JSON."""
    if isinstance(value, str):
        try:
            parse_json(value)
        except NotJson:
            return value
    return msgspec.json.encode(value).decode()


def shown(defn: dict[str, Any], value: Any, raw: bool = False) -> str | list[str]:
    """A stored value as its input shows it (checkboxes: the chosen options)."""
    ftype = defn["field_type"]
    if raw:
        return raw_text(value)
    if value is None:
        return [] if ftype == "multi_enum" else ""
    if ftype == "multi_enum":
        return list(value)
    if ftype == "bool":
        return "true" if value else ""
    if ftype == "datetime":
        return check_value(_type_only(defn), value).removesuffix("Z")
    if ftype == "json":
        return msgspec.json.encode(value).decode()
    return str(value)


def submitted(form: Any, key: str, ftype: str) -> str | list[str]:
    if ftype == "multi_enum":
        return [str(v) for v in form.getlist(name_of(key))]
    return str(form.get(name_of(key)) or "")


def parse(defn: dict[str, Any], text: str | list[str], *, raw: bool = False) -> Any:
    """An input's text as a typed value (None: no value); raises BadValue for text the
    type cannot read.  The definition's rules are the store's to check."""
    ftype = defn["field_type"]
    if isinstance(text, list):
        return list(text) or None
    if ftype == "bool" and not raw:
        return text != ""
    if ftype == "text":
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        return None
    if raw:
        try:
            return parse_json(text.strip())
        except NotJson:
            return text
    if ftype in ("string", "text"):
        return text
    value = text.strip()
    if ftype == "int":
        if not _INT.match(value):
            raise BadValue(f"{value!r} is not a whole number")
        return int(value)
    if ftype == "float":
        if not _FLOAT.match(value):
            raise BadValue(f"{value!r} is not a number")
        return float(value)
    if ftype == "datetime" and _LOCAL.match(value):
        return value + "Z"
    if ftype == "json":
        try:
            return parse_json(value)
        except NotJson:
            raise BadValue("is not valid JSON") from None
    return value


def _same(defn: dict[str, Any], a: Any, b: Any) -> bool:
    """Equal once both are in typed form (a datetime without its ``:00`` seconds, a float
    written as ``2``); by JSON text, so ``true`` is not ``1``."""
    if defn["field_type"] == "multi_enum" and isinstance(a, list) and isinstance(b, list):
        return sorted(map(str, a)) == sorted(map(str, b))
    with contextlib.suppress(BadValue):  # one does not fit the type: compare as they are
        a, b = check_value(_type_only(defn), a), check_value(_type_only(defn), b)
    return msgspec.json.encode(a) == msgspec.json.encode(b)


def untouched(defn: dict[str, Any], text: str | list[str], stored: Any, raw: bool) -> bool:
    """Whether the input still says what the stored value does."""
    before = shown(defn, stored, raw)
    if isinstance(text, list) and isinstance(before, list):
        return sorted(text) == sorted(before)
    if text == before or (isinstance(text, str) and isinstance(before, str)
                          and text.replace("\r\n", "\n") == before.replace("\r\n", "\n")):
        return True
    try:
        value = parse(defn, text, raw=raw)
    except BadValue:
        return False
    if value is None or stored is None:
        return value is None and (stored is None or (defn["field_type"] == "bool"
                                                     and stored is False))
    return _same(defn, value, stored)


def read(defs: dict[str, dict[str, Any]], form: Any, stored: dict[str, Any] | None
         ) -> tuple[dict[str, Any], list[str], dict[str, str]]:
    """The typed inputs of a posted form -> (values to save, keys rendered, {input name:
    error}).  With ``stored`` (an edit) only changed inputs are in the values, and a
    cleared one is None (removed); a new entity gets every value the form has."""
    keys = [k for k in dict.fromkeys(str(k) for k in form.getlist("shown")) if k in defs]
    raws = set(form.getlist("raw"))
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for key in keys:
        defn, raw = defs[key], key in raws
        text = submitted(form, key, "" if raw else defn["field_type"])
        if stored is not None and untouched(defn, text, stored.get(key), raw):
            continue
        try:
            value = parse(defn, text, raw=raw)
        except BadValue as exc:
            errors[name_of(key)] = f"{defn['label']}: {exc}"
            continue
        if value is not None or stored is not None:
            values[key] = value
    return values, keys, errors


def inputs(defs: list[dict[str, Any]], stored: dict[str, Any], form: Any | None,
           errors: dict[str, str]) -> list[dict[str, Any]]:
    """What the template renders per defined field: the stored value, or what was posted
    (a form shown again with its errors)."""
    raws = set(form.getlist("raw")) if form is not None else set()
    out = []
    for defn in defs:
        key = defn["field_key"]
        value = stored.get(key)
        raw = key in raws if form is not None else shows_raw(defn, value)
        text = (submitted(form, key, "" if raw else defn["field_type"]) if form is not None
                else shown(defn, value, raw))
        out.append({"defn": defn, "key": key, "name": name_of(key),
                    "id": "f-" + key, "widget": "raw" if raw else WIDGETS[defn["field_type"]],
                    "value": text, "error": errors.get(name_of(key)),
                    "step": "1" if defn["field_type"] == "int" else "any"})
    return out

"""The entity list's filter on defined fields: a form row (a field, a value, a from/to
range) read into the ``field.<key>`` query parameters the store filters by.

The page's links carry only ``field.*`` parameters; the row's own names (``filter_field``,
``filter_value``, ``filter_from``, ``filter_to``) are what a form without JavaScript can
send, and are read into them here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from plugins_builtin.entities.field_filters import PREFIX
from plugins_builtin.entities.field_types import RANGE_TYPES

ROW = ("filter_field", "filter_value", "filter_from", "filter_to")
#: the row's inputs and the operator each one filters with
ROW_OPS = {"filter_value": "", "filter_from": ".gte", "filter_to": ".lte"}
_OP_SIGNS = {"": "=", "gte": "≥", "gt": ">", "lte": "≤", "lt": "<"}
_LOCAL = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?$")
_NAME = re.compile(r"^field\.([^.]+)(?:\.([a-z]+))?$")
#: each field type's input in the row (datetimes are UTC)
INPUT_TYPES = {"int": "number", "float": "number", "date": "date",
               "datetime": "datetime-local"}


@dataclass
class FieldSearch:
    """The field filters of one list request."""

    #: (name, value) pairs, in order: what the page's links carry
    params: list[tuple[str, str]] = field(default_factory=list)
    #: the row as the form shows it: the key and its value / from / to
    row: dict[str, str] = field(default_factory=lambda: dict.fromkeys(ROW, ""))
    #: filters the row does not show (kept as hidden inputs of the form)
    hidden: list[tuple[str, str]] = field(default_factory=list)
    #: the request used the row's own names (a form sent without JavaScript)
    from_row: bool = False

    def chips(self, defs: dict[str, dict[str, Any]]) -> list[dict[str, str]]:
        """Each filter as a label, and the parameters without it."""
        out = []
        for i, (name, value) in enumerate(self.params):
            m = _NAME.match(name)
            key, op = (m.group(1), m.group(2) or "") if m else (name, "")
            label = defs[key]["label"] if key in defs else key
            out.append({"label": f"{label} {_OP_SIGNS.get(op, op)} {value}",
                        "without": self.params[:i] + self.params[i + 1:]})
        return out


def read(query: Iterable[tuple[str, str]], defs: dict[str, dict[str, Any]]) -> FieldSearch:
    """The request's ``field.*`` parameters and the form row, as one list of filters (the
    row's key replaces any other filter on that key).  Blank values are no filter."""
    items = [(str(k), str(v)) for k, v in query]
    given = {k: v.strip() for k, v in items if k in ROW}
    search = FieldSearch()
    row_key = given.get("filter_field", "")
    row_params = []
    if row_key:
        for name, op in ROW_OPS.items():
            if value := given.get(name, ""):
                search.from_row = True
                row_params.append((f"{PREFIX}{row_key}{op}", _utc(defs.get(row_key), value)))
    for name, value in items:
        if not name.startswith(PREFIX) or not value.strip():
            continue
        if search.from_row and _key_of(name) == row_key:
            continue
        search.params.append((name, value))
    search.params += row_params
    _fill_row(search, defs)
    return search


def _key_of(name: str) -> str:
    m = _NAME.match(name)
    return m.group(1) if m else name


def _utc(defn: dict[str, Any] | None, value: str) -> str:
    """A datetime-local input's value has no zone: the form says it is UTC."""
    if defn and defn["field_type"] == "datetime" and _LOCAL.match(value):
        return value + "Z"
    return value


def _fill_row(search: FieldSearch, defs: dict[str, dict[str, Any]]) -> None:
    """Show the first defined key filtered by =, >= and <= in the row; keep the others."""
    row_key = ""
    for name, _ in search.params:
        m = _NAME.match(name)
        if m and m.group(1) in defs and (m.group(2) or "") in ("", "gte", "lte"):
            row_key = m.group(1)
            break
    ops = {"": "filter_value", "gte": "filter_from", "lte": "filter_to"}
    for name, value in search.params:
        m = _NAME.match(name)
        shown = value
        if row_key and defs[row_key]["field_type"] == "datetime":
            shown = value.removesuffix("Z").removesuffix("z")
        if (row_key and m and m.group(1) == row_key and (m.group(2) or "") in ops
                and (defs[row_key]["field_type"] != "datetime" or _LOCAL.match(shown))):
            search.row[ops[m.group(2) or ""]] = shown
        else:
            search.hidden.append((name, value))
    search.row["filter_field"] = row_key


def input_type(defn: dict[str, Any] | None) -> str:
    return INPUT_TYPES.get(defn["field_type"], "text") if defn else "text"


def ranged(defn: dict[str, Any] | None) -> bool:
    return bool(defn) and defn["field_type"] in RANGE_TYPES  # type: ignore[index]

"""``field.<key>`` filters on the entity list, over the typed index of defined fields.

``field.born=1990-05-01`` is equality (every type; a multi_enum matches when the choice is
among its values); ``field.born.gte=1990-01-01`` with ``gt``, ``lte`` and ``lt`` are ranges
(int, float, date, datetime).  Several filters all apply.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ff_plugin_sdk import ValidationFailed
from ff_plugin_sdk.kernel import Database
from plugins_builtin.entities.field_types import BadValue, filter_value

PREFIX = "field."
RANGES = {"gte": ">=", "gt": ">", "lte": "<=", "lt": "<"}
MAX_FIELD_FILTERS = 20
_PARAM = re.compile(r"^field\.([A-Za-z_][A-Za-z0-9_]{0,63})(?:\.(gte|gt|lte|lt))?$")


@dataclass(frozen=True)
class FieldFilter:
    key: str
    #: "eq" or one of :data:`RANGES`
    op: str
    raw: str


def parse_field_filters(params: Iterable[tuple[str, str]]) -> list[FieldFilter]:
    """The ``field.*`` query parameters; anything else starting with ``field.`` is a 422."""
    found = []
    for name, raw in params:
        if not name.startswith(PREFIX):
            continue
        m = _PARAM.match(name)
        if m is None:
            raise _bad(name, "write field.<key>=value, or field.<key>.gte (gt, lte, lt)"
                             "=value for a range")
        found.append(FieldFilter(m.group(1), m.group(2) or "eq", raw))
    if len(found) > MAX_FIELD_FILTERS:
        raise _bad("field", f"at most {MAX_FIELD_FILTERS} field filters at once")
    return found


async def field_conditions(db: Database, defs: Sequence[dict[str, Any]],
                           filters: Sequence[FieldFilter], conds: list[str],
                           params: list[Any], *, newest: int,
                           creation_order: bool = True) -> None:
    """One condition per equality and one per key's range, each shaped by how many
    entities it matches, as the tag filter is (a few: look them up and sort them; many:
    check each row while walking the sort index).  ``newest``: the newest entity's seq,
    the library's size; ``creation_order``: the page is sorted by creation."""
    by_key = {d["field_key"]: d for d in defs}
    wanted: list[tuple[str, list[Any]]] = []  # (condition on the index, its params)
    ranges: dict[str, tuple[list[str], list[Any]]] = {}  # one range per key
    for f in filters:
        defn = by_key.get(f.key)
        name = PREFIX + f.key + ("" if f.op == "eq" else "." + f.op)
        if defn is None:
            raise _bad(name, f"no entity field is defined as {f.key!r}; filters apply to"
                             " defined fields (see /v1/admin/field-defs)")
        try:
            value = filter_value(defn, f.raw, ranged=f.op != "eq")
        except BadValue as exc:
            raise _bad(name, f"{f.raw!r}: {exc}") from None
        if f.op == "eq":
            wanted.append(("field_key = ? AND value = ?", [f.key, value]))
        else:
            sql, args = ranges.setdefault(f.key, (["field_key = ?"], [f.key]))
            sql.append(f"value {RANGES[f.op]} ?")
            args.append(value)
    wanted += [(" AND ".join(sql), args) for sql, args in ranges.values()]
    if not wanted:
        return
    # walking an index of names or times reads each row from the table as well: per row
    # walked it costs what about ten looked-up matches do (measured at 1M entities)
    common = common_threshold(newest, 13 if creation_order else 130)
    for where, args in wanted:
        matches = (await db.fetchone(
            f"SELECT count(*) AS n FROM (SELECT 1 FROM entity_field_values WHERE {where}"
            " LIMIT ?)", [*args, common + 1]))["n"]
        if matches > common:
            conds.append(f"EXISTS (SELECT 1 FROM entity_field_values WHERE {where}"
                         " AND seq = e.seq)")
        else:
            conds.append(f"e.seq IN (SELECT seq FROM entity_field_values WHERE {where})")
        params.extend(args)


def common_threshold(newest: int, walk_cost: int = 13) -> int:
    """How many matches make a filter "common": break-even where looking up n rows costs
    what walking newest/n * page rows of the sort index does (``walk_cost``: a row walked
    against a match looked up, times the page of 50)."""
    return max(200, int((walk_cost * newest) ** 0.5))


def _bad(name: str, message: str) -> ValidationFailed:
    return ValidationFailed(f"{name}: {message}",
                            details=[{"path": f"query.{name}", "message": message}])

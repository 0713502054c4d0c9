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
                           params: list[Any], *, newest: int, sort_by: str = "created_at",
                           rows_wanted: int = 51) -> None:
    """One condition per equality and one per key's range, each in the plan that
    :func:`choose_plan` expects to be cheapest for how many entities it matches.
    ``newest``: the newest entity's seq, the library's size; ``rows_wanted``: how many
    rows the page reads (offset, limit and one more)."""
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
    # past this many matches walking is the cheapest plan: count no further
    enough = walk_bound(sort_by, newest, rows_wanted)
    for where, args in wanted:
        matches = (await db.fetchone(
            f"SELECT count(*) AS n FROM (SELECT 1 FROM entity_field_values WHERE {where}"
            " LIMIT ?)", [*args, enough + 1]))["n"]
        plan = choose_plan(sort_by, matches, newest, rows_wanted)
        if plan == "walk":
            conds.append(f"EXISTS (SELECT 1 FROM entity_field_values WHERE {where}"
                         " AND seq = e.seq)")
        else:  # the "+" keeps SQLite from driving the query by the collected matches
            conds.append(f"{'+' if plan == 'collect' else ''}e.seq IN"
                         f" (SELECT seq FROM entity_field_values WHERE {where})")
        params.extend(args)


@dataclass(frozen=True)
class PlanCosts:
    """What each plan costs per unit, in µs, measured at 1,000,000 entities.

    - ``lookup``: per match, looked up and sorted (``e.seq IN (...)`` drives the query);
    - ``collect``: per match, collected once into a set, then ``collected_row`` per row of
      the sort index walked and checked against the set (``+e.seq IN (...)``);
    - ``walk``: per row of the sort index walked, each probing the typed index
      (``EXISTS``); the sort indexes carry ``deleted_at``, so no row is read to skip one.
    """

    lookup: float
    walk: float
    collect: float | None = None
    collected_row: float = 0.0


#: by sort.  Creation order walks the table itself, cheaply.  updated_at: matches arrive
#: in creation order, which a never-edited library's updated_at follows, so a descending
#: sort takes nearly every match into its top rows (over three times the name sort's cost)
COSTS = {
    "created_at": PlanCosts(lookup=0.45, walk=0.4),
    "display_name": PlanCosts(lookup=1.2, walk=1.2, collect=0.55, collected_row=0.27),
    "updated_at": PlanCosts(lookup=4.0, walk=1.2, collect=0.55, collected_row=0.2),
}


def choose_plan(sort_by: str, matches: int, newest: int, rows_wanted: int = 51) -> str:
    """"lookup", "collect" or "walk": the cheapest way to read ``rows_wanted`` rows of
    ``newest`` entities in ``sort_by`` order when a filter matches ``matches`` of them
    (a page walks about rows_wanted * newest / matches rows of the sort index)."""
    costs = COSTS[sort_by]
    walked = rows_wanted * newest / max(matches, 1)
    estimate = {"lookup": costs.lookup * matches, "walk": costs.walk * walked}
    if costs.collect is not None:
        estimate["collect"] = costs.collect * matches + costs.collected_row * walked
    return min(estimate, key=lambda plan: estimate[plan])


def walk_bound(sort_by: str, newest: int, rows_wanted: int = 51) -> int:
    """A match count past which walking is cheaper than either other plan."""
    costs = COSTS[sort_by]
    cheapest = min(c for c in (costs.lookup, costs.collect) if c is not None)
    return int((costs.walk * rows_wanted * newest / cheapest) ** 0.5) + 1


def common_threshold(newest: int, walk_cost: int = 13) -> int:
    """How many matches make a tag or search filter "common": break-even where looking up
    n rows costs what walking newest/n * page rows of the sort index does (``walk_cost``:
    a row walked against a match looked up, times the page of 50)."""
    return max(200, int((walk_cost * newest) ** 0.5))


def _bad(name: str, message: str) -> ValidationFailed:
    return ValidationFailed(f"{name}: {message}",
                            details=[{"path": f"query.{name}", "message": message}])

"""Field definitions (spec §7.3): admin-declared keys with a type and rules.

Published as the ``entities.fields`` service.  Entity-scope definitions validate entity
``fields`` and give them a typed index (``entity_field_values``) that ``field.<key>``
filters use; descriptor-scope ones validate the descriptors plugin's values.  Keys without a
definition are stored as they are: a definition can come at any time, and records older than
it stay valid and editable (the new definition indexes their values when they fit its type).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec

from ff_plugin_sdk import Conflict, Kernel, NotFound, ValidationFailed, WriteTx
from ff_plugin_sdk.jsontext import parse_json
from plugins_builtin.entities.field_types import BadValue, check_definition, check_value
from plugins_builtin.entities.field_types import index_values as typed_index_values
from plugins_builtin.entities.ids import new_id

SCOPES = ("entity", "descriptor")
#: a definition as stored: the JSON-valued rules are columns of JSON text
_COLUMNS = ("field_def_id, field_key, scope, field_type, label, help, required, regex,"
            " min, max, options, created_at, updated_at, deleted_at, version")
Defs = dict[str, dict[str, Any]]


def _row_to_def(row: Any) -> dict[str, Any]:
    d = dict(zip(row.keys(), row, strict=True))
    d["required"] = bool(d["required"])
    for rule in ("min", "max", "options"):
        d[rule] = None if d[rule] is None else parse_json(d[rule])
    return d


def _json(value: Any) -> str | None:
    return None if value is None else msgspec.json.encode(value).decode()


def live_defs(tx: WriteTx, scope: str) -> Defs:
    """The live definitions of ``scope`` as a transaction sees them (exact, unlike the
    cache a moment before the transaction)."""
    rows = tx.fetchall(f"SELECT {_COLUMNS} FROM field_defs WHERE scope = ?"
                       " AND deleted_at IS NULL", (scope,))
    return {r["field_key"]: _row_to_def(r) for r in rows}


def checked_fields(defs: Defs, fields: dict[str, Any], *, touched: Iterable[str] | None,
                   path: str = "$.fields") -> dict[str, Any]:
    """``fields`` with defined values in their typed form; raises 422 listing every value
    that breaks a rule.  ``touched`` None (a new entity, a replace) checks every defined key
    and requires the ``required`` ones; otherwise (a patch) only the keys it names are
    checked, so a record older than a definition stays editable."""
    out = dict(fields)
    details = []
    checked = set(defs) if touched is None else set(touched) & set(defs)
    for key in sorted(checked):
        defn, value = defs[key], fields.get(key)
        if value is None:
            if defn["required"]:
                details.append({"path": f"{path}.{key}", "rule": "required",
                                "message": f"{defn['label']} is required"})
            continue
        try:
            out[key] = check_value(defn, value)
        except BadValue as exc:
            details.append({"path": f"{path}.{key}", "rule": exc.rule,
                            "message": f"{defn['label']}: {exc}"})
    if details:
        raise ValidationFailed("; ".join(d["message"] for d in details), details=details)
    return out


def index_entity(tx: WriteTx, defs: Defs, seq: int, fields: dict[str, Any], *,
                 fresh: bool = False) -> None:
    """The typed index rows of one entity's defined fields (replacing its old ones)."""
    if not fresh:
        tx.execute("DELETE FROM entity_field_values WHERE seq = ?", (seq,))
    rows = []
    for key, defn in defs.items():
        value = fields.get(key)
        if value is None:
            continue
        try:
            typed = check_value(defn, value)
        except BadValue:  # stored before the definition, and does not fit it
            continue
        rows.extend((seq, key, v) for v in typed_index_values(defn, typed))
    if rows:
        tx.executemany("INSERT OR IGNORE INTO entity_field_values (seq, field_key, value)"
                       " VALUES (?, ?, ?)", rows)


class FieldDefs:
    """The definitions: a cache of the live ones for reads, and their writes."""

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self.db = kernel.db
        self._live: dict[str, Defs] = {scope: {} for scope in SCOPES}

    async def load(self) -> None:
        rows = await self.db.fetchall(
            f"SELECT {_COLUMNS} FROM field_defs WHERE deleted_at IS NULL ORDER BY field_key")
        live: dict[str, Defs] = {scope: {} for scope in SCOPES}
        for row in rows:
            live[row["scope"]][row["field_key"]] = _row_to_def(row)
        self._live = live

    # -- what other code asks ----------------------------------------------------------
    def definitions(self, scope: str) -> list[dict[str, Any]]:
        """The live definitions of ``scope``, by key."""
        return [self._live[scope][k] for k in sorted(self._live.get(scope, {}))]

    def definition(self, scope: str, key: str) -> dict[str, Any] | None:
        return self._live.get(scope, {}).get(key)

    def check_value(self, scope: str, key: str, value: Any, path: str) -> Any:
        """``value`` in typed form under the ``scope`` definition of ``key`` (unchanged
        when there is none); raises 422 naming ``path`` and the rule it breaks."""
        defn = self.definition(scope, key)
        if defn is None:
            return value
        if value is None:
            if defn["required"]:
                raise ValidationFailed(f"{defn['label']} is required", details=[
                    {"path": path, "rule": "required", "message": "required"}])
            return value
        try:
            return check_value(defn, value)
        except BadValue as exc:
            raise ValidationFailed(f"{defn['label']}: {exc}", details=[
                {"path": path, "rule": exc.rule, "message": str(exc)}]) from None

    # -- reads -------------------------------------------------------------------------
    async def list(self, *, scope: str | None = None,
                   include_deleted: bool = False) -> list[dict[str, Any]]:
        conds, params = [], []
        if scope is not None:
            conds.append("scope = ?")
            params.append(scope)
        if not include_deleted:
            conds.append("deleted_at IS NULL")
        where = " WHERE " + " AND ".join(conds) if conds else ""
        rows = await self.db.fetchall(
            f"SELECT {_COLUMNS} FROM field_defs{where} ORDER BY field_key, created_at", params)
        return [_row_to_def(r) for r in rows]

    async def get(self, field_key: str) -> dict[str, Any]:
        row = await self.db.fetchone(
            f"SELECT {_COLUMNS} FROM field_defs WHERE field_key = ? AND deleted_at IS NULL",
            (field_key,))
        if row is None:
            raise _not_found(field_key)
        return _row_to_def(row)

    # -- writes ------------------------------------------------------------------------
    async def create(self, body: dict[str, Any]) -> dict[str, Any]:
        defn = {**body, "label": body.get("label") or body["field_key"]}
        _check(defn)

        def create(tx: WriteTx) -> dict[str, Any]:
            if tx.fetchone("SELECT 1 FROM field_defs WHERE field_key = ?"
                           " AND deleted_at IS NULL", (defn["field_key"],)):
                raise Conflict(f"field {defn['field_key']!r} is already defined; change it"
                               " with PATCH or delete it first", code="field_def_exists")
            now = self.kernel.now()
            row = {**defn, "field_def_id": new_id(), "created_at": now, "updated_at": now,
                   "deleted_at": None, "version": 1}
            tx.execute(
                f"INSERT INTO field_defs ({_COLUMNS}) VALUES"
                " (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, 1)",
                (row["field_def_id"], row["field_key"], row["scope"], row["field_type"],
                 row["label"], row["help"], int(row["required"]), row["regex"],
                 _json(row["min"]), _json(row["max"]), _json(row["options"]), now, now))
            if row["scope"] == "entity":
                _reindex_key(tx, row)
            tx.event("field_def.created", {"field_key": row["field_key"],
                                           "scope": row["scope"]})
            tx.after_commit(lambda: self._cache(row))
            return row

        return await self.db.write(create)

    async def update(self, field_key: str, changes: dict[str, Any]) -> dict[str, Any]:
        def update(tx: WriteTx) -> dict[str, Any]:
            row = tx.fetchone(f"SELECT {_COLUMNS} FROM field_defs WHERE field_key = ?"
                              " AND deleted_at IS NULL", (field_key,))
            if row is None:
                raise _not_found(field_key)
            old = _row_to_def(row)
            for fixed in ("scope", "field_type"):
                if fixed in changes and changes[fixed] != old[fixed]:
                    raise ValidationFailed(
                        f"{fixed} cannot change (the stored values were checked as"
                        f" {old[fixed]}); delete the definition and define it again",
                        details=[{"path": f"$.{fixed}", "rule": fixed,
                                  "message": "cannot change"}])
            new = {**old, **changes}
            if not new["label"]:
                new["label"] = field_key
            _check(new)
            if all(new[k] == old[k] for k in changes):
                return old
            new["updated_at"] = self.kernel.now()
            new["version"] = old["version"] + 1
            tx.execute(
                "UPDATE field_defs SET label = ?, help = ?, required = ?, regex = ?, min = ?,"
                " max = ?, options = ?, updated_at = ?, version = ? WHERE field_def_id = ?",
                (new["label"], new["help"], int(new["required"]), new["regex"],
                 _json(new["min"]), _json(new["max"]), _json(new["options"]),
                 new["updated_at"], new["version"], old["field_def_id"]))
            if new["scope"] == "entity" and (new["options"] != old["options"]
                                             or new["regex"] != old["regex"]
                                             or new["min"] != old["min"]
                                             or new["max"] != old["max"]):
                _reindex_key(tx, new)  # values may fit the rules now, or no longer
            tx.event("field_def.updated", {
                "field_key": field_key,
                "changed": sorted(k for k in changes if new[k] != old[k])})
            tx.after_commit(lambda: self._cache(new))
            return new

        return await self.db.write(update)

    async def delete(self, field_key: str) -> None:
        """Soft delete: the key is no longer checked or filterable; values stay in the
        entities, and the key can be defined again."""
        def delete(tx: WriteTx) -> None:
            now = self.kernel.now()
            if not tx.changes("UPDATE field_defs SET deleted_at = ?, updated_at = ?,"
                              " version = version + 1 WHERE field_key = ?"
                              " AND deleted_at IS NULL", (now, now, field_key)):
                raise _not_found(field_key)
            tx.execute("DELETE FROM entity_field_values WHERE field_key = ?", (field_key,))
            tx.event("field_def.deleted", {"field_key": field_key})
            tx.after_commit(lambda: self._forget(field_key))

        await self.db.write(delete)

    def _cache(self, defn: dict[str, Any]) -> None:
        self._live[defn["scope"]][defn["field_key"]] = defn

    def _forget(self, field_key: str) -> None:
        for defs in self._live.values():
            defs.pop(field_key, None)


def _reindex_key(tx: WriteTx, defn: dict[str, Any]) -> None:
    """Index every stored value of a newly (re)defined entity key that fits it."""
    key = defn["field_key"]
    tx.execute("DELETE FROM entity_field_values WHERE field_key = ?", (key,))
    path = '$."' + key + '"'
    rows = tx.fetchall("SELECT seq, json_extract(fields, ?) AS v,"
                       " json_type(fields, ?) AS t FROM entities"
                       " WHERE json_type(fields, ?) IS NOT NULL", (path, path, path))
    values = []
    for row in rows:
        raw = row["v"]
        if row["t"] in ("object", "array"):
            raw = parse_json(raw)
        elif row["t"] in ("true", "false"):
            raw = row["t"] == "true"
        try:
            typed = check_value(defn, raw)
        except BadValue:
            continue
        values.extend((row["seq"], key, v) for v in typed_index_values(defn, typed))
    if values:
        tx.executemany("INSERT OR IGNORE INTO entity_field_values (seq, field_key, value)"
                       " VALUES (?, ?, ?)", values)


def _check(defn: dict[str, Any]) -> None:
    errors = check_definition(defn)
    if errors:
        raise ValidationFailed(
            f"field definition {defn['field_key']!r}: "
            + "; ".join(e["message"] for e in errors), details=errors)


def _not_found(field_key: str) -> NotFound:
    return NotFound(f"no field definition {field_key!r}", code="field_def_not_found")

"""The relationships and relation-type tables: SQL only.  Every write records its event in
the same transaction.

Entities belong to the entities plugin: this store asks its service (``entities.store``)
whether both ends are live before a write, and never reads the ``entities`` table.  A delete
that commits between that check and the write is caught by the write itself: the entities
store runs :meth:`RelationshipStore.entity_deleted` inside every delete and restore
transaction, which keeps this plugin's own list of deleted entities (and hides or shows
their relationships), and the write refuses an end on that list.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from dataclasses import dataclass
from typing import Any

import msgspec

from ff_plugin_sdk import (
    SQL_INT_MAX,
    BadRequest,
    Conflict,
    Kernel,
    NotFound,
    ValidationFailed,
    WriteTx,
)
from plugins_builtin.relationships.bounds import check_order

ENTITIES = "entities.store"
TYPE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
TYPE_RULE = "a lowercase name of at most 64 letters, digits and _ starting with a letter"
_ID = re.compile(r"^[0-9a-f]{64}$")
_COLUMNS = ("seq, relationship_id, from_entity_id, to_entity_id, type, fields, valid_from,"
            " valid_to, created_at, updated_at, deleted_at")
_FIELDS = msgspec.json.Decoder(dict[str, Any])


def new_relationship_id() -> str:
    """SHA-256 hex of 32 random bytes (DESIGN §4)."""
    return hashlib.sha256(os.urandom(32)).hexdigest()


def is_id(text: str) -> bool:
    return bool(_ID.match(text))


def not_found(relationship_id: str) -> NotFound:
    return NotFound(f"no relationship with id {relationship_id!r}",
                    code="relationship_not_found")


def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(msgspec.json.encode(["rel", seq])).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        tag, seq = msgspec.json.decode(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, TypeError, msgspec.DecodeError):
        tag, seq = None, None
    if tag != "rel" or type(seq) is not int or not 0 <= seq <= SQL_INT_MAX:
        raise BadRequest("cursor is not one this server issued", code="invalid_cursor")
    return seq


def _row(row: Any) -> dict[str, Any]:
    return {"relationship_id": row[1], "from_entity_id": row[2], "to_entity_id": row[3],
            "type": row[4], "fields": _FIELDS.decode(row[5]), "valid_from": row[6],
            "valid_to": row[7], "created_at": row[8], "updated_at": row[9],
            "deleted_at": row[10]}


def _j(value: Any) -> str:
    return msgspec.json.encode(value).decode()


def same_fact(kind: Any, from_id: str, to_id: str) -> tuple[str, str, str]:
    """What two relationships stating the same fact share: B sibling_of A is A sibling_of B,
    B child_of A is A parent_of B (the pair is named by its lesser name)."""
    name, inverse, symmetric = kind["name"], kind["inverse"], kind["symmetric"]
    if symmetric:
        return name, min(from_id, to_id), max(from_id, to_id)
    if inverse is not None and inverse < name:
        return inverse, to_id, from_id
    return name, from_id, to_id


@dataclass
class Page:
    rows: list[dict[str, Any]]
    next_cursor: str | None


class RelationshipStore:
    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self.db = kernel.db

    # -- entities, asked of their plugin -------------------------------------------------
    def entities(self) -> Any:
        service = self.kernel.services.get(ENTITIES)
        if service is None:
            raise NotFound("the entities plugin is not enabled", code="entities_disabled")
        return service

    async def check_live(self, ends: dict[str, str]) -> None:
        """422 naming each of ``ends`` ({path: entity id}) that is no live entity."""
        live = await self.entities().live_ids(list(dict.fromkeys(ends.values())))
        missing = [(path, entity_id) for path, entity_id in ends.items()
                   if entity_id not in live]
        if missing:
            raise _gone(missing)

    async def names(self, entity_ids: list[str]) -> dict[str, str]:
        """Display names of the live ones of ``entity_ids``, asked of the entities store
        in one read per 500."""
        return await self.entities().names(list(dict.fromkeys(entity_ids)))

    # -- reads -------------------------------------------------------------------------
    async def get(self, relationship_id: str) -> dict[str, Any]:
        """A live relationship whose ends are live; else 404."""
        if not is_id(relationship_id):
            raise not_found(relationship_id)
        row = await self.db.fetchone(
            f"SELECT {_COLUMNS} FROM relationships WHERE relationship_id = ?"
            " AND deleted_at IS NULL AND hidden = 0", (relationship_id,))
        if row is None:
            raise not_found(relationship_id)
        return _row(row)

    async def list(self, entity_id: str, *, limit: int = 50, cursor: str | None = None,
                   type: str | None = None) -> Page:
        """The shown relationships of ``entity_id``, both directions, in creation order.
        Each row gains ``direction`` ("outgoing": the entity is ``from``)."""
        after = decode_cursor(cursor) if cursor else 0
        half = ("SELECT {cols}, '{direction}' AS direction FROM relationships"
                " WHERE {end} = ? AND deleted_at IS NULL AND hidden = 0 AND seq > ?{type}"
                " ORDER BY seq LIMIT ?")
        by_type = " AND type = ?" if type is not None else ""
        params: list[Any] = [entity_id, after, *([type] if type is not None else []),
                             limit + 1]
        # each direction walks its own index in order and stops after a page; the union
        # of the two short lists is then sorted
        sql = ("SELECT * FROM (" + half.format(cols=_COLUMNS, direction="outgoing",
                                               end="from_entity_id", type=by_type)
               + ") UNION ALL SELECT * FROM (" + half.format(
                   cols=_COLUMNS, direction="incoming", end="to_entity_id", type=by_type)
               + ") ORDER BY seq LIMIT ?")
        rows = await self.db.fetchall(sql, [*params, *params, limit + 1])
        next_cursor = encode_cursor(rows[limit - 1][0]) if len(rows) > limit else None
        return Page([{**_row(r), "direction": r[11]} for r in rows[:limit]], next_cursor)

    async def type_info(self, names: list[str]) -> dict[str, dict[str, Any]]:
        """The registry rows of ``names`` (the types of a page)."""
        wanted = list(dict.fromkeys(names))
        if not wanted:
            return {}
        rows = await self.db.fetchall(
            "SELECT name, inverse, symmetric FROM relation_types"
            f" WHERE name IN ({','.join('?' * len(wanted))})", wanted)
        return {r[0]: {"name": r[0], "inverse": r[1], "symmetric": bool(r[2])} for r in rows}

    async def types(self, query: str = "", *, limit: int = 50,
                    cursor: str | None = None) -> Page:
        """Relation types whose name starts with ``query``, most used first, then by name.

        A type's use counts its inverse's too (A parent_of B is also B child_of A).  Every
        inverse is a type of its own, so typing the start of an inverse name finds it.
        """
        prefix = query.strip().lower().replace(" ", "_").replace("-", "_")
        if not re.fullmatch(r"[a-z0-9_]*", prefix):
            return Page([], None)
        conds, params = ["t.name >= ? AND t.name < ?"], [prefix, prefix + "\x7f"]
        if cursor:
            used, name = _decode_type_cursor(cursor)
            conds.append("(used < ? OR (used = ? AND t.name > ?))")
            params += [used, used, name]
        rows = await self.db.fetchall(
            "SELECT * FROM (SELECT t.name, t.inverse, t.symmetric,"
            " t.uses + coalesce(i.uses, 0) AS used FROM relation_types t"
            " LEFT JOIN relation_types i ON i.name = t.inverse AND i.name != t.name) t"
            f" WHERE {' AND '.join(conds)} ORDER BY used DESC, t.name LIMIT ?",
            [*params, limit + 1])
        items = [{"name": r[0], "inverse": r[1], "symmetric": bool(r[2]), "uses": r[3]}
                 for r in rows[:limit]]
        next_cursor = None
        if len(rows) > limit:
            last = items[-1]
            next_cursor = base64.urlsafe_b64encode(msgspec.json.encode(
                ["type", last["uses"], last["name"]])).decode().rstrip("=")
        return Page(items, next_cursor)

    # -- writes: each is one transaction function, run on the writer in one hop ----------
    async def create(self, data: dict[str, Any]) -> dict[str, Any]:
        """``data``: from/to entity ids, type, fields, normalized valid_from/valid_to."""
        from_id, to_id = data["from_entity_id"], data["to_entity_id"]
        check_ends(from_id, to_id)
        await self.check_live({"$.from_entity_id": from_id, "$.to_entity_id": to_id})

        def create(tx: WriteTx) -> dict[str, Any]:
            deleted = {r[0] for r in tx.fetchall(
                "SELECT entity_id FROM relationships_deleted_entities"
                " WHERE entity_id IN (?, ?)", (from_id, to_id))}
            if deleted:  # deleted after the check above
                raise _gone([(p, e) for p, e in (("$.from_entity_id", from_id),
                                                 ("$.to_entity_id", to_id)) if e in deleted])
            kind = _type_for(tx, data["type"], self.kernel.now())
            same = same_fact(kind, from_id, to_id)
            _refuse_duplicate(tx, same)
            now = self.kernel.now()
            row = {"relationship_id": new_relationship_id(), "from_entity_id": from_id,
                   "to_entity_id": to_id, "type": kind["name"], "fields": data["fields"],
                   "valid_from": data["valid_from"], "valid_to": data["valid_to"],
                   "created_at": now, "updated_at": now, "deleted_at": None}
            tx.execute(
                "INSERT INTO relationships (relationship_id, from_entity_id, to_entity_id,"
                " type, fields, valid_from, valid_to, created_at, updated_at, same_type,"
                " same_a, same_b) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (row["relationship_id"], from_id, to_id, row["type"], _j(row["fields"]),
                 row["valid_from"], row["valid_to"], now, now, *same))
            _count_use(tx, row["type"], +1)
            tx.event("relationship.created", {
                "relationship_id": row["relationship_id"], "from_entity_id": from_id,
                "to_entity_id": to_id, "type": row["type"]})
            return row

        return await self.db.write(create)

    async def update(self, relationship_id: str, changes: dict[str, Any],
                     fields: dict[str, Any] | None) -> dict[str, Any]:
        """Replace ``changes`` (type, valid_from, valid_to, already normalized); merge
        ``fields`` by key (None removes a key).  422 if the bounds end up out of order."""
        if not is_id(relationship_id):
            raise not_found(relationship_id)

        def update(tx: WriteTx) -> dict[str, Any]:
            found = _visible(tx, relationship_id)
            rel = _row(found)
            changed = [k for k, v in changes.items() if rel[k] != v]
            rel.update(changes)
            if fields:
                merged = dict(rel["fields"])
                for key, value in fields.items():
                    if value is None:
                        merged.pop(key, None)
                    else:
                        merged[key] = value
                if merged != rel["fields"]:
                    changed.append("fields")
                rel["fields"] = merged
            check_order(rel["valid_from"], rel["valid_to"])
            if not changed:
                return rel
            now = self.kernel.now()
            if "type" in changed:
                kind = _type_for(tx, rel["type"], now)
                same = same_fact(kind, rel["from_entity_id"], rel["to_entity_id"])
                _refuse_duplicate(tx, same, but=relationship_id)
                tx.execute("UPDATE relationships SET same_type = ?, same_a = ?, same_b = ?"
                           " WHERE relationship_id = ?", (*same, relationship_id))
                _count_use(tx, found[4], -1)
                _count_use(tx, rel["type"], +1)
            rel["updated_at"] = now
            tx.execute("UPDATE relationships SET type = ?, fields = ?, valid_from = ?,"
                       " valid_to = ?, updated_at = ? WHERE relationship_id = ?",
                       (rel["type"], _j(rel["fields"]), rel["valid_from"], rel["valid_to"],
                        now, relationship_id))
            tx.event("relationship.updated", {"relationship_id": relationship_id,
                                              "changed": sorted(changed)})
            return rel

        return await self.db.write(update)

    async def delete(self, relationship_id: str) -> dict[str, Any]:
        """Soft delete; a deleted relationship is gone for good (404 from then on)."""
        if not is_id(relationship_id):
            raise not_found(relationship_id)

        def delete(tx: WriteTx) -> dict[str, Any]:
            found = _visible(tx, relationship_id)
            now = self.kernel.now()
            tx.execute("UPDATE relationships SET deleted_at = ?, updated_at = ?"
                       " WHERE relationship_id = ?", (now, now, relationship_id))
            _count_use(tx, found[4], -1)
            tx.event("relationship.deleted", {
                "relationship_id": relationship_id, "from_entity_id": found[2],
                "to_entity_id": found[3], "type": found[4]})
            return {**_row(found), "deleted_at": now, "updated_at": now}

        return await self.db.write(delete)

    async def create_type(self, name: str, inverse: str | None,
                          symmetric: bool) -> tuple[dict[str, Any], bool]:
        """Register ``name`` (and its inverse, a type of its own); returns (type, created).
        Registering an existing type again the same way changes nothing."""
        if inverse == name:
            symmetric = True
        if symmetric:
            if inverse not in (None, name):
                raise ValidationFailed(
                    f"a symmetric type is its own inverse; {name!r} cannot have inverse "
                    f"{inverse!r}", details=[{"path": "$.inverse",
                                              "message": "must be empty or the name itself"}])
            inverse = name

        def create_type(tx: WriteTx) -> tuple[dict[str, Any], bool]:
            wanted = {"name": name, "inverse": inverse, "symmetric": symmetric}
            existing = _type_row(tx, name)
            if existing is not None:
                if {k: existing[k] for k in wanted} != wanted:
                    raise _type_exists(existing)
                return existing, False
            if inverse is not None and inverse != name:
                other = _type_row(tx, inverse)
                if other is not None:
                    raise _type_exists(other)
            now = self.kernel.now()
            tx.execute("INSERT INTO relation_types (name, inverse, symmetric, created_at)"
                       " VALUES (?, ?, ?, ?)", (name, inverse, int(symmetric), now))
            if inverse is not None and inverse != name:
                tx.execute("INSERT INTO relation_types (name, inverse, symmetric, created_at)"
                           " VALUES (?, ?, 0, ?)", (inverse, name, now))
            return {**wanted, "uses": 0}, True

        return await self.db.write(create_type)

    # -- the entities store's listener ---------------------------------------------------
    def entity_deleted(self, tx: WriteTx, entity_id: str, deleted: bool) -> None:
        """Inside the entity's delete (or restore) transaction: hide (or show again) its
        relationships, and keep the type use counts to what is shown."""
        if deleted:
            tx.execute("INSERT OR IGNORE INTO relationships_deleted_entities (entity_id)"
                       " VALUES (?)", (entity_id,))
        else:
            tx.execute("DELETE FROM relationships_deleted_entities WHERE entity_id = ?",
                       (entity_id,))
        # the rows whose visibility flips: shown ones on delete, hidden once on restore
        flips = 0 if deleted else 1
        for end in ("from_entity_id", "to_entity_id"):
            for kind, count in tx.fetchall(
                    f"SELECT type, count(*) FROM relationships WHERE {end} = ?"
                    " AND deleted_at IS NULL AND hidden = ? GROUP BY type",
                    (entity_id, flips)):
                _count_use(tx, kind, -count if deleted else count)
            tx.execute(f"UPDATE relationships SET hidden = max(hidden + ?, 0)"
                       f" WHERE {end} = ? AND deleted_at IS NULL",
                       (1 if deleted else -1, entity_id))


def check_ends(from_id: str, to_id: str) -> None:
    if from_id == to_id:
        raise ValidationFailed(
            "an entity cannot have a relationship with itself", code="self_relationship",
            details=[{"path": "$.to_entity_id", "message": "must differ from from_entity_id"}])


def _gone(missing: list[tuple[str, str]]) -> ValidationFailed:
    which = ", ".join(f"{path[2:]} {entity_id!r}" for path, entity_id in missing)
    return ValidationFailed(
        f"no live entity with id: {which}", code="entity_not_found",
        details=[{"path": path, "message": f"no live entity with id {entity_id!r}"}
                 for path, entity_id in missing])


def _type_row(tx: WriteTx, name: str) -> dict[str, Any] | None:
    row = tx.fetchone("SELECT t.name, t.inverse, t.symmetric, t.uses + coalesce(i.uses, 0)"
                      " FROM relation_types t LEFT JOIN relation_types i ON"
                      " i.name = t.inverse AND i.name != t.name WHERE t.name = ?", (name,))
    if row is None:
        return None
    return {"name": row[0], "inverse": row[1], "symmetric": bool(row[2]), "uses": row[3]}


def _type_exists(existing: dict[str, Any]) -> Conflict:
    return Conflict(
        f"relation type {existing['name']!r} already exists (inverse "
        f"{existing['inverse']!r}, symmetric {str(existing['symmetric']).lower()})",
        code="relation_type_exists", details=[existing])


def _type_for(tx: WriteTx, name: str, now: str) -> dict[str, Any]:
    """The registry row of ``name``, created on first use (no inverse, not symmetric)."""
    if not TYPE_NAME.match(name):
        raise ValidationFailed(f"type {name!r} is not {TYPE_RULE}", code="invalid_type_name",
                               details=[{"path": "$.type", "message": f"expected {TYPE_RULE}"}])
    found = _type_row(tx, name)
    if found is not None:
        return found
    tx.execute("INSERT INTO relation_types (name, inverse, symmetric, created_at)"
               " VALUES (?, NULL, 0, ?)", (name, now))
    return {"name": name, "inverse": None, "symmetric": False, "uses": 0}


def _refuse_duplicate(tx: WriteTx, same: tuple[str, str, str], but: str | None = None) -> None:
    row = tx.fetchone("SELECT relationship_id, from_entity_id, to_entity_id, type"
                      " FROM relationships WHERE same_type = ? AND same_a = ? AND same_b = ?"
                      " AND deleted_at IS NULL", same)
    if row is not None and row[0] != but:
        raise Conflict(
            f"this relationship exists already: {row[1]} {row[3]} {row[2]}"
            f" (relationship {row[0]})", code="relationship_exists",
            details=[{"relationship_id": row[0], "from_entity_id": row[1],
                      "to_entity_id": row[2], "type": row[3]}])


def _count_use(tx: WriteTx, name: str, delta: int) -> None:
    tx.execute("UPDATE relation_types SET uses = max(uses + ?, 0) WHERE name = ?",
               (delta, name))


def _decode_type_cursor(cursor: str) -> tuple[int, str]:
    try:
        tag, used, name = msgspec.json.decode(
            base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, TypeError, msgspec.DecodeError):
        tag, used, name = None, None, None
    if tag != "type" or type(used) is not int or not 0 <= used <= SQL_INT_MAX \
            or not isinstance(name, str):
        raise BadRequest("cursor is not one this server issued", code="invalid_cursor")
    return used, name


def _visible(tx: WriteTx, relationship_id: str) -> Any:
    """The row of a relationship that is neither deleted nor hidden; else 404."""
    found = tx.fetchone(f"SELECT {_COLUMNS} FROM relationships WHERE relationship_id = ?"
                        " AND deleted_at IS NULL AND hidden = 0", (relationship_id,))
    if found is None:
        raise not_found(relationship_id)
    return found

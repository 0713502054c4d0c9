"""The entities table: SQL only.  Every write records its event in the same transaction."""

from __future__ import annotations

import base64
import hashlib
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import msgspec

from ff_plugin_sdk import BadRequest, NotFound
from kernel.clock import utc_now

SORTS = {
    "created_at": "created_at",
    "updated_at": "updated_at",
    "display_name": "display_name COLLATE NOCASE",
}
_TOKEN = re.compile(r"\w+", re.UNICODE)


def new_entity_id() -> str:
    """SHA-256 hex of 32 random bytes (DESIGN §4)."""
    return hashlib.sha256(os.urandom(32)).hexdigest()


def fts_query(q: str) -> str | None:
    """User text -> an FTS5 query: every word must match, the last one as a prefix.

    Words are extracted, so quotes, ``%``, ``*``, ``NEAR`` or ``-`` in user input are text,
    never syntax.  Returns None when nothing searchable is left (the search matches nothing).
    """
    words = _TOKEN.findall(q)
    if not words:
        return None
    return " ".join(f'"{w}"*' for w in words)


def _flatten_fields(fields: dict[str, Any]) -> str:
    parts = []
    for key, value in fields.items():
        parts.append(key)
        parts.append(value if isinstance(value, str) else msgspec.json.encode(value).decode())
    return " ".join(parts)


def encode_cursor(sort_by: str, order: str, key: Any, entity_id: str) -> str:
    raw = msgspec.json.encode([sort_by, order, key, entity_id])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, sort_by: str, order: str) -> tuple[Any, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        c_sort, c_order, key, entity_id = msgspec.json.decode(raw)
    except (ValueError, msgspec.DecodeError, TypeError) as exc:
        raise BadRequest("cursor is not one this server issued", code="invalid_cursor") from exc
    if (c_sort, c_order) != (sort_by, order) or not isinstance(entity_id, str):
        raise BadRequest("cursor belongs to another sort order; start again without it",
                         code="invalid_cursor")
    return key, entity_id


@dataclass
class ListResult:
    rows: list[Any]
    next_cursor: str | None
    total: int | None


def _row_to_dict(row: Any) -> dict[str, Any]:
    return {
        "entity_id": row["entity_id"],
        "display_name": row["display_name"],
        "aliases": msgspec.json.decode(row["aliases"]),
        "tags": msgspec.json.decode(row["tags"]),
        "fields": msgspec.json.decode(row["fields"]),
        "plugin_data": msgspec.json.decode(row["plugin_data"]),
        "primary_thumbnail_asset_id": row["primary_thumbnail_asset_id"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "deleted_at": row["deleted_at"],
    }


class EntityStore:
    def __init__(self, kernel: Any) -> None:
        self.kernel = kernel
        self.db = kernel.db

    # -- reads -------------------------------------------------------------------------
    async def get(self, entity_id: str, include_deleted: bool = False) -> dict[str, Any]:
        row = await self.db.fetchone("SELECT * FROM entities WHERE entity_id = ?", (entity_id,))
        if row is None or (row["deleted_at"] and not include_deleted):
            raise NotFound(f"no entity with id {entity_id!r}", code="entity_not_found")
        return _row_to_dict(row)

    async def list(
        self, *, limit: int = 50, cursor: str | None = None, offset: int | None = None,
        sort_by: str = "created_at", sort_order: str = "desc", q: str | None = None,
        tags: Iterable[str] = (), deleted: str = "exclude", include_total: bool = False,
    ) -> ListResult:
        """One page.  ``deleted`` is "exclude", "include" or "only"."""
        key_sql = SORTS[sort_by]
        where, params = [], []
        if deleted == "exclude":
            where.append("deleted_at IS NULL")
        elif deleted == "only":
            where.append("deleted_at IS NOT NULL")
        if q is not None and q.strip():
            match = fts_query(q)
            if match is None:
                return ListResult([], None, 0 if include_total else None)
            where.append("rowid IN (SELECT rowid FROM entities_fts WHERE entities_fts MATCH ?)")
            params.append(match)
        # tags are indexed casefolded: COLLATE NOCASE alone folds ASCII only ("É" != "é")
        for tag in dict.fromkeys(t.strip().casefold() for t in tags if t.strip()):
            where.append("entity_id IN (SELECT entity_id FROM entity_tags WHERE tag = ?)")
            params.append(tag)
        filters, filter_params = list(where), list(params)
        desc = sort_order == "desc"
        if cursor:
            key, last_id = decode_cursor(cursor, sort_by, sort_order)
            where.append(f"({key_sql}, entity_id) {'<' if desc else '>'} (?, ?)")
            params += [key, last_id]
        direction = "DESC" if desc else "ASC"
        sql = (f"SELECT * FROM entities {'WHERE ' + ' AND '.join(where) if where else ''}"
               f" ORDER BY {key_sql} {direction}, entity_id {direction} LIMIT ?")
        params.append(limit + 1)
        if offset and not cursor:
            sql += " OFFSET ?"
            params.append(offset)
        rows = await self.db.fetchall(sql, params)
        more = len(rows) > limit
        rows = rows[:limit]
        next_cursor = None
        if more and rows:
            last = rows[-1]
            next_cursor = encode_cursor(sort_by, sort_order, last[sort_by], last["entity_id"])
        total = None
        if include_total:
            count_sql = "SELECT count(*) AS n FROM entities"
            if filters:
                count_sql += " WHERE " + " AND ".join(filters)
            total = (await self.db.fetchone(count_sql, filter_params))["n"]
        return ListResult([_row_to_dict(r) for r in rows], next_cursor, total)

    async def all_tags(self, limit: int = 200) -> list[tuple[str, int]]:
        """The most used tags of live entities, for the tag filter."""
        rows = await self.db.fetchall(
            "SELECT t.tag AS tag, count(*) AS n FROM entity_tags t JOIN entities e"
            " ON e.entity_id = t.entity_id WHERE e.deleted_at IS NULL"
            " GROUP BY t.tag ORDER BY n DESC, t.tag LIMIT ?", (limit,))
        return [(r["tag"], r["n"]) for r in rows]

    # -- writes ------------------------------------------------------------------------
    async def _index(self, tx: Any, rowid: int, entity: dict[str, Any], replace: bool) -> None:
        if replace:
            await tx.execute("DELETE FROM entities_fts WHERE rowid = ?", (rowid,))
            await tx.execute("DELETE FROM entity_tags WHERE entity_id = ?",
                             (entity["entity_id"],))
        await tx.execute(
            "INSERT INTO entities_fts (rowid, display_name, aliases, tags, fields)"
            " VALUES (?, ?, ?, ?, ?)",
            (rowid, entity["display_name"], " ".join(entity["aliases"]),
             " ".join(entity["tags"]), _flatten_fields(entity["fields"])))
        if entity["tags"]:
            await tx.executemany(
                "INSERT OR IGNORE INTO entity_tags (entity_id, tag) VALUES (?, ?)",
                [(entity["entity_id"], t.casefold()) for t in entity["tags"]])

    async def create(self, entity: dict[str, Any]) -> dict[str, Any]:
        now = utc_now()
        entity = {**entity, "entity_id": new_entity_id(), "created_at": now,
                  "updated_at": now, "deleted_at": None}
        async with self.db.transaction() as tx:
            rowid = await tx.execute(
                "INSERT INTO entities (entity_id, display_name, aliases, tags, fields,"
                " plugin_data, primary_thumbnail_asset_id, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (entity["entity_id"], entity["display_name"], _j(entity["aliases"]),
                 _j(entity["tags"]), _j(entity["fields"]), _j(entity["plugin_data"]),
                 entity["primary_thumbnail_asset_id"], now, now))
            await self._index(tx, rowid, entity, replace=False)
            await self.kernel.events.record(tx, "entity.created", {
                "entity_id": entity["entity_id"], "display_name": entity["display_name"]})
        return entity

    async def update(self, entity_id: str, changes: dict[str, Any],
                     merges: dict[str, dict[str, Any]]) -> dict[str, Any]:
        """Replace ``changes`` keys; merge ``merges`` dicts by key (None removes a key)."""
        now = utc_now()
        async with self.db.transaction() as tx:
            row = await tx.fetchone("SELECT rowid, * FROM entities WHERE entity_id = ?",
                                    (entity_id,))
            if row is None or row["deleted_at"]:
                raise NotFound(f"no entity with id {entity_id!r}", code="entity_not_found")
            entity = _row_to_dict(row)
            changed = [k for k, v in changes.items() if entity[k] != v]
            entity.update(changes)
            for name, patch in merges.items():
                merged = dict(entity[name])
                for key, value in patch.items():
                    if value is None:
                        merged.pop(key, None)
                    else:
                        merged[key] = value
                if merged != entity[name]:
                    changed.append(name)
                entity[name] = merged
            if not changed:
                return entity
            entity["updated_at"] = now
            await tx.execute(
                "UPDATE entities SET display_name = ?, aliases = ?, tags = ?, fields = ?,"
                " plugin_data = ?, primary_thumbnail_asset_id = ?, updated_at = ?"
                " WHERE entity_id = ?",
                (entity["display_name"], _j(entity["aliases"]), _j(entity["tags"]),
                 _j(entity["fields"]), _j(entity["plugin_data"]),
                 entity["primary_thumbnail_asset_id"], now, entity_id))
            await self._index(tx, row["rowid"], entity, replace=True)
            await self.kernel.events.record(tx, "entity.updated", {
                "entity_id": entity_id, "changed": sorted(changed)})
        return entity

    async def set_deleted(self, entity_id: str, deleted: bool) -> dict[str, Any]:
        """Soft-delete or restore; restoring a live entity changes nothing."""
        now = utc_now()
        async with self.db.transaction() as tx:
            row = await tx.fetchone("SELECT * FROM entities WHERE entity_id = ?", (entity_id,))
            if row is None or (deleted and row["deleted_at"]):
                raise NotFound(f"no entity with id {entity_id!r}", code="entity_not_found")
            entity = _row_to_dict(row)
            if not deleted and not row["deleted_at"]:
                return entity
            entity["deleted_at"] = now if deleted else None
            entity["updated_at"] = now
            await tx.execute(
                "UPDATE entities SET deleted_at = ?, updated_at = ? WHERE entity_id = ?",
                (entity["deleted_at"], now, entity_id))
            await self.kernel.events.record(
                tx, "entity.deleted" if deleted else "entity.restored", {"entity_id": entity_id})
        return entity


def _j(value: Any) -> str:
    return msgspec.json.encode(value).decode()

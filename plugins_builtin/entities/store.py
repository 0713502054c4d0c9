"""The entities table: SQL only.  Every write records its event in the same transaction."""

from __future__ import annotations

import base64
import hashlib
import os
import re
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from ff_plugin_sdk import (
    SQL_INT_MAX,
    BadRequest,
    Kernel,
    NotFound,
    PreconditionFailed,
    ValidationFailed,
    WriteTx,
)
from ff_plugin_sdk.jsontext import parse_json

#: sort name -> (SQL key, row column, whether the key alone is unique).  Creation order is
#: ``seq``: ``created_at`` is taken inside the writer's transaction, so the two agree.
SORTS = {
    "created_at": ("seq", "seq", True),
    "updated_at": ("updated_at", "updated_at", False),
    "display_name": ("display_name COLLATE NOCASE", "display_name", False),
}
_TOKEN = re.compile(r"\w+", re.UNICODE)
_SEARCH = "e.seq IN (SELECT rowid FROM entities_fts WHERE entities_fts MATCH ?)"
#: each tag is one condition; SQLite refuses an expression tree deeper than 1000
MAX_TAG_FILTERS = 50
#: the assets plugin's store, asked whether a thumbnail is an image
ASSETS_SERVICE = "assets.store"


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
        c_sort, c_order, key, entity_id = parse_json(raw)
    except (ValueError, TypeError) as exc:  # NotJson is a ValueError
        raise BadRequest("cursor is not one this server issued", code="invalid_cursor") from exc
    if (c_sort, c_order) != (sort_by, order):
        raise BadRequest("cursor belongs to another sort order; start again without it",
                         code="invalid_cursor")
    # the key is bound into SQL: it must be what this sort issues (seq: an integer)
    if SORTS[sort_by][2]:
        well_formed = type(key) is int and abs(key) <= SQL_INT_MAX
    else:
        well_formed = isinstance(key, str)
    if not (well_formed and isinstance(entity_id, str)):
        raise BadRequest("cursor is not one this server issued", code="invalid_cursor")
    return key, entity_id


@dataclass
class ListResult:
    rows: list[Any]
    next_cursor: str | None
    total: int | None


#: what every read selects, in this order: rows are unpacked by position (a name lookup
#: on a row scans its column names, and a page has 50 rows of 12 columns)
def _columns(t: str = "") -> str:
    return (f"{t}seq, {t}entity_id, {t}display_name, {t}created_at, {t}updated_at,"
            f" {t}deleted_at, {t}version, {t}primary_thumbnail_asset_id, '[' || {t}aliases"
            f" || ',' || {t}tags || ',' || {t}fields || ',' || {t}plugin_data || ']' AS json")


COLUMNS = _columns()
_JSON_PARTS = msgspec.json.Decoder(tuple[list[str], list[str], dict[str, Any],
                                         dict[str, Any]])


def _row_to_dict(row: Any) -> dict[str, Any]:
    _, entity_id, name, created, updated, deleted, version, thumb, json = row
    aliases, tags, fields, plugin_data = _JSON_PARTS.decode(json)
    return {"entity_id": entity_id, "display_name": name, "aliases": aliases, "tags": tags,
            "fields": fields, "plugin_data": plugin_data, "primary_thumbnail_asset_id": thumb,
            "created_at": created, "updated_at": updated, "deleted_at": deleted,
            "version": version}


#: called inside the transaction that deletes (True) or restores (False) an entity
DeleteListener = Callable[[WriteTx, str, bool], None]


class EntityStore:
    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self.db = kernel.db
        self._delete_listeners: list[DeleteListener] = []

    def on_delete(self, listener: DeleteListener) -> None:
        """Run ``listener(tx, entity_id, deleted)`` in every delete and restore transaction,
        so another plugin's rows about the entity change with it, atomically (the
        relationships plugin hides an entity's relationships this way)."""
        self._delete_listeners.append(listener)

    # -- reads -------------------------------------------------------------------------
    async def get(self, entity_id: str, include_deleted: bool = False) -> dict[str, Any]:
        row = await self.db.fetchone(f"SELECT {COLUMNS} FROM entities WHERE entity_id = ?",
                                     (entity_id,))
        if row is None or (row["deleted_at"] and not include_deleted):
            raise NotFound(f"no entity with id {entity_id!r}", code="entity_not_found")
        return _row_to_dict(row)

    async def live_ids(self, entity_ids: Sequence[str]) -> set[str]:
        """Which of ``entity_ids`` are entities that are not deleted (for other plugins)."""
        found: set[str] = set()
        for start in range(0, len(entity_ids), 500):
            chunk = entity_ids[start:start + 500]
            rows = await self.db.fetchall(
                f"SELECT entity_id FROM entities WHERE deleted_at IS NULL AND entity_id IN"
                f" ({','.join('?' * len(chunk))})", chunk)
            found.update(row[0] for row in rows)
        return found

    async def list(
        self, *, limit: int = 50, cursor: str | None = None, offset: int | None = None,
        sort_by: str = "created_at", sort_order: str = "desc", q: str | None = None,
        tags: Iterable[str] = (), deleted: str = "exclude", include_total: bool = False,
    ) -> ListResult:
        """One page.  ``deleted`` is "exclude", "include" or "only"."""
        key_sql, key_column, unique = SORTS[sort_by]
        match = None
        if q is not None and q.strip():
            match = fts_query(q)
            if match is None:  # nothing searchable in it: matches nothing
                return ListResult([], None, 0 if include_total else None)
        # the conditions that select rows; the cursor's is added for the page only
        conds: list[str] = []
        params: list[Any] = []
        if match is not None:
            conds.append(_SEARCH)
            params.append(match)
        if deleted != "include":
            conds.append(f"e.deleted_at IS {'' if deleted == 'exclude' else 'NOT '}NULL")
        await self._tag_filters(tags, conds, params)

        source, key = "entities e", f"e.{key_sql}"
        page_conds = list(conds)
        if match is not None and sort_by == "created_at":
            # The full-text index yields rows in creation order (rowid = seq), so a broad
            # search stops after one page instead of sorting every match.
            source, key = "entities_fts f JOIN entities e ON e.seq = f.rowid", "f.rowid"
            page_conds[0] = "entities_fts MATCH ?"
        desc = sort_order == "desc"
        page_params = list(params)
        if cursor:
            after, last_id = decode_cursor(cursor, sort_by, sort_order)
            op = "<" if desc else ">"
            if unique:
                page_conds.append(f"{key} {op} ?")
                page_params.append(after)
            else:
                page_conds.append(f"({key}, e.entity_id) {op} (?, ?)")
                page_params += [after, last_id]
        direction = "DESC" if desc else "ASC"
        order = f"{key} {direction}" + ("" if unique else f", e.entity_id {direction}")
        sql = (f"SELECT {_columns('e.')} FROM {source}{_where(page_conds)}"
               f" ORDER BY {order} LIMIT ?")
        page_params.append(limit + 1)
        if offset and not cursor:
            sql += " OFFSET ?"
            page_params.append(offset)
        rows = await self.db.fetchall(sql, page_params)
        next_cursor = None
        if len(rows) > limit:
            rows = rows[:limit]
            last = rows[-1]
            next_cursor = encode_cursor(sort_by, sort_order, last[key_column], last["entity_id"])
        total = None
        if include_total:
            total = (await self.db.fetchone(
                f"SELECT count(*) AS n FROM entities e{_where(conds)}", params))["n"]
        return ListResult([_row_to_dict(r) for r in rows], next_cursor, total)

    async def _tag_filters(self, tags: Iterable[str], where: list[str],
                           params: list[Any]) -> None:
        """One condition per tag, shaped by how common the tag is.

        A rare tag drives the query (look its few entities up, then sort them); a common one
        is checked row by row while the sort index is walked, which finds a page after a few
        hundred rows.  Each plan alone is slow where the other is fast (0.2 s at 1M rows).
        """
        wanted = list(dict.fromkeys(t.strip().casefold() for t in tags if t.strip()))
        if not wanted:
            return
        if len(wanted) > MAX_TAG_FILTERS:
            raise ValidationFailed(
                f"filter by at most {MAX_TAG_FILTERS} tags at once; got {len(wanted)}",
                details=[{"path": "query.tag", "message": f"at most {MAX_TAG_FILTERS} tags"}])
        marks = ",".join("?" * len(wanted))
        rows = await self.db.fetchall(
            "SELECT tag, live, (SELECT max(seq) FROM entities) AS newest"
            f" FROM entity_tag_counts WHERE tag IN ({marks})", wanted)
        counts = {r["tag"]: r["live"] for r in rows}
        newest = (rows[0]["newest"] or 0) if rows else 0
        # break-even where looking up n rows costs what walking newest/n * page rows does
        common = max(200, int((13 * newest) ** 0.5))
        for tag in wanted:
            if counts.get(tag, 0) > common:
                where.append("EXISTS (SELECT 1 FROM entity_tags t"
                             " WHERE t.tag = ? AND t.entity_id = e.entity_id)")
            else:
                where.append("e.entity_id IN (SELECT entity_id FROM entity_tags WHERE tag = ?)")
            params.append(tag)

    async def all_tags(self, limit: int = 200) -> list[tuple[str, int]]:
        """The most used tags of live entities, for the tag filter."""
        rows = await self.db.fetchall(
            "SELECT tag, live FROM entity_tag_counts WHERE live > 0"
            " ORDER BY live DESC, tag LIMIT ?", (limit,))
        return [(r["tag"], r["live"]) for r in rows]

    async def check_thumbnail(self, asset_id: str | None) -> None:
        """A primary thumbnail must be a live image asset (asked of the assets plugin)."""
        if asset_id is None:
            return
        assets = self.kernel.services.get(ASSETS_SERVICE)
        asset = await assets.find(asset_id) if assets is not None else None
        if asset is None or asset["deleted_at"]:
            why = f"no asset with id {asset_id!r}"
        elif not asset["mime_type"].startswith("image/"):
            why = f"asset {asset_id} is {asset['mime_type']}, not an image"
        else:
            return
        raise ValidationFailed(f"primary_thumbnail_asset_id: {why}", details=[
            {"path": "$.primary_thumbnail_asset_id", "message": why}])

    # -- writes: each is one transaction function, run on the writer in one hop ----------
    async def create(self, entity: dict[str, Any]) -> dict[str, Any]:
        await self.check_thumbnail(entity.get("primary_thumbnail_asset_id"))

        def create(tx: WriteTx) -> dict[str, Any]:
            # stamped on the writer, so created_at order is seq order
            now = self.kernel.now()
            row = {**entity, "entity_id": new_entity_id(), "created_at": now,
                   "updated_at": now, "deleted_at": None, "version": 1}
            seq = tx.execute(
                "INSERT INTO entities (entity_id, display_name, aliases, tags, fields,"
                " plugin_data, primary_thumbnail_asset_id, created_at, updated_at, version)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1)",
                (row["entity_id"], row["display_name"], _j(row["aliases"]), _j(row["tags"]),
                 _j(row["fields"]), _j(row["plugin_data"]),
                 row["primary_thumbnail_asset_id"], now, now))
            _index(tx, seq, row)
            tx.event("entity.created", {"entity_id": row["entity_id"],
                                        "display_name": row["display_name"]})
            return row

        return await self.db.write(create)

    async def update(self, entity_id: str, changes: dict[str, Any],
                     merges: dict[str, dict[str, Any]],
                     if_match: Collection[int] | None = None) -> dict[str, Any]:
        """Replace ``changes`` keys; merge ``merges`` dicts by key (None removes a key).

        ``if_match``: refuse (412) unless the entity is at one of these versions.
        """
        await self.check_thumbnail(changes.get("primary_thumbnail_asset_id"))

        def update(tx: WriteTx) -> dict[str, Any]:
            row = _live_row(tx, entity_id, if_match)
            entity = _row_to_dict(row)
            old_tags = entity["tags"]
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
            entity["updated_at"] = self.kernel.now()
            entity["version"] += 1
            tx.execute(
                "UPDATE entities SET display_name = ?, aliases = ?, tags = ?, fields = ?,"
                " plugin_data = ?, primary_thumbnail_asset_id = ?, updated_at = ?,"
                " version = ? WHERE entity_id = ?",
                (entity["display_name"], _j(entity["aliases"]), _j(entity["tags"]),
                 _j(entity["fields"]), _j(entity["plugin_data"]),
                 entity["primary_thumbnail_asset_id"], entity["updated_at"],
                 entity["version"], entity_id))
            _index(tx, row["seq"], entity, old_tags)
            tx.event("entity.updated", {"entity_id": entity_id, "changed": sorted(changed)})
            return entity

        return await self.db.write(update)

    async def offer_thumbnail(self, entity_id: str, asset_id: str) -> bool:
        """Make ``asset_id`` the entity's primary thumbnail unless it already has one (for
        the thumbnails plugin); returns whether it was set."""
        await self.check_thumbnail(asset_id)

        def offer(tx: WriteTx) -> bool:
            now = self.kernel.now()
            if not tx.changes(
                    "UPDATE entities SET primary_thumbnail_asset_id = ?, updated_at = ?,"
                    " version = version + 1 WHERE entity_id = ? AND deleted_at IS NULL"
                    " AND primary_thumbnail_asset_id IS NULL", (asset_id, now, entity_id)):
                return False
            tx.event("entity.updated", {"entity_id": entity_id,
                                        "changed": ["primary_thumbnail_asset_id"]})
            return True

        return await self.db.write(offer)

    async def forget_thumbnail(self, asset_id: str) -> int:
        """The asset was deleted: entities showing it as their primary thumbnail show none
        (rather than a broken picture).  Returns how many changed."""
        def forget(tx: WriteTx) -> int:
            now = self.kernel.now()
            rows = tx.fetchall("SELECT entity_id FROM entities"
                               " WHERE primary_thumbnail_asset_id = ?", (asset_id,))
            for (entity_id,) in rows:
                tx.execute("UPDATE entities SET primary_thumbnail_asset_id = NULL,"
                           " updated_at = ?, version = version + 1 WHERE entity_id = ?",
                           (now, entity_id))
                tx.event("entity.updated", {"entity_id": entity_id,
                                            "changed": ["primary_thumbnail_asset_id"]})
            return len(rows)

        return await self.db.write(forget)

    async def set_deleted(self, entity_id: str, deleted: bool,
                          if_match: Collection[int] | None = None) -> dict[str, Any]:
        """Soft-delete or restore; restoring a live entity changes nothing."""
        def set_deleted(tx: WriteTx) -> dict[str, Any]:
            row = tx.fetchone(f"SELECT {COLUMNS} FROM entities WHERE entity_id = ?", (entity_id,))
            if row is None or (deleted and row["deleted_at"]):
                raise NotFound(f"no entity with id {entity_id!r}", code="entity_not_found")
            _check_version(row, if_match)
            entity = _row_to_dict(row)
            if not deleted and not row["deleted_at"]:
                return entity
            now = self.kernel.now()
            entity["deleted_at"] = now if deleted else None
            entity["updated_at"] = now
            entity["version"] += 1
            tx.execute("UPDATE entities SET deleted_at = ?, updated_at = ?, version = ?"
                       " WHERE entity_id = ?",
                       (entity["deleted_at"], now, entity["version"], entity_id))
            _count_tags(tx, entity["tags"], -1 if deleted else +1)
            for listener in self._delete_listeners:
                listener(tx, entity_id, deleted)
            tx.event("entity.deleted" if deleted else "entity.restored",
                     {"entity_id": entity_id})
            return entity

        return await self.db.write(set_deleted)


def _check_version(row: Any, if_match: Collection[int] | None) -> None:
    if if_match is not None and row["version"] not in if_match:
        raise PreconditionFailed(
            f"entity {row['entity_id']!r} changed since you read it (it is at version "
            f"{row['version']}); read it again and retry",
            details=[{"current_version": row["version"]}])


def _live_row(tx: WriteTx, entity_id: str, if_match: Collection[int] | None) -> Any:
    row = tx.fetchone(f"SELECT {COLUMNS} FROM entities WHERE entity_id = ?", (entity_id,))
    if row is None or row["deleted_at"]:
        raise NotFound(f"no entity with id {entity_id!r}", code="entity_not_found")
    _check_version(row, if_match)
    return row


def _index(tx: WriteTx, seq: int, entity: dict[str, Any],
           old_tags: list[str] | None = None) -> None:
    """Full-text row, tag rows and live tag counts of a live entity; ``old_tags`` are the
    tags it had when it is being re-indexed."""
    if old_tags is not None:
        tx.execute("DELETE FROM entities_fts WHERE rowid = ?", (seq,))
        tx.execute("DELETE FROM entity_tags WHERE entity_id = ?", (entity["entity_id"],))
        _count_tags(tx, old_tags, -1)
    tx.execute(
        "INSERT INTO entities_fts (rowid, display_name, aliases, tags, fields)"
        " VALUES (?, ?, ?, ?, ?)",
        (seq, entity["display_name"], " ".join(entity["aliases"]),
         " ".join(entity["tags"]), _flatten_fields(entity["fields"])))
    if entity["tags"]:
        tx.executemany("INSERT OR IGNORE INTO entity_tags (entity_id, tag) VALUES (?, ?)",
                       [(entity["entity_id"], t) for t in _folded(entity["tags"])])
        _count_tags(tx, entity["tags"], +1)


def _where(conds: list[str]) -> str:
    return " WHERE " + " AND ".join(conds) if conds else ""


def _folded(tags: Iterable[str]) -> list[str]:
    """Tags as indexed: casefolded (NOCASE alone folds ASCII only), once each."""
    return list(dict.fromkeys(t.casefold() for t in tags))


def _count_tags(tx: WriteTx, tags: Iterable[str], delta: int) -> None:
    folded = _folded(tags)
    if not folded:
        return
    tx.executemany(
        "INSERT INTO entity_tag_counts (tag, live) VALUES (?, ?)"
        " ON CONFLICT (tag) DO UPDATE SET live = live + excluded.live",
        [(t, delta) for t in folded])


def _j(value: Any) -> str:
    return msgspec.json.encode(value).decode()

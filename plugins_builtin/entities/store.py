"""The entities table: SQL only.  Every write records its event in the same transaction."""

from __future__ import annotations

import base64
import re
import unicodedata
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from ff_plugin_sdk import (
    SQL_INT_MAX,
    BadRequest,
    Conflict,
    Kernel,
    NotFound,
    PreconditionFailed,
    ValidationFailed,
    WriteTx,
)
from ff_plugin_sdk.jsontext import parse_json
from plugins_builtin.entities.field_defs import (
    Defs,
    FieldDefs,
    checked_fields,
    index_entity,
    live_defs,
)
from plugins_builtin.entities.field_filters import (
    FieldFilter,
    common_threshold,
    field_conditions,
)
from plugins_builtin.entities.ids import new_id

#: sort name -> (SQL key, row column, whether the key alone is unique).  Creation order is
#: ``seq``: ``created_at`` is taken inside the writer's transaction, so the two agree.
SORTS = {
    "created_at": ("seq", "seq", True),
    "updated_at": ("updated_at", "updated_at", False),
    "display_name": ("name_key", "name_key", False),
}
_TOKEN = re.compile(r"\w+", re.UNICODE)
_SEARCH = "e.seq IN (SELECT rowid FROM entities_fts WHERE entities_fts MATCH ?)"
#: each tag is one condition; SQLite refuses an expression tree deeper than 1000
MAX_TAG_FILTERS = 50
#: the assets plugin's store, asked whether a thumbnail is an image
ASSETS_SERVICE = "assets.store"


new_entity_id = new_id


def name_key(name: str) -> str:
    """The ``display_name`` sort key: letters without case or accents first ("Émile" sorts
    with the E's), then the casefolded spelling, so equal bases keep one stable order."""
    folded = unicodedata.normalize("NFKD", name.casefold())
    base = "".join(c for c in folded if not unicodedata.combining(c))
    return base + "\x01" + unicodedata.normalize("NFC", folded)


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
            f" {t}deleted_at, {t}version, {t}primary_thumbnail_asset_id, {t}name_key,"
            f" '[' || {t}aliases || ',' || {t}tags || ',' || {t}fields || ',' ||"
            f" {t}plugin_data || ',' || {t}external_ids || ']' AS json")


COLUMNS = _columns()
_JSON_PARTS = msgspec.json.Decoder(tuple[list[str], list[str], dict[str, Any],
                                         dict[str, Any], dict[str, str]])


def _row_to_dict(row: Any) -> dict[str, Any]:
    _, entity_id, name, created, updated, deleted, version, thumb, _, json = row
    aliases, tags, fields, plugin_data, external_ids = _JSON_PARTS.decode(json)
    return {"entity_id": entity_id, "display_name": name, "aliases": aliases, "tags": tags,
            "fields": fields, "external_ids": external_ids, "plugin_data": plugin_data,
            "primary_thumbnail_asset_id": thumb, "created_at": created, "updated_at": updated,
            "deleted_at": deleted, "version": version}


#: called inside the transaction that deletes (True) or restores (False) an entity
DeleteListener = Callable[[WriteTx, str, bool], None]


class EntityStore:
    def __init__(self, kernel: Kernel, fields: FieldDefs) -> None:
        self.kernel = kernel
        self.db = kernel.db
        self.fields = fields
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

    async def names(self, entity_ids: Sequence[str]) -> dict[str, str]:
        """``{entity_id: display_name}`` of the live ones among ``entity_ids``."""
        found: dict[str, str] = {}
        for start in range(0, len(entity_ids), 500):
            chunk = entity_ids[start:start + 500]
            rows = await self.db.fetchall(
                f"SELECT entity_id, display_name FROM entities WHERE deleted_at IS NULL"
                f" AND entity_id IN ({','.join('?' * len(chunk))})", chunk)
            found.update((row[0], row[1]) for row in rows)
        return found

    async def list(
        self, *, limit: int = 50, cursor: str | None = None, offset: int | None = None,
        sort_by: str = "created_at", sort_order: str = "desc", q: str | None = None,
        tags: Iterable[str] = (), deleted: str = "exclude", include_total: bool = False,
        field_filters: Sequence[FieldFilter] = (), external_id: tuple[str, str] | None = None,
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
        # the newest seq sizes the library for the plans below: read once, when one needs it
        newest = 0
        if field_filters or (match is not None and sort_by != "created_at"):
            newest = (await self.db.fetchone("SELECT max(seq) AS n FROM entities"))["n"] or 0
        if match is not None:
            conds.append(await self._search_condition(match, sort_by, newest))
            params.append(match)
        if deleted != "include":
            conds.append(f"e.deleted_at IS {'' if deleted == 'exclude' else 'NOT '}NULL")
        await self._tag_filters(tags, conds, params)
        if field_filters:
            await field_conditions(self.db, self.fields.definitions("entity"), field_filters,
                                   conds, params, newest=newest, sort_by=sort_by,
                                   rows_wanted=(offset or 0) + limit + 1)
        if external_id is not None:
            conds.append("e.entity_id IN (SELECT entity_id FROM entity_external_ids"
                         " WHERE namespace = ? AND value = ?)")
            params += list(external_id)

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
            total = await self._total(conds, params, deleted)
        return ListResult([_row_to_dict(r) for r in rows], next_cursor, total)

    async def _search_condition(self, match: str, sort_by: str, newest: int) -> str:
        """The full-text condition, shaped by how many entities match when the page is
        sorted by something other than creation order.

        A few matches drive the query (look them up, sort them).  Many are collected once
        and the sort index is walked, each row checked against them (the ``+`` keeps SQLite
        from driving the query by the matches): "ma" at 1M entities matches 240,000, and
        looking each of them up to sort them takes 0.2-0.9 s instead of 35 ms.
        """
        if sort_by == "created_at":
            return _SEARCH  # the full-text index yields creation order itself
        common = common_threshold(newest)
        row = await self.db.fetchone(
            "SELECT count(*) AS n FROM (SELECT 1 FROM entities_fts WHERE entities_fts MATCH ?"
            " LIMIT ?)", (match, common + 1))
        return "+" + _SEARCH if row["n"] > common else _SEARCH

    async def _total(self, conds: list[str], params: list[Any], deleted: str) -> int:
        """How many rows ``conds`` select; without a filter, the count the triggers keep
        (counting a million rows takes a tenth of a second)."""
        if params:
            row = await self.db.fetchone(
                f"SELECT count(*) AS n FROM entities e{_where(conds)}", params)
            return int(row["n"])
        want = {"exclude": (0,), "only": (1,), "include": (0, 1)}[deleted]
        row = await self.db.fetchone(
            "SELECT coalesce(sum(n), 0) AS n FROM entity_counts WHERE deleted IN"
            f" ({','.join('?' * len(want))})", want)
        return int(row["n"])

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
        common = common_threshold(newest)
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
            return insert_entity(tx, self.kernel.now(), live_defs(tx, "entity"), entity)

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
            return update_entity(tx, self.kernel.now(), live_defs(tx, "entity"), row,
                                 changes, merges)[0]

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
        """Soft-delete or restore; restoring a live entity changes nothing.  A deleted
        entity's external ids are free for others; restoring it takes them back (409 if
        another entity holds one meanwhile)."""
        def set_deleted(tx: WriteTx) -> dict[str, Any]:
            row = tx.fetchone(f"SELECT {COLUMNS} FROM entities WHERE entity_id = ?", (entity_id,))
            if row is None or (deleted and row["deleted_at"]):
                raise NotFound(f"no entity with id {entity_id!r}", code="entity_not_found")
            _check_version(row, if_match)
            entity = _row_to_dict(row)
            if not deleted and not row["deleted_at"]:
                return entity
            if not deleted:
                _check_external_ids(tx, entity_id, entity["external_ids"])
            now = self.kernel.now()
            entity["deleted_at"] = now if deleted else None
            entity["updated_at"] = now
            entity["version"] += 1
            tx.execute("UPDATE entities SET deleted_at = ?, updated_at = ?, version = ?"
                       " WHERE entity_id = ?",
                       (entity["deleted_at"], now, entity["version"], entity_id))
            tx.executemany("UPDATE entity_external_ids SET live = ? WHERE namespace = ?"
                           " AND value = ? AND entity_id = ?",
                           [(0 if deleted else 1, ns, v, entity_id)
                            for ns, v in entity["external_ids"].items()])
            _count_tags(tx, entity["tags"], -1 if deleted else +1)
            for listener in self._delete_listeners:
                listener(tx, entity_id, deleted)
            tx.event("entity.deleted" if deleted else "entity.restored",
                     {"entity_id": entity_id})
            return entity

        return await self.db.write(set_deleted)


# -- transaction steps, shared by the single writes and bulk upsert ---------------------
class SearchRows:
    """Full-text rows to write, by seq, collected over a batch and written after its other
    rows.  SQLite (3.40) flushes FTS5's pending terms at every statement savepoint, so a
    full-text insert between a batch's other writes made the next ``INSERT INTO entities``
    flush it: about 110 of that insert's 130 µs."""

    def __init__(self) -> None:
        #: rows stored before the batch, to delete first
        self.stale: set[int] = set()
        self.rows: dict[int, tuple[str, str, str, str]] = {}

    def put(self, seq: int, entity: dict[str, Any], *, stored: bool) -> None:
        """``entity`` is to be searched as it is now; ``stored``: it has a row already (one
        this batch put is replaced in place)."""
        if stored and seq not in self.rows:
            self.stale.add(seq)
        self.rows[seq] = (entity["display_name"], " ".join(entity["aliases"]),
                          " ".join(entity["tags"]), _flatten_fields(entity["fields"]))

    def write(self, tx: WriteTx) -> None:
        if self.stale:
            tx.executemany("DELETE FROM entities_fts WHERE rowid = ?",
                           [(seq,) for seq in sorted(self.stale)])
        if self.rows:
            tx.executemany("INSERT INTO entities_fts (rowid, display_name, aliases, tags,"
                           " fields) VALUES (?, ?, ?, ?, ?)",
                           [(seq, *row) for seq, row in self.rows.items()])
        self.stale.clear()
        self.rows.clear()

def insert_entity(tx: WriteTx, now: str, defs: Defs, entity: dict[str, Any],
                  entity_id: str | None = None,
                  search: SearchRows | None = None) -> dict[str, Any]:
    """Insert a new live entity (``fields`` checked against ``defs``) with its indexes and
    its ``entity.created`` event; returns it as the API shows it.  ``entity_id``: a fresh
    id made by the caller (bulk upsert hands out a batch's ids in order); ``search``: a
    batch's full-text rows (:class:`SearchRows`)."""
    fields = checked_fields(defs, entity.get("fields", {}), touched=None)
    external_ids = entity.get("external_ids", {})
    row = {"display_name": entity["display_name"], "aliases": entity.get("aliases", []),
           "tags": entity.get("tags", []), "fields": fields, "external_ids": external_ids,
           "plugin_data": entity.get("plugin_data", {}),
           "primary_thumbnail_asset_id": entity.get("primary_thumbnail_asset_id"),
           "entity_id": entity_id or new_entity_id(), "created_at": now, "updated_at": now,
           "deleted_at": None, "version": 1}
    _check_external_ids(tx, row["entity_id"], external_ids)
    # stamped on the writer, so created_at order is seq order
    seq = tx.execute(
        "INSERT INTO entities (entity_id, display_name, name_key, aliases, tags, fields,"
        " external_ids, plugin_data, primary_thumbnail_asset_id, created_at, updated_at,"
        " version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)",
        (row["entity_id"], row["display_name"], name_key(row["display_name"]),
         _j(row["aliases"]), _j(row["tags"]), _j(fields), _j(external_ids),
         _j(row["plugin_data"]), row["primary_thumbnail_asset_id"], now, now))
    _index(tx, seq, row, defs, search=search)
    tx.event("entity.created", {"entity_id": row["entity_id"],
                                "display_name": row["display_name"]})
    return row


def update_entity(tx: WriteTx, now: str, defs: Defs, row: Any, changes: dict[str, Any],
                  merges: dict[str, dict[str, Any]], replace: bool = False,
                  search: SearchRows | None = None) -> tuple[dict[str, Any], bool]:
    """Apply ``changes`` (replaced keys) and ``merges`` (dicts merged by key, None removes)
    to a live entity row; ``replace`` checks every field as for a new entity.  Returns the
    entity and whether anything changed (nothing is written when nothing did)."""
    entity = _row_to_dict(row)
    old = dict(entity)
    entity.update(changes)
    for name, patch in merges.items():
        merged = dict(entity[name])
        for key, value in patch.items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
        entity[name] = merged
    if "fields" in merges or "fields" in changes:
        touched = None if replace else merges.get("fields", {})
        entity["fields"] = checked_fields(defs, entity["fields"], touched=touched)
    # judged after the values are typed: sending what is stored changes nothing
    changed = sorted(k for k in {*changes, *merges} if entity[k] != old[k])
    if not changed:
        return entity, False
    if "external_ids" in changed:
        _check_external_ids(tx, entity["entity_id"], entity["external_ids"])
    entity["updated_at"] = now
    entity["version"] += 1
    tx.execute(
        "UPDATE entities SET display_name = ?, name_key = ?, aliases = ?, tags = ?,"
        " fields = ?, external_ids = ?, plugin_data = ?, primary_thumbnail_asset_id = ?,"
        " updated_at = ?, version = ? WHERE entity_id = ?",
        (entity["display_name"], name_key(entity["display_name"]), _j(entity["aliases"]),
         _j(entity["tags"]), _j(entity["fields"]), _j(entity["external_ids"]),
         _j(entity["plugin_data"]), entity["primary_thumbnail_asset_id"],
         entity["updated_at"], entity["version"], entity["entity_id"]))
    _index(tx, row["seq"], entity, defs, old, search)
    tx.event("entity.updated", {"entity_id": entity["entity_id"], "changed": changed})
    return entity, True


def _check_external_ids(tx: WriteTx, entity_id: str, external_ids: dict[str, str]) -> None:
    """An external id names one live entity per namespace (409 naming the holder)."""
    for namespace, value in external_ids.items():
        holder = tx.fetchone("SELECT entity_id FROM entity_external_ids WHERE namespace = ?"
                             " AND value = ? AND live = 1 AND entity_id != ?",
                             (namespace, value, entity_id))
        if holder is not None:
            raise Conflict(
                f"external id {namespace}:{value} already belongs to entity "
                f"{holder['entity_id']}", code="external_id_taken",
                details=[{"path": f"$.external_ids.{namespace}",
                          "entity_id": holder["entity_id"]}])


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


def _index(tx: WriteTx, seq: int, entity: dict[str, Any], defs: Defs | None = None,
           old: dict[str, Any] | None = None, search: SearchRows | None = None) -> None:
    """Full-text row, tag rows and live tag counts, typed field values and external ids of
    a live entity; ``old`` is the entity as it was when it is being re-indexed (only what
    changed is rewritten).  ``search``: where a batch collects full-text rows (else the
    row is written at once)."""
    entity_id = entity["entity_id"]
    searched = ("display_name", "aliases", "tags", "fields")
    if old is None or any(old[k] != entity[k] for k in searched):
        rows = SearchRows() if search is None else search
        rows.put(seq, entity, stored=old is not None)
        if search is None:
            rows.write(tx)
    if old is None or old["tags"] != entity["tags"]:
        if old is not None:
            tx.execute("DELETE FROM entity_tags WHERE entity_id = ?", (entity_id,))
            _count_tags(tx, old["tags"], -1)
        if entity["tags"]:
            tx.executemany("INSERT OR IGNORE INTO entity_tags (entity_id, tag) VALUES (?, ?)",
                           [(entity_id, t) for t in _folded(entity["tags"])])
            _count_tags(tx, entity["tags"], +1)
    if defs and (old is None or old["fields"] != entity["fields"]):
        index_entity(tx, defs, seq, entity["fields"], fresh=old is None)
    external_ids = entity.get("external_ids", {})
    if old is None or old["external_ids"] != external_ids:
        if old is not None:
            tx.executemany("DELETE FROM entity_external_ids WHERE namespace = ? AND value = ?"
                           " AND entity_id = ?",
                           [(ns, v, entity_id) for ns, v in old["external_ids"].items()])
        if external_ids:
            tx.executemany("INSERT INTO entity_external_ids (namespace, value, entity_id)"
                           " VALUES (?, ?, ?)",
                           [(ns, v, entity_id) for ns, v in external_ids.items()])


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

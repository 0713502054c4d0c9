"""The entities table: its reads and single writes (an entity's rows: :mod:`.entity_rows`).
Every write records its event in the same transaction."""

from __future__ import annotations

import base64
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
from plugins_builtin.entities.entity_rows import (
    COLUMNS,
    check_external_ids,
    columns,
    count_tags,
    insert_entity,
    row_to_dict,
    update_entity,
)
from plugins_builtin.entities.field_defs import FieldDefs, live_defs
from plugins_builtin.entities.field_filters import (
    FieldFilter,
    common_threshold,
    field_conditions,
)

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


def fts_query(q: str) -> str | None:
    """User text -> an FTS5 query: every word must match, the last one as a prefix.

    Words are extracted, so quotes, ``%``, ``*``, ``NEAR`` or ``-`` in user input are text,
    never syntax.  Returns None when nothing searchable is left (the search matches nothing).
    """
    words = _TOKEN.findall(q)
    if not words:
        return None
    return " ".join(f'"{w}"*' for w in words)


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
        return row_to_dict(row)

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
        sql = (f"SELECT {columns('e.')} FROM {source}{_where(page_conds)}"
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
        return ListResult([row_to_dict(r) for r in rows], next_cursor, total)

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
            entity = row_to_dict(row)
            if not deleted and not row["deleted_at"]:
                return entity
            if not deleted:
                check_external_ids(tx, entity_id, entity["external_ids"])
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
            count_tags(tx, entity["tags"], -1 if deleted else +1)
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


def _where(conds: list[str]) -> str:
    return " WHERE " + " AND ".join(conds) if conds else ""

"""Asset rows and entity links: reads, one-hop write transactions, the blob collector."""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from ff_plugin_sdk import (
    SQL_INT_MAX,
    BadRequest,
    Kernel,
    NotFound,
    PreconditionFailed,
    WriteTx,
)
from ff_plugin_sdk.jsontext import parse_json
from ff_plugin_sdk.storage import StorageUnavailable


def _columns(t: str = "") -> str:
    """What every read selects, in this order: rows are unpacked by position."""
    return (f"{t}seq, {t}asset_id, {t}kind, {t}filename, {t}mime_type, {t}size, {t}provider,"
            f" {t}bucket, {t}blob_state, {t}owner_type, {t}owner_id, {t}derived_from_asset_id,"
            f" {t}version, {t}created_at, {t}updated_at, {t}deleted_at, {t}width, {t}height,"
            f" {t}duration_seconds, '[' ||"
            f" {t}extracted_metadata || ',' || {t}user_metadata || ',' || {t}plugin_data"
            f" || ']' AS json")


COLUMNS = _columns()
_JSON_PARTS = msgspec.json.Decoder(tuple[dict[str, Any], dict[str, Any], dict[str, Any]])
ENTITIES_SERVICE = "entities.store"


def row_to_dict(row: Any) -> dict[str, Any]:
    (seq, asset_id, kind, filename, mime, size, provider, bucket, blob_state, owner_type,
     owner_id, derived, version, created, updated, deleted, width, height, duration,
     json) = row
    extracted, user, plugin_data = _JSON_PARTS.decode(json)
    return {"asset_id": asset_id, "content_hash": asset_id, "kind": kind, "filename": filename,
            "mime_type": mime, "size": size, "size_bytes": size, "provider": provider,
            "storage": {"provider": provider, "bucket": bucket, "key": asset_id},
            "blob_present": blob_state != "removed",
            "owner": {"type": owner_type, "id": owner_id},
            "derived_from_asset_id": derived, "extracted_metadata": extracted,
            "user_metadata": user, "plugin_data": plugin_data, "version": version,
            "created_at": created, "updated_at": updated, "deleted_at": deleted,
            "width": width, "height": height, "duration_seconds": duration,
            "linked_entity_ids": [], "_seq": seq}


def encode_cursor(order: str, seq: int) -> str:
    return base64.urlsafe_b64encode(msgspec.json.encode([order, seq])).decode().rstrip("=")


def decode_cursor(cursor: str, order: str) -> int:
    try:
        c_order, seq = parse_json(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, TypeError) as exc:  # NotJson is a ValueError
        raise BadRequest("cursor is not one this server issued", code="invalid_cursor") from exc
    if c_order != order:
        raise BadRequest("cursor belongs to another sort order; start again without it",
                         code="invalid_cursor")
    if type(seq) is not int or abs(seq) > SQL_INT_MAX:
        raise BadRequest("cursor is not one this server issued", code="invalid_cursor")
    return seq


@dataclass
class Page:
    items: list[dict[str, Any]]
    next_cursor: str | None


@dataclass(kw_only=True)
class Filters:
    kind: str | None = None
    mime: str | None = None
    entity_id: str | None = None
    derived_from: str | None = None
    q: str | None = None
    deleted: str = "exclude"  # exclude | include | only


class KeyedLocks:
    """One asyncio lock per key, dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    def __call__(self, key: str) -> contextlib.AbstractAsyncContextManager[None]:
        return self.many((key,))

    @contextlib.asynccontextmanager
    async def many(self, keys: Iterable[str]) -> AsyncIterator[None]:
        """Hold the locks of all ``keys``, taken in sorted order (two holders of
        overlapping sets cannot deadlock); one context for a batch of thousands."""
        users: list[str] = []
        held: list[asyncio.Lock] = []
        try:
            for key in sorted(keys):
                lock, count = self._locks.get(key) or (asyncio.Lock(), 0)
                self._locks[key] = (lock, count + 1)
                users.append(key)
                await lock.acquire()
                held.append(lock)
            yield
        finally:
            for lock in held:
                lock.release()
            for key in users:
                lock, count = self._locks[key]
                if count == 1:
                    del self._locks[key]
                else:
                    self._locks[key] = (lock, count - 1)


def _j(value: Any) -> str:
    return msgspec.json.encode(value).decode()


def not_found(asset_id: str) -> NotFound:
    return NotFound(f"no asset with id {asset_id!r}", code="asset_not_found")


class AssetStore:
    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self.db = kernel.db
        #: held from "is this blob stored?" to the commit that answers it, by uploads and
        #: by the collector alike, so a collection never races an upload of the same bytes
        self.blob_locks = KeyedLocks()
        self.log = kernel.logger("assets")
        #: called once a delete has committed (the collector sets it to wake up)
        self.on_deleted: Callable[[], None] = lambda: None

    # -- entities (through the entities plugin's service) -------------------------------
    @property
    def entities(self) -> Any:
        return self.kernel.services.get(ENTITIES_SERVICE)

    async def require_entities(self, entity_ids: Iterable[str]) -> None:
        """404 ``entity_not_found`` unless every id is a live entity."""
        wanted = list(dict.fromkeys(entity_ids))
        if not wanted:
            return
        live = await self.live_entities(wanted)
        for entity_id in wanted:
            if entity_id not in live:
                raise NotFound(f"no entity with id {entity_id!r}", code="entity_not_found")

    async def live_entities(self, ids: Sequence[str]) -> set[str]:
        if self.entities is None:
            return set()
        return await self.entities.live_ids(ids)

    # -- reads ---------------------------------------------------------------------------
    async def find(self, asset_id: str) -> dict[str, Any] | None:
        """The row whatever its state (deleted too), without links."""
        row = await self.db.fetchone(f"SELECT {COLUMNS} FROM assets WHERE asset_id = ?",
                                     (asset_id,))
        return row_to_dict(row) if row is not None else None

    async def get(self, asset_id: str, include_deleted: bool = False) -> dict[str, Any]:
        asset = await self.find(asset_id)
        if asset is None or (asset["deleted_at"] and not include_deleted):
            raise not_found(asset_id)
        await self._with_links([asset])
        return asset

    async def _with_links(self, assets: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Fill ``linked_entity_ids`` (live entities only: a deleted entity's links come
        back when it is restored)."""
        if not assets:
            return assets
        ids = [a["asset_id"] for a in assets]
        marks = ",".join("?" * len(ids))
        rows = await self.db.fetchall(
            f"SELECT asset_id, entity_id FROM asset_links WHERE asset_id IN ({marks})"
            f" ORDER BY seq", ids)
        live = await self.live_entities(list({r[1] for r in rows}))
        by_asset: dict[str, list[str]] = {}
        for asset_id, entity_id in rows:
            if entity_id in live:
                by_asset.setdefault(asset_id, []).append(entity_id)
        for asset in assets:
            asset["linked_entity_ids"] = by_asset.get(asset["asset_id"], [])
        return assets

    async def list(self, filters: Filters, *, limit: int = 50, cursor: str | None = None,
                   order: str = "desc", offset: int | None = None) -> Page:
        where: list[str] = []
        params: list[Any] = []
        source = "assets"
        if filters.entity_id:
            source = "assets JOIN asset_links l ON l.asset_id = assets.asset_id"
            where.append("l.entity_id = ?")
            params.append(filters.entity_id)
        if filters.deleted == "exclude":
            where.append("assets.deleted_at IS NULL")
        elif filters.deleted == "only":
            where.append("assets.deleted_at IS NOT NULL")
        if filters.kind:
            where.append("assets.kind = ?")
            params.append(filters.kind)
        if filters.mime:
            # a prefix (``image/``) or a whole type, as a range so the index serves it
            where.append("assets.mime_type >= ? AND assets.mime_type < ?")
            params += [filters.mime, filters.mime + "\U0010ffff"]
        if filters.derived_from:
            where.append("assets.derived_from_asset_id = ?")
            params.append(filters.derived_from)
        if filters.q:
            where.append("instr(lower(assets.filename), lower(?)) > 0")
            params.append(filters.q)
        if cursor:
            seq = decode_cursor(cursor, order)
            where.append("assets.seq < ?" if order == "desc" else "assets.seq > ?")
            params.append(seq)
        sql = (f"SELECT {_columns('assets.')} FROM {source}"
               f"{' WHERE ' + ' AND '.join(where) if where else ''}"
               f" ORDER BY assets.seq {'DESC' if order == 'desc' else 'ASC'} LIMIT ?")
        params.append(limit + 1)
        if offset and not cursor:
            sql += " OFFSET ?"
            params.append(offset)
        rows = await self.db.fetchall(sql, params)
        items = [row_to_dict(r) for r in rows[:limit]]
        next_cursor = (encode_cursor(order, items[-1]["_seq"])
                       if len(rows) > limit and items else None)
        return Page(await self._with_links(items), next_cursor)

    # -- writes (each one transaction on the writer) --------------------------------------
    async def record(self, **fields: Any) -> tuple[dict[str, Any], bool]:
        """Write what an upload means for the row: a new asset, a revived one (same bytes
        uploaded after a delete), or the existing one with the request's kind, metadata and
        links applied.  Takes :class:`Recorded`'s fields; returns (asset row,
        deduplicated)."""
        item, now = Recorded(**fields), self.kernel.now()
        deduplicated = await self.db.write(lambda tx: record_in(tx, item, now))
        return await self.get(item.asset_id), deduplicated

    async def record_many(self, items: Sequence[Recorded],
                          also: Callable[[WriteTx], None] | None = None) -> list[bool]:
        """:meth:`record` for many assets in one transaction (with ``also``'s statements);
        returns whether each was deduplicated."""
        now = self.kernel.now()

        def record_many(tx: WriteTx) -> list[bool]:
            done = [record_in(tx, item, now) for item in items]
            if also is not None:
                also(tx)
            return done

        return await self.db.write(record_many)

    async def blob_states(self, asset_ids: Sequence[str]) -> dict[str, tuple[Any, ...]]:
        """(deleted_at, blob_state, provider) by asset id, for the ids that have a row."""
        ids = list(dict.fromkeys(asset_ids))
        if not ids:
            return {}
        rows = await self.db.fetchall(
            f"SELECT asset_id, deleted_at, blob_state, provider FROM assets"
            f" WHERE asset_id IN ({','.join('?' * len(ids))})", ids)
        return {r[0]: (r[1], r[2], r[3]) for r in rows}

    async def find_many(self, asset_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Rows by id (deleted ones too), with their live links."""
        if not asset_ids:
            return {}
        rows = await self.db.fetchall(
            f"SELECT {COLUMNS} FROM assets WHERE asset_id IN ({','.join('?' * len(asset_ids))})",
            list(asset_ids))
        assets = await self._with_links([row_to_dict(r) for r in rows])
        return {a["asset_id"]: a for a in assets}

    async def update(self, asset_id: str, changes: dict[str, Any],
                     merges: dict[str, dict[str, Any]],
                     if_match: frozenset[int] | None) -> dict[str, Any]:
        now = self.kernel.now()

        def update(tx: WriteTx) -> None:
            row = _live_row(tx, asset_id, if_match)
            sets = ["version = version + 1", "updated_at = ?"]
            values: list[Any] = [now]
            for key, value in changes.items():
                sets.append(f"{key} = ?")
                values.append(value)
            for key, patch in merges.items():
                current = msgspec.json.decode(row[key])
                for name, value in patch.items():
                    if value is None:
                        current.pop(name, None)
                    else:
                        current[name] = value
                sets.append(f"{key} = ?")
                values.append(_j(current))
            tx.execute(f"UPDATE assets SET {', '.join(sets)} WHERE asset_id = ?",
                       (*values, asset_id))
            tx.event("asset.updated", {"asset_id": asset_id,
                                       "changed": sorted([*changes, *merges])})

        await self.db.write(update)
        return await self.get(asset_id)

    async def set_extracted(self, asset_id: str, metadata: dict[str, Any], *,
                            width: int | None = None, height: int | None = None,
                            duration_seconds: float | None = None) -> bool:
        """Store what was read from the file (``extracted_metadata`` replaced whole) and the
        dimensions lifted from it; False when the asset is gone or deleted."""
        now = self.kernel.now()

        def set_extracted(tx: WriteTx) -> bool:
            if not tx.changes(
                    "UPDATE assets SET extracted_metadata = ?, width = ?, height = ?,"
                    " duration_seconds = ?, version = version + 1, updated_at = ?"
                    " WHERE asset_id = ? AND deleted_at IS NULL",
                    (_j(metadata), width, height, duration_seconds, now, asset_id)):
                return False
            tx.event("asset.updated", {"asset_id": asset_id, "changed": ["extracted_metadata"]})
            return True

        return await self.db.write(set_extracted)

    async def delete(self, asset_id: str, if_match: frozenset[int] | None) -> None:
        now = self.kernel.now()

        def delete(tx: WriteTx) -> None:
            _live_row(tx, asset_id, if_match)
            tx.execute("UPDATE assets SET deleted_at = ?, updated_at = ?,"
                       " version = version + 1 WHERE asset_id = ?", (now, now, asset_id))
            tx.event("asset.deleted", {"asset_id": asset_id})
            tx.after_commit(self.on_deleted)

        await self.db.write(delete)

    async def link(self, entity_id: str, asset_id: str, role: str | None) -> bool:
        """Link (or change the link's role); returns whether anything changed."""
        now = self.kernel.now()

        def link(tx: WriteTx) -> bool:
            _live_row(tx, asset_id, None)
            return _link(tx, entity_id, asset_id, role, now)

        return await self.db.write(link)

    async def unlink(self, entity_id: str, asset_id: str) -> bool:
        def unlink(tx: WriteTx) -> bool:
            if not tx.changes("DELETE FROM asset_links WHERE entity_id = ? AND asset_id = ?",
                              (entity_id, asset_id)):
                return False
            tx.event("asset.unlinked", {"asset_id": asset_id, "entity_id": entity_id})
            return True

        return await self.db.write(unlink)

    async def entity_links(self, entity_id: str, *, kind: str | None, limit: int,
                           cursor: str | None) -> tuple[list[tuple[dict[str, Any], str | None]],
                                                        str | None]:
        """An entity's live assets with each link's role, in link order."""
        where = ["l.entity_id = ?", "a.deleted_at IS NULL"]
        params: list[Any] = [entity_id]
        if kind:
            where.append("a.kind = ?")
            params.append(kind)
        if cursor:
            where.append("l.seq > ?")
            params.append(decode_cursor(cursor, "link"))
        rows = await self.db.fetchall(
            f"SELECT {_columns('a.')}, l.role, l.seq FROM asset_links l"
            f" JOIN assets a ON a.asset_id = l.asset_id"
            f" WHERE {' AND '.join(where)} ORDER BY l.seq LIMIT ?", (*params, limit + 1))
        items = [(row_to_dict(r[:-2]), r[-2]) for r in rows[:limit]]
        await self._with_links([a for a, _ in items])
        next_cursor = encode_cursor("link", rows[limit - 1][-1]) if len(rows) > limit else None
        return items, next_cursor

    # -- the collector ---------------------------------------------------------------------
    async def collect(self, batch: int = 500) -> int:
        """Delete the blobs of deleted assets; returns how many were removed.

        Each blob is re-checked under its lock: an upload of the same bytes that revived the
        asset meanwhile keeps it.  A provider that cannot be reached is tried next time; the
        sweep goes on past its blobs, in batches, to every other deleted asset.
        """
        removed = 0
        after: tuple[str, int] = ("", 0)
        # keyset on (deleted_at, seq): the order of the assets_collectable index
        while rows := await self.db.fetchall(
                "SELECT deleted_at, seq, asset_id FROM assets WHERE deleted_at IS NOT NULL"
                " AND blob_state != 'removed' AND (deleted_at, seq) > (?, ?)"
                " ORDER BY deleted_at, seq LIMIT ?", (*after, batch)):
            after = (rows[-1][0], rows[-1][1])
            removed += await self._collect([row[2] for row in rows])
        return removed

    async def _collect(self, asset_ids: list[str]) -> int:
        removed = 0
        for asset_id in asset_ids:
            async with self.blob_locks(asset_id):
                row = await self.db.fetchone(
                    "SELECT provider FROM assets WHERE asset_id = ? AND deleted_at IS NOT NULL"
                    " AND blob_state != 'removed'", (asset_id,))
                if row is None:
                    continue
                try:
                    await self.kernel.storage.provider(row[0]).delete(asset_id)
                except StorageUnavailable as exc:
                    self.log.warning("cannot remove the blob of deleted asset %s yet: %s",
                                     asset_id, exc.message)
                    continue
                await self.db.write(lambda tx, asset_id=asset_id: tx.execute(
                    "UPDATE assets SET blob_state = 'removed' WHERE asset_id = ?"
                    " AND deleted_at IS NOT NULL", (asset_id,)))
                removed += 1
        return removed


@dataclass(kw_only=True)
class Recorded:
    """What an ingest records for one asset (see :meth:`AssetStore.record`)."""

    asset_id: str
    size: int
    provider: str
    bucket: str | None
    kind: str
    filename: str
    mime_type: str
    meta: dict[str, Any] | None
    kind_given: bool
    derived_from: str | None
    links: Sequence[str]
    role: str | None
    store_blob: bool


def record_in(tx: WriteTx, item: Recorded, now: str) -> bool:
    """The statements of :meth:`AssetStore.record`; returns whether it was deduplicated."""
    row = tx.fetchone("SELECT deleted_at, blob_state, kind, user_metadata,"
                      " derived_from_asset_id FROM assets WHERE asset_id = ?",
                      (item.asset_id,))
    owner = ("entity", item.links[0]) if item.links else ("system", None)
    if row is None:
        tx.execute(
            "INSERT INTO assets (asset_id, kind, filename, mime_type, size, provider,"
            " bucket, owner_type, owner_id, derived_from_asset_id, user_metadata,"
            " created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (item.asset_id, item.kind, item.filename, item.mime_type, item.size, item.provider,
             item.bucket, *owner, item.derived_from, _j(item.meta or {}), now, now))
        tx.event("asset.created", {"asset_id": item.asset_id, "kind": item.kind,
                                   "size": item.size, "filename": item.filename,
                                   "provider": item.provider,
                                   "derived_from_asset_id": item.derived_from})
        deduplicated = False
    else:
        deleted, blob_state, old_kind, old_meta, old_derived = row
        revived = deleted is not None
        user = msgspec.json.decode(old_meta)
        sets = ["version = version + 1", "updated_at = ?"]
        values: list[Any] = [now]
        if item.store_blob or blob_state == "removed":
            sets += ["provider = ?", "bucket = ?", "blob_state = 'present'"]
            values += [item.provider, item.bucket]
        if revived:  # a fresh start: the deleted asset's name, metadata and links go
            sets += ["deleted_at = NULL", "filename = ?", "mime_type = ?"]
            values += [item.filename, item.mime_type]
            user = {}
            tx.execute("DELETE FROM asset_links WHERE asset_id = ?", (item.asset_id,))
        if item.kind_given or revived:
            sets.append("kind = ?")
            values.append(item.kind)
        if item.meta:
            user.update(item.meta)
        if item.meta or revived:
            sets.append("user_metadata = ?")
            values.append(_j(user))
        if item.derived_from and item.derived_from != old_derived:
            sets.append("derived_from_asset_id = ?")
            values.append(item.derived_from)
        changed = (revived or (item.kind_given and item.kind != old_kind) or bool(item.meta)
                   or (bool(item.derived_from) and item.derived_from != old_derived))
        if changed or item.store_blob:
            tx.execute(f"UPDATE assets SET {', '.join(sets)} WHERE asset_id = ?",
                       (*values, item.asset_id))
        if revived:
            tx.event("asset.created", {"asset_id": item.asset_id, "kind": item.kind,
                                       "size": item.size, "filename": item.filename,
                                       "provider": item.provider, "revived": True})
        elif changed:
            tx.event("asset.updated", {"asset_id": item.asset_id, "deduplicated": True})
        deduplicated = not revived
    for entity_id in dict.fromkeys(item.links):
        _link(tx, entity_id, item.asset_id, item.role, now)
    return deduplicated


def _live_row(tx: WriteTx, asset_id: str, if_match: frozenset[int] | None) -> Any:
    row = tx.fetchone("SELECT version, deleted_at, user_metadata, plugin_data FROM assets"
                      " WHERE asset_id = ?", (asset_id,))
    if row is None or row["deleted_at"] is not None:
        raise not_found(asset_id)
    if if_match is not None and row["version"] not in if_match:
        raise PreconditionFailed(f"asset {asset_id} changed since you read it (now version "
                                 f"{row['version']}); read it again")
    return row


def link_live(tx: WriteTx, entity_id: str, asset_ids: Sequence[str], now: str) -> None:
    """Link the live ones of ``asset_ids`` to ``entity_id`` (kept roles stay)."""
    ids = list(dict.fromkeys(asset_ids))
    for (asset_id,) in tx.fetchall(
            f"SELECT asset_id FROM assets WHERE deleted_at IS NULL"
            f" AND asset_id IN ({','.join('?' * len(ids))})", ids):
        _link(tx, entity_id, asset_id, None, now)


def _link(tx: WriteTx, entity_id: str, asset_id: str, role: str | None, now: str) -> bool:
    changed = tx.changes(
        "INSERT INTO asset_links (entity_id, asset_id, role, created_at) VALUES (?,?,?,?)"
        # a link without a role keeps the role it had
        " ON CONFLICT (entity_id, asset_id) DO UPDATE SET role = excluded.role"
        " WHERE excluded.role IS NOT NULL AND role IS NOT excluded.role",
        (entity_id, asset_id, role, now))
    if changed:
        tx.event("asset.linked", {"asset_id": asset_id, "entity_id": entity_id, "role": role})
    return bool(changed)

"""``POST /v1/entities/bulk-upsert``: create or update up to 10,000 entities in one request.

The spec leaves the rules open (§9.3); ours:

- an item is matched by ``entity_id`` when it has one (a missing or deleted entity is an
  error: ids are Core's to assign), else by any of its ``external_ids`` among live entities
  (two of them naming different entities is an error), else it creates an entity;
- ``merge`` (default) sets the keys an item gives and keeps the rest (``fields``,
  ``external_ids`` and ``plugin_data`` merge by key; ``null`` removes one); ``replace``
  makes the item the whole entity: what it leaves out is emptied, except ``plugin_data``,
  whose plugins' objects are replaced one by one (other plugins' data is theirs);
- a batch sent twice changes nothing the second time: every item reports ``unchanged``
  (items matched by an id; an item with neither id is a new entity each time);
- the batch is one transaction, and every rule of an item is checked before any of its rows
  is written (``insert_entity`` and ``update_entity`` check first), so an item that fails
  leaves no trace and never stops the others; each change records its event.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta

from ff_plugin_sdk import ApiRoute, Conflict, FaceForgeError, NotFound, ValidationFailed, WriteTx
from ff_plugin_sdk.errors import validation_error
from plugins_builtin.entities.api import EntityId, EntityPatch, normalize
from plugins_builtin.entities.entity_rows import (
    COLUMNS,
    SearchRows,
    insert_entity,
    update_entity,
)
from plugins_builtin.entities.field_defs import live_defs
from plugins_builtin.entities.ids import new_id
from plugins_builtin.entities.store import EntityStore

MAX_ITEMS = 10_000
#: a 10,000-item batch of rich entities; the kernel's default limit is for single records
MAX_BODY_BYTES = 64 * 1024 * 1024
Status = Literal["created", "updated", "unchanged", "error"]


class UpsertItem(EntityPatch, kw_only=True, forbid_unknown_fields=True):
    """An entity's keys, as a patch gives them, and optionally the entity's id."""

    entity_id: EntityId | None = None


class BulkUpsert(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    #: each item is an entity's keys plus an optional ``entity_id``; an item that is not
    #: one is reported as that item's error, not the request's
    items: Annotated[list[Any], Meta(min_length=1, max_length=MAX_ITEMS)]
    mode: Literal["merge", "replace"] = "merge"


class ItemError(msgspec.Struct, kw_only=True):
    code: str
    message: str
    details: list[Any] = []


class ItemResult(msgspec.Struct, kw_only=True):
    index: int
    entity_id: str | None
    status: Status
    error: ItemError | None = None


class BulkResult(msgspec.Struct, kw_only=True):
    results: list[ItemResult]


def _item(raw: Any) -> dict[str, Any]:
    """One item, checked and cleaned; raises the 422 an entity body would get (paths are
    the item's own, as in every item error: the result names the index)."""
    try:
        item = msgspec.convert(raw, UpsertItem)
    except msgspec.ValidationError as exc:
        raise validation_error(exc) from None
    return normalize({k: v for k, v in msgspec.structs.asdict(item).items()
                      if v is not UNSET})


async def bulk_upsert(store: EntityStore, body: BulkUpsert) -> BulkResult:
    results: list[ItemResult | None] = [None] * len(body.items)
    items: list[tuple[int, dict[str, Any]]] = []
    for index, raw in enumerate(body.items):
        try:
            item = _item(raw)
            await store.check_thumbnail(item.get("primary_thumbnail_asset_id"))
        except FaceForgeError as exc:
            results[index] = _failed(index, None, exc)
            continue
        items.append((index, item))
    replace = body.mode == "replace"

    def upsert(tx: WriteTx) -> list[ItemResult]:
        now = store.kernel.now()
        defs = live_defs(tx, "entity")
        # new ids, random as ever, handed out in order: inserting them in key order keeps
        # the id indexes' page writes together (10-15% of a batch of new entities)
        fresh = iter(sorted(new_id() for _ in items))
        search = SearchRows()
        done = []
        for index, item in items:
            try:
                entity_id, status = _upsert_one(tx, now, defs, item, replace, fresh, search)
            except FaceForgeError as exc:
                done.append(_failed(index, item.get("entity_id"), exc))
            else:
                done.append(ItemResult(index=index, entity_id=entity_id, status=status))
        search.write(tx)
        return done

    for result in await store.db.write(upsert):
        results[result.index] = result
    return BulkResult(results=[r for r in results if r is not None])


def _upsert_one(tx: WriteTx, now: str, defs: Any, item: dict[str, Any], replace: bool,
                fresh: Iterator[str], search: SearchRows) -> tuple[str, Status]:
    row = _match(tx, item)
    if row is None:
        if "display_name" not in item:
            raise ValidationFailed(
                "display_name is required to create an entity (no entity matched this"
                " item's entity_id or external_ids)",
                details=[{"path": "$.display_name", "message": "required"}])
        new = dict(item)
        for key in ("external_ids", "plugin_data"):
            new[key] = {k: v for k, v in new.get(key, {}).items() if v is not None}
        new["fields"] = {k: v for k, v in new.get("fields", {}).items() if v is not None}
        return insert_entity(tx, now, defs, new, next(fresh), search)["entity_id"], "created"
    item.pop("entity_id", None)
    if replace:
        if "display_name" not in item:
            raise ValidationFailed("display_name is required in replace mode", details=[
                {"path": "$.display_name", "message": "required"}])
        changes = {"aliases": [], "tags": [], "primary_thumbnail_asset_id": None,
                   **{k: v for k, v in item.items() if k != "plugin_data"}}
        for key in ("fields", "external_ids"):
            changes[key] = {k: v for k, v in changes.get(key, {}).items() if v is not None}
        merges = {"plugin_data": item["plugin_data"]} if "plugin_data" in item else {}
    else:
        merges = {k: item.pop(k) for k in ("fields", "external_ids", "plugin_data")
                  if k in item}
        changes = item
    _, changed = update_entity(tx, now, defs, row, changes, merges, replace=replace,
                               search=search)
    return row["entity_id"], "updated" if changed else "unchanged"


def _match(tx: WriteTx, item: dict[str, Any]) -> Any:
    """The live entity row an item names, or None (a new entity)."""
    if item.get("entity_id"):
        row = tx.fetchone(f"SELECT {COLUMNS} FROM entities WHERE entity_id = ?",
                          (item["entity_id"],))
        if row is None or row["deleted_at"]:
            raise NotFound(f"no entity with id {item['entity_id']!r}",
                           code="entity_not_found")
        return row
    found: dict[str, str] = {}
    for namespace, value in (item.get("external_ids") or {}).items():
        if value is None:
            continue
        hit = tx.fetchone("SELECT entity_id FROM entity_external_ids WHERE namespace = ?"
                          " AND value = ? AND live = 1", (namespace, value))
        if hit is not None:
            found[f"{namespace}:{value}"] = hit["entity_id"]
    if len(set(found.values())) > 1:
        named = ", ".join(f"{k} is {v}" for k, v in found.items())
        raise Conflict(f"this item's external ids name different entities ({named})",
                       code="external_ids_disagree",
                       details=[{"external_id": k, "entity_id": v} for k, v in found.items()])
    if not found:
        return None
    return tx.fetchone(f"SELECT {COLUMNS} FROM entities WHERE entity_id = ?",
                       (next(iter(found.values())),))


def _failed(index: int, entity_id: str | None, exc: FaceForgeError) -> ItemResult:
    return ItemResult(index=index, entity_id=entity_id, status="error",
                      error=ItemError(code=exc.code, message=exc.message,
                                      details=exc.details))


def routes(store: EntityStore) -> list[ApiRoute]:
    async def upsert(request: Any, body: BulkUpsert) -> BulkResult:
        """Create or update up to 10,000 entities at once (the rules: module docstring of
        ``plugins_builtin.entities.bulk``); a result per item, in order."""
        return await bulk_upsert(store, body)

    return [ApiRoute(path="/entities/bulk-upsert", endpoint=upsert, methods=["POST"],
                     scope="entities:write", body=BulkUpsert, response=BulkResult,
                     tags=["entities"], max_body_bytes=MAX_BODY_BYTES)]

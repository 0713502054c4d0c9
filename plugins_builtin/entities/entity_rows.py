"""An entity's rows as a transaction writes them: the ``entities`` row (its columns, its
Unicode sort key) and its index rows (full-text, tags and their live counts, typed field
values, external ids).  Shared by the store's single writes and bulk upsert."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from typing import Any

import msgspec

from ff_plugin_sdk import Conflict, WriteTx
from plugins_builtin.entities.field_defs import Defs, checked_fields, index_entity
from plugins_builtin.entities.ids import new_id

new_entity_id = new_id


def name_key(name: str) -> str:
    """The ``display_name`` sort key: letters without case or accents first ("Émile" sorts
    with the E's), then the casefolded spelling, so equal bases keep one stable order."""
    folded = unicodedata.normalize("NFKD", name.casefold())
    base = "".join(c for c in folded if not unicodedata.combining(c))
    return base + "\x01" + unicodedata.normalize("NFC", folded)

def _flatten_fields(fields: dict[str, Any]) -> str:
    parts = []
    for key, value in fields.items():
        parts.append(key)
        parts.append(value if isinstance(value, str) else msgspec.json.encode(value).decode())
    return " ".join(parts)

#: what every read selects, in this order: rows are unpacked by position (a name lookup
#: on a row scans its column names, and a page has 50 rows of 12 columns)
def columns(t: str = "") -> str:
    return (f"{t}seq, {t}entity_id, {t}display_name, {t}created_at, {t}updated_at,"
            f" {t}deleted_at, {t}version, {t}primary_thumbnail_asset_id, {t}name_key,"
            f" '[' || {t}aliases || ',' || {t}tags || ',' || {t}fields || ',' ||"
            f" {t}plugin_data || ',' || {t}external_ids || ']' AS json")


COLUMNS = columns()
_JSON_PARTS = msgspec.json.Decoder(tuple[list[str], list[str], dict[str, Any],
                                         dict[str, Any], dict[str, str]])


def row_to_dict(row: Any) -> dict[str, Any]:
    _, entity_id, name, created, updated, deleted, version, thumb, _, json = row
    aliases, tags, fields, plugin_data, external_ids = _JSON_PARTS.decode(json)
    return {"entity_id": entity_id, "display_name": name, "aliases": aliases, "tags": tags,
            "fields": fields, "external_ids": external_ids, "plugin_data": plugin_data,
            "primary_thumbnail_asset_id": thumb, "created_at": created, "updated_at": updated,
            "deleted_at": deleted, "version": version}

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
    check_external_ids(tx, row["entity_id"], external_ids)
    # stamped on the writer, so created_at order is seq order
    seq = tx.execute(
        "INSERT INTO entities (entity_id, display_name, name_key, aliases, tags, fields,"
        " external_ids, plugin_data, primary_thumbnail_asset_id, created_at, updated_at,"
        " version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)",
        (row["entity_id"], row["display_name"], name_key(row["display_name"]),
         json_text(row["aliases"]), json_text(row["tags"]), json_text(fields),
         json_text(external_ids),
         json_text(row["plugin_data"]), row["primary_thumbnail_asset_id"], now, now))
    index_rows(tx, seq, row, defs, search=search)
    tx.event("entity.created", {"entity_id": row["entity_id"],
                                "display_name": row["display_name"]})
    return row


def update_entity(tx: WriteTx, now: str, defs: Defs, row: Any, changes: dict[str, Any],
                  merges: dict[str, dict[str, Any]], replace: bool = False,
                  search: SearchRows | None = None) -> tuple[dict[str, Any], bool]:
    """Apply ``changes`` (replaced keys) and ``merges`` (dicts merged by key, None removes)
    to a live entity row; ``replace`` checks every field as for a new entity.  Returns the
    entity and whether anything changed (nothing is written when nothing did)."""
    entity = row_to_dict(row)
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
        check_external_ids(tx, entity["entity_id"], entity["external_ids"])
    entity["updated_at"] = now
    entity["version"] += 1
    tx.execute(
        "UPDATE entities SET display_name = ?, name_key = ?, aliases = ?, tags = ?,"
        " fields = ?, external_ids = ?, plugin_data = ?, primary_thumbnail_asset_id = ?,"
        " updated_at = ?, version = ? WHERE entity_id = ?",
        (entity["display_name"], name_key(entity["display_name"]), json_text(entity["aliases"]),
         json_text(entity["tags"]), json_text(entity["fields"]), json_text(entity["external_ids"]),
         json_text(entity["plugin_data"]), entity["primary_thumbnail_asset_id"],
         entity["updated_at"], entity["version"], entity["entity_id"]))
    index_rows(tx, row["seq"], entity, defs, old, search)
    tx.event("entity.updated", {"entity_id": entity["entity_id"], "changed": changed})
    return entity, True


def check_external_ids(tx: WriteTx, entity_id: str, external_ids: dict[str, str]) -> None:
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

def index_rows(tx: WriteTx, seq: int, entity: dict[str, Any], defs: Defs | None = None,
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
            count_tags(tx, old["tags"], -1)
        if entity["tags"]:
            tx.executemany("INSERT OR IGNORE INTO entity_tags (entity_id, tag) VALUES (?, ?)",
                           [(entity_id, t) for t in folded_tags(entity["tags"])])
            count_tags(tx, entity["tags"], +1)
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

def folded_tags(tags: Iterable[str]) -> list[str]:
    """Tags as indexed: casefolded (NOCASE alone folds ASCII only), once each."""
    return list(dict.fromkeys(t.casefold() for t in tags))


def count_tags(tx: WriteTx, tags: Iterable[str], delta: int) -> None:
    folded = folded_tags(tags)
    if not folded:
        return
    tx.executemany(
        "INSERT INTO entity_tag_counts (tag, live) VALUES (?, ?)"
        " ON CONFLICT (tag) DO UPDATE SET live = live + excluded.live",
        [(t, delta) for t in folded])


def json_text(value: Any) -> str:
    return msgspec.json.encode(value).decode()

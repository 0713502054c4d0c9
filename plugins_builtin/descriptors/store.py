"""The descriptors table: SQL only.  Every write records its event in the same transaction.

Validity: ``valid_from`` and ``valid_to`` are calendar days (``YYYY-MM-DD``), both
inclusive, NULL meaning unbounded.  A descriptor is valid on day ``D`` when
``(valid_from IS NULL OR valid_from <= D) AND (valid_to IS NULL OR D <= valid_to)``;
"current" means valid on today's UTC date.  ISO days compare correctly as text.

The entity a descriptor belongs to lives in the entities plugin, asked through its
``entities.store`` service before each read or write (NotFound for an unknown or deleted
entity).  That table is not ours to read inside our transaction, so an entity deleted
between the check and the commit can still receive a descriptor; it is then hidden with the
entity (every read checks the entity) and comes back if the entity is restored.
"""

from __future__ import annotations

import base64
import hashlib
import os
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
from ff_plugin_sdk.jsontext import parse_json
from plugins_builtin.descriptors.definitions import Definitions

ENTITIES_SERVICE = "entities.store"
#: a descriptor is a fact, not a document: its value's JSON is bounded
MAX_VALUE_BYTES = 64 * 1024
#: what a patch may change
CHANGEABLE = ("value", "valid_from", "valid_to", "source", "notes")

_canonical = msgspec.json.Encoder(order="sorted")
_COLUMNS = ("seq, descriptor_id, entity_id, key, value, valid_from, valid_to, source, notes,"
            " created_at, updated_at, deleted_at")
_ORDER = "key, coalesce(valid_from, '') DESC, seq DESC"


def new_descriptor_id() -> str:
    """SHA-256 hex of 32 random bytes (DESIGN §4)."""
    return hashlib.sha256(os.urandom(32)).hexdigest()


def encode_value(value: Any, path: str = "$.value") -> str:
    """The value as stored: canonical JSON (sorted keys), at most MAX_VALUE_BYTES."""
    text = _canonical.encode(value)
    if len(text) > MAX_VALUE_BYTES:
        why = f"at most {MAX_VALUE_BYTES} bytes of JSON; got {len(text)}"
        raise ValidationFailed(f"value is too large: {why}",
                               details=[{"path": path, "message": why}])
    return text.decode()


def check_order(valid_from: str | None, valid_to: str | None, path: str) -> None:
    """``valid_from <= valid_to`` (the same day is a one-day fact); 422 naming ``path``."""
    if valid_from is not None and valid_to is not None and valid_from > valid_to:
        why = f"valid_from {valid_from} is after valid_to {valid_to}"
        raise ValidationFailed(why, details=[{"path": path, "message": why}])


def state_on(descriptor: dict[str, Any], day: str) -> str:
    """"past", "current" or "future" relative to ``day`` (inclusive bounds)."""
    if descriptor["valid_to"] is not None and descriptor["valid_to"] < day:
        return "past"
    if descriptor["valid_from"] is not None and descriptor["valid_from"] > day:
        return "future"
    return "current"


def encode_cursor(key: str, valid_from: str | None, seq: int) -> str:
    raw = msgspec.json.encode([key, valid_from or "", seq])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, str, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        key, valid_from, seq = parse_json(raw)
    except (ValueError, TypeError) as exc:  # NotJson and binascii.Error are ValueErrors
        raise BadRequest("cursor is not one this server issued", code="invalid_cursor") from exc
    # bound into SQL: it must be what this list issues
    if not (isinstance(key, str) and isinstance(valid_from, str) and type(seq) is int
            and abs(seq) <= SQL_INT_MAX):
        raise BadRequest("cursor is not one this server issued", code="invalid_cursor")
    return key, valid_from, seq


def _row_to_dict(row: Any) -> dict[str, Any]:
    return {"descriptor_id": row["descriptor_id"], "entity_id": row["entity_id"],
            "key": row["key"], "value": msgspec.json.decode(row["value"]),
            "valid_from": row["valid_from"], "valid_to": row["valid_to"],
            "source": row["source"], "notes": row["notes"], "created_at": row["created_at"],
            "updated_at": row["updated_at"], "deleted_at": row["deleted_at"]}


def _not_found(descriptor_id: str) -> NotFound:
    return NotFound(f"no descriptor with id {descriptor_id!r}", code="descriptor_not_found")


def _event_data(d: dict[str, Any]) -> dict[str, Any]:
    # no value: descriptors hold addresses and phone numbers; a subscriber reads the row
    return {"descriptor_id": d["descriptor_id"], "entity_id": d["entity_id"], "key": d["key"]}


def _check_duplicate(tx: WriteTx, d: dict[str, Any], value_json: str) -> None:
    row = tx.fetchone(
        "SELECT descriptor_id FROM descriptors WHERE entity_id = ? AND key = ? AND value = ?"
        " AND coalesce(valid_from, '') = ? AND coalesce(valid_to, '') = ?"
        " AND deleted_at IS NULL AND descriptor_id != ?",
        (d["entity_id"], d["key"], value_json, d["valid_from"] or "", d["valid_to"] or "",
         d.get("descriptor_id") or ""))
    if row is not None:
        raise Conflict(
            f"entity {d['entity_id']} already has this {d['key']!r} value for the same days "
            f"(descriptor {row[0]})", code="descriptor_exists",
            details=[{"descriptor_id": row[0]}])


@dataclass
class Page:
    rows: list[dict[str, Any]]
    next_cursor: str | None


class DescriptorStore:
    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self.db = kernel.db
        self.definitions = Definitions(kernel)

    def today(self) -> str:
        """Today's UTC date, the day "current" means."""
        return self.kernel.now()[:10]

    async def live_entity(self, entity_id: str) -> dict[str, Any]:
        """The entity, if it exists and is not deleted (else 404 ``entity_not_found``)."""
        entities = self.kernel.services.get(ENTITIES_SERVICE)
        if entities is None:
            raise NotFound("the entities plugin is not enabled", code="entities_disabled")
        entity: dict[str, Any] = await entities.get(entity_id)
        return entity

    # -- reads -------------------------------------------------------------------------
    async def get(self, descriptor_id: str, include_deleted: bool = False) -> dict[str, Any]:
        """One descriptor; 404 when unknown, deleted (unless ``include_deleted``) or its
        entity is deleted."""
        row = await self.db.fetchone(
            f"SELECT {_COLUMNS} FROM descriptors WHERE descriptor_id = ?", (descriptor_id,))
        if row is None or (row["deleted_at"] and not include_deleted):
            raise _not_found(descriptor_id)
        try:
            await self.live_entity(row["entity_id"])
        except NotFound as exc:
            raise NotFound(f"no descriptor with id {descriptor_id!r}: its entity was deleted",
                           code="descriptor_not_found") from exc
        return _row_to_dict(row)

    async def list(self, entity_id: str, *, key: str | None = None, at: str | None = None,
                   include_deleted: bool = False, limit: int = 50, cursor: str | None = None,
                   offset: int | None = None) -> Page:
        """One page of an entity's descriptors, by key, then newest ``valid_from`` first
        (unbounded last), then newest created.  ``at``: only those valid on that day.
        The caller has checked the entity."""
        conds = ["entity_id = ?"]
        params: list[Any] = [entity_id]
        if key is not None:
            conds.append("key = ?")
            params.append(key)
        if at is not None:
            conds.append("(valid_from IS NULL OR valid_from <= ?)"
                         " AND (valid_to IS NULL OR valid_to >= ?)")
            params += [at, at]
        if not include_deleted:
            conds.append("deleted_at IS NULL")
        if cursor:
            after_key, after_from, after_seq = decode_cursor(cursor)
            conds.append("(key > ? OR (key = ? AND (coalesce(valid_from, '') < ?"
                         " OR (coalesce(valid_from, '') = ? AND seq < ?))))")
            params += [after_key, after_key, after_from, after_from, after_seq]
        sql = (f"SELECT {_COLUMNS} FROM descriptors WHERE {' AND '.join(conds)}"
               f" ORDER BY {_ORDER} LIMIT ?")
        params.append(limit + 1)
        if offset and not cursor:
            sql += " OFFSET ?"
            params.append(offset)
        rows = await self.db.fetchall(sql, params)
        next_cursor = None
        if len(rows) > limit:
            rows = rows[:limit]
            last = rows[-1]
            next_cursor = encode_cursor(last["key"], last["valid_from"], last["seq"])
        return Page([_row_to_dict(r) for r in rows], next_cursor)

    # -- writes: each is one transaction function, run on the writer in one hop ----------
    async def create(self, entity_id: str, data: dict[str, Any]) -> dict[str, Any]:
        """``data``: key, value, valid_from, valid_to, source, notes.  The value is checked
        (and normalized) by the key's descriptor-scope field definition, if it has one."""
        await self.live_entity(entity_id)
        check_order(data["valid_from"], data["valid_to"], "$.valid_to")
        data = {**data, "value": await self.definitions.check(data["key"], data["value"])}
        value_json = encode_value(data["value"])

        def create(tx: WriteTx) -> dict[str, Any]:
            now = self.kernel.now()
            d = {"descriptor_id": new_descriptor_id(), "entity_id": entity_id, **data,
                 "created_at": now, "updated_at": now, "deleted_at": None}
            _check_duplicate(tx, d, value_json)
            tx.execute(
                "INSERT INTO descriptors (descriptor_id, entity_id, key, value, valid_from,"
                " valid_to, source, notes, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (d["descriptor_id"], entity_id, d["key"], value_json, d["valid_from"],
                 d["valid_to"], d["source"], d["notes"], now, now))
            tx.event("descriptor.created", _event_data(d))
            return d

        return await self.db.write(create)

    async def update(self, descriptor_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Replace the ``changes`` keys (of CHANGEABLE).  A new value is checked by its
        key's definition; an unchanged one is not (a definition made stricter later does
        not stop the notes of an old fact being edited).  The merged validity is checked in
        the transaction, against the row as it is then."""
        # 404 for a deleted descriptor, or one of a deleted entity
        current = await self.get(descriptor_id)
        value_json = None
        if "value" in changes:
            changes = {**changes,
                       "value": await self.definitions.check(current["key"], changes["value"])}
            value_json = encode_value(changes["value"])
        # which input to blame when the merged days are out of order
        order_path = "$.valid_to" if "valid_to" in changes else "$.valid_from"

        def update(tx: WriteTx) -> dict[str, Any]:
            row = tx.fetchone(f"SELECT {_COLUMNS} FROM descriptors WHERE descriptor_id = ?",
                              (descriptor_id,))
            if row is None or row["deleted_at"]:
                raise _not_found(descriptor_id)
            d = _row_to_dict(row)
            # values compare as stored JSON: in Python 1 == 1.0 == True
            changed = sorted(k for k, v in changes.items() if k != "value" and d[k] != v)
            if value_json is not None and value_json != row["value"]:
                changed = sorted([*changed, "value"])
            if not changed:
                return d
            d.update(changes)
            check_order(d["valid_from"], d["valid_to"], order_path)
            stored = value_json if value_json is not None else row["value"]
            _check_duplicate(tx, d, stored)
            d["updated_at"] = self.kernel.now()
            tx.execute(
                "UPDATE descriptors SET value = ?, valid_from = ?, valid_to = ?, source = ?,"
                " notes = ?, updated_at = ? WHERE descriptor_id = ?",
                (stored, d["valid_from"], d["valid_to"], d["source"], d["notes"],
                 d["updated_at"], descriptor_id))
            tx.event("descriptor.updated", {**_event_data(d), "changed": changed})
            return d

        return await self.db.write(update)

    async def delete(self, descriptor_id: str) -> None:
        """Soft delete; a deleted descriptor is 404 from then on, and the same fact can be
        recorded again."""
        await self.get(descriptor_id)

        def delete(tx: WriteTx) -> None:
            row = tx.fetchone(f"SELECT {_COLUMNS} FROM descriptors WHERE descriptor_id = ?"
                              " AND deleted_at IS NULL", (descriptor_id,))
            if row is None:
                raise _not_found(descriptor_id)
            now = self.kernel.now()
            tx.execute("UPDATE descriptors SET deleted_at = ?, updated_at = ?"
                       " WHERE descriptor_id = ?", (now, now, descriptor_id))
            tx.event("descriptor.deleted", _event_data(_row_to_dict(row)))

        await self.db.write(delete)

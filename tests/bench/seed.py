"""Synthetic entities, written straight into a stopped Core's SQLite file.

The rows are exactly what :meth:`EntityStore.create` writes for the same input (checked by
:func:`check_fidelity` against entities created through the API): the ``entities`` row (with
its ``name_key`` and ``external_ids``), the ``entities_fts`` row with ``rowid = entities.seq``,
one ``entity_tags`` row per tag, the live tag counts, the typed ``entity_field_values`` rows of
defined fields, the ``entity_external_ids`` rows and an ``entity.created`` event; the
``entity_counts`` triggers count them.  The defined fields (:data:`FIELD_DEFS`: ``born``, a
date spread over a century, and ``height``, a float) are defined first, as
:meth:`FieldDefs.create` does, re-indexing what is already stored.  Bulk loads drop the
secondary indexes and rebuild them from the exact SQL that the migrations stored, so the final
schema is byte-for-byte the migrated one.
"""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import msgspec

from kernel.clock import utc_now
from plugins_builtin.entities.entity_rows import index_rows as _store_index
from plugins_builtin.entities.entity_rows import json_text as _j
from plugins_builtin.entities.entity_rows import name_key
from plugins_builtin.entities.field_defs import _COLUMNS as FIELD_DEF_COLUMNS
from plugins_builtin.entities.field_defs import _reindex_key, checked_fields, live_defs
from plugins_builtin.entities.ids import new_id

# Syllables without q, x, y or z, so no generated word can start with a probe word below.
_SYLLABLES = (
    "a", "an", "ar", "as", "ba", "be", "bel", "bo", "bra", "bri", "ca", "cal", "car", "ce",
    "cha", "chi", "da", "dan", "de", "del", "di", "do", "dor", "dra", "e", "el", "en", "er",
    "es", "fa", "fen", "fi", "fin", "fo", "ga", "gar", "ge", "gil", "go", "gra", "ha", "hal",
    "he", "hel", "hi", "ho", "i", "il", "in", "is", "ja", "je", "jo", "ka", "kar", "ke", "ki",
    "ko", "la", "lan", "le", "len", "li", "lo", "lu", "ma", "mar", "me", "mer", "mi", "mo",
    "mon", "na", "nan", "ne", "ni", "no", "o", "ol", "on", "or", "pa", "pe", "per", "pi", "po",
    "ra", "ran", "re", "ri", "ro", "ru", "sa", "san", "se", "sel", "si", "so", "ste", "ta",
    "tan", "te", "ter", "ti", "to", "tor", "tra", "u", "ul", "un", "va", "van", "ve", "vel",
    "vi", "vo", "wa", "wen", "wi", "win",
)
#: in ~0.1% of display names: a "moderate" full-text search
PROBE_MODERATE = "Zyxwell"
#: in exactly :data:`RARE_COUNT` display names: a "rare" full-text search
PROBE_RARE = "Qyxborne"
RARE_COUNT = 5
MODERATE_SHARE = 0.001
#: (tag, share of entities carrying it)
TAGS = (
    ("favorite", 0.25), ("imported", 0.20), ("actor", 0.15), ("model", 0.12),
    ("verified", 0.10), ("musician", 0.08), ("athlete", 0.06), ("reviewed", 0.05),
    ("needs-review", 0.03), ("archived", 0.01), ("vip", 0.002), ("rare-find", 0.0001),
)
TAG_COMMON = "reviewed"
TAG_RARE = "rare-find"
_COUNTRIES = (
    "US", "GB", "DE", "FR", "NL", "SE", "NO", "DK", "FI", "ES", "IT", "PT", "PL", "CZ", "HU",
    "RO", "BR", "AR", "MX", "CA", "AU", "NZ", "JP", "KR", "CN", "IN", "ZA", "NG", "EG", "TR",
)
_SOURCES = ("manual", "import", "stash", "tpdb", "csv")
_TS = "%Y-%m-%dT%H:%M:%S"
#: (field_key, field_type, label): defined before seeding, as ``POST /v1/admin/field-defs``
FIELD_DEFS = (("born", "date", "Born"), ("height", "float", "Height (cm)"))
#: ``born`` is uniform over these 100 years (36,524 days), on :data:`BORN_SHARE` of entities
BORN_FIRST = date(1925, 1, 1)
BORN_DAYS = (date(2025, 1, 1) - BORN_FIRST).days
BORN_SHARE = 0.9
HEIGHT_SHARE = 0.8
#: external ids: ``stash`` on :data:`STASH_SHARE` of entities, ``tpdb`` on some of those
STASH_SHARE = 0.7
TPDB_SHARE = 0.25


@dataclass
class Vocabulary:
    first: list[str]
    last: list[str]
    last_weights: list[float]  # cumulative
    notes: list[str]


def _word(rng: random.Random, lo: int, hi: int) -> str:
    return "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(lo, hi)))


def vocabulary(seed: int = 7, first: int = 2_000, last: int = 30_000) -> Vocabulary:
    """A deterministic word list: first names, surnames (Zipf-ish use) and note words."""
    rng = random.Random(seed)
    words: set[str] = set()

    def unique(n: int, lo: int, hi: int) -> list[str]:
        out: list[str] = []
        while len(out) < n:
            w = _word(rng, lo, hi)
            if len(w) >= 3 and w not in words:
                words.add(w)
                out.append(w)
        return out

    firsts = [w.capitalize() for w in unique(first, 2, 3)]
    lasts = [w.capitalize() for w in unique(last, 2, 4)]
    cum, total = [], 0.0
    for rank in range(len(lasts)):  # the most common surname is ~0.3% of names
        total += 1.0 / (rank + 50)
        cum.append(total)
    return Vocabulary(firsts, lasts, cum, unique(500, 2, 3))


def generate(n: int, seed: int = 11, vocab: Vocabulary | None = None,
             start_us: int | None = None, step_us: int = 997_003) -> Iterator[dict[str, Any]]:
    """``n`` entity dicts as :meth:`EntityStore.create` sees them, oldest first.

    ``created_at`` increases strictly by ``step_us`` and ends before now, so entities created
    later through the API sort first.  The metadata (``born``, ``height``, external ids) comes
    from a random stream of its own, so the rest is what the same seed always gave.
    """
    vocab = vocab or vocabulary()
    rng = random.Random(seed)
    mrng = random.Random(seed * 7_919 + 1)
    moderate = set(rng.sample(range(n), max(1, round(n * MODERATE_SHARE))))
    rare: set[int] = set()
    while len(rare) < min(RARE_COUNT, n - len(moderate)):
        if (i := rng.randrange(n)) not in moderate:
            rare.add(i)
    tagged: list[tuple[str, set[int]]] = [
        (tag, set(rng.sample(range(n), max(1, round(n * share))))) for tag, share in TAGS]
    if start_us is None:
        start_us = int(time.time() * 1e6) - (n + 1) * step_us
    for i in range(n):
        first = rng.choice(vocab.first)
        if i in rare:
            last = PROBE_RARE
        elif i in moderate:
            last = PROBE_MODERATE
        else:
            last = rng.choices(vocab.last, cum_weights=vocab.last_weights)[0]
        r = rng.random()
        if r < 0.2:
            name = f"{first} {rng.choice(vocab.first)} {last}"
        elif r < 0.28:
            name = f"{first} {last}-{rng.choices(vocab.last, cum_weights=vocab.last_weights)[0]}"
        else:
            name = f"{first} {last}"
        r = rng.random()
        aliases = ([] if r < 0.75 else [f"{first} {last[0]}."] if r < 0.95
                   else [rng.choice(vocab.first), f"{first} {last[0]}."])
        fields: dict[str, Any] = {"country": rng.choice(_COUNTRIES),
                                  "birth_year": rng.randint(1950, 2005),
                                  "source": rng.choice(_SOURCES)}
        if rng.random() < 0.5:
            fields["rating"] = rng.randint(1, 5)
        if rng.random() < 0.1:
            fields["notes"] = " ".join(rng.choices(vocab.notes, k=rng.randint(2, 6)))
        if mrng.random() < BORN_SHARE:
            fields["born"] = (BORN_FIRST + timedelta(days=mrng.randrange(BORN_DAYS))
                              ).isoformat()
        if mrng.random() < HEIGHT_SHARE:
            fields["height"] = round(mrng.gauss(170.0, 10.0), 1)
        external_ids: dict[str, str] = {}
        r = mrng.random()
        if r < STASH_SHARE:
            external_ids["stash"] = f"s{seed}-{i}"
            if r < TPDB_SHARE:
                external_ids["tpdb"] = f"{mrng.getrandbits(64):016x}"
        t = start_us + i * step_us
        created = time.strftime(_TS, time.gmtime(t // 1_000_000)) + f".{t % 1_000_000:06d}Z"
        yield {
            "entity_id": f"{rng.getrandbits(256):064x}",
            "display_name": name,
            "aliases": aliases,
            "tags": [tag for tag, members in tagged if i in members],
            "fields": fields,
            "external_ids": external_ids,
            "plugin_data": {},
            "primary_thumbnail_asset_id": None,
            "created_at": created,
            "updated_at": created,
            "deleted_at": None,
            "correlation_id": f"{rng.getrandbits(64):016x}",
        }


# -- the rows EntityStore.create writes --------------------------------------------------
ENTITY_SQL = (
    "INSERT INTO entities (seq, entity_id, display_name, name_key, aliases, tags, fields,"
    " external_ids, plugin_data, primary_thumbnail_asset_id, created_at, updated_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
ENTITY_COLUMNS = ("seq, entity_id, display_name, name_key, aliases, tags, fields, external_ids,"
                  " plugin_data, primary_thumbnail_asset_id, created_at, updated_at, version")
EVENT_SQL = "INSERT INTO events (type, created_at, data, correlation_id) VALUES (?, ?, ?, ?)"


class _RecordingTx:
    """Collects what the store's ``index_rows`` writes (its own SQL and parameters)."""

    def __init__(self) -> None:
        self.rows: dict[str, list[tuple[Any, ...]]] = {}

    def execute(self, sql: str, params: Any = ()) -> int:
        self.rows.setdefault(sql, []).append(tuple(params))
        return 0

    def executemany(self, sql: str, rows: Any) -> None:
        self.rows.setdefault(sql, []).extend(tuple(r) for r in rows)


class _ConnTx:
    """A ``WriteTx`` over a plain sqlite3 connection, for the field definitions' own code."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def execute(self, sql: str, params: Any = ()) -> int:
        return self.conn.execute(sql, params).lastrowid or 0

    def executemany(self, sql: str, rows: Any) -> None:
        self.conn.executemany(sql, rows)

    def fetchall(self, sql: str, params: Any = ()) -> list[Any]:
        return self.conn.execute(sql, params).fetchall()

    def fetchone(self, sql: str, params: Any = ()) -> Any:
        return self.conn.execute(sql, params).fetchone()


def entity_defs(conn: sqlite3.Connection) -> dict[str, dict[str, Any]]:
    """The live entity-scope definitions, read as the store reads them in a transaction."""
    factory = conn.row_factory
    conn.row_factory = sqlite3.Row
    try:
        return live_defs(_ConnTx(conn), "entity")  # type: ignore[arg-type]
    finally:
        conn.row_factory = factory


def define_fields(conn: sqlite3.Connection) -> list[str]:
    """Define the :data:`FIELD_DEFS` keys not yet defined, as :meth:`FieldDefs.create` does
    (its row, the re-index of stored values, its event); returns the keys it defined."""
    defined = []
    factory = conn.row_factory
    conn.row_factory = sqlite3.Row
    try:
        tx = _ConnTx(conn)
        for key, ftype, label in FIELD_DEFS:
            if conn.execute("SELECT 1 FROM field_defs WHERE field_key = ?"
                            " AND deleted_at IS NULL", (key,)).fetchone():
                continue
            now = utc_now()
            row = {"field_def_id": new_id(), "field_key": key, "scope": "entity",
                   "field_type": ftype, "label": label, "help": "", "required": False,
                   "regex": None, "min": None, "max": None, "options": None}
            conn.execute(f"INSERT INTO field_defs ({FIELD_DEF_COLUMNS}) VALUES"
                         " (?, ?, ?, ?, ?, ?, ?, NULL, NULL, NULL, NULL, ?, ?, NULL, 1)",
                         (row["field_def_id"], key, "entity", ftype, label, "", 0, now, now))
            _reindex_key(tx, row)  # type: ignore[arg-type]
            conn.execute(EVENT_SQL, ("field_def.created", now, _j({"field_key": key,
                                                                   "scope": "entity"}), None))
            defined.append(key)
    finally:
        conn.row_factory = factory
    return defined


def checked(defs: dict[str, dict[str, Any]], entity: dict[str, Any]) -> dict[str, Any]:
    """``entity`` with its fields in the typed form ``insert_entity`` stores."""
    return {**entity, "fields": checked_fields(defs, entity["fields"], touched=None)}


def index_rows(tx: _RecordingTx, rowid: int, entity: dict[str, Any],
               defs: dict[str, dict[str, Any]] | None = None) -> None:
    """The full-text, tag, typed field and external id rows, written by the store's own code
    into ``tx``."""
    _store_index(tx, rowid, entity, defs)  # type: ignore[arg-type]  # duck-typed WriteTx


def entity_row(rowid: int, e: dict[str, Any]) -> tuple[Any, ...]:
    return (rowid, e["entity_id"], e["display_name"], name_key(e["display_name"]),
            _j(e["aliases"]), _j(e["tags"]), _j(e["fields"]), _j(e["external_ids"]),
            _j(e["plugin_data"]), e["primary_thumbnail_asset_id"], e["created_at"],
            e["updated_at"])


def event_row(e: dict[str, Any]) -> tuple[Any, ...]:
    return ("entity.created", e["created_at"],
            msgspec.json.encode({"entity_id": e["entity_id"],
                                 "display_name": e["display_name"]}).decode(),
            e.get("correlation_id"))


def schema_of(conn: sqlite3.Connection) -> list[tuple[str, str, str, str | None]]:
    return conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master"
                        " ORDER BY type, name").fetchall()


@dataclass
class SeedResult:
    inserted: int
    total: int
    seconds: float
    generate_seconds: float
    insert_seconds: float
    index_seconds: float
    checkpoint_seconds: float
    rebuilt_indexes: bool
    schema_identical: bool
    db_bytes: int
    defined_fields: list[str]

    def as_dict(self) -> dict[str, Any]:
        return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in vars(self).items()}


def seed(db_file: Path, n: int, *, seed: int = 11, batch: int = 50_000,
         rebuild_indexes: bool | None = None, step_us: int = 997_003) -> SeedResult:
    """Append ``n`` generated entities to a migrated database that no server has open."""
    started = time.perf_counter()
    conn = sqlite3.connect(db_file, isolation_level=None)
    try:
        before = schema_of(conn)
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA cache_size=-1000000")  # 1 GB: the random-key B-trees stay cached
        conn.execute("PRAGMA temp_store=MEMORY")
        conn.execute("BEGIN")
        defined = define_fields(conn)
        conn.execute("COMMIT")
        defs = entity_defs(conn)
        rebuild = n >= 50_000 if rebuild_indexes is None else rebuild_indexes
        indexes = conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
            " AND tbl_name IN ('entities', 'entity_tags', 'events', 'entity_field_values',"
            " 'entity_external_ids') ORDER BY rowid").fetchall()
        if rebuild:
            for name, _ in indexes:
                conn.execute(f'DROP INDEX "{name}"')
        first_rowid = conn.execute("SELECT coalesce(max(seq), 0) + 1 FROM entities"
                                   ).fetchone()[0]
        gen_s = ins_s = 0.0
        ents: list[Any] = []
        events: list[Any] = []
        tx = _RecordingTx()

        def flush() -> float:
            t = time.perf_counter()
            conn.execute("BEGIN")
            conn.executemany(ENTITY_SQL, ents)
            for sql, rows in tx.rows.items():
                conn.executemany(sql, rows)
            conn.executemany(EVENT_SQL, events)
            conn.execute("COMMIT")
            ents.clear()
            events.clear()
            tx.rows.clear()
            return time.perf_counter() - t

        t0 = time.perf_counter()
        for offset, entity in enumerate(generate(n, seed=seed, step_us=step_us)):
            rowid = first_rowid + offset
            entity = checked(defs, entity)
            ents.append(entity_row(rowid, entity))
            index_rows(tx, rowid, entity, defs)
            events.append(event_row(entity))
            if len(ents) >= batch:
                gen_s += time.perf_counter() - t0
                ins_s += flush()
                t0 = time.perf_counter()
        gen_s += time.perf_counter() - t0
        if ents:
            ins_s += flush()
        t = time.perf_counter()
        if rebuild:
            for _, sql in indexes:
                conn.execute(sql)
        idx_s = time.perf_counter() - t
        t = time.perf_counter()
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        ck_s = time.perf_counter() - t
        after = schema_of(conn)
        total = conn.execute("SELECT count(*) FROM entities").fetchone()[0]
    finally:
        conn.close()
    size = sum(p.stat().st_size for p in db_file.parent.glob(db_file.name + "*"))
    return SeedResult(inserted=n, total=total, seconds=time.perf_counter() - started,
                      generate_seconds=gen_s, insert_seconds=ins_s, index_seconds=idx_s,
                      checkpoint_seconds=ck_s, rebuilt_indexes=rebuild,
                      schema_identical=before == after, db_bytes=size, defined_fields=defined)


def check_fidelity(db_file: Path, entity_ids: list[str]) -> list[str]:
    """Compare the rows the API wrote for these entities with what the seeder writes."""
    problems = []
    conn = sqlite3.connect(db_file)
    conn.row_factory = sqlite3.Row
    known = ("entities_fts", "entity_tags", "entity_tag_counts", "entity_field_values",
             "entity_external_ids")
    try:
        defs = entity_defs(conn)
        for eid in entity_ids:
            row = conn.execute("SELECT * FROM entities WHERE entity_id = ?", (eid,)).fetchone()
            entity = {k: row[k] for k in row.keys()}  # noqa: SIM118
            for key in ("aliases", "tags", "fields", "plugin_data", "external_ids"):
                entity[key] = msgspec.json.decode(entity[key])
            ev = conn.execute("SELECT type, created_at, data, correlation_id FROM events"
                              " WHERE type = 'entity.created' AND data LIKE ?",
                              (f'%"{eid}"%',)).fetchone()
            entity["correlation_id"] = ev["correlation_id"]
            entity = checked(defs, entity)
            rowid = row["seq"]
            tx = _RecordingTx()
            index_rows(tx, rowid, entity, defs)

            def want(table: str, tx: _RecordingTx = tx) -> list[tuple[Any, ...]]:
                return sorted(r for sql, rows in tx.rows.items()
                              if f" {table} " in sql for r in rows)

            # entity_tag_counts holds totals over all entities: not comparable per entity
            unknown = [sql for sql in tx.rows if not any(f" {t} " in sql for t in known)]
            if unknown:
                problems.append(f"the store indexes into tables this check does not know: "
                                f"{unknown}")
            got_e = tuple(conn.execute(f"SELECT {ENTITY_COLUMNS} FROM entities"
                                       " WHERE entity_id = ?", (eid,)).fetchone())
            got_fts = [tuple(r) for r in conn.execute(
                "SELECT rowid, display_name, aliases, tags, fields FROM entities_fts"
                " WHERE rowid = ?", (rowid,))]
            got_tags = sorted(tuple(r) for r in conn.execute(
                "SELECT entity_id, tag FROM entity_tags WHERE entity_id = ?", (eid,)))
            got_values = sorted(tuple(r) for r in conn.execute(
                "SELECT seq, field_key, value FROM entity_field_values"
                " WHERE seq = ?", (rowid,)))
            got_ext = sorted(tuple(r) for r in conn.execute(
                "SELECT namespace, value, entity_id, live FROM entity_external_ids"
                " WHERE entity_id = ?", (eid,)))
            # the event's timestamp is taken a moment after the entity's
            got_ev = (ev["type"], entity["created_at"], ev["data"], ev["correlation_id"])
            for what, got, wanted in (
                    ("entities", got_e, (*entity_row(rowid, entity), 1)),
                    ("entities_fts", got_fts, want("entities_fts")),
                    ("entity_tags", got_tags, want("entity_tags")),
                    ("entity_field_values", got_values, want("entity_field_values")),
                    ("entity_external_ids", got_ext,
                     [(*r, 1) for r in want("entity_external_ids")]),
                    ("events", got_ev, event_row(entity))):
                if got != wanted:
                    problems.append(f"{what} row of {eid}: API wrote {got!r}, "
                                    f"seeder writes {wanted!r}")
        live, counted = conn.execute(
            "SELECT (SELECT n FROM entity_counts WHERE deleted = 0),"
            " (SELECT count(*) FROM entities WHERE deleted_at IS NULL)").fetchone()
        if live != counted:
            problems.append(f"entity_counts says {live} live entities; there are {counted}")
    finally:
        conn.close()
    return problems

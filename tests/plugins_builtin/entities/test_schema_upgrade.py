"""Upgrading a library made before field definitions (entities migration 4): names get
their Unicode sort key and the counts start right."""

from __future__ import annotations

from pathlib import Path

from kernel.db import Database
from kernel.migrations import apply_migrations
from plugins_builtin.entities.entity_rows import name_key
from plugins_builtin.entities.schema import MIGRATIONS


async def test_migration_4_fills_sort_keys_and_counts_of_existing_entities(tmp_path: Path):
    db = Database(tmp_path / "core.sqlite3")
    await db.open()
    try:
        await apply_migrations(db, [("entities", m) for m in MIGRATIONS if m.version < 4])
        rows = [(f"{i:064x}", name, "2024-01-01T00:00:00Z", deleted)
                for i, (name, deleted) in enumerate([("Émile", None), ("adam", None),
                                                     ("Zoë", "2024-02-01T00:00:00Z")])]
        await db.write(lambda tx: tx.executemany(
            "INSERT INTO entities (entity_id, display_name, created_at, updated_at,"
            " deleted_at) VALUES (?1, ?2, ?3, ?3, ?4)", rows))

        await apply_migrations(db, [("entities", m) for m in MIGRATIONS])

        got = await db.fetchall("SELECT display_name, name_key FROM entities"
                                " ORDER BY name_key")
        assert [r["display_name"] for r in got] == ["adam", "Émile", "Zoë"]
        assert all(r["name_key"] == name_key(r["display_name"]) for r in got)
        counts = {r["deleted"]: r["n"] for r in
                  await db.fetchall("SELECT deleted, n FROM entity_counts")}
        assert counts == {0: 2, 1: 1}
        external = await db.fetchall("SELECT DISTINCT external_ids FROM entities")
        assert [r[0] for r in external] == ["{}"]
    finally:
        await db.close()

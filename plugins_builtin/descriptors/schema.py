"""The descriptors plugin's migrations."""

from __future__ import annotations

from ff_plugin_sdk import Migration

MIGRATIONS = [
    Migration(
        version=1,
        name="descriptors: time-bound facts about entities",
        sql="""
        -- seq: creation order, the last tie-breaker of the list order
        -- value: canonical JSON (object keys sorted), so equal values are equal text
        -- valid_from / valid_to: calendar days YYYY-MM-DD, both inclusive; NULL = unbounded
        -- entity_id is the entities plugin's id; not a foreign key (its table is not ours)
        CREATE TABLE descriptors (
            seq INTEGER PRIMARY KEY,
            descriptor_id TEXT NOT NULL UNIQUE,
            entity_id TEXT NOT NULL,
            key TEXT NOT NULL,
            value TEXT NOT NULL,
            valid_from TEXT,
            valid_to TEXT,
            source TEXT,
            notes TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            deleted_at TEXT
        );
        -- the list order: by key, newest valid_from first (unbounded last), newest created
        CREATE INDEX descriptors_entity_order
            ON descriptors(entity_id, key, coalesce(valid_from, '') DESC, seq DESC);
        -- one live copy of a fact: the same value twice for the same days says nothing new
        CREATE UNIQUE INDEX descriptors_live_fact
            ON descriptors(entity_id, key, value, coalesce(valid_from, ''),
                           coalesce(valid_to, ''))
            WHERE deleted_at IS NULL;
        """,
    ),
]

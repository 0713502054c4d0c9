"""The entities plugin's migrations."""

from __future__ import annotations

from ff_plugin_sdk import Migration

MIGRATIONS = [
    Migration(
        version=1,
        name="entities, tags and full-text index",
        sql="""
        CREATE TABLE entities (
            entity_id TEXT PRIMARY KEY,
            display_name TEXT NOT NULL,
            aliases TEXT NOT NULL DEFAULT '[]',
            tags TEXT NOT NULL DEFAULT '[]',
            fields TEXT NOT NULL DEFAULT '{}',
            plugin_data TEXT NOT NULL DEFAULT '{}',
            primary_thumbnail_asset_id TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            deleted_at TEXT
        );
        CREATE INDEX entities_created ON entities(created_at, entity_id);
        CREATE INDEX entities_updated ON entities(updated_at, entity_id);
        CREATE INDEX entities_name ON entities(display_name COLLATE NOCASE, entity_id);
        -- one row per (entity, tag): "all of these tags" stays an index lookup at 1M rows
        CREATE TABLE entity_tags (
            entity_id TEXT NOT NULL REFERENCES entities(entity_id) ON DELETE CASCADE,
            tag TEXT NOT NULL COLLATE NOCASE,
            PRIMARY KEY (tag, entity_id)
        ) WITHOUT ROWID;
        CREATE INDEX entity_tags_entity ON entity_tags(entity_id);
        -- rowid = entities.rowid; maintained by the store in the same transaction
        CREATE VIRTUAL TABLE entities_fts USING fts5(
            display_name, aliases, tags, fields,
            tokenize = 'unicode61 remove_diacritics 2',
            prefix = '2 3'
        );
        """,
    ),
]

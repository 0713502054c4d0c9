"""The entities plugin's migrations."""

from __future__ import annotations

from ff_plugin_sdk import Migration

MIGRATIONS = [
    Migration(
        version=1,
        name="entities, tags and full-text index",
        sql="""
        -- seq: creation order (the created_at sort) and the rowid of entities_fts; an
        -- INTEGER PRIMARY KEY, so VACUUM cannot renumber it under the index
        CREATE TABLE entities (
            seq INTEGER PRIMARY KEY,
            entity_id TEXT NOT NULL UNIQUE,
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
        CREATE INDEX entities_updated ON entities(updated_at, entity_id);
        CREATE INDEX entities_name ON entities(display_name COLLATE NOCASE, entity_id);
        -- one row per (entity, tag): "all of these tags" stays an index lookup at 1M rows
        CREATE TABLE entity_tags (
            entity_id TEXT NOT NULL REFERENCES entities(entity_id) ON DELETE CASCADE,
            tag TEXT NOT NULL COLLATE NOCASE,
            PRIMARY KEY (tag, entity_id)
        ) WITHOUT ROWID;
        CREATE INDEX entity_tags_entity ON entity_tags(entity_id);
        -- live entities per tag: the tag filter's suggestions, and which plan a filter uses
        CREATE TABLE entity_tag_counts (
            tag TEXT PRIMARY KEY,
            live INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE INDEX entity_tag_counts_live ON entity_tag_counts(live);
        -- rowid = entities.seq; maintained by the store in the same transaction
        CREATE VIRTUAL TABLE entities_fts USING fts5(
            display_name, aliases, tags, fields,
            tokenize = 'unicode61 remove_diacritics 2',
            prefix = '2 3'
        );
        """,
    ),
    Migration(
        version=2,
        name="entity versions for optimistic concurrency",
        sql="""
        -- bumped by every change; ETag and If-Match (412 when a client's copy is stale)
        ALTER TABLE entities ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
        """,
    ),
    Migration(
        version=3,
        name="find the entities showing an asset as their thumbnail",
        sql="""
        CREATE INDEX entities_thumbnail ON entities(primary_thumbnail_asset_id)
            WHERE primary_thumbnail_asset_id IS NOT NULL;
        """,
    ),
]

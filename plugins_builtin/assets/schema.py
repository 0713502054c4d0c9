"""The assets plugin's migrations."""

from __future__ import annotations

from ff_plugin_sdk import Migration

MIGRATIONS = [
    Migration(
        version=1,
        name="assets and entity links",
        sql="""
        -- asset_id is the SHA-256 of the bytes: one row per blob, whatever its history.
        -- seq: upload order (the list's keyset); blob_state: 'present' while a provider
        -- holds the bytes, 'removed' once the collector deleted them (deleted assets only)
        CREATE TABLE assets (
            seq INTEGER PRIMARY KEY,
            asset_id TEXT NOT NULL UNIQUE,
            kind TEXT NOT NULL,
            filename TEXT NOT NULL,
            mime_type TEXT NOT NULL,
            size INTEGER NOT NULL,
            provider TEXT NOT NULL,
            bucket TEXT,
            blob_state TEXT NOT NULL DEFAULT 'present',
            owner_type TEXT NOT NULL DEFAULT 'system',
            owner_id TEXT,
            derived_from_asset_id TEXT,
            extracted_metadata TEXT NOT NULL DEFAULT '{}',
            user_metadata TEXT NOT NULL DEFAULT '{}',
            plugin_data TEXT NOT NULL DEFAULT '{}',
            version INTEGER NOT NULL DEFAULT 1,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            deleted_at TEXT
        );
        CREATE INDEX assets_kind ON assets(kind, seq);
        CREATE INDEX assets_mime ON assets(mime_type, seq);
        CREATE INDEX assets_derived ON assets(derived_from_asset_id, seq)
            WHERE derived_from_asset_id IS NOT NULL;
        -- what the collector looks for: deleted assets whose bytes are still stored
        CREATE INDEX assets_collectable ON assets(deleted_at)
            WHERE deleted_at IS NOT NULL AND blob_state != 'removed';
        CREATE TABLE asset_links (
            seq INTEGER PRIMARY KEY,
            entity_id TEXT NOT NULL,
            asset_id TEXT NOT NULL,
            role TEXT,
            created_at TEXT NOT NULL,
            UNIQUE (entity_id, asset_id)
        );
        CREATE INDEX asset_links_asset ON asset_links(asset_id, entity_id);
        """,
    ),
    Migration(
        version=2,
        name="media dimensions lifted from extracted metadata",
        sql="""
        -- width/height in pixels (images, video), duration in seconds (audio, video): set by
        -- metadata extraction, NULL until then or when the file has none
        ALTER TABLE assets ADD COLUMN width INTEGER;
        ALTER TABLE assets ADD COLUMN height INTEGER;
        ALTER TABLE assets ADD COLUMN duration_seconds REAL;
        """,
    ),
    Migration(
        version=3,
        name="resumable uploads (tus)",
        sql="""
        -- one row per tus upload; its bytes are in tmp/upload-<upload_id>.part.  received:
        -- bytes durably written; hash_state: the SHA-256 state after them (NULL where it
        -- cannot be saved: re-read after a restart); request: what the upload asked for
        -- (kind, links, metadata), as JSON; asset_id: set once it became an asset
        CREATE TABLE uploads (
            upload_id TEXT PRIMARY KEY,
            length INTEGER NOT NULL,
            received INTEGER NOT NULL DEFAULT 0,
            metadata TEXT NOT NULL,
            request TEXT NOT NULL,
            hash_state BLOB,
            asset_id TEXT,
            deduplicated INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL,
            expires_at TEXT NOT NULL
        );
        CREATE INDEX uploads_expiry ON uploads(expires_at);
        """,
    ),
    Migration(
        version=4,
        name="bulk import records",
        sql="""
        -- what a bulk import took from a folder: a re-run skips a file whose size and mtime
        -- (and sidecar's) are unchanged without reading it; written in the transaction that
        -- records the file's asset, so a crash never leaves a record without its asset
        CREATE TABLE import_files (
            root TEXT NOT NULL,
            relpath TEXT NOT NULL,
            size INTEGER NOT NULL,
            mtime_ns INTEGER NOT NULL,
            sidecar TEXT,
            asset_id TEXT NOT NULL,
            imported_at TEXT NOT NULL,
            PRIMARY KEY (root, relpath)
        ) WITHOUT ROWID;
        """,
    ),
]

"""Applying migrations: each plugin's, in version order, one transaction each.

Applied steps are recorded in ``schema_migrations`` as (plugin, version); running again
applies nothing new, so restart is idempotent.
"""

from __future__ import annotations

import logging
import sqlite3
from collections import defaultdict
from collections.abc import Iterator, Sequence
from functools import partial

from ff_plugin_sdk.types import Migration
from kernel.clock import utc_now
from kernel.db import Database, WriteTx
from kernel.errors import StartupError

log = logging.getLogger("faceforge.migrations")

KERNEL = "kernel"

KERNEL_MIGRATIONS = [
    Migration(
        version=1,
        name="events and ui sessions",
        sql="""
        CREATE TABLE events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            type TEXT NOT NULL,
            created_at TEXT NOT NULL,
            data TEXT NOT NULL DEFAULT '{}',
            correlation_id TEXT
        );
        CREATE INDEX events_type ON events(type, id);
        CREATE TABLE ui_sessions (
            id_hash TEXT PRIMARY KEY,
            csrf_token TEXT NOT NULL,
            token_fingerprint TEXT NOT NULL,
            created_at TEXT NOT NULL,
            expires_at TEXT NOT NULL
        );
        """,
    ),
    Migration(
        version=2,
        name="event cursors, session idle time, one timestamp format, scoped tokens",
        sql="""
        -- the last event id delivered to each in-process subscriber (at-least-once delivery)
        CREATE TABLE event_cursors (
            subscriber TEXT PRIMARY KEY,
            last_id INTEGER NOT NULL,
            updated_at TEXT NOT NULL
        );
        ALTER TABLE ui_sessions ADD COLUMN last_seen_at TEXT;
        -- sessions were stamped '...+00:00'; every timestamp is now '...Z' (kernel.clock)
        UPDATE ui_sessions SET
            created_at = replace(strftime('%Y-%m-%dT%H:%M:%fZ', created_at), 'Z', '000Z'),
            expires_at = replace(strftime('%Y-%m-%dT%H:%M:%fZ', expires_at), 'Z', '000Z');
        UPDATE ui_sessions SET last_seen_at = created_at;
        -- tokens that hold only some scopes (per-plugin tokens are built on them)
        CREATE TABLE api_tokens (
            name TEXT NOT NULL,
            token_hash TEXT NOT NULL UNIQUE,
            scopes TEXT NOT NULL,
            created_at TEXT NOT NULL,
            revoked_at TEXT
        );
        CREATE UNIQUE INDEX api_tokens_live_name ON api_tokens(name) WHERE revoked_at IS NULL;
        """,
    ),
    Migration(
        version=3,
        name="plugin state: enabled, consent, settings",
        sql="""
        -- one row per plugin a user (or Core) has decided about; no row: the default
        -- (built-ins enabled, third-party plugins disabled)
        CREATE TABLE plugin_state (
            plugin_id TEXT PRIMARY KEY,
            enabled INTEGER NOT NULL,
            -- {"version", "permissions", "at"}: what was agreed to, for which manifest
            consent TEXT NOT NULL DEFAULT 'null',
            config TEXT NOT NULL DEFAULT '{}',
            -- why Core disabled it by itself (a new version asking for more)
            note TEXT,
            updated_at TEXT NOT NULL
        );
        """,
    ),
]


def split_statements(sql: str) -> Iterator[str]:
    """Split a script into complete statements (a trigger's ``BEGIN ... END;`` stays whole).

    ``executescript`` would commit the open transaction, so statements run one by one.
    """
    buffer = ""
    for part in sql.split(";"):
        buffer += part + ";"
        if sqlite3.complete_statement(buffer):
            if buffer.strip(" \t\r\n;"):
                yield buffer.strip()
            buffer = ""
    if buffer.strip(" \t\r\n;"):
        yield buffer.strip()


def _apply(plugin: str, step: Migration, tx: WriteTx) -> None:
    """One migration and its bookkeeping row: one transaction, one hop."""
    for statement in split_statements(step.sql):
        tx.execute(statement)
    if step.run is not None:
        step.run(tx)
    tx.execute("INSERT INTO schema_migrations (plugin, version, name, applied_at)"
               " VALUES (?, ?, ?, ?)", (plugin, step.version, step.name, utc_now()))


async def apply_migrations(
    db: Database, contributed: Sequence[tuple[str, Migration]]
) -> list[tuple[str, int, str]]:
    """Apply what is missing; returns (plugin, version, name) for each step applied."""
    await db.write(lambda tx: tx.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " plugin TEXT NOT NULL, version INTEGER NOT NULL, name TEXT NOT NULL,"
        " applied_at TEXT NOT NULL, PRIMARY KEY (plugin, version))"))
    by_plugin: dict[str, list[Migration]] = defaultdict(list)
    for migration in KERNEL_MIGRATIONS:
        by_plugin[KERNEL].append(migration)
    for plugin, migration in contributed:
        by_plugin[plugin].append(migration)

    applied: list[tuple[str, int, str]] = []
    done = {(r["plugin"], r["version"]) for r in
            await db.fetchall("SELECT plugin, version FROM schema_migrations")}
    for plugin, steps in by_plugin.items():
        versions = [m.version for m in steps]
        if len(set(versions)) != len(versions):
            raise StartupError(f"plugin {plugin!r} declares migration versions twice: {versions}")
        for step in sorted(steps, key=lambda m: m.version):
            if (plugin, step.version) in done:
                continue
            try:
                await db.write(partial(_apply, plugin, step))
            except sqlite3.Error as exc:
                raise StartupError(
                    f"plugin {plugin!r} migration {step.version} ({step.name}) failed: {exc}"
                ) from exc
            log.info("applied migration %s %d: %s", plugin, step.version, step.name)
            applied.append((plugin, step.version, step.name))
    return applied

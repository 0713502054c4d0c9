"""Applying plugin migrations: once each, recorded per (plugin, version), atomic per step."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from schema_steps import Schema

from ff_plugin_sdk import Migration
from kernel.db import Database
from kernel.errors import StartupError
from kernel.migrations import apply_migrations, split_statements
from tests.conftest import running

from .conftest import kernel_of

NOTES_V1 = Migration(version=1, name="notes", sql="""
    CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL);
    CREATE INDEX notes_text ON notes(text);
""")
NOTES_V2 = Migration(version=2, name="note counts", sql="""
    CREATE TABLE note_count (n INTEGER NOT NULL);
    INSERT INTO note_count (n) VALUES (0);
    CREATE TRIGGER notes_counted AFTER INSERT ON notes
    BEGIN
        UPDATE note_count SET n = n + 1;
        UPDATE note_count SET n = n;
    END;
""")


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(tmp_path / "core.sqlite3")
    await database.open()
    yield database
    await database.close()


async def tables(db: Database) -> set[str]:
    return {r["name"] for r in await db.fetchall(
        "SELECT name FROM sqlite_master WHERE type IN ('table', 'trigger')")}


async def recorded(db: Database) -> set[tuple[str, int]]:
    return {(r["plugin"], r["version"]) for r in
            await db.fetchall("SELECT plugin, version FROM schema_migrations")}


async def test_migrations_apply_once_and_are_recorded_per_plugin(db: Database) -> None:
    contributed = [("notes", NOTES_V1), ("notes", NOTES_V2),
                   ("other", Migration(version=1, name="other", sql="CREATE TABLE other (x)"))]

    applied = await apply_migrations(db, contributed)

    assert ("notes", 1, "notes") in applied and ("notes", 2, "note counts") in applied
    assert ("other", 1, "other") in applied
    assert {("notes", 1), ("notes", 2), ("other", 1), ("kernel", 1)} <= await recorded(db)
    assert {"notes", "note_count", "notes_counted", "other", "events"} <= await tables(db)

    # Second start: nothing to do, nothing re-run (the seed row is not inserted twice).
    assert await apply_migrations(db, contributed) == []
    assert [r["n"] for r in await db.fetchall("SELECT n FROM note_count")] == [0]


async def test_steps_run_in_version_order_whatever_the_declared_order(db: Database) -> None:
    applied = await apply_migrations(db, [("notes", NOTES_V2), ("notes", NOTES_V1)])
    assert [(p, v) for p, v, _ in applied if p == "notes"] == [("notes", 1), ("notes", 2)]


async def test_a_new_step_is_applied_on_the_next_start(db: Database) -> None:
    await apply_migrations(db, [("notes", NOTES_V1)])
    assert await apply_migrations(db, [("notes", NOTES_V1), ("notes", NOTES_V2)]) == [
        ("notes", 2, "note counts")]


async def test_trigger_from_a_migration_works(db: Database) -> None:
    await apply_migrations(db, [("notes", NOTES_V1), ("notes", NOTES_V2)])
    await db.write(lambda tx: tx.executemany("INSERT INTO notes (text) VALUES (?)",
                                             [("a; b",), ("c",)]))
    assert (await db.fetchone("SELECT n FROM note_count"))["n"] == 2


async def test_failing_migration_names_plugin_and_version_and_leaves_nothing(
    db: Database,
) -> None:
    broken = Migration(version=2, name="half done", sql="""
        CREATE TABLE half (x INTEGER);
        INSERT INTO half (x) VALUES (1);
        INSERT INTO no_such_table (x) VALUES (1);
    """)
    with pytest.raises(StartupError) as info:
        await apply_migrations(db, [("notes", NOTES_V1), ("notes", broken)])

    message = str(info.value)
    assert "'notes'" in message
    assert "migration 2" in message and "half done" in message
    assert "no_such_table" in message
    assert "half" not in await tables(db)
    assert ("notes", 2) not in await recorded(db)
    assert ("notes", 1) in await recorded(db)  # earlier steps stay applied


async def test_duplicate_versions_are_refused(db: Database) -> None:
    twin = Migration(version=1, name="twin", sql="CREATE TABLE twin (x)")
    with pytest.raises(StartupError, match="'notes' declares migration versions twice"):
        await apply_migrations(db, [("notes", NOTES_V1), ("notes", twin)])


def test_split_statements_keeps_a_trigger_body_whole() -> None:
    statements = list(split_statements(NOTES_V2.sql))
    assert len(statements) == 3
    trigger = statements[2]
    assert trigger.startswith("CREATE TRIGGER notes_counted")
    assert "UPDATE note_count SET n = n + 1;" in trigger
    assert trigger.endswith("END;")
    assert all(sqlite3.complete_statement(s) for s in statements)


def test_split_statements_keeps_semicolons_in_strings_and_drops_empties() -> None:
    sql = "INSERT INTO t VALUES ('a;b');;\n  ;INSERT INTO t VALUES (\"c;\");"
    assert list(split_statements(sql)) == ["INSERT INTO t VALUES ('a;b');",
                                           'INSERT INTO t VALUES ("c;");']


# --- through the app ------------------------------------------------------------------


async def test_app_start_applies_plugin_migrations_once(make_app, settings) -> None:
    plugin = Schema(NOTES_V1)
    app = make_app(extra_plugins=[("notes", plugin)])
    async with running(app, settings.install_token):
        db = kernel_of(app).db
        assert "notes" in await tables(db)
        assert ("notes", 1) in await recorded(db)

    # Second start on the same home: nothing left to apply.
    again = make_app(extra_plugins=[("notes", plugin)])
    async with running(again, settings.install_token):
        db = kernel_of(again).db
        assert await apply_migrations(db, await kernel_of(again).hooks.migrations()) == []


async def test_app_start_fails_on_a_broken_migration(make_app, settings) -> None:
    broken = Migration(version=1, name="typo", sql="CREATE TABLEE oops (x)")
    app = make_app(extra_plugins=[("typo_plugin", Schema(broken))])
    with pytest.raises(StartupError) as info:
        async with app.router.lifespan_context(app):
            pass
    assert "'typo_plugin' migration 1 (typo)" in str(info.value)
    assert kernel_of(app).startup_error is info.value


async def test_a_python_step_runs_in_the_migrations_transaction(db: Database) -> None:
    await apply_migrations(db, [("notes", NOTES_V1)])
    await db.write(lambda tx: tx.executemany("INSERT INTO notes (text) VALUES (?)",
                                             [("Émile",), ("ada",)]))

    def fold(tx) -> None:
        rows = tx.fetchall("SELECT id, text FROM notes")
        tx.executemany("UPDATE notes SET folded = ? WHERE id = ?",
                       [(r["text"].casefold(), r["id"]) for r in rows])

    step = Migration(version=2, name="folded", run=fold,
                     sql="ALTER TABLE notes ADD COLUMN folded TEXT")
    await apply_migrations(db, [("notes", NOTES_V1), ("notes", step)])
    assert [r["folded"] for r in await db.fetchall("SELECT folded FROM notes ORDER BY id")] \
        == ["émile", "ada"]

    def broken(tx) -> None:
        tx.execute("UPDATE notes SET folded = 'lost'")
        raise sqlite3.OperationalError("the step failed")

    bad = Migration(version=3, name="broken", sql="CREATE TABLE extra (x)", run=broken)
    with pytest.raises(StartupError, match="broken"):
        await apply_migrations(db, [("notes", NOTES_V1), ("notes", step), ("notes", bad)])
    # the whole step rolled back: its SQL, its Python and its record
    assert "extra" not in await tables(db)
    assert {r["folded"] for r in await db.fetchall("SELECT folded FROM notes")} == \
        {"émile", "ada"}
    assert ("notes", 3) not in await recorded(db)

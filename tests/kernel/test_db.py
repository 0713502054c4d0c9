"""The SQLite database: WAL, foreign keys, queued writers, rollback and after-commit work."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kernel.db import Database
from kernel.errors import StartupError

from .conftest import eventually


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(tmp_path / "db" / "core.sqlite3")
    await database.open()
    async with database.transaction() as tx:
        await tx.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY, name TEXT)")
        await tx.execute("CREATE TABLE child (id INTEGER PRIMARY KEY,"
                         " parent_id INTEGER NOT NULL REFERENCES parent(id))")
    yield database
    await database.close()


async def test_wal_journal_is_on(db: Database) -> None:
    row = await db.fetchone("PRAGMA journal_mode")
    assert row[0] == "wal"
    assert Path(str(db.path) + "-wal").exists()


async def test_foreign_keys_are_enforced(db: Database) -> None:
    with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
        async with db.transaction() as tx:
            await tx.execute("INSERT INTO child (parent_id) VALUES (42)")
    assert (await db.fetchone("PRAGMA foreign_keys"))[0] == 1


async def test_fifty_concurrent_writers_all_commit(db: Database) -> None:
    async def write(n: int) -> int:
        async with db.transaction() as tx:
            row_id = await tx.execute("INSERT INTO parent (name) VALUES (?)", (f"p{n}",))
            # Read-then-write inside the transaction: must see its own row.
            assert (await tx.fetchone("SELECT name FROM parent WHERE id = ?", (row_id,)))[0] \
                == f"p{n}"
            return row_id

    ids = await asyncio.gather(*(write(n) for n in range(50)))

    assert len(set(ids)) == 50
    rows = await db.fetchall("SELECT name FROM parent ORDER BY id")
    assert sorted(r["name"] for r in rows) == sorted(f"p{n}" for n in range(50))


async def test_readers_run_while_a_write_is_open(db: Database) -> None:
    async with db.transaction() as tx:
        await tx.execute("INSERT INTO parent (name) VALUES ('uncommitted')")
        # A reader is not blocked by the open write and does not see it (snapshot).
        assert await asyncio.wait_for(db.fetchall("SELECT * FROM parent"), 5) == []
    assert [r["name"] for r in await db.fetchall("SELECT name FROM parent")] == ["uncommitted"]


async def test_readers_cannot_write(db: Database) -> None:
    with pytest.raises(sqlite3.OperationalError, match=r"readonly|read-only"):
        await db.fetchall("INSERT INTO parent (name) VALUES ('sneaky')")


async def test_failing_transaction_rolls_back_and_skips_after_commit(db: Database) -> None:
    ran: list[str] = []
    with pytest.raises(RuntimeError, match="changed my mind"):
        async with db.transaction() as tx:
            await tx.execute("INSERT INTO parent (name) VALUES ('ghost')")
            tx.after_commit(lambda: ran.append("ghost"))
            raise RuntimeError("changed my mind")

    assert ran == []
    assert await db.fetchall("SELECT * FROM parent") == []
    # The writer is usable again afterwards.
    async with db.transaction() as tx:
        await tx.execute("INSERT INTO parent (name) VALUES ('real')")
        tx.after_commit(lambda: ran.append("real"))
    assert ran == ["real"]


async def test_after_commit_runs_once_the_data_is_visible(db: Database) -> None:
    seen: list[int] = []

    async with db.transaction() as tx:
        await tx.execute("INSERT INTO parent (name) VALUES ('a')")
        tx.after_commit(lambda: seen.append(1))
        assert seen == []
    assert seen == [1]
    assert len(await db.fetchall("SELECT * FROM parent")) == 1


async def test_a_failing_after_commit_callback_does_not_undo_the_commit(db: Database) -> None:
    ran: list[str] = []

    def broken() -> None:
        raise ValueError("callback bug")

    async with db.transaction() as tx:
        await tx.execute("INSERT INTO parent (name) VALUES ('kept')")
        tx.after_commit(broken)
        tx.after_commit(lambda: ran.append("next"))
    assert ran == ["next"]
    assert [r["name"] for r in await db.fetchall("SELECT name FROM parent")] == ["kept"]


def worker_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.endswith("(_connection_worker_thread)")]


@pytest.mark.parametrize("make_bad", [
    pytest.param(lambda path: path.mkdir(), id="a folder where the file should be"),
    pytest.param(lambda path: path.write_bytes(b"not sqlite " * 500), id="not a database"),
])
async def test_unopenable_database_is_a_startup_error(tmp_path: Path, make_bad) -> None:
    before = set(worker_threads())
    path = tmp_path / "core.sqlite3"
    make_bad(path)
    with pytest.raises(StartupError) as info:
        await Database(path).open()
    assert str(path) in str(info.value)
    # A connection left open keeps a (non-daemon) worker thread, so Core would never exit.
    await eventually(lambda: not set(worker_threads()) - before,
                     what="the failed open's connection threads to end")

"""The SQLite database: WAL, foreign keys, and the one-hop write path — whole transactions
on the writer thread, rollback on any exception, a failed COMMIT, group commit, cancelled
callers, after-commit work — plus readers that never wait for the writer."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kernel.correlation import correlation_id
from kernel.db import Database, WriteTx
from kernel.errors import StartupError

from .conftest import eventually

SCHEMA = [
    "CREATE TABLE parent (id INTEGER PRIMARY KEY, name TEXT UNIQUE)",
    "CREATE TABLE child (id INTEGER PRIMARY KEY,"
    " parent_id INTEGER NOT NULL REFERENCES parent(id))",
    # checked at COMMIT, not per statement: the way a COMMIT itself fails
    "CREATE TABLE late (id INTEGER PRIMARY KEY, parent_id INTEGER NOT NULL"
    " REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED)",
    "CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, type TEXT NOT NULL,"
    " created_at TEXT NOT NULL, data TEXT NOT NULL, correlation_id TEXT)",
]


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(tmp_path / "db" / "core.sqlite3")
    await database.open()

    def schema(tx: WriteTx) -> None:
        for sql in SCHEMA:
            tx.execute(sql)

    await database.write(schema)
    yield database
    await database.close()


def insert(name: str):
    return lambda tx: tx.execute("INSERT INTO parent (name) VALUES (?)", (name,))


class Held:
    """A write of ``name`` that then holds the writer thread until :meth:`release`."""

    def __init__(self, db: Database, name: str) -> None:
        self.inside, self._release = threading.Event(), threading.Event()

        def hold(tx: WriteTx) -> None:
            tx.execute("INSERT INTO parent (name) VALUES (?)", (name,))
            self.inside.set()
            self._release.wait(5)

        self.task = asyncio.create_task(db.write(hold))

    async def holding(self) -> Held:
        await eventually(self.inside.is_set, what="a write to hold the writer")
        return self

    def release(self) -> None:
        self._release.set()


async def names(db: Database) -> list[str]:
    return [r["name"] for r in await db.fetchall("SELECT name FROM parent ORDER BY id")]


async def test_wal_journal_is_on(db: Database) -> None:
    row = await db.fetchone("PRAGMA journal_mode")
    assert row[0] == "wal"
    assert Path(str(db.path) + "-wal").exists()


async def test_a_write_function_runs_on_the_writer_thread_and_returns_its_result(
        db: Database) -> None:
    seen: list[str] = []

    def work(tx: WriteTx) -> int:
        seen.append(threading.current_thread().name)
        row_id = tx.execute("INSERT INTO parent (name) VALUES ('a')")
        # reads inside the transaction see its own writes
        assert tx.fetchone("SELECT name FROM parent WHERE id = ?", (row_id,))["name"] == "a"
        return row_id

    row_id = await db.write(work)
    assert seen == ["faceforge-db-writer"]
    assert (await db.fetchone("SELECT id FROM parent WHERE name = 'a'"))["id"] == row_id


async def test_foreign_keys_are_enforced(db: Database) -> None:
    with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
        await db.write(lambda tx: tx.execute("INSERT INTO child (parent_id) VALUES (42)"))
    assert (await db.fetchone("PRAGMA foreign_keys"))[0] == 1


async def test_any_exception_rolls_back_every_statement(db: Database) -> None:
    def half(tx: WriteTx) -> None:
        tx.execute("INSERT INTO parent (name) VALUES ('first')")
        tx.event("ghost.created", {})
        raise RuntimeError("changed my mind")

    with pytest.raises(RuntimeError, match="changed my mind"):
        await db.write(half)
    assert await names(db) == []
    assert await db.fetchall("SELECT * FROM events") == []
    await db.write(insert("after"))  # the writer is usable again
    assert await names(db) == ["after"]


async def test_failed_commit_rolls_back_and_leaves_the_writer_usable(db: Database) -> None:
    def dangling(tx: WriteTx) -> None:
        tx.execute("INSERT INTO parent (name) VALUES ('kept?')")
        tx.execute("INSERT INTO late (parent_id) VALUES (999)")  # fine until COMMIT

    with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
        await db.write(dangling)
    assert await names(db) == []
    assert await db.fetchall("SELECT * FROM late") == []
    await db.write(insert("next"))
    assert await names(db) == ["next"]


async def test_fifty_concurrent_writers_all_commit(db: Database) -> None:
    ids = await asyncio.gather(*(db.write(insert(f"p{n}")) for n in range(50)))
    assert len(set(ids)) == 50
    assert sorted(await names(db)) == sorted(f"p{n}" for n in range(50))


async def test_one_failing_function_in_a_group_fails_alone(db: Database) -> None:
    # queued together, they are committed together; the failure is one savepoint's
    await db.write(insert("taken"))
    results = await asyncio.gather(
        *(db.write(insert(f"ok{n}")) for n in range(5)),
        db.write(insert("taken")),  # UNIQUE violation
        *(db.write(insert(f"ok{n}")) for n in range(5, 10)),
        return_exceptions=True)
    errors = [r for r in results if isinstance(r, Exception)]
    assert len(errors) == 1 and isinstance(errors[0], sqlite3.IntegrityError)
    assert sorted(await names(db)) == sorted(["taken", *(f"ok{n}" for n in range(10))])


async def test_a_failed_commit_in_a_group_fails_only_the_guilty_function(
        db: Database) -> None:
    def dangling(tx: WriteTx) -> None:
        tx.execute("INSERT INTO parent (name) VALUES ('guilty')")
        tx.execute("INSERT INTO late (parent_id) VALUES (999)")

    results = await asyncio.gather(
        db.write(insert("a")), db.write(dangling), db.write(insert("b")),
        return_exceptions=True)
    assert isinstance(results[1], sqlite3.IntegrityError)
    assert not isinstance(results[0], Exception) and not isinstance(results[2], Exception)
    assert sorted(await names(db)) == ["a", "b"]


async def test_group_commit_groups_transactions_queued_while_the_writer_is_busy(
        db: Database) -> None:
    statements: list[str] = []
    slow = await Held(db, "slow").holding()
    rest = [asyncio.create_task(db.write(insert(f"g{n}"))) for n in range(5)]
    await eventually(lambda: db._jobs.qsize() == 5, what="five writes to queue up")
    db._writer.set_trace_callback(statements.append)
    slow.release()
    await asyncio.gather(slow.task, *rest)
    db._writer.set_trace_callback(None)

    # the five queued while the writer was busy: one BEGIN, a savepoint each, one COMMIT
    assert [s for s in statements if s in ("BEGIN IMMEDIATE", "COMMIT")] == [
        "COMMIT", "BEGIN IMMEDIATE", "COMMIT"]
    assert sum(s == "SAVEPOINT job" for s in statements) == 5
    assert sorted(await names(db)) == sorted(["slow", *(f"g{n}" for n in range(5))])


async def test_a_cancelled_caller_never_leaves_a_transaction_open(db: Database) -> None:
    blocker = await Held(db, "blocker").holding()
    queued = asyncio.create_task(db.write(insert("never")))
    await asyncio.sleep(0)
    queued.cancel()  # cancelled while waiting for the writer: its function never runs
    with pytest.raises(asyncio.CancelledError):
        await queued
    blocker.release()
    await blocker.task

    # cancelled while its function runs: the transaction still ends (here: commits)
    long = await Held(db, "long").holding()
    long.task.cancel()
    long.release()
    with pytest.raises(asyncio.CancelledError):
        await long.task
    await db.write(insert("later"))  # BEGIN IMMEDIATE would fail if one were left open
    assert await names(db) == ["blocker", "long", "later"]


async def test_readers_run_while_a_write_is_open(db: Database) -> None:
    write = await Held(db, "uncommitted").holding()
    # A reader is not blocked by the open write and does not see it (snapshot).
    assert await asyncio.wait_for(db.fetchall("SELECT * FROM parent"), 5) == []
    write.release()
    await write.task
    assert await names(db) == ["uncommitted"]


async def test_readers_cannot_write(db: Database) -> None:
    with pytest.raises(sqlite3.OperationalError, match=r"readonly|read-only"):
        await db.fetchall("INSERT INTO parent (name) VALUES ('sneaky')")


async def test_after_commit_runs_once_the_data_is_visible_and_never_on_rollback(
        db: Database) -> None:
    ran: list[str] = []

    def committed(tx: WriteTx) -> None:
        tx.execute("INSERT INTO parent (name) VALUES ('a')")
        tx.after_commit(lambda: ran.append("a"))

    def refused(tx: WriteTx) -> None:
        tx.after_commit(lambda: ran.append("ghost"))
        raise ValueError("no")

    await db.write(committed)
    assert ran == ["a"]
    with pytest.raises(ValueError):
        await db.write(refused)
    assert ran == ["a"]


async def test_a_failing_after_commit_callback_does_not_undo_the_commit(db: Database) -> None:
    ran: list[str] = []

    def broken() -> None:
        raise ValueError("callback bug")

    def work(tx: WriteTx) -> None:
        tx.execute("INSERT INTO parent (name) VALUES ('kept')")
        tx.after_commit(broken)
        tx.after_commit(lambda: ran.append("next"))

    await db.write(work)
    assert ran == ["next"]
    assert await names(db) == ["kept"]


async def test_events_carry_the_callers_correlation_id_and_notify_listeners(
        db: Database) -> None:
    newest: list[int] = []
    db.event_listeners.append(newest.append)
    token = correlation_id.set("cid-write-1")
    try:
        event_id = await db.write(lambda tx: tx.event("thing.happened", {"n": 1}))
    finally:
        correlation_id.reset(token)
    row = await db.fetchone("SELECT * FROM events WHERE id = ?", (event_id,))
    assert (row["type"], row["correlation_id"]) == ("thing.happened", "cid-write-1")
    assert newest == [event_id]


async def test_writing_to_a_closed_database_is_an_error(tmp_path: Path) -> None:
    database = Database(tmp_path / "core.sqlite3")
    with pytest.raises(RuntimeError, match="not open"):
        await database.write(insert("x"))


async def test_close_finishes_queued_writes(tmp_path: Path) -> None:
    database = Database(tmp_path / "core.sqlite3")
    await database.open()
    await database.write(lambda tx: tx.execute("CREATE TABLE t (n INTEGER)"))
    writes = [asyncio.create_task(database.write(
        lambda tx, n=n: tx.execute("INSERT INTO t VALUES (?)", (n,)))) for n in range(20)]
    await asyncio.sleep(0)
    await database.close()
    await asyncio.gather(*writes)
    with sqlite3.connect(database.path) as conn:
        assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == 20


def worker_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate()
            if t.name.endswith("(_connection_worker_thread)") or t.name == "faceforge-db-writer"]


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


@pytest.mark.skipif(not hasattr(__import__("os"), "geteuid"), reason="POSIX file modes")
async def test_database_files_are_owner_only(db: Database) -> None:
    await db.write(insert("x"))
    for path in (db.path, Path(str(db.path) + "-wal")):
        assert path.stat().st_mode & 0o777 == 0o600, path

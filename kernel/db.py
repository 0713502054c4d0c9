"""SQLite: one writer thread that runs whole transactions, and a small pool of async readers.

The write path (DESIGN §3a).  A caller hands :meth:`Database.write` a *synchronous*
function; the writer thread runs it inside ``BEGIN IMMEDIATE ... COMMIT`` and the caller
awaits the result: one thread hop per transaction, however many statements it runs.

- Any exception in the function rolls its work back and is raised to the caller.
- Group commit: functions queued while the writer was busy run together, each in its own
  SAVEPOINT, under one COMMIT.  One function failing rolls back only its savepoint.
- A failed COMMIT (a deferred constraint) rolls the group back; each of its functions is then
  run again alone, so only the guilty one fails.  So a write function may run more than once:
  it must touch nothing but ``tx`` and return what it computed.
- A caller cancelled before its function started skips it; once started, the transaction
  finishes (commits or rolls back) on the writer thread, never half open.
- The function runs in a copy of the caller's context (its correlation id, say).

The writer is the standard ``sqlite3`` module on a dedicated thread, not aiosqlite: aiosqlite
runs each call through its own queue, so grouping transactions is not possible there.  Readers
use aiosqlite (WAL: they see the last committed state and never wait for the writer).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import os
import queue
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite
import msgspec

from kernel.clock import utc_now
from kernel.correlation import correlation_id
from kernel.errors import StartupError

log = logging.getLogger("faceforge.db")
T = TypeVar("T")

_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=10000",
    "PRAGMA temp_store=MEMORY",
    "PRAGMA cache_size=-32000",
)
#: most transactions grouped under one COMMIT: bounds the work a late failure redoes
MAX_GROUP = 64
#: commits between WAL checkpoints.  Checkpoints run on a thread of their own: SQLite's
#: automatic one runs inside a COMMIT and made every few hundredth write wait milliseconds
CHECKPOINT_EVERY = 200

Params = Sequence[Any] | dict[str, Any]


class WriteTx:
    """The writer connection inside one transaction.  Used only on the writer thread."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.events: list[int] = []
        self.callbacks: list[Callable[[], Any]] = []

    def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement; returns ``lastrowid`` (for an INSERT)."""
        return self.conn.execute(sql, params).lastrowid or 0

    def changes(self, sql: str, params: Params = ()) -> int:
        """Run one statement; returns how many rows it changed (UPDATE, DELETE)."""
        return self.conn.execute(sql, params).rowcount

    def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        self.conn.executemany(sql, rows)

    def fetchall(self, sql: str, params: Params = ()) -> list[Any]:
        return self.conn.execute(sql, params).fetchall()

    def fetchone(self, sql: str, params: Params = ()) -> Any:
        return self.conn.execute(sql, params).fetchone()

    def event(self, type: str, data: dict[str, Any]) -> int:
        """Append an event to the log in this transaction; it exists iff the change does."""
        event_id = self.execute(
            "INSERT INTO events (type, created_at, data, correlation_id) VALUES (?, ?, ?, ?)",
            (type, utc_now(), msgspec.json.encode(data).decode(), correlation_id.get()))
        self.events.append(event_id)
        return event_id

    def after_commit(self, callback: Callable[[], Any]) -> None:
        """Run ``callback`` on the event loop once this transaction has committed."""
        self.callbacks.append(callback)


@dataclass
class _Job:
    fn: Callable[[WriteTx], Any]
    context: contextvars.Context
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop
    cancelled: bool = False
    finished: bool = False
    # outcome, set on the writer thread
    result: Any = None
    error: BaseException | None = None
    tx: WriteTx | None = field(default=None, repr=False)

    def run(self, conn: sqlite3.Connection) -> None:
        self.tx = WriteTx(conn)
        self.error = None
        try:
            self.result = self.context.run(self.fn, self.tx)
        except BaseException as exc:
            self.error = exc


class Database:
    """The metadata database of one Core instance."""

    def __init__(self, path: Path, readers: int = 3) -> None:
        self.path = path
        self._reader_count = readers
        self._readers: asyncio.Queue[aiosqlite.Connection] = asyncio.Queue()
        self._all_readers: list[aiosqlite.Connection] = []
        self._writer: sqlite3.Connection | None = None
        self._thread: threading.Thread | None = None
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._commits = 0
        self._checkpoint_due = threading.Event()
        self._checkpointer: threading.Thread | None = None
        self._stopping = False
        #: called on the event loop with the newest event id after a commit that wrote events
        self.event_listeners: list[Callable[[int], None]] = []

    # -- open / close ---------------------------------------------------------------------
    def _create_file(self) -> None:
        """Create the file owner-only before SQLite does (its -wal/-shm inherit the mode)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if os.name == "posix":
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            os.close(fd)
            if self.path.stat().st_mode & 0o077:
                os.chmod(self.path, 0o600)

    def _connect_writer(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            conn.row_factory = sqlite3.Row
            for pragma in (*_PRAGMAS, "PRAGMA wal_autocheckpoint=0"):
                conn.execute(pragma)
        except BaseException:
            conn.close()
            raise
        return conn

    async def _connect_reader(self) -> aiosqlite.Connection:
        conn = await aiosqlite.connect(self.path, isolation_level=None)
        try:
            conn.row_factory = sqlite3.Row
            for pragma in (*_PRAGMAS[1:], "PRAGMA query_only=ON"):
                await conn.execute(pragma)
        except BaseException:
            # e.g. "file is not a database": the worker thread would keep the process alive
            await conn.close()
            raise
        return conn

    async def open(self) -> None:
        try:
            self._create_file()
            self._writer = self._connect_writer()
            for _ in range(self._reader_count):
                conn = await self._connect_reader()
                self._all_readers.append(conn)
                self._readers.put_nowait(conn)
        except (sqlite3.Error, OSError) as exc:
            await self.close()
            raise StartupError(f"cannot open database {self.path}: {exc}") from exc
        self._jobs = queue.SimpleQueue()
        self._stopping = False
        self._thread = threading.Thread(target=self._writer_loop, args=(self._writer,),
                                        name="faceforge-db-writer", daemon=True)
        self._thread.start()
        self._checkpointer = threading.Thread(target=self._checkpoint_loop,
                                              name="faceforge-db-checkpoint", daemon=True)
        self._checkpointer.start()

    async def close(self) -> None:
        """Finish queued writes, stop the writer thread, close every connection."""
        loop = asyncio.get_running_loop()
        if self._thread is not None:
            self._jobs.put(None)
            await loop.run_in_executor(None, self._thread.join)
            self._thread = None
        if self._checkpointer is not None:
            self._stopping = True
            self._checkpoint_due.set()
            await loop.run_in_executor(None, self._checkpointer.join)
            self._checkpointer = None
        for conn in self._all_readers:
            await conn.close()
        self._all_readers.clear()
        self._readers = asyncio.Queue()
        if self._writer is not None:
            try:  # leave a small WAL behind; readers are closed, so it can be emptied
                self._writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error:
                log.warning("final checkpoint failed", exc_info=True)
            self._writer.close()
            self._writer = None

    @property
    def sqlite_version(self) -> str:
        return sqlite3.sqlite_version

    # -- writes -------------------------------------------------------------------------
    async def write(self, fn: Callable[[WriteTx], T]) -> T:
        """Run ``fn(tx)`` as one transaction on the writer thread; returns what it returns."""
        if self._thread is None:
            raise RuntimeError("database is not open")
        loop = asyncio.get_running_loop()
        job = _Job(fn, contextvars.copy_context(), loop.create_future(), loop)
        self._jobs.put(job)
        try:
            return await job.future
        except asyncio.CancelledError:
            job.cancelled = True  # skipped if the writer has not started it
            raise

    def _checkpoint_loop(self) -> None:
        """Copy the WAL back into the database now and then, beside the writer (PASSIVE:
        it never blocks writers or readers)."""
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            while True:
                self._checkpoint_due.wait()
                self._checkpoint_due.clear()
                if self._stopping:
                    return
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
                except sqlite3.Error:
                    log.warning("WAL checkpoint failed", exc_info=True)
        finally:
            conn.close()

    def _committed(self) -> None:
        self._commits += 1
        if self._commits % CHECKPOINT_EVERY == 0:
            self._checkpoint_due.set()

    def _writer_loop(self, conn: sqlite3.Connection) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            group = [job]
            stop = False
            while len(group) < MAX_GROUP:
                try:
                    more = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                group.append(more)
            try:
                self._run_group(conn, [j for j in group if not j.cancelled])
            except Exception as exc:  # the writer itself failed: keep it alive, tell callers
                log.exception("the database writer failed")
                self._rollback(conn)
                for unfinished in group:
                    if not unfinished.finished:
                        unfinished.error = exc
                        self._finish(unfinished, committed=False)
            if stop:
                return

    def _run_group(self, conn: sqlite3.Connection, group: list[_Job]) -> None:
        if not group:
            return
        if len(group) == 1:
            self._run_alone(conn, group[0])
            return
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            for job in group:
                job.error = exc
                self._finish(job, committed=False)
            return
        for job in group:
            if job.cancelled:  # its caller gave up while it waited in the group
                job.finished = True
                continue
            conn.execute("SAVEPOINT job")
            job.run(conn)
            if job.error is None:
                conn.execute("RELEASE job")
            else:
                conn.execute("ROLLBACK TO job")
                conn.execute("RELEASE job")
        try:
            conn.execute("COMMIT")
        except sqlite3.Error:
            self._rollback(conn)
            for job in group:  # a deferred constraint failed: find whose, one by one
                if not job.cancelled:
                    self._run_alone(conn, job)
            return
        self._committed()
        for job in group:
            if not job.finished:
                self._finish(job, committed=job.error is None)

    def _run_alone(self, conn: sqlite3.Connection, job: _Job) -> None:
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            job.error = exc
            self._finish(job, committed=False)
            return
        job.run(conn)
        if job.error is None:
            try:
                conn.execute("COMMIT")
                self._committed()
            except sqlite3.Error as exc:
                job.error = exc
        if job.error is not None:
            self._rollback(conn)
        self._finish(job, committed=job.error is None)

    @staticmethod
    def _rollback(conn: sqlite3.Connection) -> None:
        if conn.in_transaction:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                log.exception("ROLLBACK failed")

    def _finish(self, job: _Job, committed: bool) -> None:
        """Hand the outcome to the caller's loop; after-commit work runs there first."""
        job.finished = True
        # a closed loop: nobody is waiting for the outcome any more
        with contextlib.suppress(RuntimeError):
            job.loop.call_soon_threadsafe(self._settle, job, committed)

    def _settle(self, job: _Job, committed: bool) -> None:
        tx = job.tx
        if committed and tx is not None:
            if tx.events:
                for listener in self.event_listeners:
                    listener(max(tx.events))
            for callback in tx.callbacks:
                try:
                    callback()
                except Exception:
                    log.exception("after-commit callback failed")
        if job.future.done():  # the caller was cancelled
            return
        if job.error is not None:
            job.future.set_exception(job.error)
        else:
            job.future.set_result(job.result)

    # -- reads --------------------------------------------------------------------------
    @asynccontextmanager
    async def reader(self) -> AsyncIterator[aiosqlite.Connection]:
        conn = await self._readers.get()
        try:
            yield conn
        finally:
            self._readers.put_nowait(conn)

    async def fetchall(self, sql: str, params: Params = ()) -> list[Any]:
        async with self.reader() as conn:
            return list(await conn.execute_fetchall(sql, params))

    async def fetchone(self, sql: str, params: Params = ()) -> Any:
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

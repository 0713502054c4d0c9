"""SQLite through aiosqlite: one writer connection, a small pool of readers, WAL.

Writes are serialised by a lock around ``BEGIN IMMEDIATE`` on the single writer, so
concurrent requests queue instead of failing with "database is locked".  Readers see the
last committed state (WAL snapshot isolation).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite

from kernel.errors import StartupError

log = logging.getLogger("faceforge.db")

_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=10000",
    "PRAGMA temp_store=MEMORY",
    "PRAGMA cache_size=-32000",
)


class Transaction:
    """The writer connection inside ``BEGIN IMMEDIATE``; collects work to run after commit."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self.conn = conn
        self._after_commit: list[Callable[[], Any]] = []

    async def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> int:
        """Run one statement; returns ``lastrowid`` (for INSERTs)."""
        cursor = await self.conn.execute(sql, params)
        rowid = cursor.lastrowid or 0
        await cursor.close()
        return rowid

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        await self.conn.executemany(sql, rows)

    async def fetchall(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[Any]:
        return list(await self.conn.execute_fetchall(sql, params))

    async def fetchone(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> Any:
        rows = list(await self.conn.execute_fetchall(sql, params))
        return rows[0] if rows else None

    def after_commit(self, callback: Callable[[], Any]) -> None:
        """Run ``callback`` once the transaction has committed (never on rollback)."""
        self._after_commit.append(callback)


class Database:
    """The metadata database of one Core instance."""

    def __init__(self, path: Path, readers: int = 3) -> None:
        self.path = path
        self._reader_count = readers
        self._writer: aiosqlite.Connection | None = None
        self._readers: asyncio.Queue[aiosqlite.Connection] = asyncio.Queue()
        self._all_readers: list[aiosqlite.Connection] = []
        self._write_lock = asyncio.Lock()

    async def _connect(self) -> aiosqlite.Connection:
        conn = await aiosqlite.connect(self.path, isolation_level=None)
        try:
            conn.row_factory = sqlite3.Row
            for pragma in _PRAGMAS:
                await conn.execute(pragma)
        except BaseException:
            # e.g. "file is not a database": the worker thread would keep the process alive
            await conn.close()
            raise
        return conn

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._writer = await self._connect()
            for _ in range(self._reader_count):
                conn = await self._connect()
                self._all_readers.append(conn)  # closed by close() even if the next line fails
                await conn.execute("PRAGMA query_only=ON")
                self._readers.put_nowait(conn)
        except sqlite3.Error as exc:
            await self.close()
            raise StartupError(f"cannot open database {self.path}: {exc}") from exc

    async def close(self) -> None:
        for conn in self._all_readers:
            await conn.close()
        self._all_readers.clear()
        if self._writer is not None:
            await self._writer.close()
            self._writer = None

    @property
    def sqlite_version(self) -> str:
        return sqlite3.sqlite_version

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """One write transaction; commits on success, rolls back on any exception."""
        assert self._writer is not None, "database is not open"
        async with self._write_lock:
            tx = Transaction(self._writer)
            await self._writer.execute("BEGIN IMMEDIATE")
            try:
                yield tx
            except BaseException:
                await self._writer.execute("ROLLBACK")
                raise
            await self._writer.execute("COMMIT")
        for callback in tx._after_commit:
            try:
                callback()
            except Exception:
                log.exception("after-commit callback failed")

    @asynccontextmanager
    async def reader(self) -> AsyncIterator[aiosqlite.Connection]:
        conn = await self._readers.get()
        try:
            yield conn
        finally:
            self._readers.put_nowait(conn)

    async def fetchall(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[Any]:
        async with self.reader() as conn:
            return list(await conn.execute_fetchall(sql, params))

    async def fetchone(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> Any:
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

"""The write path in-process (DESIGN §3a): statement by statement vs one call, and group commit.

On a real SQLite file in a temporary directory (WAL, ``synchronous=NORMAL``), the same
8-statement transaction (``BEGIN IMMEDIATE``, 6 INSERT/UPDATEs shaped like an entity create,
``COMMIT``) is run

- ``aiosqlite_per_statement``: through aiosqlite, each statement awaited (8 thread hops);
- ``db_write_sequential``: as one synchronous function through ``await Database.write(fn)``
  (one hop), one transaction after another;
- ``db_write_8_concurrent``: 8 asyncio tasks each looping ``db.write`` at once, so the writer
  thread finds several queued and can commit them together (group commit);
- ``direct_sqlite3``: plain ``sqlite3`` on the calling thread, no hop at all (the floor).

Rounds interleave the methods so the machine's drift hits them alike; the median round of each
is reported.  No server is involved.
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiosqlite

SCHEMA = (
    "CREATE TABLE items (seq INTEGER PRIMARY KEY, item_id TEXT NOT NULL UNIQUE,"
    " name TEXT NOT NULL, data TEXT NOT NULL, updated_at TEXT)",
    "CREATE TABLE item_tags (seq INTEGER NOT NULL, tag TEXT NOT NULL, PRIMARY KEY (seq, tag))",
    "CREATE TABLE tag_counts (tag TEXT PRIMARY KEY, n INTEGER NOT NULL)",
    "CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, type TEXT NOT NULL,"
    " data TEXT NOT NULL)",
)
PRAGMAS = ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL", "PRAGMA busy_timeout=10000")
TAGS = [f"tag{i}" for i in range(20)]
STATEMENTS_PER_TX = 8  # BEGIN IMMEDIATE + the 6 below + COMMIT


def statements(i: int) -> list[tuple[str, tuple[Any, ...]]]:
    """The 6 statements of transaction ``i`` (an entity create: row, 2 tags, 2 counts, event).

    ``seq`` is given, not read back, so every method issues exactly the same statements.
    """
    item_id = f"{i:064x}"
    a, b = TAGS[i % len(TAGS)], TAGS[(i * 7 + 3) % len(TAGS)]
    if a == b:
        b = TAGS[(i + 1) % len(TAGS)]
    return [
        ("INSERT INTO items (seq, item_id, name, data) VALUES (?, ?, ?, ?)",
         (i, item_id, f"Item {i}", f'{{"aliases": [], "fields": {{"n": {i}}}}}')),
        ("INSERT INTO item_tags (seq, tag) VALUES (?, ?)", (i, a)),
        ("INSERT INTO item_tags (seq, tag) VALUES (?, ?)", (i, b)),
        ("INSERT INTO tag_counts (tag, n) VALUES (?, 1)"
         " ON CONFLICT(tag) DO UPDATE SET n = n + 1", (a,)),
        ("UPDATE tag_counts SET n = n + 1 WHERE tag = ?", (b,)),
        ("INSERT INTO events (type, data) VALUES ('item.created', ?)",
         (f'{{"item_id": "{item_id}"}}',)),
    ]


def _tx_fn(i: int) -> Callable[[Any], None]:
    stmts = statements(i)

    def fn(tx: Any) -> None:
        for sql, params in stmts:
            tx.execute(sql, params)
    return fn


class _Ids:
    def __init__(self) -> None:
        self.next = 1

    def take(self, n: int) -> range:
        r = range(self.next, self.next + n)
        self.next += n
        return r


async def _aiosqlite_per_statement(conn: aiosqlite.Connection, ids: range) -> None:
    for i in ids:
        await conn.execute("BEGIN IMMEDIATE")
        for sql, params in statements(i):
            await conn.execute(sql, params)
        await conn.execute("COMMIT")


async def _db_write_sequential(db: Any, ids: range) -> None:
    for i in ids:
        await db.write(_tx_fn(i))


async def _db_write_concurrent(db: Any, ids: range, writers: int) -> None:
    async def writer(part: range) -> None:
        for i in part:
            await db.write(_tx_fn(i))
    await asyncio.gather(*(writer(ids[k::writers]) for k in range(writers)))


def _direct(conn: sqlite3.Connection, ids: range) -> None:
    for i in ids:
        conn.execute("BEGIN IMMEDIATE")
        for sql, params in statements(i):
            conn.execute(sql, params)
        conn.execute("COMMIT")


def _timing(n: int, seconds: float, cpu: float) -> dict[str, Any]:
    return {"transactions": n, "seconds": round(seconds, 4),
            "us_per_tx": round(seconds / n * 1e6, 1), "tx_per_s": round(n / seconds, 1),
            "cpu_us_per_tx": round(cpu / n * 1e6, 1)}


async def _measure(path: Path, n: int, rounds: int, writers: int,
                   quiet: Callable[[], Any] | None) -> dict[str, Any]:
    from kernel.db import Database

    db = Database(path)
    await db.open()
    aconn = direct = None
    try:
        for sql in SCHEMA:
            await db.write(lambda tx, sql=sql: tx.execute(sql))
        aconn = await aiosqlite.connect(path, isolation_level=None)
        direct = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        for pragma in PRAGMAS:
            await aconn.execute(pragma)
            direct.execute(pragma)
        journal = (await db.fetchone("PRAGMA journal_mode"))[0]
        ids = _Ids()
        # warm-up: threads started, statements compiled, pages cached
        warm = max(20, n // 20)
        await _aiosqlite_per_statement(aconn, ids.take(warm))
        await _db_write_sequential(db, ids.take(warm))
        await _db_write_concurrent(db, ids.take(warm), writers)
        _direct(direct, ids.take(warm))

        methods: dict[str, Callable[[range], Any]] = {
            "aiosqlite_per_statement": lambda r: _aiosqlite_per_statement(aconn, r),
            "db_write_sequential": lambda r: _db_write_sequential(db, r),
            f"db_write_{writers}_concurrent": lambda r: _db_write_concurrent(db, r, writers),
            "direct_sqlite3": lambda r: _direct(direct, r),
        }
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in methods}
        for _ in range(rounds):
            if quiet is not None:
                quiet()
            for name, run in methods.items():
                part = ids.take(n)
                cpu0, t0 = time.process_time(), time.perf_counter()
                outcome = run(part)
                if asyncio.iscoroutine(outcome):
                    await outcome
                runs[name].append(_timing(n, time.perf_counter() - t0,
                                          time.process_time() - cpu0))
        rows = (await db.fetchone("SELECT count(*) FROM items"))[0]
        events = (await db.fetchone("SELECT count(*) FROM events"))[0]
    finally:
        if aconn is not None:
            await aconn.close()
        if direct is not None:
            direct.close()
        await db.close()

    out: dict[str, Any] = {"transactions_per_round": n, "rounds": rounds,
                           "journal_mode": journal}
    for name, results in runs.items():
        best = dict(sorted(results, key=lambda r: r["us_per_tx"])[len(results) // 2])
        best["rounds_us_per_tx"] = [r["us_per_tx"] for r in results]
        out[name] = best
    per_stmt = out["aiosqlite_per_statement"]["us_per_tx"]
    one_call = out["db_write_sequential"]["us_per_tx"]
    concurrent = out[f"db_write_{writers}_concurrent"]["tx_per_s"]
    out["per_statement_vs_one_call"] = round(per_stmt / one_call, 2)
    out["thread_hop_us_est"] = round((per_stmt - one_call) / (STATEMENTS_PER_TX - 1), 1)
    out["concurrent_vs_sequential_tx_per_s"] = round(
        concurrent / out["db_write_sequential"]["tx_per_s"], 2)
    out["committed_rows"] = {"items": rows, "events": events, "expected": ids.next - 1}
    return out


def measure_write_path(n: int = 2000, rounds: int = 3, writers: int = 8,
                       quiet: Callable[[], Any] | None = None) -> dict[str, Any]:
    """Runs in its own event loop; ``quiet`` (if given) is called before each round."""
    root = Path(tempfile.mkdtemp(prefix="ffbench-write-"))
    try:
        out = asyncio.run(_measure(root / "write.sqlite3", n, rounds, writers, quiet))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    out["method"] = (
        f"in-process, no server; one SQLite file in a temp dir (WAL, synchronous=NORMAL); "
        f"each transaction = BEGIN IMMEDIATE + 6 INSERT/UPDATEs (row, 2 tags, 2 tag-count "
        f"upserts, event) + COMMIT. aiosqlite_per_statement: each statement awaited through "
        f"aiosqlite (8 hops); db_write_sequential: the 6 statements as one sync function via "
        f"await kernel.db.Database.write(fn), one after another; db_write_{writers}_concurrent:"
        f" {writers} asyncio tasks looping db.write at once (asyncio.gather), tx_per_s vs "
        f"db_write_sequential shows whether group commit pays; direct_sqlite3: plain sqlite3 on"
        f" the calling thread (floor, no hop). {n} transactions per method per round, methods "
        f"interleaved, {rounds} round(s), median round reported; cpu_us_per_tx = process CPU "
        f"(all threads) per transaction; thread_hop_us_est = (per-statement - one call) / 7")
    return out


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(measure_write_path(int(sys.argv[1]) if len(sys.argv) > 1 else 2000),
                     indent=2))

"""Eight keep-alive clients creating entities at once, then proof that nothing was lost.

The clients are one asyncio loop driving ``clients`` raw HTTP/1.1 keep-alive connections
(hand-written request bytes, ``Content-Length`` or chunked bodies): on a 2-core machine shared
with the server, eight threads each with an ``httpx.Client`` would spend more CPU (and GIL
hand-offs) than the server under test.  The client's own CPU is measured and reported
(``client_cpu_cores``) next to the server's, so a reader can tell which side was the limit.

After the timed run: every ``201`` carried an ``entity_id``; each of them answers
``GET /v1/entities/{id}``; the ``entities`` table grew by exactly the number created; and
there is exactly one ``entity.created`` event per created entity (counted in SQLite and again
by paging ``GET /v1/events?type=entity.created&after=``).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import msgspec

from tests.bench.load import CpuMeter, get_json, summarize

Check = Callable[[str, bool, Any], None]
#: a request unanswered this long counts as an error (a hung server must not hang the bench)
REQUEST_TIMEOUT_S = 60.0


class RawConnection:
    """One keep-alive HTTP/1.1 connection; requests go one at a time."""

    def __init__(self, base_url: str, headers: dict[str, str]) -> None:
        url = urlsplit(base_url)
        self.host = url.hostname or "127.0.0.1"
        self.port = url.port or 80
        self._head = "".join(f"{k}: {v}\r\n" for k, v in
                             {"Host": f"{self.host}:{self.port}", **headers}.items())
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def connect(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()
            self.reader = self.writer = None

    async def request(self, method: str, path: str, body: bytes | None = None
                      ) -> tuple[int, bytes]:
        """Send one request and read the whole response: ``(status, body)``."""
        if self.writer is None:
            await self.connect()
        assert self.reader is not None and self.writer is not None
        length = f"Content-Length: {len(body)}\r\n" if body is not None else ""
        self.writer.write(f"{method} {path} HTTP/1.1\r\n{self._head}{length}\r\n".encode()
                          + (body or b""))
        await self.writer.drain()
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        fields = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                fields[name.strip().lower()] = value.strip().lower()
        if "content-length" in fields:
            data = await self.reader.readexactly(int(fields["content-length"]))
        elif fields.get("transfer-encoding") == "chunked":
            parts = []
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    await self.reader.readuntil(b"\r\n")  # no trailers expected
                    break
                parts.append(await self.reader.readexactly(size + 2))
            data = b"".join(p[:-2] for p in parts)
        else:
            data = b""
        if fields.get("connection") == "close":
            await self.close()
        return status, data


async def _drive(base_url: str, headers: dict[str, str], clients: int,
                 work: Sequence[tuple[str, str, bytes | None]], on_response: Callable[
                     [int, tuple[str, str, bytes | None], int, bytes, float], None],
                 ) -> float:
    """Send ``work`` over ``clients`` connections, each taking the next item when free.

    Returns the wall time from the first request to the last response; connections are
    opened before the clock starts.
    """
    conns = [RawConnection(base_url, headers) for _ in range(clients)]
    await asyncio.gather(*(c.connect() for c in conns))
    items: Iterator[tuple[int, tuple[str, str, bytes | None]]] = iter(enumerate(work))

    async def worker(conn: RawConnection) -> None:
        for index, item in items:  # shared iterator: one event loop, no race
            t = time.perf_counter()
            try:
                async with asyncio.timeout(REQUEST_TIMEOUT_S):
                    status, data = await conn.request(*item)
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                    ValueError) as exc:  # TimeoutError is an OSError
                await conn.close()  # reconnects on the next request
                status, data = -1, f"{type(exc).__name__}: {exc}".encode()
            on_response(index, item, status, data, time.perf_counter() - t)

    start = time.perf_counter()
    try:
        await asyncio.gather(*(worker(c) for c in conns))
    finally:
        wall = time.perf_counter() - start
        await asyncio.gather(*(c.close() for c in conns))
    return wall


def _db_state(db: Path) -> tuple[int, int]:
    """(rows in ``entities``, highest event id)."""
    with sqlite3.connect(db) as conn:
        entities = conn.execute("SELECT count(*) FROM entities").fetchone()[0]
        last_event = conn.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0]
    return int(entities), int(last_event)


def _events_in_db(db: Path, after: int) -> Counter[str]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT json_extract(data, '$.entity_id') FROM events"
                            " WHERE type = 'entity.created' AND id > ?", (after,)).fetchall()
    return Counter(r[0] for r in rows)


def _events_over_http(client: httpx.Client, after: int) -> Counter[str]:
    seen: Counter[str] = Counter()
    cursor = str(after)
    while True:
        page = get_json(client, f"/v1/events?type=entity.created&limit=1000&after={cursor}")
        for event in page["items"]:  # ``type`` filters by prefix
            if event["type"] == "entity.created":
                seen[(event.get("data") or {}).get("entity_id")] += 1
        if not page["items"] or not page.get("next_cursor"):
            return seen
        cursor = page["next_cursor"]


def concurrent_create(client: httpx.Client, token: str, db: Path, bodies: Sequence[bytes],
                      server_pid: int | None, check: Check, clients: int = 8,
                      warmup_each: int = 5) -> dict[str, Any]:
    """``len(bodies)`` creates over ``clients`` connections; ``client`` pages the events.

    ``bodies[:clients * warmup_each]`` are sent untimed first (they warm the connections and
    the server); the rest are timed.  Every created entity, warm-up included, is verified.
    """
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    base_url = str(client.base_url).rstrip("/")
    warm_n = min(len(bodies) // 2, clients * warmup_each)
    entities0, last_event0 = _db_state(db)
    created: list[str] = []
    errors: list[str] = []
    missing_id = 0
    latencies: list[float] = []

    def on_create(timed: bool) -> Callable[..., None]:
        def record(index: int, item: Any, status: int, data: bytes, seconds: float) -> None:
            nonlocal missing_id
            if timed:
                latencies.append(seconds)
            if status != 201:
                errors.append(f"{status}: {data[:200].decode('utf-8', 'replace')}")
                return
            try:
                entity_id = msgspec.json.decode(data).get("entity_id")
            except (msgspec.DecodeError, AttributeError):
                entity_id = None
            if isinstance(entity_id, str) and entity_id:
                created.append(entity_id)
            else:
                missing_id += 1
        return record

    post = [("POST", "/v1/entities", b) for b in bodies]
    asyncio.run(_drive(base_url, headers, clients, post[:warm_n], on_create(False)))
    meter = CpuMeter(server_pid).start()
    wall = asyncio.run(_drive(base_url, headers, clients, post[warm_n:], on_create(True)))
    cpu = meter.stop(len(latencies), wall)
    result = summarize(latencies, wall)
    result.update(cpu)
    result["clients"] = clients
    result["errors"] = len(errors)
    result["error_samples"] = errors[:3]
    result["warmup_requests"] = warm_n

    # -- nothing lost ------------------------------------------------------------------
    fetched_bad: list[str] = []

    def on_get(index: int, item: Any, status: int, data: bytes, seconds: float) -> None:
        expected = item[1].rsplit("/", 1)[1]
        ok = status == 200
        if ok:
            try:
                ok = msgspec.json.decode(data).get("entity_id") == expected
            except (msgspec.DecodeError, AttributeError):
                ok = False
        if not ok:
            fetched_bad.append(f"{expected[:12]}: {status}")

    get_started = time.perf_counter()
    asyncio.run(_drive(base_url, headers, clients,
                       [("GET", f"/v1/entities/{e}", None) for e in created], on_get))
    get_seconds = time.perf_counter() - get_started
    entities1, _ = _db_state(db)
    in_db = _events_in_db(db, last_event0)
    over_http = _events_over_http(client, last_event0)
    want = Counter(created)
    sent = len(bodies)
    verify = {
        "sent": sent,
        "created_201": len(created),
        "distinct_entity_ids": len(want),
        "responses_without_entity_id": missing_id,
        "get_failures": len(fetched_bad),
        "get_all_seconds": round(get_seconds, 3),
        "entities_rows_before": entities0,
        "entities_rows_after": entities1,
        "entity_created_events_db": sum(in_db.values()),
        "entity_created_events_http": sum(over_http.values()),
    }
    result["verify"] = verify
    check("8 clients: every request answered 201 with an entity_id",
          len(created) == sent and missing_id == 0 and len(want) == sent,
          {k: verify[k] for k in ("sent", "created_201", "distinct_entity_ids",
                                  "responses_without_entity_id")} | {"errors": errors[:3]})
    check("8 clients: every created entity is GET-able", not fetched_bad, fetched_bad[:3])
    check("8 clients: the entities table grew by exactly the number created",
          entities1 - entities0 == len(created), {"before": entities0, "after": entities1,
                                                  "created": len(created)})
    check("8 clients: exactly one entity.created event per created entity (SQLite)",
          in_db == want, {"events": sum(in_db.values()), "distinct": len(in_db),
                          "created": len(created)})
    check("8 clients: exactly one entity.created event per created entity "
          "(GET /v1/events paging)", over_http == want,
          {"events": sum(over_http.values()), "distinct": len(over_http),
           "created": len(created)})
    result["method"] = (
        f"{clients} keep-alive HTTP/1.1 connections driven by one asyncio loop in the bench "
        f"process (raw request bytes, no httpx: the lightest client, so the 2-core machine's "
        f"CPU goes to the server), each taking the next POST /v1/entities when its previous "
        f"answer is in; {warm_n} untimed warm-up creates, then {len(latencies)} timed; latency "
        f"= request written -> body read (includes queueing behind the other connections); "
        f"client_cpu_cores / server_cpu_cores = CPU each side used over the timed wall time "
        f"(2 cores in all). Verified afterwards (warm-up included): "
        f"201 + entity_id for each, GET of each, entities row count delta, entity.created "
        f"events per id in SQLite and via GET /v1/events?type=entity.created&after= paging")
    return result

"""The SDK follow phase: how soon ``events.follow()`` in another process hears of a commit
(issue 11: p50 <= 20 ms after commit).

A subscriber process (``python -m tests.bench.sdk_follow subscribe URL TOKEN AFTER COUNT``)
follows ``entity.created`` with :class:`ff_plugin_sdk.client.AsyncFaceForge` and prints
each event's entity id with the time it arrived (``time.monotonic_ns()``: the same clock in
every process of a machine).  This process creates one entity at a time against a real
``faceforge serve`` and waits for the subscriber's line before the next.  Latency = arrival
minus the moment the create was sent (the commit happens between that and the answer, so
this bounds the time after commit from above); arrival minus the answer is reported too.
"""

from __future__ import annotations

import asyncio
import selectors
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import httpx

from tests.bench.load import wait_quiet
from tests.bench.server import REPO, BenchError, Server, cli

if TYPE_CHECKING:
    from tests.bench.document import Bench

TARGET_P50_MS = 20.0
LINE_TIMEOUT_S = 30.0


# -- the subscriber process ------------------------------------------------------------------
async def subscribe(url: str, token: str, after: int, count: int) -> None:
    from ff_plugin_sdk.client import AsyncFaceForge

    async with AsyncFaceForge(url, token) as ff:
        seen = 0
        async for event in ff.events.follow(after=after, types="entity.created"):
            sys.stdout.write(f"{event.data['entity_id']} {time.monotonic_ns()}\n")
            sys.stdout.flush()
            seen += 1
            if seen == count:
                return


# -- measuring -------------------------------------------------------------------------------
def _line(stream: IO[str], selector: selectors.BaseSelector) -> str:
    if not selector.select(LINE_TIMEOUT_S):
        raise BenchError(f"the subscriber said nothing for {LINE_TIMEOUT_S:.0f} s")
    line = stream.readline()
    if not line:
        raise BenchError("the subscriber ended early")
    return line


def _ms(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {"p50_ms": round(statistics.median(ordered), 2),
            "p95_ms": round(ordered[int(len(ordered) * 0.95) - 1], 2),
            "min_ms": round(ordered[0], 2), "max_ms": round(ordered[-1], 2)}


def measure(base_url: str, token: str, events: int, warmup: int) -> dict[str, Any]:
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"},
                      timeout=30) as client:
        after = client.get("/v1/events", params={"after": 2**63 - 1, "limit": 1}
                           ).json()["last_id"]
        child = subprocess.Popen(
            [sys.executable, "-m", "tests.bench.sdk_follow", "subscribe", base_url, token,
             str(after), str(warmup + events)], cwd=REPO, stdout=subprocess.PIPE, text=True)
        assert child.stdout is not None
        selector = selectors.DefaultSelector()
        selector.register(child.stdout, selectors.EVENT_READ)
        after_sent, after_answer = [], []
        try:
            for n in range(warmup + events):
                sent = time.monotonic_ns()
                answer = client.post("/v1/entities", json={"display_name": f"follow {n}"})
                answered = time.monotonic_ns()
                if answer.status_code != 201:
                    raise BenchError(f"create answered {answer.status_code}")
                entity_id, arrived = _line(child.stdout, selector).split()
                if entity_id != answer.json()["entity_id"]:
                    raise BenchError(f"event for {entity_id}, expected the entity just made")
                if n >= warmup:
                    after_sent.append((int(arrived) - sent) / 1e6)
                    after_answer.append((int(arrived) - answered) / 1e6)
            child.wait(30)
        finally:
            if child.poll() is None:
                child.kill()
            selector.close()
    return {"events": events, "after_create_sent": _ms(after_sent),
            "after_create_answered": _ms(after_answer),
            "p50_ms": round(statistics.median(after_sent), 2)}


def bench_sdk_follow(root: Path, bench: Bench, progress: Callable[[str], None],
                     quick: bool) -> None:
    home = root / "sdk-follow-home"
    cli(home, "migrate")
    token = cli(home, "token")
    events = 50 if quick else 300
    with Server(home) as server:
        server.start()
        progress(f"SDK follow: {events} events, one at a time, to a subscriber process")
        quiet = wait_quiet(bench.quiet_wait)
        out = measure(server.base_url, token, events, warmup=10)
    out["quiet_wait"] = quiet
    out["method"] = (
        "a subscriber process runs AsyncFaceForge.events.follow(types='entity.created'); "
        "this process creates one entity at a time (POST /v1/entities, keep-alive) and "
        "waits for the subscriber's line; latency = arrival (monotonic clock, shared by the "
        "processes) minus the create being sent, an upper bound on the time after commit; "
        "'after_create_answered' is arrival minus the create's answer (negative when the "
        "event arrives first); 10 untimed events first")
    bench.doc["sdk_follow"] = out
    bench.target("SDK follow(): an event reaches a subscriber process, p50 ms after commit",
                 out, "p50_ms", "<=", TARGET_P50_MS)
    progress(f"  SDK follow: p50 {out['p50_ms']} ms after the create was sent, "
             f"p95 {out['after_create_sent']['p95_ms']} ms")


if __name__ == "__main__":
    if len(sys.argv) != 6 or sys.argv[1] != "subscribe":
        sys.exit("usage: python -m tests.bench.sdk_follow subscribe URL TOKEN AFTER COUNT")
    asyncio.run(subscribe(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])))

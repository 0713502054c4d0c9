"""One keep-alive client, sequential requests: throughput, latency percentiles, CPU use.

:class:`CpuMeter` is shared with the concurrent-client phase (:mod:`tests.bench.concurrency`).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from typing import Any

import httpx

from tests.bench.server import BenchError

Request = tuple[str, str, bytes | None]  # method, path (+ query), JSON body
_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def client_for(base_url: str, token: str) -> httpx.Client:
    return httpx.Client(base_url=base_url, timeout=120.0,
                        headers={"Authorization": f"Bearer {token}",
                                 "Content-Type": "application/json"})


# -- CPU accounting (Linux /proc; None elsewhere) ------------------------------------------
def machine_busy_s() -> float | None:
    """CPU seconds all cores have been busy since boot (idle and iowait excluded)."""
    try:
        with open("/proc/stat", encoding="ascii") as fh:
            ticks = [int(x) for x in fh.readline().split()[1:]]
        return (sum(ticks[:8]) - ticks[3] - ticks[4]) / _TICK
    except (OSError, ValueError, IndexError):
        return None


def process_cpu_s(pid: int | None) -> float | None:
    """utime + stime of a process, all its threads included."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICK
    except (OSError, ValueError, IndexError):
        return None


def busy_cores(window: float) -> float | None:
    """How many cores the whole machine kept busy over the next ``window`` seconds."""
    before = machine_busy_s()
    time.sleep(window)
    after = machine_busy_s()
    return None if before is None or after is None else (after - before) / window


class CpuMeter:
    """CPU spent over an interval by this process (the client), the server, everyone else.

    ``start()``, run the workload, then ``stop(requests, wall)``: per-request milliseconds
    and busy cores for the client and the server, and the cores other programs kept busy.
    """

    def __init__(self, server_pid: int | None) -> None:
        self.server_pid = server_pid
        self._busy0: float | None = None
        self._server0: float | None = None
        self._mine0 = 0.0

    def start(self) -> CpuMeter:
        self._busy0 = machine_busy_s()
        self._server0 = process_cpu_s(self.server_pid)
        self._mine0 = time.process_time()
        return self

    def stop(self, requests: int, wall: float) -> dict[str, Any]:
        mine = time.process_time() - self._mine0
        busy1, server1 = machine_busy_s(), process_cpu_s(self.server_pid)
        n = max(1, requests)
        wall = max(wall, 1e-9)
        #: CPU the benchmark client itself spent per request (it shares the machine's cores)
        out: dict[str, Any] = {"client_cpu_ms_per_req": round(mine / n * 1e3, 3),
                               "client_cpu_cores": round(mine / wall, 2)}
        if self._server0 is not None and server1 is not None:
            server = server1 - self._server0
            out["server_cpu_ms_per_req"] = round(server / n * 1e3, 3)
            out["server_cpu_cores"] = round(server / wall, 2)
            if self._busy0 is not None and busy1 is not None:
                others = (busy1 - self._busy0) - server - mine
                #: cores other programs kept busy meanwhile; above ~0.3 the numbers are noisy
                out["other_load_cores"] = round(max(0.0, others) / wall, 2)
        return out


def wait_quiet(max_wait: float, threshold: float = 0.3, window: float = 0.5) -> dict[str, Any]:
    """Wait (at most ``max_wait`` s) until other programs leave the cores idle.

    Another test run on this 2-core machine halves every number; waiting for a quiet moment
    is cheaper than explaining noise.
    """
    start = time.perf_counter()
    while True:
        busy = busy_cores(window)
        if busy is None or busy < threshold or time.perf_counter() - start >= max_wait:
            break
    return {"waited_s": round(time.perf_counter() - start, 1),
            "busy_cores": None if busy is None else round(busy, 2),
            "quiet": busy is not None and busy < threshold}


# -- measuring ---------------------------------------------------------------------------
def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def summarize(latencies: list[float], wall: float) -> dict[str, Any]:
    ordered = sorted(latencies)
    ms = 1000.0
    return {
        "requests": len(ordered),
        "seconds": round(wall, 3),
        "req_per_s": round(len(ordered) / wall, 1) if wall else None,
        "p50_ms": round(percentile(ordered, 50) * ms, 3),
        "p95_ms": round(percentile(ordered, 95) * ms, 3),
        "p99_ms": round(percentile(ordered, 99) * ms, 3),
        "mean_ms": round(sum(ordered) / len(ordered) * ms, 3),
        "max_ms": round(ordered[-1] * ms, 3),
    }


def _send(client: httpx.Client, method: str, path: str, body: bytes | None,
          expect: int) -> httpx.Response:
    response = client.request(method, path, content=body)
    if response.status_code != expect:
        raise BenchError(f"{method} {path} -> {response.status_code}, expected {expect}: "
                         f"{response.text[:500]}")
    return response


def get_json(client: httpx.Client, path: str) -> Any:
    return _send(client, "GET", path, None, 200).json()


def _run(client: httpx.Client, requests: Sequence[Request], expect: int,
         max_seconds: float | None, server_pid: int | None) -> dict[str, Any]:
    latencies: list[float] = []
    meter = CpuMeter(server_pid).start()
    start = time.perf_counter()
    for method, path, body in requests:
        t = time.perf_counter()
        response = client.request(method, path, content=body)
        latencies.append(time.perf_counter() - t)
        if response.status_code != expect:
            raise BenchError(f"{method} {path} -> {response.status_code}, expected {expect}: "
                             f"{response.text[:500]}")
        if max_seconds is not None and len(latencies) >= 10 and \
                time.perf_counter() - start > max_seconds:
            break
    wall = time.perf_counter() - start
    cpu = meter.stop(len(latencies), wall)
    result = summarize(latencies, wall)
    result["client_cpu_ms_per_req"] = cpu["client_cpu_ms_per_req"]
    for key in ("server_cpu_ms_per_req", "other_load_cores"):
        if key in cpu:
            result[key] = cpu[key]
    if len(latencies) < len(requests):
        result["stopped_early_after_s"] = max_seconds
    return result


def measure(client: httpx.Client, requests: Sequence[Request], *, expect: int = 200,
            warmup: Sequence[Request] = (), max_seconds: float | None = None,
            server_pid: int | None = None, retries: int = 0,
            noisy: float = 0.3) -> dict[str, Any]:
    """Send ``warmup`` untimed, then ``requests`` one after another, timing each.

    Stops early (after at least 10 timed requests) once ``max_seconds`` have passed, so a
    pathologically slow query cannot stall the run.  When other programs kept more than
    ``noisy`` cores busy meanwhile, runs again (up to ``retries`` times) and keeps the
    quietest attempt: only for idempotent requests.
    """
    for method, path, body in warmup:
        _send(client, method, path, body, expect)
    best: dict[str, Any] | None = None
    for attempt in range(retries + 1):
        result = _run(client, requests, expect, max_seconds, server_pid)
        result["attempts"] = attempt + 1
        if best is None or result.get("other_load_cores", 0) < best.get("other_load_cores", 0):
            best = {**result}
        if result.get("other_load_cores", 0) <= noisy:
            break
    assert best is not None
    best["attempts"] = result["attempts"]
    return best

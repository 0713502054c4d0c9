"""The benchmark's document: progress lines, the JSON result, and the targets and checks
it is judged by (:class:`Bench`), with the bare app's rate measured beside each phase
(:class:`Baseline`)."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from typing import Any

import httpx

from tests.bench.load import Request, measure, wait_quiet
from tests.bench.server import Server

_T0 = time.perf_counter()


def elapsed() -> float:
    """Seconds since the benchmark began."""
    return time.perf_counter() - _T0


def progress(message: str) -> None:
    print(f"[bench {time.perf_counter() - _T0:7.1f}s] {message}", file=sys.stderr, flush=True)


def mib(n: int | None) -> float | None:
    return None if n is None else round(n / 2**20, 1)


class Bench:
    """Options, the JSON document and the flat list of targets and checks."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.quiet_wait: float = args.quiet_wait
        self.doc: dict[str, Any] = {}
        self.targets: list[dict[str, Any]] = []
        self.checks: list[dict[str, Any]] = []

    def target(self, name: str, result: dict[str, Any], metric: str, op: str,
               threshold: float, **context: Any) -> None:
        """Judge ``result[metric]``; ``context`` (what a ratio was taken against) is kept."""
        value = result.get(metric)
        ok = value is not None and (value >= threshold if op == ">=" else value <= threshold)
        entry = {"metric": metric, "op": op, "threshold": threshold, "value": value, "pass": ok,
                 **context}
        result.setdefault("targets", []).append(entry)
        self.targets.append({"name": name, **entry})

    def ratio_target(self, name: str, result: dict[str, Any], threshold: float) -> None:
        """``result["ratio_to_bare"] >= threshold``, naming the bare rate it was taken against."""
        self.target(f"{name} vs bare", result, "ratio_to_bare", ">=", threshold,
                    req_per_s=result.get("req_per_s"),
                    bare_req_per_s=result.get("bare_req_per_s"))

    def check(self, name: str, ok: bool, detail: Any = None) -> None:
        self.checks.append({"name": name, "pass": bool(ok), "detail": detail})
        if not ok:
            progress(f"CHECK FAILED: {name}: {detail}")

    def quiet(self) -> dict[str, Any]:
        state = wait_quiet(self.quiet_wait) if self.quiet_wait > 0 else {"waited_s": 0}
        if state.get("waited_s", 0) >= 1 or state.get("quiet") is False:
            progress(f"  waited {state['waited_s']}s for a quiet machine "
                     f"(busy cores now {state.get('busy_cores')})")
        return state

    def timed(self, label: str, client: httpx.Client, server: Server,
              requests: Sequence[Request], warmup: Sequence[Request],
              **kw: Any) -> dict[str, Any]:
        """Wait for quiet, then :func:`measure`; logs the headline numbers."""
        progress(f"{label} x{len(requests)}")
        quiet = self.quiet()
        result = measure(client, requests, warmup=warmup, server_pid=server.pid, **kw)
        result["quiet_wait"] = quiet
        progress(f"  {result['req_per_s']} req/s, p50 {result['p50_ms']} ms, "
                 f"p95 {result['p95_ms']} ms, server CPU {result.get('server_cpu_ms_per_req')}"
                 f" ms/req, other load {result.get('other_load_cores')} cores")
        return result


    def rounds(self, label: str, client: httpx.Client, server: Server, n: int,
               requests: Sequence[Request], warmup: Sequence[Request],
               **kw: Any) -> dict[str, Any]:
        """:meth:`timed` ``n`` times; the round with the median req/s, listing every round.

        This machine's speed drifts by tens of percent over tens of seconds (a shared host),
        more than any single long run can average out.
        """
        runs = [self.timed(f"{label} [round {i + 1}/{n}]", client, server, requests,
                           warmup if i == 0 else (), **kw) for i in range(n)]
        result = dict(sorted(runs, key=lambda r: r["req_per_s"])[len(runs) // 2])
        result["rounds_req_per_s"] = [r["req_per_s"] for r in runs]
        result["rounds_p50_ms"] = [r["p50_ms"] for r in runs]
        result["rounds_server_cpu_ms_per_req"] = [r.get("server_cpu_ms_per_req")
                                                  for r in runs]
        return result

    def versus_bare(self, label: str, client: httpx.Client, server: Server, n: int,
                    requests: Sequence[Request], warmup: Sequence[Request], bare: Baseline,
                    **kw: Any) -> dict[str, Any]:
        """``n`` rounds of ``requests``, each between two rounds of the bare app's /healthz.

        Round i's ratio = its req/s over the mean of the bare rounds just before and just
        after it (the machine's speed drifts; bracketing cancels most of it).  Reported: the
        round with the median ratio, its bare figure, and every round.
        """
        bare_runs = [bare.round(f"{label}: before round 1")]
        runs = []
        for i in range(n):
            runs.append(self.timed(f"{label} [round {i + 1}/{n}]", client, server, requests,
                                   warmup if i == 0 else (), **kw))
            bare_runs.append(bare.round(f"{label}: after round {i + 1}"))
        bare_rates = [r["req_per_s"] for r in bare_runs]
        brackets = [(bare_rates[i] + bare_rates[i + 1]) / 2 for i in range(n)]
        ratios = [r["req_per_s"] / b for r, b in zip(runs, brackets, strict=True)]
        mid = sorted(range(n), key=lambda i: ratios[i])[n // 2]
        result = dict(runs[mid])
        result["bare_req_per_s"] = round(brackets[mid], 1)
        result["ratio_to_bare"] = round(ratios[mid], 3)
        result["rounds_req_per_s"] = [r["req_per_s"] for r in runs]
        result["rounds_bare_req_per_s"] = [round(b, 1) for b in brackets]
        result["rounds_ratio_to_bare"] = [round(x, 3) for x in ratios]
        result["rounds_p50_ms"] = [r["p50_ms"] for r in runs]
        result["rounds_server_cpu_ms_per_req"] = [r.get("server_cpu_ms_per_req")
                                                  for r in runs]
        result["bare_rounds_req_per_s"] = bare_rates
        result["bare_rounds_p50_ms"] = [r["p50_ms"] for r in bare_runs]
        progress(f"  => {label}: {result['req_per_s']} req/s = {result['ratio_to_bare']} x "
                 f"bare {result['bare_req_per_s']} (rounds {result['rounds_ratio_to_bare']})")
        return result


class Baseline:
    """The bare Starlette app's ``GET /healthz`` rate, re-measured next to each phase."""

    def __init__(self, bench: Bench, client: httpx.Client, server: Server, n: int) -> None:
        self.bench, self.client, self.server = bench, client, server
        self.requests: list[Request] = [("GET", "/healthz", None)] * n
        #: untimed before each round: the connection may have idled through a long phase
        self.warmup = self.requests[:max(20, n // 20)]

    def round(self, why: str) -> dict[str, Any]:
        return self.bench.timed(f"bare GET /healthz ({why})", self.client, self.server,
                                self.requests, self.warmup, retries=2)

"""What one log line costs: the access line every request writes, through the handlers
:func:`kernel.log.configure_logging` installs (JSON file, and the console when it is on), and
the JSON formatting of one line alone.

    python -m tests.bench.logging_cost [N]

Writes to a temporary ``logs/`` folder; the console goes to the null device.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

from kernel.access import log_access
from kernel.log import ROOT, JsonFormatter, Redactor, configure_logging

TOKEN = "Zm9vYmFyYmF6cXV4LWluc3RhbGwtdG9rZW4-bench"


def _per_line_us(n: int, emit: object) -> float:
    assert callable(emit)
    for _ in range(min(n, 500)):  # warm up: open files, fill caches
        emit()
    started = time.perf_counter()
    for _ in range(n):
        emit()
    return (time.perf_counter() - started) / n * 1e6


def _access_line_us(logs_dir: Path, n: int, console: bool) -> float:
    with open(os.devnull, "w", encoding="utf-8") as null, contextlib.redirect_stderr(null):
        configure_logging(logs_dir, secrets=[TOKEN], console=console,
                          max_bytes=1 << 30)  # no rotation inside the timed loop
        try:
            return _per_line_us(n, lambda: log_access("GET", "/v1/ping", 200, 0.42))
        finally:
            _remove_handlers()


def _json_line_us(n: int) -> float:
    formatter = JsonFormatter(Redactor([TOKEN]))
    record = logging.getLogger("faceforge.http").makeRecord(
        "faceforge.http", logging.INFO, "", 0, "%s %s %d %.1fms",
        ("GET", "/v1/ping", 200, 0.42), None,
        extra={"status": 200, "method": "GET", "path": "/v1/ping",
               "correlation_id": "0123456789abcdef"})
    return _per_line_us(n, lambda: formatter.format(record))


def _remove_handlers() -> None:
    logger = logging.getLogger(ROOT)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()


def measure_logging(n: int = 20000) -> dict[str, float]:
    """µs per line: the access line with the console on and off, and one JSON line."""
    with tempfile.TemporaryDirectory(prefix="ff-logbench-") as tmp:
        logs = Path(tmp) / "logs"
        return {
            "access_line_us_console_on": round(_access_line_us(logs, n, console=True), 2),
            "access_line_us_console_off": round(_access_line_us(logs, n, console=False), 2),
            "json_line_us": round(_json_line_us(n), 2),
        }


if __name__ == "__main__":
    print(json.dumps(measure_logging(int(sys.argv[1]) if len(sys.argv) > 1 else 20000)))

"""A real ``faceforge serve`` child process on loopback: start, time, measure, stop."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

import httpx

REPO = Path(__file__).resolve().parents[2]


class BenchError(RuntimeError):
    """The benchmark cannot go on (as opposed to a missed target)."""


def cli(home: Path, *args: str) -> str:
    """Run ``python -m kernel <args> --home <home>``; returns its stdout."""
    done = subprocess.run([sys.executable, "-m", "kernel", *args, "--home", str(home)],
                          capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise BenchError(f"faceforge {' '.join(args)} failed ({done.returncode}): "
                         f"{done.stderr.strip()[-2000:]}")
    return done.stdout.strip()


def rss_bytes(pid: int) -> int | None:
    """Resident set size: /proc on Linux, else psutil when installed, else None."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        import psutil
    except ImportError:
        return None
    try:
        return int(psutil.Process(pid).memory_info().rss)
    except psutil.Error:
        return None


class Server:
    """``faceforge serve --home HOME --port 0``; its console output goes to a file."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.proc: subprocess.Popen[bytes] | None = None
        self.port: int | None = None
        self.log_path = home / "bench-server.log"
        self._log: IO[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 120.0) -> float:
        """Launch and wait for ``/healthz`` 200; returns seconds from launch to that answer."""
        self.home.mkdir(parents=True, exist_ok=True)
        ports = self.home / "config" / "ports.json"
        ports.unlink(missing_ok=True)  # a stale file from the last run names the old port

        def port() -> int | None:
            try:
                return int(json.loads(ports.read_text("utf-8"))["core"])
            except (OSError, ValueError, KeyError, TypeError):
                return None

        return self._start([sys.executable, "-m", "kernel", "serve", "--home", str(self.home),
                            "--port", "0"], port, timeout)

    def _start(self, argv: list[str], port: Callable[[], int | None], timeout: float) -> float:
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        started = time.perf_counter()
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=self._log, cwd=REPO)
        deadline = started + timeout
        self.port = None
        with httpx.Client(timeout=2.0) as client:
            while True:
                if self.proc.poll() is not None:
                    code = self.proc.returncode
                    self.stop()
                    raise BenchError(f"{argv[2]} exited with {code}: {self.log_tail()}")
                if time.perf_counter() > deadline:
                    self.stop()
                    raise BenchError(f"{argv[2]} not healthy after {timeout:.0f}s: "
                                     f"{self.log_tail()}")
                if self.port is None:
                    self.port = port()
                    if self.port is None:
                        time.sleep(0.002)
                        continue
                try:
                    if client.get(self.base_url + "/healthz").status_code == 200:
                        return time.perf_counter() - started
                except httpx.TransportError:
                    pass
                time.sleep(0.002)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def rss(self) -> int | None:
        return rss_bytes(self.proc.pid) if self.proc else None

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM (graceful shutdown), then SIGKILL if it hangs; returns the exit code."""
        code = None
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM if os.name == "posix" else signal.SIGINT)
                try:
                    self.proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            code = self.proc.returncode
            self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None
        return code

    def log_tail(self, chars: int = 2000) -> str:
        try:
            return self.log_path.read_text("utf-8", errors="replace")[-chars:]
        except OSError:
            return "(no log)"

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class BareServer(Server):
    """:mod:`tests.bench.bare_app` (bare Starlette on Hypercorn) on a free port."""

    def start(self, timeout: float = 60.0) -> float:
        from kernel.server import reserve_port

        self.home.mkdir(parents=True, exist_ok=True)
        chosen = reserve_port("127.0.0.1", 0)
        return self._start([sys.executable, "-m", "tests.bench.bare_app", str(chosen)],
                           lambda: chosen, timeout)

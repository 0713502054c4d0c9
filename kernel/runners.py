"""Supervising an out-of-process plugin's runner: start it, log its output, restart it with
back-off when it dies, give up after repeated crashes, stop it gracefully (then kill).

One :class:`RunnerProcess` per plugin.  The registry builds it with the runner's argv, its
folder and its environment (the plugin's token among it), then calls :meth:`start` on
enable and :meth:`stop` on disable and at shutdown; :attr:`status` and :meth:`tail` are what
the API and the UI show.  Everything the process prints goes to its log file
(:class:`kernel.runner_log.RunnerLog`), redacted.

The process gets a process group of its own (a new session on POSIX, a new process group on
Windows) so stopping it reaches the children it started too: POSIX signals the whole group
(SIGTERM, then SIGKILL after ``stop_timeout``) and kills what is left of it once the runner
has exited; Windows terminates the runner itself (``TerminateProcess``), which has no
graceful form for a process without a console.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import msgspec

from kernel.clock import utc_now
from kernel.runner_log import RunnerLog
from kernel.server import reserve_port

RunnerState = Literal["starting", "running", "restarting", "failing", "stopped"]
#: the runner's environment additions, or an async function making them before each start
#: (a fresh token and port per process)
EnvSource = Mapping[str, str] | Callable[[], Awaitable[Mapping[str, str]]]
#: environment variables whose values are removed from the log, whatever the redactor does
SECRET_ENV = ("FACEFORGE_TOKEN",)
#: a longer line is written in pieces of this size
MAX_LINE_BYTES = 16 * 1024
#: after the runner has exited, how long a child it left may keep its pipes open
PIPE_DRAIN_SECONDS = 2.0


class RunnerStatus(msgspec.Struct, frozen=True, kw_only=True):
    """What a runner is doing, for the API and the UI.

    ``restarts`` counts the restarts since the last :meth:`RunnerProcess.start`;
    ``started_at`` (RFC 3339) is when the current or last process started; ``message`` says
    why it is restarting, failing or stopped.
    """

    state: RunnerState
    pid: int | None = None
    restarts: int = 0
    last_exit_code: int | None = None
    started_at: str | None = None
    message: str = ""


@dataclass(frozen=True)
class RestartPolicy:
    """Back-off between restarts, doubling from ``first_delay`` up to ``max_delay``.

    ``crash_limit`` exits within ``crash_window`` seconds make the runner ``failing``: no
    more restarts until it is started again.  A process that ran ``stable_after`` seconds
    resets both the delay and the count.
    """

    first_delay: float = 0.5
    max_delay: float = 30.0
    crash_limit: int = 5
    crash_window: float = 60.0
    stable_after: float = 30.0


class RunnerProcess:
    """Supervises one plugin's runner process.

    ``argv[0] == "python"`` runs the Python running Core.  ``env`` is added over Core's own
    environment (see :data:`EnvSource`).  ``redact`` removes secrets from each output line
    (a :class:`kernel.log.Redactor` holding the plugin's token, say); values of
    :data:`SECRET_ENV` are removed in any case.
    """

    def __init__(self, plugin_id: str, argv: Sequence[str], *, cwd: Path, log_file: Path,
                 redact: Callable[[str], str], env: EnvSource | None = None,
                 max_bytes: int = 5 * 1024 * 1024, backup_count: int = 3,
                 restart: RestartPolicy = RestartPolicy(), stop_timeout: float = 5.0) -> None:
        if not argv:
            raise ValueError(f"plugin {plugin_id!r}: the runner's argv is empty")
        self.plugin_id = plugin_id
        self.argv = [sys.executable if argv[0] == "python" else argv[0], *argv[1:]]
        self.cwd = cwd
        self.env: EnvSource = env if env is not None else {}
        self.restart = restart
        self.stop_timeout = stop_timeout
        self.log = RunnerLog(log_file, redact, max_bytes=max_bytes, backup_count=backup_count)
        self._status = RunnerStatus(state="stopped")
        self._task: asyncio.Task[None] | None = None
        self._wanted = False
        self._stop_note = "stopped"
        self._stop_asked = asyncio.Event()
        self._attempted = asyncio.Event()
        self._lock = asyncio.Lock()

    @property
    def status(self) -> RunnerStatus:
        return self._status

    def tail(self, n: int = 50) -> list[str]:
        """The last ``n`` lines of the runner's log (``<timestamp> <stream> <text>``), read
        from the file and the rotated ones (small, bounded blocking reads)."""
        return self.log.tail(n)

    async def start(self) -> RunnerStatus:
        """Start supervising; returns once the first start was tried (the status says how
        it went).  Running already: nothing happens.  ``failing``: tries again afresh."""
        async with self._lock:
            if self._task is not None and not self._task.done():
                return self._status
            self._wanted = True
            self._stop_note = "stopped"
            self._stop_asked = asyncio.Event()
            self._attempted = asyncio.Event()
            self._status = RunnerStatus(state="starting", started_at=self._status.started_at)
            self.log.open()
            self._task = asyncio.create_task(self._supervise(),
                                             name=f"runner:{self.plugin_id}")
            attempted = asyncio.create_task(self._attempted.wait())
            await asyncio.wait({self._task, attempted}, return_when=asyncio.FIRST_COMPLETED)
            attempted.cancel()
            return self._status

    async def stop(self) -> RunnerStatus:
        """Stop the runner: SIGTERM (POSIX, to its process group) or terminate (Windows),
        then kill after ``stop_timeout`` seconds; no restart follows."""
        async with self._lock:
            self._wanted = False
            self._stop_asked.set()
            task, self._task = self._task, None
            if task is not None:
                await task
            await self.log.close()
            if self._status.state != "stopped":
                self._update(state="stopped", pid=None, message=self._stop_note)
            return self._status

    # -- supervision -----------------------------------------------------------------------
    def _update(self, **changes: Any) -> None:
        self._status = msgspec.structs.replace(self._status, **changes)

    async def _supervise(self) -> None:
        policy = self.restart
        delay = policy.first_delay
        crashes: deque[float] = deque()
        try:
            while self._wanted:
                began = time.monotonic()
                why = await self._run_once()
                if not self._wanted:
                    return
                now = time.monotonic()
                if now - began >= policy.stable_after:
                    crashes.clear()
                    delay = policy.first_delay
                crashes.append(now)
                while now - crashes[0] > policy.crash_window:
                    crashes.popleft()
                if len(crashes) >= policy.crash_limit:
                    message = (f"{why}; {len(crashes)} crashes within "
                               f"{policy.crash_window:g} s, not restarting until started again")
                    self._update(state="failing", pid=None, message=message)
                    await self.log.line("core", message)
                    return
                message = f"{why}; restarting in {delay:g} s"
                self._update(state="restarting", pid=None, message=message)
                await self.log.line("core", message)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop_asked.wait(), delay)
                delay = min(delay * 2, policy.max_delay)
                if self._wanted:
                    self._update(restarts=self._status.restarts + 1)
        finally:
            self._attempted.set()

    async def _run_once(self) -> str:
        """Start the process and wait until it ends (stopping it when asked to); returns
        why it ended."""
        self._update(state="starting", pid=None)
        try:
            extra = await self.env() if callable(self.env) else self.env
            env = {**os.environ, "PYTHONUNBUFFERED": "1", **extra}
            self.log.secrets.update(env[name] for name in SECRET_ENV if env.get(name))
            proc = await asyncio.create_subprocess_exec(
                *self.argv, cwd=self.cwd, env=env, stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, **_own_group())
        except Exception as exc:  # no such program, a bad cwd, a failing env function
            why = f"cannot start {self.argv[0]!r}: {exc}"
            self._update(last_exit_code=None, message=why)
            self._attempted.set()
            return why
        assert proc.stdout is not None and proc.stderr is not None
        self._update(state="running", pid=proc.pid, started_at=utc_now(), message="")
        await self.log.line("core", f"started (pid {proc.pid}): {' '.join(self.argv)}")
        self._attempted.set()
        pumps = [asyncio.create_task(self._pump(proc.stdout, "stdout")),
                 asyncio.create_task(self._pump(proc.stderr, "stderr"))]
        try:
            code, killed = await self._wait(proc)
        except BaseException:  # cancelled (Core going down without stop()): leave nothing
            _signal(proc, kill=True)
            for pump in pumps:
                pump.cancel()
            raise
        _kill_leftovers(proc)
        _done, pending = await asyncio.wait(pumps, timeout=PIPE_DRAIN_SECONDS)
        for pump in pending:  # a child outside the group still holds the pipe
            pump.cancel()
        why = _exit_text(code)
        if killed:
            why = f"{why}: still running {self.stop_timeout:g} s after being asked to stop"
        self._update(last_exit_code=code)
        await self.log.line("core", why)
        if not self._wanted:
            self._stop_note = "stopped" + (f" ({why})" if killed else "")
        return why

    async def _wait(self, proc: asyncio.subprocess.Process) -> tuple[int, bool]:
        """The exit code, once the process ends by itself or after it was asked to stop;
        and whether it had to be killed."""
        exited = asyncio.create_task(proc.wait())
        asked = asyncio.create_task(self._stop_asked.wait())
        try:
            await asyncio.wait({exited, asked}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            asked.cancel()
        if exited.done():
            return exited.result(), False
        _signal(proc, kill=False)
        try:
            return await asyncio.wait_for(asyncio.shield(exited), self.stop_timeout), False
        except TimeoutError:
            _signal(proc, kill=True)
            return await exited, True

    async def _pump(self, reader: asyncio.StreamReader, stream: str) -> None:
        """Copy one pipe to the log, line by line, until it closes."""
        pending = b""
        while chunk := await reader.read(65536):
            *lines, pending = (pending + chunk).split(b"\n")
            for line in lines:
                await self._line(stream, line)
            while len(pending) > MAX_LINE_BYTES:
                await self._line(stream, pending[:MAX_LINE_BYTES])
                pending = pending[MAX_LINE_BYTES:]
        if pending:
            await self._line(stream, pending)

    async def _line(self, stream: str, raw: bytes) -> None:
        for start in range(0, max(len(raw), 1), MAX_LINE_BYTES):
            piece = raw[start:start + MAX_LINE_BYTES].rstrip(b"\r")
            await self.log.line(stream, piece.decode("utf-8", "replace"))


def _own_group() -> dict[str, Any]:
    """Popen arguments giving the runner a process group of its own."""
    if sys.platform == "win32":
        return {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}
    return {"start_new_session": True}


def _signal(proc: asyncio.subprocess.Process, *, kill: bool) -> None:
    """Ask the runner (and, on POSIX, its group) to stop, or kill it."""
    if proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        if sys.platform == "win32":
            proc.kill() if kill else proc.terminate()
            return
        try:
            os.killpg(proc.pid, signal.SIGKILL if kill else signal.SIGTERM)
        except PermissionError:  # not our group after all (cannot happen with a new session)
            proc.kill() if kill else proc.terminate()


def _kill_leftovers(proc: asyncio.subprocess.Process) -> None:
    """Kill what remains of the runner's process group once the runner has exited (POSIX;
    the group id stays taken while a member lives, so it cannot name a stranger)."""
    if sys.platform != "win32":
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)


def _exit_text(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
    return f"exited with code {code}"


def free_port(host: str = "127.0.0.1") -> int:
    """A local port that was free a moment ago, for a runner that serves HTTP."""
    return reserve_port(host, 0)

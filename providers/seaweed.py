"""The Core-managed SeaweedFS process: find ``weed``, run ``weed server -s3``, keep it up.

Optional (``seaweed.enabled``): Desktop normally runs SeaweedFS itself.  Nothing here reads
Core's config; the caller passes plain values, so this module imports nothing from ``kernel``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import subprocess
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType
from typing import Literal

import anyio
from anyio.abc import Process

DEFAULT_S3_PORT = 43211  # spec §12.1
S3_CONFIG_NAME = "faceforge-s3.json"
#: Core's one identity may do everything; there is never an anonymous identity.
S3_ACTIONS = ("Admin", "Read", "Write", "List", "Tagging")

State = Literal["starting", "running", "restarting", "stopped", "failed"]


class SeaweedError(RuntimeError):
    """SeaweedFS cannot be started as configured; the message says why."""


def _is_executable(path: Path) -> bool:
    # Windows has no execute bit: an existing file is all there is to check.
    return path.is_file() and (os.name == "nt" or os.access(path, os.X_OK))


def find_weed(weed_path: str | None, tools_dir: Path, *,
              windows: bool = os.name == "nt") -> Path | None:
    """The ``weed`` binary to run, or None; never searches PATH.

    A configured ``weed_path`` (absolute, or relative to ``tools_dir``) is the only candidate
    when set, so a typo is reported instead of silently running another binary.  Otherwise:
    ``tools/weed``, ``tools/seaweedfs/weed``, ``tools/seaweed/weed`` (``weed.exe`` on Windows).
    """
    if weed_path:
        path = Path(weed_path).expanduser()
        path = path if path.is_absolute() else tools_dir / path
        return path if _is_executable(path) else None
    name = "weed.exe" if windows else "weed"
    for candidate in (tools_dir / name, tools_dir / "seaweedfs" / name,
                      tools_dir / "seaweed" / name):
        if _is_executable(candidate):
            return candidate
    return None


def pick_s3_port(*ports: int | None) -> int:
    """The first port that is set (pass them highest precedence first), else 43211."""
    return next((port for port in ports if port is not None), DEFAULT_S3_PORT)


@dataclass(frozen=True, kw_only=True)
class SeaweedSettings:
    """Everything needed to run ``weed server -s3``, resolved to plain values."""

    weed: Path
    data_dir: Path
    #: weed's stdout/stderr; its own rotated glog files go to ``<log_file's folder>/seaweedfs/``
    log_file: Path
    access_key: str
    secret_key: str = field(repr=False)
    ip: str = "127.0.0.1"
    master_port: int = 9333
    volume_port: int = 8080
    filer_port: int = 8888
    s3_port: int = DEFAULT_S3_PORT

    @classmethod
    def from_config(cls, *, weed: Path, home: Path, s3_dir: Path, logs_dir: Path,
                    data_dir: str | None = None, access_key: str | None = None,
                    secret_key: str | None = None, ip: str = "127.0.0.1",
                    master_port: int = 9333, volume_port: int = 8080, filer_port: int = 8888,
                    s3_port: int = DEFAULT_S3_PORT) -> SeaweedSettings:
        """Apply the defaults: data in ``<s3_dir>/seaweedfs`` (a relative ``data_dir`` is
        relative to ``home``, like ``paths.*``), output in ``<logs_dir>/seaweedfs.log``."""
        if data_dir:
            path = Path(data_dir).expanduser()
            resolved = path if path.is_absolute() else home / path
        else:
            resolved = s3_dir / "seaweedfs"
        return cls(weed=weed, data_dir=resolved, log_file=logs_dir / "seaweedfs.log",
                   access_key=access_key or "", secret_key=secret_key or "", ip=ip,
                   master_port=master_port, volume_port=volume_port, filer_port=filer_port,
                   s3_port=s3_port)

    @property
    def s3_config_file(self) -> Path:
        return self.data_dir / S3_CONFIG_NAME

    @property
    def glog_dir(self) -> Path:
        return self.log_file.parent / "seaweedfs"

    @property
    def endpoint_url(self) -> str:
        """Where the S3 endpoint answers (a wildcard bind is reached on loopback)."""
        host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(self.ip, self.ip)
        if ":" in host:  # an IPv6 literal
            host = f"[{host}]"
        return f"http://{host}:{self.s3_port}"

    def command(self) -> list[str]:
        """The argv; credentials go in the ``-s3.config`` file, never on the command line."""
        return [
            str(self.weed),
            f"-logdir={self.glog_dir}",  # a global flag: before the subcommand
            "server",
            "-s3",
            f"-ip={self.ip}",
            f"-master.port={self.master_port}",
            f"-volume.port={self.volume_port}",
            f"-filer.port={self.filer_port}",
            f"-s3.port={self.s3_port}",
            f"-dir={self.data_dir}",
            f"-s3.config={self.s3_config_file}",
        ]


@dataclass(frozen=True)
class SeaweedStatus:
    state: State
    pid: int | None = None
    #: processes started after the first one
    restarts: int = 0
    last_error: str | None = None


def _write_private(path: Path, text: str) -> None:
    """Replace ``path`` with ``text``, owner-only (0600) from the first byte."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        if os.name == "posix":  # a leftover tmp file may have had a looser mode
            os.fchmod(fh.fileno(), 0o600)
        fh.write(text)
    os.replace(tmp, path)


def _s3_identities(access_key: str, secret_key: str) -> str:
    identity = {"name": "faceforge",
                "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                "actions": list(S3_ACTIONS)}
    return json.dumps({"identities": [identity]}, indent=2) + "\n"


class SeaweedProcess:
    """Runs one ``weed server -s3`` and restarts it, with back-off, when it dies.

    ``start()`` returns once the process is spawned; ``wait_healthy()`` waits for the S3
    port to answer.  A run shorter than ``stable_after`` seconds is a quick failure; after
    ``max_failures`` of them in a row the supervisor gives up (state ``failed``).
    """

    def __init__(self, settings: SeaweedSettings, logger: logging.Logger | None = None, *,
                 backoff_base: float = 1.0, backoff_cap: float = 30.0, max_failures: int = 5,
                 stable_after: float = 60.0, stop_timeout: float = 5.0,
                 health_interval: float = 0.25) -> None:
        self.settings = settings
        self._log = logger or logging.getLogger("faceforge.seaweed")
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._max_failures = max_failures
        self._stable_after = stable_after
        self._stop_timeout = stop_timeout
        self._health_interval = health_interval
        self._status = SeaweedStatus("stopped")
        self._proc: Process | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping: anyio.Event | None = None

    @property
    def status(self) -> SeaweedStatus:
        return self._status

    async def __aenter__(self) -> SeaweedProcess:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.stop()

    async def start(self) -> None:
        """Write the S3 identities file, spawn weed and start supervising it.

        Raises :class:`SeaweedError` without credentials (SeaweedFS would serve anonymous
        requests), without an executable binary, or when the process cannot be spawned.
        """
        if self._task is not None and not self._task.done():
            raise SeaweedError("SeaweedFS is already running")
        s = self.settings
        if not s.access_key or not s.secret_key:
            raise SeaweedError(
                "the managed SeaweedFS needs S3 credentials: set storage.s3.access_key and "
                "storage.s3.secret_key (it is never started with anonymous access)")
        if not _is_executable(s.weed):
            raise SeaweedError(f"weed binary not found or not executable: {s.weed}")
        try:
            for folder in (s.data_dir, s.glog_dir):
                folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            _write_private(s.s3_config_file, _s3_identities(s.access_key, s.secret_key))
        except OSError as exc:
            raise SeaweedError(f"cannot prepare SeaweedFS data dir {s.data_dir}: {exc}") from exc
        self._stopping = anyio.Event()
        self._status = SeaweedStatus("starting")
        proc = await self._spawn()
        self._task = asyncio.create_task(self._supervise(proc), name="seaweedfs-supervisor")

    async def wait_healthy(self, timeout: float) -> bool:
        """Wait until the S3 port answers HTTP; False on timeout or if weed gave up/stopped."""
        with anyio.move_on_after(timeout):
            while self._status.state in ("starting", "restarting"):
                await anyio.sleep(0.05)
        return self._status.state == "running"

    async def stop(self) -> None:
        """Terminate weed (kill after ``stop_timeout``), reap it, end the supervisor.

        Safe before ``start()`` and twice.  Shielded: a cancelled shutdown still reaps.
        """
        if self._stopping is None:
            return
        with anyio.CancelScope(shield=True):
            self._stopping.set()  # first, so the supervisor never restarts what we end
            if self._proc is not None and self._proc.returncode is None:
                await self._terminate(self._proc)
            if self._task is not None:
                await self._task
        self._proc = None
        self._status = replace(self._status, state="stopped", pid=None)
        self._log.info("SeaweedFS stopped")

    # --- internals ---------------------------------------------------------------------

    async def _spawn(self) -> Process:
        s = self.settings
        command = s.command()
        try:
            s.log_file.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(s.log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        except OSError as exc:
            raise SeaweedError(f"cannot open SeaweedFS log file {s.log_file}: {exc}") from exc
        try:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            os.write(fd, f"--- {stamp} faceforge starts: {' '.join(command)}\n".encode())
            # Shielded: a cancel landing mid-spawn must not leave an untracked process.
            with anyio.CancelScope(shield=True):
                proc = await anyio.open_process(
                    command, stdin=subprocess.DEVNULL, stdout=fd, stderr=subprocess.STDOUT,
                    # Own session / process group: a Ctrl+C meant for Core must not kill weed
                    # behind stop()'s back (it would look like a crash and be restarted).
                    start_new_session=True,
                    creationflags=getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0))
        except OSError as exc:
            raise SeaweedError(f"cannot start {s.weed}: {exc}") from exc
        finally:
            os.close(fd)  # the child holds its own copy
        self._proc = proc
        self._status = replace(self._status, pid=proc.pid)
        self._log.info("SeaweedFS started (pid %d), S3 on %s", proc.pid, s.endpoint_url,
                       extra={"pid": proc.pid, "log_file": str(s.log_file)})
        return proc

    async def _supervise(self, proc: Process) -> None:
        assert self._stopping is not None
        failures = 0
        try:
            while True:
                started = time.monotonic()
                code = await self._watch(proc)
                if self._stopping.is_set():
                    return
                quick = time.monotonic() - started < self._stable_after
                failures = failures + 1 if quick else 1
                error = f"weed exited unexpectedly with exit code {code}"
                if failures >= self._max_failures:
                    self._fail(f"{error}; gave up after {failures} quick failures in a row")
                    return
                delay = min(self._backoff_base * 2 ** (failures - 1), self._backoff_cap)
                self._status = replace(self._status, state="restarting", pid=None,
                                       last_error=error)
                self._log.warning("SeaweedFS %s; restarting in %.1f s", error, delay,
                                  extra={"exit_code": code, "delay": delay,
                                         "failures": failures})
                with anyio.move_on_after(delay):
                    await self._stopping.wait()
                if self._stopping.is_set():
                    return
                try:
                    proc = await self._spawn()
                except SeaweedError as exc:
                    self._fail(str(exc))
                    return
                self._status = replace(self._status, restarts=self._status.restarts + 1)
                if self._stopping.is_set():  # stop() ran while we were spawning
                    await self._terminate(proc)
                    return
        except Exception as exc:  # a bug here must not leave stop() waiting on a dead task
            self._log.exception("SeaweedFS supervisor crashed")
            self._fail(f"supervisor crashed: {exc!r}")

    async def _watch(self, proc: Process) -> int:
        """Wait for ``proc`` to exit; meanwhile mark it running once S3 answers."""
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._mark_running_when_healthy, proc)
            code = await proc.wait()
            tg.cancel_scope.cancel()
        return code

    async def _mark_running_when_healthy(self, proc: Process) -> None:
        import httpx  # here: Core imports this module at every start, SeaweedFS runs rarely

        url = self.settings.endpoint_url + "/"
        # trust_env=False: an HTTP(S)_PROXY from the environment must not see loopback calls.
        async with httpx.AsyncClient(timeout=1.0, trust_env=False) as client:
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    await client.get(url)  # any HTTP answer (S3 says 403) means it is up
                    break
                await anyio.sleep(self._health_interval)
        if self._proc is proc and self._status.state in ("starting", "restarting"):
            self._status = replace(self._status, state="running")
            self._log.info("SeaweedFS S3 endpoint is up at %s", self.settings.endpoint_url)

    async def _terminate(self, proc: Process) -> None:
        """SIGTERM (TerminateProcess on Windows), kill after the grace period; always reaped."""
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        with anyio.move_on_after(self._stop_timeout):
            await proc.wait()
            return
        self._log.warning("SeaweedFS (pid %d) ignored the stop request for %.1f s; killing it",
                          proc.pid, self._stop_timeout, extra={"pid": proc.pid})
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()

    def _fail(self, error: str) -> None:
        self._status = replace(self._status, state="failed", pid=None, last_error=error)
        self._log.error("SeaweedFS failed: %s", error, extra={"restarts": self._status.restarts})

"""The managed SeaweedFS process, driven against a fake ``weed`` (the real one is not
installable here): binary look-up, command line, credentials, health, restarts, stop."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import stat
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio
import pytest

from providers.seaweed import (
    DEFAULT_S3_PORT,
    SeaweedError,
    SeaweedProcess,
    SeaweedSettings,
    find_weed,
    pick_s3_port,
)

posix_only = pytest.mark.skipif(os.name != "posix", reason="the fake weed is a shebang script")

# Parses weed's flags, records each start in $FAKE_WEED_STATE/runs.jsonl and serves HTTP on
# -s3.port.  $FAKE_WEED_STATE/mode, read at start: "serve" (default), "crash" (exit 3 at
# once), "crash_after <s>" (serve, then exit 3), "ignore_term" (serve, ignore SIGTERM).
FAKE_WEED = '''\
#!{python}
import json, os, signal, sys, threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

state = Path(os.environ["FAKE_WEED_STATE"])
mode_file = state / "mode"
mode = mode_file.read_text().split() if mode_file.exists() else ["serve"]
flags = dict(arg[1:].partition("=")[::2] for arg in sys.argv[1:] if arg.startswith("-"))
with open(state / "runs.jsonl", "a") as fh:
    fh.write(json.dumps({{"argv": sys.argv, "pid": os.getpid(), "mode": mode,
                         "env": dict(os.environ)}}) + "\\n")
print("fake weed starting", flush=True)
if mode[0] == "crash":
    sys.exit(3)
if mode[0] == "ignore_term":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
else:
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"<Error><Code>AccessDenied</Code></Error>"
        self.send_response(403)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


server = HTTPServer((flags["ip"], int(flags["s3.port"])), Handler)
if mode[0] == "crash_after":
    threading.Timer(float(mode[1]), lambda: os._exit(3)).start()
server.serve_forever()
'''


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_exe(path: Path, text: str = "#!/bin/sh\n", mode: int = 0o755) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    return path


def gone(pid: int) -> bool:
    """True once ``pid`` no longer exists at all (a zombie would still be found)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


async def until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    with anyio.fail_after(timeout):
        while not predicate():
            await anyio.sleep(0.02)


class FakeWeed:
    def __init__(self, root: Path) -> None:
        self.tools = root / "tools"
        self.state = root / "weed-state"
        self.state.mkdir(parents=True)
        self.path = make_exe(self.tools / "weed", FAKE_WEED.format(python=sys.executable))

    def mode(self, text: str) -> None:
        (self.state / "mode").write_text(text)

    def runs(self) -> list[dict[str, Any]]:
        file = self.state / "runs.jsonl"
        lines = file.read_text().splitlines() if file.exists() else []
        return [json.loads(line) for line in lines]


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeWeed:
    weed = FakeWeed(tmp_path)
    monkeypatch.setenv("FAKE_WEED_STATE", str(weed.state))
    return weed


@pytest.fixture
def weed_settings(tmp_path: Path, fake: FakeWeed) -> SeaweedSettings:
    home = tmp_path / "home"
    return SeaweedSettings.from_config(
        weed=fake.path, home=home, s3_dir=home / "s3", logs_dir=home / "logs",
        access_key="core-access", secret_key="core-secret-value", ip="127.0.0.1",
        master_port=free_port(), volume_port=free_port(), filer_port=free_port(),
        s3_port=free_port())


@pytest.fixture
def log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="tests.seaweed")
    return caplog


ProcessFactory = Callable[..., SeaweedProcess]


@pytest.fixture
async def make_process(weed_settings: SeaweedSettings) -> AsyncIterator[ProcessFactory]:
    """Fast back-off for tests; every process made here is stopped afterwards."""
    made: list[SeaweedProcess] = []

    def factory(settings: SeaweedSettings = weed_settings, **options: Any) -> SeaweedProcess:
        options = {"backoff_base": 0.05, "backoff_cap": 0.2, "health_interval": 0.05} | options
        process = SeaweedProcess(settings, logging.getLogger("tests.seaweed"), **options)
        made.append(process)
        return process

    yield factory
    for process in made:
        await process.stop()


# --- finding the binary ----------------------------------------------------------------

@posix_only
def test_candidates_in_order(tmp_path: Path) -> None:
    tools = tmp_path / "tools"
    assert find_weed(None, tools) is None
    last = make_exe(tools / "seaweed" / "weed")
    assert find_weed(None, tools, windows=False) == last
    middle = make_exe(tools / "seaweedfs" / "weed")
    assert find_weed(None, tools, windows=False) == middle
    first = make_exe(tools / "weed")
    assert find_weed(None, tools, windows=False) == first


@posix_only
def test_windows_names_end_in_exe(tmp_path: Path) -> None:
    tools = tmp_path / "tools"
    make_exe(tools / "weed")  # the POSIX name is not a Windows candidate
    assert find_weed(None, tools, windows=True) is None
    exe = make_exe(tools / "seaweedfs" / "weed.exe")
    assert find_weed(None, tools, windows=True) == exe
    assert find_weed(None, tools, windows=False) == tools / "weed"


@posix_only
def test_configured_path_absolute_or_relative_to_tools(tmp_path: Path) -> None:
    tools = tmp_path / "tools"
    make_exe(tools / "weed")
    elsewhere = make_exe(tmp_path / "opt" / "weed-3.80")
    assert find_weed(str(elsewhere), tools) == elsewhere
    relative = make_exe(tools / "bin" / "weed")
    assert find_weed("bin/weed", tools) == relative


@posix_only
def test_configured_path_that_is_missing_finds_nothing(tmp_path: Path) -> None:
    # No fallback to the bundled candidates: the configured binary is what must run.
    tools = tmp_path / "tools"
    make_exe(tools / "weed")
    assert find_weed("bin/wed", tools) is None


@posix_only
def test_non_executable_files_and_folders_are_skipped(tmp_path: Path) -> None:
    tools = tmp_path / "tools"
    make_exe(tools / "weed", mode=0o644)
    (tools / "seaweedfs" / "weed").mkdir(parents=True)
    found = make_exe(tools / "seaweed" / "weed")
    assert find_weed(None, tools) == found
    assert find_weed("weed", tools) is None


@posix_only
def test_path_is_never_searched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    on_path = tmp_path / "bin"
    make_exe(on_path / "weed")
    monkeypatch.setenv("PATH", str(on_path))
    monkeypatch.chdir(on_path)
    assert find_weed(None, tmp_path / "tools") is None
    assert find_weed(None, tmp_path / "tools", windows=True) is None


# --- settings ----------------------------------------------------------------------------

def test_s3_port_is_the_first_one_set() -> None:
    assert pick_s3_port(None, None) == DEFAULT_S3_PORT == 43211
    assert pick_s3_port(None, 45000, 46000) == 45000


def test_settings_defaults(tmp_path: Path) -> None:
    home = tmp_path / "home"
    base = {"weed": home / "tools" / "weed", "home": home, "s3_dir": home / "s3",
            "logs_dir": home / "logs", "access_key": "a", "secret_key": "hush-hush"}
    settings = SeaweedSettings.from_config(**base)
    assert settings.data_dir == home / "s3" / "seaweedfs"
    assert settings.log_file == home / "logs" / "seaweedfs.log"
    assert settings.endpoint_url == "http://127.0.0.1:43211"
    assert "hush-hush" not in repr(settings)
    assert SeaweedSettings.from_config(**base, data_dir="blobs").data_dir == home / "blobs"
    assert SeaweedSettings.from_config(**base, ip="0.0.0.0").endpoint_url.startswith(
        "http://127.0.0.1:")


# --- running it ----------------------------------------------------------------------------

@posix_only
async def test_command_line_credentials_and_health(
        weed_settings: SeaweedSettings, fake: FakeWeed, make_process: ProcessFactory,
        capfd: pytest.CaptureFixture[str]) -> None:
    process = make_process()
    await process.start()
    assert await process.wait_healthy(10)
    assert process.status.state == "running"

    [run] = fake.runs()
    assert run["pid"] == process.status.pid
    s = weed_settings
    config_file = s.data_dir / "faceforge-s3.json"
    assert run["argv"][1:] == [
        f"-logdir={s.log_file.parent / 'seaweedfs'}",
        "server", "-s3", "-ip=127.0.0.1",
        f"-master.port={s.master_port}", f"-volume.port={s.volume_port}",
        f"-filer.port={s.filer_port}", f"-s3.port={s.s3_port}",
        f"-dir={s.data_dir}", f"-s3.config={config_file}",
    ]
    assert "core-secret-value" not in " ".join(run["argv"])
    assert run["env"]["FAKE_WEED_STATE"] == str(fake.state)  # Core's environment is inherited

    assert json.loads(config_file.read_text()) == {"identities": [{
        "name": "faceforge",
        "credentials": [{"accessKey": "core-access", "secretKey": "core-secret-value"}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }]}
    assert stat.S_IMODE(config_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(weed_settings.data_dir.stat().st_mode) == 0o700

    # weed's own output goes to its log file, not to Core's console.
    assert "fake weed starting" in weed_settings.log_file.read_text()
    assert "fake weed starting" not in "".join(capfd.readouterr())


@posix_only
@pytest.mark.parametrize("missing", ["access_key", "secret_key"])
async def test_refuses_to_start_without_credentials(
        weed_settings: SeaweedSettings, fake: FakeWeed, make_process: ProcessFactory,
        missing: str) -> None:
    process = make_process(replace(weed_settings, **{missing: ""}))
    with pytest.raises(SeaweedError, match="credentials"):
        await process.start()
    assert fake.runs() == []
    assert process.status.state == "stopped"
    assert not weed_settings.s3_config_file.exists()


async def test_refuses_to_start_without_the_binary(
        tmp_path: Path, weed_settings: SeaweedSettings, make_process: ProcessFactory) -> None:
    process = make_process(replace(weed_settings, weed=tmp_path / "nowhere" / "weed"))
    with pytest.raises(SeaweedError, match="not found"):
        await process.start()


@posix_only
async def test_a_crash_is_restarted(
        fake: FakeWeed, make_process: ProcessFactory, log: pytest.LogCaptureFixture) -> None:
    fake.mode("crash_after 0.3")
    process = make_process()
    await process.start()
    assert await process.wait_healthy(10)
    first = process.status
    assert first.pid is not None
    fake.mode("serve")  # the next start stays up

    await until(lambda: process.status.restarts == first.restarts + 1
                and process.status.state == "running")
    assert process.status.pid not in (None, first.pid)
    assert [run["pid"] for run in fake.runs()][-2:] == [first.pid, process.status.pid]
    assert gone(first.pid)
    warning = [r for r in log.records if r.levelno == logging.WARNING][-1]
    assert "exit code 3" in warning.getMessage() and warning.exit_code == 3


@posix_only
async def test_gives_up_after_repeated_quick_failures(
        fake: FakeWeed, make_process: ProcessFactory, log: pytest.LogCaptureFixture) -> None:
    fake.mode("crash")
    process = make_process(max_failures=5)
    await process.start()
    assert not await process.wait_healthy(10)

    status = process.status
    assert (status.state, status.pid, status.restarts) == ("failed", None, 4)
    assert "gave up after 5 quick failures" in (status.last_error or "")
    assert len(fake.runs()) == 5
    # Exponential back-off from 0.05 s, capped at 0.2 s.
    assert [r.delay for r in log.records if hasattr(r, "delay")] == [0.05, 0.1, 0.2, 0.2]
    [error] = [r for r in log.records if r.levelno == logging.ERROR]
    assert "exit code 3" in error.getMessage()


@posix_only
async def test_a_run_that_lasted_resets_the_failure_count(
        fake: FakeWeed, make_process: ProcessFactory) -> None:
    fake.mode("crash_after 0.2")
    process = make_process(max_failures=2, stable_after=0.1)
    await process.start()
    await until(lambda: process.status.restarts >= 3)
    assert process.status.state != "failed"


@posix_only
async def test_stop_terminates_it(fake: FakeWeed, make_process: ProcessFactory) -> None:
    process = make_process()
    await process.start()
    assert await process.wait_healthy(10)
    pid = process.status.pid
    assert pid is not None

    await process.stop()
    assert gone(pid)  # exited and reaped: no zombie
    assert (process.status.state, process.status.pid, process.status.restarts) == (
        "stopped", None, 0)
    assert len(fake.runs()) == 1
    await process.stop()  # twice is fine


@posix_only
async def test_stop_kills_a_process_that_ignores_sigterm(
        fake: FakeWeed, make_process: ProcessFactory, log: pytest.LogCaptureFixture) -> None:
    fake.mode("ignore_term")
    process = make_process(stop_timeout=0.3)
    await process.start()
    assert await process.wait_healthy(10)
    pid = process.status.pid
    assert pid is not None

    await process.stop()
    assert gone(pid)
    assert process.status.state == "stopped"
    assert any("killing it" in r.getMessage() for r in log.records)
    assert len(fake.runs()) == 1


@posix_only
async def test_stop_during_back_off_does_not_restart(
        fake: FakeWeed, make_process: ProcessFactory) -> None:
    fake.mode("crash")
    process = make_process(backoff_base=60)
    await process.start()
    await until(lambda: process.status.state == "restarting")

    with anyio.fail_after(5):  # does not sit out the 60 s back-off
        await process.stop()
    assert process.status.state == "stopped"
    assert len(fake.runs()) == 1


@posix_only
async def test_a_killed_process_is_restarted(
        fake: FakeWeed, make_process: ProcessFactory, log: pytest.LogCaptureFixture) -> None:
    process = make_process()
    await process.start()
    assert await process.wait_healthy(10)
    first_pid = process.status.pid
    assert first_pid is not None

    os.kill(first_pid, signal.SIGKILL)
    await until(lambda: process.status.restarts == 1 and process.status.state == "running")
    assert process.status.pid != first_pid
    assert any(getattr(r, "exit_code", None) == -signal.SIGKILL for r in log.records)

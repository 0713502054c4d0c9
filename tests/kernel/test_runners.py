"""The runner supervisor with real processes: output to a redacted, rotated log; restarts
with back-off until it gives up; graceful stop, kill after the timeout, no child left."""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from kernel.log import REDACTED, Redactor
from kernel.runners import RestartPolicy, RunnerProcess, free_port
from tests.kernel.conftest import eventually

SCRIPTS = Path(__file__).parent / "runner_scripts"
TOKEN = "ffp_" + "9f3a" * 8
#: tiny back-off so a crash loop runs its course in a fraction of a second
QUICK = RestartPolicy(first_delay=0.01, max_delay=0.04, crash_limit=3, crash_window=60.0,
                      stable_after=60.0)


@pytest.fixture
async def runners() -> AsyncIterator[Callable[..., RunnerProcess]]:
    """Builds runners for ``tests/kernel/runner_scripts/<script>``; stops them all after."""
    made: list[RunnerProcess] = []

    def make(tmp: Path, script: str, *args: str, env: Any = None,
             **kw: Any) -> RunnerProcess:
        folder = tmp / "plugin"
        folder.mkdir(exist_ok=True)
        runner = RunnerProcess("demo", ["python", str(SCRIPTS / script), *args], cwd=folder,
                               log_file=tmp / "logs" / "plugins" / "demo.log",
                               redact=kw.pop("redact", Redactor()), env=env, **kw)
        made.append(runner)
        return runner

    yield make
    for runner in made:
        await runner.stop()


def log_text(path: Path) -> str:
    return "".join(p.read_text("utf-8") for p in sorted(path.parent.glob(path.name + "*")))


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting for its parent counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


async def test_output_reaches_the_log_redacted_with_the_env_and_cwd_asked_for(
        tmp_path: Path, runners: Callable[..., RunnerProcess]) -> None:
    runner = runners(tmp_path, "report.py", env={
        "FACEFORGE_TOKEN": TOKEN, "FACEFORGE_PLUGIN_ID": "demo", "EXTRA": "x y"})
    status = await runner.start()
    assert status.state == "running" and status.pid and status.started_at
    await eventually(lambda: any(line.endswith("stdout ready") for line in runner.tail(20)),
                     what="the runner's output in its log")
    stopped = await runner.stop()

    text = runner.log.path.read_text("utf-8")
    assert TOKEN not in text and "header-secret-value" not in text
    lines = runner.tail(20)
    assert any(line.endswith(f"stdout token={REDACTED} bare {REDACTED}") for line in lines)
    assert any(line.endswith(f"stdout cwd={tmp_path / 'plugin'}") for line in lines)
    assert any(line.endswith("stdout plugin=demo extra=x y") for line in lines)
    assert any(" stderr Authorization: " in line and REDACTED in line for line in lines)
    assert any(line.endswith("stderr a line without newline") for line in lines)
    assert any(f"core started (pid {status.pid})" in line for line in lines)
    assert stopped.state == "stopped" and stopped.pid is None
    assert stopped.last_exit_code == -15 and stopped.message == "stopped"
    if os.name == "posix":
        assert runner.log.path.stat().st_mode & 0o777 == 0o600


async def test_a_crashing_runner_is_restarted_then_marked_failing(
        tmp_path: Path, runners: Callable[..., RunnerProcess]) -> None:
    tokens = iter(f"{TOKEN}{n}" for n in range(10))

    async def env() -> Mapping[str, str]:  # a fresh token for each process
        return {"FACEFORGE_TOKEN": next(tokens)}

    runner = runners(tmp_path, "crash.py", env=env, restart=QUICK)
    await runner.start()
    status = await eventually(lambda: runner.status.state == "failing" and runner.status,
                              what="the runner marked failing")
    assert status.restarts == 2 and status.last_exit_code == 3 and status.pid is None
    assert "3 crashes within 60 s" in status.message
    lines = runner.tail(50)
    assert sum(line.endswith(f"crashing with {REDACTED}") for line in lines) == 3
    assert sum("exited with code 3; restarting in" in line for line in lines) == 2
    assert TOKEN not in log_text(runner.log.path)

    # failing stays failing (no restart) until started again, which starts afresh
    assert runner.status.state == "failing"
    again = await runner.start()
    assert again.restarts == 0 and again.state in ("running", "restarting", "failing")
    await eventually(lambda: runner.status.state == "failing", what="failing again")
    assert (await runner.stop()).state == "stopped"


async def test_a_stable_run_resets_the_crash_count(
        tmp_path: Path, runners: Callable[..., RunnerProcess]) -> None:
    every_run_stable = RestartPolicy(first_delay=0.01, max_delay=0.01, crash_limit=2,
                                     stable_after=0.0)
    runner = runners(tmp_path, "crash.py", restart=every_run_stable)
    await runner.start()
    await eventually(lambda: runner.status.restarts >= 4, what="four restarts")
    assert runner.status.state != "failing"


async def test_a_program_that_cannot_start_ends_failing_with_the_reason(
        tmp_path: Path, runners: Callable[..., RunnerProcess]) -> None:
    runner = runners(tmp_path, "report.py", restart=QUICK)
    runner.argv = [str(tmp_path / "no-such-program")]
    status = await runner.start()
    assert status.state in ("restarting", "failing") and "cannot start" in status.message
    await eventually(lambda: runner.status.state == "failing", what="failing")
    assert "no-such-program" in runner.status.message
    assert "cannot start" in "\n".join(runner.tail(10))


async def test_stop_kills_a_runner_ignoring_sigterm_and_its_child(
        tmp_path: Path, runners: Callable[..., RunnerProcess]) -> None:
    runner = runners(tmp_path, "stubborn.py", stop_timeout=0.3)
    await runner.start()
    ready = await eventually(lambda: [line for line in runner.tail(5) if "ready child=" in line],
                             what="the runner and its child")
    child = int(ready[0].rsplit("=", 1)[1])
    assert alive(child)
    status = await runner.stop()
    assert status.state == "stopped" and status.last_exit_code == -9
    assert "killed by SIGKILL: still running 0.3 s after being asked to stop" in status.message
    await eventually(lambda: not alive(child), what="the runner's child gone")


async def test_a_graceful_runner_exits_on_sigterm(
        tmp_path: Path, runners: Callable[..., RunnerProcess]) -> None:
    runner = runners(tmp_path, "graceful.py", stop_timeout=30.0)
    await runner.start()
    await eventually(lambda: any(line.endswith("ready") for line in runner.tail(5)),
                     what="ready")
    status = await runner.stop()
    assert status.last_exit_code == 0 and status.message == "stopped"
    assert any(line.endswith("stdout got SIGTERM, bye") for line in runner.tail(5))
    assert (await runner.stop()).state == "stopped"  # stopping twice is harmless


async def test_the_log_rotates_keeping_backup_count_files(
        tmp_path: Path, runners: Callable[..., RunnerProcess]) -> None:
    runner = runners(tmp_path, "chatty.py", "400", max_bytes=4000, backup_count=2)
    await runner.start()
    await eventually(lambda: any(line.endswith("stdout done") for line in runner.tail(1)),
                     what="all lines written")
    folder = runner.log.path.parent
    assert sorted(p.name for p in folder.iterdir()) == ["demo.log", "demo.log.1", "demo.log.2"]
    assert all(p.stat().st_size <= 4000 for p in folder.iterdir())
    # the tail reaches back across the rotation, in order
    tail = runner.tail(120)
    numbered = [int(line.split("line ")[1][:5]) for line in tail if " stdout line " in line]
    assert len(tail) == 120 and numbered == list(range(400 - len(numbered), 400))
    assert runner.tail(0) == []


def test_free_port_can_be_bound() -> None:
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_python_means_the_python_running_core(tmp_path: Path) -> None:
    runner = RunnerProcess("demo", ["python", "-m", "x"], cwd=tmp_path,
                           log_file=tmp_path / "x.log", redact=str)
    assert runner.argv == [sys.executable, "-m", "x"]
    assert runner.status.state == "stopped" and runner.tail() == []
    with pytest.raises(ValueError, match="argv is empty"):
        RunnerProcess("demo", [], cwd=tmp_path, log_file=tmp_path / "x.log", redact=str)

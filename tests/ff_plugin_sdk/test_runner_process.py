"""A runner as a real process (``runner.main()``) against a Core on a real socket: it runs
jobs, and on SIGTERM or SIGINT stops claiming, lets a running job finish within its grace or
hands it back to Core, and exits 0; a refused token exits 1."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.ff_plugin_sdk.sdk_core import BOUND_SECONDS, Served, eventually
from tests.plugins import job_types

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]

SCRIPT = """
import asyncio, os, sys
from pathlib import Path
from ff_plugin_sdk.runner import JobContext, Runner

marks = Path(os.environ["MARKS"])
runner = Runner(grace_seconds=float(os.environ["GRACE"]), lease_seconds=5)

@runner.job("testjobs.remote")
async def hold(ctx: JobContext) -> dict:
    (marks / ("started-" + ctx.job_id)).touch()
    try:
        while not (marks / "release").exists():
            await asyncio.sleep(0.02)
        await ctx.log("released")
        return {"released": True, "runner": ctx.runner_id}
    finally:
        (marks / ("finally-" + ctx.job_id)).touch()

sys.exit(runner.main())
"""


@pytest.fixture
def served(make_app: Any) -> Iterator[Served]:
    with Served(make_app([("testjobs", job_types)])) as server:
        yield server


@pytest.fixture
def core(served: Served, settings: Any) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served.url, headers={
            "Authorization": f"Bearer {settings.install_token}"}) as client:
        yield client


def start_runner(served: Served, token: str, marks: Path, grace: float) -> subprocess.Popen[str]:
    script = marks / "runner_main.py"
    script.write_text(SCRIPT, "utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACEFORGE_")}
    env |= {"FACEFORGE_URL": served.url, "FACEFORGE_TOKEN": token,
            "FACEFORGE_PLUGIN_ID": "testrunner", "MARKS": str(marks), "GRACE": str(grace),
            "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, str(script)], env=env, cwd=marks,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def queue(core: httpx.Client) -> str:
    answer = core.post("/v1/jobs", json={"type": job_types.REMOTE})
    assert answer.status_code == 202, answer.text
    return str(answer.json()["job_id"])


def job(core: httpx.Client, job_id: str) -> dict[str, Any]:
    return dict(core.get(f"/v1/jobs/{job_id}").json())


def stopped(process: subprocess.Popen[str]) -> tuple[int, str]:
    try:
        _, err = process.communicate(timeout=BOUND_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        _, err = process.communicate()
        pytest.fail(f"the runner did not stop: {err[-2000:]}")
    return process.returncode, err


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_lets_the_running_job_finish_within_the_grace(
        served: Served, core: httpx.Client, settings: Any, tmp_path: Path, sig: int) -> None:
    runner = start_runner(served, settings.install_token, tmp_path, grace=BOUND_SECONDS)
    first = queue(core)
    eventually(lambda: (tmp_path / f"started-{first}").exists(), "the job started")
    runner.send_signal(sig)
    # stopping: a job queued now stays for another runner
    second = queue(core)
    eventually(lambda: "stopping" in (runner.stderr.readline() if runner.stderr else ""),
               "the runner saying it stops")
    (tmp_path / "release").touch()
    code, err = stopped(runner)
    assert code == 0, err[-2000:]
    done = job(core, first)
    assert done["status"] == "succeeded", done
    assert done["result"]["released"] and done["result"]["runner"].startswith("testrunner@")
    assert job(core, second)["status"] == "queued"


def test_past_the_grace_the_job_goes_back_to_core(served: Served, core: httpx.Client,
                                                  settings: Any, tmp_path: Path) -> None:
    runner = start_runner(served, settings.install_token, tmp_path, grace=0.2)
    job_id = queue(core)
    eventually(lambda: (tmp_path / f"started-{job_id}").exists(), "the job started")
    runner.send_signal(signal.SIGTERM)
    code, err = stopped(runner)
    assert code == 0, err[-2000:]
    assert (tmp_path / f"finally-{job_id}").exists()
    after = job(core, job_id)
    assert (after["status"], after["attempts"], after["runner_id"]) == ("queued", 1, None)
    lines = core.get(f"/v1/jobs/{job_id}/log").json()["items"]
    assert any("the runner stopped before the job finished" in line["message"]
               for line in lines)


def test_a_refused_token_exits_with_1(served: Served, tmp_path: Path) -> None:
    runner = start_runner(served, "not-a-token", tmp_path, grace=1)
    code, err = stopped(runner)
    assert code == 1
    assert "runner stopped" in err and "unauthorized" in err.lower()

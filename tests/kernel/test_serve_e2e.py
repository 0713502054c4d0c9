"""``faceforge serve`` as a real process on a real socket: start, answer, stop cleanly; and
refuse to start with a one-line message (exit 2, no traceback) when it cannot."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.e2e

POLLS = 100  # x POLL_SECONDS: the bound on waiting for the server
POLL_SECONDS = 0.1


def serve_command(home: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "kernel", "serve", "--home", str(home), *args]


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACEFORGE_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


@pytest.fixture
def server(home: Path) -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen(serve_command(home, "--port", "0"), env=clean_env(),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    yield process
    if process.poll() is None:
        process.kill()
    process.communicate(timeout=10)


def wait_for(process: subprocess.Popen[str], check, what: str):
    """Poll ``check`` (bounded) while the process is alive."""
    for _ in range(POLLS):
        if process.poll() is not None:
            _, err = process.communicate()
            pytest.fail(f"serve exited with {process.returncode} while waiting for {what}: "
                        f"{err}")
        result = check()
        if result:
            return result
        time.sleep(POLL_SECONDS)
    pytest.fail(f"no {what} after {POLLS * POLL_SECONDS:.0f}s")


def test_serve_answers_and_stops_cleanly_on_sigterm(server, home: Path) -> None:
    ports_file = home / "config" / "ports.json"
    wait_for(server, ports_file.exists, "config/ports.json")
    port = json.loads(ports_file.read_text("utf-8"))["core"]
    assert isinstance(port, int) and port > 0
    base = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        try:
            return httpx.get(f"{base}/healthz", timeout=2, trust_env=False).status_code == 200
        except httpx.TransportError:
            return False

    wait_for(server, healthy, "/healthz 200")
    token = json.loads((home / "config" / "core.json").read_text("utf-8"))["auth"][
        "install_token"]
    with httpx.Client(base_url=base, timeout=5, trust_env=False) as http:
        assert http.get("/v1/ping").status_code == 401
        ping = http.get("/v1/ping", headers={"Authorization": f"Bearer {token}"})
        assert ping.status_code == 200 and ping.json()["ok"] is True
        assert ping.headers["x-correlation-id"]
        docs = http.get("/docs")
        assert docs.status_code == 200 and "swagger-ui" in docs.text

    server.send_signal(signal.SIGTERM)
    assert server.wait(timeout=15) == 0
    _, err = server.communicate()
    assert "Traceback" not in err
    log = (home / "logs" / "core.log").read_text("utf-8")
    assert "FaceForge stopped" in log


def test_port_in_use_is_exit_2_with_one_line(home: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(serve_command(home, "--port", str(port)), env=clean_env(),
                                capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "in use" in lines[0] and str(port) in lines[0]
    assert "Traceback" not in result.stderr


def test_invalid_core_json_is_exit_2_naming_the_file(home: Path) -> None:
    core = home / "config" / "core.json"
    core.parent.mkdir(parents=True)
    core.write_text('{"auth": {', encoding="utf-8")
    result = subprocess.run(serve_command(home, "--port", "0"), env=clean_env(),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert str(core) in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_corrupt_database_is_exit_2_and_the_process_ends(home: Path) -> None:
    db_file = home / "db" / "core.sqlite3"
    db_file.parent.mkdir(parents=True)
    db_file.write_bytes(b"not sqlite " * 500)
    result = subprocess.run(serve_command(home, "--port", "0"), env=clean_env(),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    error = [line for line in result.stderr.splitlines() if line.startswith("faceforge: error")]
    assert len(error) == 1 and str(db_file) in error[0]
    assert "Traceback" not in result.stderr

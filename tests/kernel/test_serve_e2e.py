"""``faceforge serve`` as a real process on a real socket: start, answer, stop cleanly; and
refuse to start with a one-line message (exit 2, no traceback) when it cannot."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
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


def healthy(base: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            return httpx.get(f"{base}/healthz", timeout=2, trust_env=False).status_code == 200
        except httpx.TransportError:
            return False

    return check


def ports_json_port(process: subprocess.Popen[str], home: Path) -> int:
    ports_file = home / "config" / "ports.json"
    wait_for(process, ports_file.exists, "config/ports.json")
    port = json.loads(ports_file.read_text("utf-8"))["core"]
    assert isinstance(port, int) and port > 0
    return port


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_serve_answers_and_stops_cleanly_on_a_signal(server, home: Path,
                                                     sig: signal.Signals) -> None:
    port = ports_json_port(server, home)
    base = f"http://127.0.0.1:{port}"
    wait_for(server, healthy(base), "/healthz 200")
    token = json.loads((home / "config" / "core.json").read_text("utf-8"))["auth"][
        "install_token"]
    with httpx.Client(base_url=base, timeout=5, trust_env=False) as http:
        assert http.get("/v1/ping").status_code == 401
        ping = http.get("/v1/ping", headers={"Authorization": f"Bearer {token}"})
        assert ping.status_code == 200 and ping.json()["ok"] is True
        assert ping.headers["x-correlation-id"]
        docs = http.get("/docs")
        assert docs.status_code == 200 and "swagger-ui" in docs.text

    server.send_signal(sig)
    assert server.wait(timeout=15) == 0
    _, err = server.communicate()
    assert "Traceback" not in err
    log = (home / "logs" / "core.log").read_text("utf-8")
    assert "FaceForge stopped" in log
    with socket.socket() as again:  # the port is let go: another program may now listen
        again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        again.bind(("127.0.0.1", port))
        again.listen()


def listening_inodes(port: int) -> set[int]:
    """Inodes of the sockets in LISTEN state on ``port`` (Linux's socket tables)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for row in Path(table).read_text("ascii").splitlines()[1:]:
            fields = row.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(int(fields[9]))
    return inodes


def socket_inodes(pid: int) -> set[int]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):  # an fd closed while we look
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(int(target[len("socket:["):-1]))
    return inodes


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads Linux's socket tables")
def test_port_0_listens_before_ports_json_is_written_and_is_never_bound_again(
    server, home: Path
) -> None:
    port = ports_json_port(server, home)
    # ports.json is written once the socket listens, before the app is even built.
    first = listening_inodes(port)
    assert len(first) == 1, f"port {port} is not listening yet: it was let go after choosing"
    assert first <= socket_inodes(server.pid)
    wait_for(server, healthy(f"http://127.0.0.1:{port}"), "/healthz 200")
    assert listening_inodes(port) == first  # Hypercorn serves on that socket, no second bind
    assert stat.S_IMODE((home / "config" / "ports.json").stat().st_mode) == 0o600


def test_a_client_connecting_as_soon_as_ports_json_appears_is_served(server,
                                                                     home: Path) -> None:
    port = ports_json_port(server, home)
    # Not refused, even if the app is still starting: the connection waits in the backlog.
    with socket.create_connection(("127.0.0.1", port), timeout=POLLS * POLL_SECONDS) as conn:
        conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        response = b""
        while chunk := conn.recv(65536):
            response += chunk
    assert response.startswith(b"HTTP/1.1 200"), response[:200]


def test_ipv6_loopback_with_port_0(home: Path) -> None:
    process = subprocess.Popen(serve_command(home, "--host", "::1", "--port", "0"),
                               env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    try:
        port = ports_json_port(process, home)
        wait_for(process, healthy(f"http://[::1]:{port}"), "/healthz 200 on [::1]")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)


def test_an_address_not_on_this_machine_is_exit_2_with_one_line(home: Path) -> None:
    # 192.0.2.0/24 is TEST-NET-1: documentation only, never assigned to a local interface.
    result = subprocess.run(serve_command(home, "--host", "192.0.2.1", "--port", "0"),
                            env=clean_env(), capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("faceforge: error: cannot listen on 192.0.2.1:0")
    assert not (home / "config" / "ports.json").exists()


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

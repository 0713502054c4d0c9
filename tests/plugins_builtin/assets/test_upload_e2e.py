"""Uploads to a real ``faceforge serve`` over a real socket: a client that goes away
mid-upload leaves nothing behind, and curl uploads a large file and resumes its download
(``-C -``) to identical bytes."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.kernel.test_serve_e2e import (
    clean_env,
    healthy,
    ports_json_port,
    serve_command,
    wait_for,
)
from tests.plugins_builtin.assets.conftest import BOUNDARY

pytestmark = pytest.mark.e2e

MiB = 1024 * 1024
CURL_SECONDS = 120


class Server:
    def __init__(self, process: subprocess.Popen[str], home: Path, port: int) -> None:
        self.process = process
        self.home = home
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.token = json.loads((home / "config" / "core.json").read_text("utf-8"))["auth"][
            "install_token"]
        self.auth = {"Authorization": f"Bearer {self.token}"}

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.base, headers=self.auth, timeout=30, trust_env=False)

    def staged(self) -> list[Path]:
        return list((self.home / "tmp").glob("staged-*"))

    def blobs(self) -> list[Path]:
        return [p for p in (self.home / "assets").rglob("*") if p.is_file()]


def start(home: Path) -> Server:
    process = subprocess.Popen(serve_command(home, "--port", "0"), env=clean_env(),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        port = ports_json_port(process, home)
        wait_for(process, healthy(f"http://127.0.0.1:{port}"), "/healthz 200")
    except BaseException:
        process.kill()
        process.communicate(timeout=10)
        raise
    return Server(process, home, port)


def stop(server: Server) -> None:
    """Stop the server; it must not have printed a traceback."""
    process = server.process
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
    _, err = process.communicate(timeout=10)
    assert "Traceback" not in err, err


@pytest.fixture
def server(home: Path) -> Iterator[Server]:
    running = start(home)
    try:
        yield running
    finally:
        stop(running)


@pytest.fixture
def small_server(home: Path) -> Iterator[Server]:
    """A server whose uploads may hold at most 1 MiB (``plugins.assets`` in core.json)."""
    (home / "config").mkdir(parents=True, mode=0o700)
    (home / "config" / "core.json").write_text(json.dumps(
        {"plugins": {"assets": {"max_upload_bytes": MiB}}}))
    running = start(home)
    try:
        yield running
    finally:
        stop(running)


def test_a_client_leaving_mid_upload_leaves_no_row_no_blob_no_temp_file(server: Server):
    head = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"half.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n").encode()
    declared = len(head) + 64 * MiB
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as conn:
        conn.sendall(
            f"POST /v1/assets/upload HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
            f"Authorization: Bearer {server.token}\r\n"
            f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
            f"Content-Length: {declared}\r\n\r\n".encode() + head)
        chunk = os.urandom(MiB)
        for _ in range(20):  # past the first batch written (8 MiB): a staged file exists
            conn.sendall(chunk)
        wait_for(server.process, server.staged, "staged file in tmp/ for the upload")
    # the connection is closed with 44 MiB still to come
    wait_for(server.process, lambda: not server.staged(), "removal of the staged file")
    with server.http() as http:
        listed = http.get("/v1/assets", params={"include_deleted": "true"})
        assert listed.status_code == 200 and listed.json()["items"] == []
        assert server.blobs() == []
        # the server is fine: the next upload is stored
        r = http.post("/v1/assets/upload", files={"file": ("whole.bin", chunk)})
        assert r.status_code == 201, r.text
        assert r.json()["asset_id"] == hashlib.sha256(chunk).hexdigest()
    assert server.staged() == []


def curl(*args: str) -> str:
    """Run curl (never through a proxy); returns what it printed for ``-w``."""
    assert shutil.which("curl"), "curl is needed (Debian: apt-get install curl)"
    result = subprocess.run(["curl", "--silent", "--show-error", "--noproxy", "*", *args],
                            capture_output=True, text=True, timeout=CURL_SECONDS)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_curl_uploads_50_mb_and_resumes_the_download_to_identical_bytes(server: Server,
                                                                       tmp_path: Path):
    original = tmp_path / "big.bin"
    with original.open("wb") as fh:
        for _ in range(50):
            fh.write(os.urandom(MiB))
    digest = hashlib.sha256(original.read_bytes()).hexdigest()
    auth = f"Authorization: Bearer {server.token}"
    answer = tmp_path / "answer.json"
    status = curl("-H", auth, "-F", f"file=@{original};type=application/octet-stream",
                  "-o", str(answer), "-w", "%{http_code}", f"{server.base}/v1/assets/upload")
    assert status == "201", answer.read_text()
    asset = json.loads(answer.read_text())
    assert asset["asset_id"] == digest and asset["size"] == 50 * MiB
    assert asset["filename"] == "big.bin"
    assert server.staged() == []

    url = f"{server.base}/v1/assets/{digest}/download"
    copy = tmp_path / "copy.bin"
    # the first 20 MiB, as an interrupted download would have them
    assert curl("-H", auth, "-r", f"0-{20 * MiB - 1}", "-o", str(copy), "-w",
                "%{http_code}", url) == "206"
    assert copy.stat().st_size == 20 * MiB
    assert curl("-H", auth, "-C", "-", "-o", str(copy), "-w", "%{http_code}", url) == "206"
    assert copy.stat().st_size == 50 * MiB
    assert hashlib.sha256(copy.read_bytes()).hexdigest() == digest


@pytest.mark.parametrize("size", [MiB + 1, 20 * MiB], ids=["just-over", "far-over"])
def test_curl_sending_more_than_the_limit_gets_413_and_nothing_is_kept(small_server: Server,
                                                                       tmp_path: Path,
                                                                       size: int):
    server = small_server
    too_big = tmp_path / "too-big.bin"
    too_big.write_bytes(os.urandom(size))  # far over: refused while curl is still sending
    answer = tmp_path / "answer.json"
    status = curl("-H", f"Authorization: Bearer {server.token}", "-F", f"file=@{too_big}",
                  "-o", str(answer), "-w", "%{http_code}", f"{server.base}/v1/assets/upload")
    assert status == "413", answer.read_text()
    error = json.loads(answer.read_text())["error"]
    assert error["code"] == "payload_too_large"
    if size == MiB + 1:
        assert f"limit of {MiB} bytes" in error["message"]
    wait_for(server.process, lambda: not server.staged(), "removal of the staged file")
    assert server.blobs() == []
    with server.http() as http:
        assert http.get("/v1/assets", params={"include_deleted": "true"}).json()["items"] == []

"""tus against a real ``faceforge serve`` on a socket, with a client no one here wrote
(``tuspy``): a plain chunked upload, a resume after the connection is cut mid-chunk, a resume
after Core itself is killed mid-upload; and with raw sockets, what the server keeps of a
PATCH whose client dropped or went silent."""

from __future__ import annotations

import base64
import hashlib
import os
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from tusclient import client as tus_client
from tusclient.exceptions import TusCommunicationError

from tests.kernel.test_serve_e2e import wait_for
from tests.plugins_builtin.assets.test_upload_e2e import MiB, Server, start, stop
from tests.plugins_builtin.assets.tus import OCTETS, TUS, UPLOADS, VERSION
from tests.plugins_builtin.assets.tus_proxy import CuttingProxy

pytestmark = pytest.mark.e2e

CHUNK = MiB
SIZE = 6 * MiB + 12345  # six whole chunks and a short last one
DEADLINE = 60.0  # seconds: the bound on any one client call here
T = TypeVar("T")


@pytest.fixture(autouse=True)
def _no_proxy_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """tuspy uses requests, which honours *_proxy variables; these sockets are local."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy",
                 "all_proxy"):
        monkeypatch.delenv(name, raising=False)


class Core:
    """The ``faceforge serve`` process of one home, which a test may kill and start again."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.server = start(home)

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as when the machine loses power to the process."""
        self.server.process.send_signal(signal.SIGKILL)
        self.server.process.wait(timeout=30)

    def restart(self) -> Server:
        stop(self.server)
        # a new port (0 picks one); the old ports.json must not be read as the new one's
        (self.home / "config" / "ports.json").unlink(missing_ok=True)
        self.server = start(self.home)
        return self.server

    def http(self) -> httpx.Client:
        return self.server.http()


@pytest.fixture
def core(home: Path) -> Iterator[Core]:
    running = Core(home)
    try:
        yield running
    finally:
        stop(running.server)


@pytest.fixture
def big_file(tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "lora.safetensors"
    data = os.urandom(SIZE)
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest()


def bounded(call: Callable[[], T], seconds: float = DEADLINE) -> T:
    """Run a blocking client call, failing (not hanging) if it takes over ``seconds``."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = call()
        except BaseException as exc:  # handed to the test's thread
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        pytest.fail(f"the client call did not return within {seconds:.0f}s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def tuspy(base: str, server: Server) -> tus_client.TusClient:
    return tus_client.TusClient(f"{base}{UPLOADS}", headers=dict(server.auth))


def head(server: Server, url: str) -> httpx.Response:
    """HEAD straight to Core (never through a proxy)."""
    path = httpx.URL(url).path
    with server.http() as http:
        r = http.head(path, headers=TUS)
    assert r.headers.get("tus-resumable") == VERSION
    return r


def download_sha(server: Server, asset_id: str) -> str:
    digest = hashlib.sha256()
    with server.http() as http, http.stream("GET", f"/v1/assets/{asset_id}/download") as r:
        assert r.status_code == 200
        for chunk in r.iter_bytes():
            digest.update(chunk)
    return digest.hexdigest()


def finished_asset(uploader: Any) -> str:
    """The asset id the last PATCH's answer named."""
    headers = uploader.request.response_headers
    assert headers.get("tus-resumable") == VERSION
    return headers["faceforge-asset-id"]


# -- tuspy -------------------------------------------------------------------------------

@pytest.mark.parametrize("checksums", [False, True], ids=["plain", "with-checksums"])
def test_tuspy_uploads_a_file_in_chunks(core, big_file, checksums):
    path, digest = big_file
    server = core.server
    uploader = tuspy(server.base, server).uploader(
        file_path=str(path), chunk_size=CHUNK, upload_checksum=checksums,
        metadata={"filename": path.name, "kind": "model.lora", "meta": '{"base": "sdxl"}'})
    bounded(uploader.upload)
    assert finished_asset(uploader) == digest
    with server.http() as http:
        asset = http.get(f"/v1/assets/{digest}").json()
    assert asset["size"] == SIZE and asset["filename"] == path.name
    assert asset["kind"] == "model.lora" and asset["user_metadata"] == {"base": "sdxl"}
    assert download_sha(server, digest) == digest
    assert not list((server.home / "tmp").glob("upload-*")), "a finished upload left tmp/"


def test_tuspy_uploads_an_empty_file(core, tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    server = core.server
    uploader = tuspy(server.base, server).uploader(file_path=str(empty), chunk_size=CHUNK)
    bounded(uploader.upload)
    digest = hashlib.sha256(b"").hexdigest()
    r = head(server, uploader.url)
    assert r.status_code == 200 and r.headers["faceforge-asset-id"] == digest


def test_tuspy_resumes_after_the_connection_is_cut_mid_chunk(core, big_file):
    path, digest = big_file
    server = core.server
    cut_at = 2 * CHUNK + CHUNK // 2  # in the middle of the third chunk
    with CuttingProxy(server.port, cut_at=cut_at) as proxy:
        client = tuspy(proxy.base, server)
        uploader = client.uploader(file_path=str(path), chunk_size=CHUNK,
                                   metadata={"filename": path.name})
        with pytest.raises(TusCommunicationError):
            bounded(uploader.upload)
        assert proxy.cut.is_set()

        r = head(server, uploader.url)
        assert r.status_code == 200
        offset = int(r.headers["upload-offset"])
        # two chunks were acknowledged; of the cut one, what arrived may be kept
        assert 2 * CHUNK <= offset <= cut_at, offset

        before = proxy.patch_bytes
        resumed = client.uploader(file_path=str(path), chunk_size=CHUNK, url=uploader.url)
        assert resumed.offset == offset  # tuspy asked Core (HEAD) where to go on from
        bounded(resumed.upload)
        sent_again = proxy.patch_bytes - before
    assert sent_again == SIZE - offset < SIZE
    assert sent_again <= SIZE - 2 * CHUNK  # at most the cut chunk is sent twice
    assert finished_asset(resumed) == digest
    assert download_sha(server, digest) == digest


def test_tuspy_resumes_after_core_is_killed_mid_chunk(core, big_file):
    path, digest = big_file
    server = core.server
    cut_at = 3 * CHUNK + 100_000
    with CuttingProxy(server.port, cut_at=cut_at, on_cut=core.kill) as proxy:
        client = tuspy(proxy.base, server)
        uploader = client.uploader(file_path=str(path), chunk_size=CHUNK,
                                   metadata={"filename": path.name, "kind": "model.lora"})
        with pytest.raises(TusCommunicationError):
            bounded(uploader.upload)
        assert proxy.cut.is_set() and core.server.process.poll() == -signal.SIGKILL

        server = core.restart()
        proxy.target = server.port
        r = head(server, uploader.url)
        assert r.status_code == 200
        offset = int(r.headers["upload-offset"])
        # what Core acknowledged before it died is still there
        assert 3 * CHUNK <= offset <= cut_at, offset

        before = proxy.patch_bytes
        resumed = client.uploader(file_path=str(path), chunk_size=CHUNK, url=uploader.url)
        assert resumed.offset == offset
        bounded(resumed.upload)
        assert proxy.patch_bytes - before == SIZE - offset
    assert finished_asset(resumed) == digest
    assert download_sha(server, digest) == digest
    with server.http() as http:
        assert http.get(f"/v1/assets/{digest}").json()["kind"] == "model.lora"


# -- raw sockets: a PATCH whose client dropped or went silent -----------------------------

def create(server: Server, length: int) -> str:
    with server.http() as http:
        r = http.post(UPLOADS, headers={**TUS, "Upload-Length": str(length)})
    assert r.status_code == 201, r.text
    return httpx.URL(r.headers["location"]).path


def open_patch(server: Server, path: str, offset: int, declared: int,
               body: bytes) -> socket.socket:
    """A PATCH that declares ``declared`` bytes and sends only ``body`` of them."""
    conn = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    conn.sendall(
        f"PATCH {path} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
        f"Authorization: Bearer {server.token}\r\nTus-Resumable: {VERSION}\r\n"
        f"Content-Type: {OCTETS}\r\nUpload-Offset: {offset}\r\n"
        f"Content-Length: {declared}\r\n\r\n".encode() + body)
    return conn


def offset_json(server: Server, path: str) -> int:
    with server.http() as http:
        r = http.get(path)
    assert r.status_code == 200, r.text
    return r.json()["offset"]


def finish(server: Server, path: str, data: bytes, offset: int) -> None:
    with server.http() as http:
        r = http.patch(path, content=data[offset:], timeout=DEADLINE, headers={
            **TUS, "Content-Type": OCTETS, "Upload-Offset": str(offset)})
    assert r.status_code == 204, r.text
    digest = hashlib.sha256(data).hexdigest()
    assert r.headers["faceforge-asset-id"] == digest
    assert download_sha(server, digest) == digest


def test_the_bytes_of_a_patch_whose_connection_closed_are_kept(core):
    server = core.server
    data = os.urandom(2 * MiB)
    path = create(server, len(data))
    sent = 700_000
    with open_patch(server, path, 0, len(data), data[:sent]):
        pass  # closed with the body unfinished
    wait_for(server.process, lambda: offset_json(server, path) == sent,
             f"the {sent} bytes received to be kept")
    r = head(server, path)
    assert r.status_code == 200 and int(r.headers["upload-offset"]) == sent
    finish(server, path, data, sent)


def test_a_head_does_not_wait_for_a_patch_whose_client_went_silent(core):
    server = core.server
    data = os.urandom(2 * MiB)
    path = create(server, len(data))
    sent = 700_000
    with open_patch(server, path, 0, len(data), data[:sent]):
        # the client stays connected and sends nothing more
        r = bounded(lambda: head(server, path), 15)
        assert r.status_code == 200
        offset = int(r.headers["upload-offset"])
        assert 0 <= offset <= sent
        finish(server, path, data, offset)


def test_a_dropped_patch_with_a_checksum_keeps_nothing_of_it(core):
    """Its bytes cannot be checked against the checksum, so none of them count."""
    server = core.server
    data = os.urandom(2 * MiB)
    path = create(server, len(data))
    digest = base64.b64encode(hashlib.sha1(data).digest()).decode()
    conn = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    with conn:
        conn.sendall(
            f"PATCH {path} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
            f"Authorization: Bearer {server.token}\r\nTus-Resumable: {VERSION}\r\n"
            f"Content-Type: {OCTETS}\r\nUpload-Offset: 0\r\nUpload-Checksum: sha1 {digest}\r\n"
            f"Content-Length: {len(data)}\r\n\r\n".encode() + data[:700_000])
    # once Core has seen the connection end, the upload is free again: a HEAD tells 0
    r = bounded(lambda: head(server, path), 15)
    assert r.status_code == 200 and int(r.headers["upload-offset"]) == 0
    finish(server, path, data, 0)

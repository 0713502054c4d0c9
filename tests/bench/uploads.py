"""The resumable uploads phase: tus through a real ``faceforge serve``, with tuspy.

- A 1 GiB (``--quick``: 256 MiB) tus upload in 8 MB chunks by ``tuspy`` (a real tus client,
  PATCH after PATCH on one keep-alive connection), beside the bare Starlette app's
  receive-only endpoint on the same Hypercorn receiving the same bytes from ``curl -F``, in
  rounds bracketed by baseline runs (as the assets phase does).  Checked: the asset id is the
  sha256 of the bytes.
- A resume after a killed connection: tuspy uploads through a TCP proxy that cuts both
  sockets in the middle of a chunk; a second tuspy uploader resumes from the server's offset.
  Reported: the bytes sent in all versus the file's size (the re-sent bytes), against the
  target of at most one chunk.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.bench.assets import MIB, Progress, Source, label, upload, versus
from tests.bench.server import BareServer, BenchError, Server, cli

if TYPE_CHECKING:
    from tests.bench.document import Bench

CHUNK = 8_000_000  # "8 MB chunks"


class CuttingProxy:
    """Forwards one client's connections to ``target``, counting the bytes sent upstream;
    after ``cut_after`` of them it closes both sockets abruptly, mid-request."""

    def __init__(self, target: tuple[str, int], cut_after: int | None) -> None:
        self.target = target
        self.cut_after = cut_after
        self.sent = 0
        self.cut = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            threading.Thread(target=self._pipe, args=(client, upstream, True),
                             daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, False),
                             daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, counted: bool) -> None:
        try:
            while data := src.recv(1 << 20):
                if counted and self.cut_after is not None and not self.cut.is_set() and (
                        self.sent + len(data) >= self.cut_after):
                    self.cut.set()
                    for s in (src, dst):  # RST, not a clean close
                        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                     b"\x01\x00\x00\x00\x00\x00\x00\x00")
                        s.close()
                    return
                dst.sendall(data)
                if counted:
                    self.sent += len(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.close()

    def close(self) -> None:
        self.listener.close()


def tus_upload(url: str, token: str, source: Source, *, chunk: int = CHUNK,
               upload_url: str | None = None) -> dict[str, Any]:
    """One tuspy upload (or resume of ``upload_url``); seconds, client CPU and the asset."""
    from tusclient import client as tus_client

    tus = tus_client.TusClient(url, headers={"Authorization": f"Bearer {token}"})
    uploader = tus.uploader(file_path=str(source.path), chunk_size=chunk, url=upload_url,
                            metadata={"filename": source.path.name}, retries=0)
    cpu = time.process_time()
    start = time.perf_counter()
    uploader.upload()
    seconds = time.perf_counter() - start
    cpu = time.process_time() - cpu
    asset_id = (uploader.request.response_headers or {}).get("faceforge-asset-id") if (
        uploader.request is not None) else None
    return {"seconds": round(seconds, 3), "mb_per_s": round(source.size / 1e6 / seconds, 1),
            "client_cpu_cores": round(cpu / seconds, 2), "asset_id": asset_id,
            "url": uploader.url}


def bench_uploads(root: Path, bench: Bench, progress: Progress, *, quick: bool) -> None:
    """The phase, into ``bench.doc["uploads"]``."""
    work = Path(tempfile.mkdtemp(prefix="uploads-", dir=root))
    out = bench.doc.setdefault("uploads", {})
    size = 256 * MIB if quick else 2**30
    rounds = 1 if quick else 3
    source = Source(work / "one.bin", size).make(1)
    home = work / "home"
    token = cli(home, "token")
    reply = work / "reply.json"
    try:
        with BareServer(work / "bare") as bare, Server(home) as server:
            bare.start()
            server.start()
            endpoint = f"{server.base_url}/v1/uploads"

            def ours(i: int) -> dict[str, Any]:
                if i > 1:
                    source.revise(i)
                bench.quiet()
                result = tus_upload(endpoint, token, source)
                bench.check(f"tus upload round {i}: FaceForge-Asset-Id = sha256 of the bytes",
                            result["asset_id"] == source.sha256,
                            {"asset_id": result["asset_id"], "sha256": source.sha256})
                return result

            def baseline(i: int) -> dict[str, Any]:
                bench.quiet()
                result = upload(bare.base_url, "/upload", source, None, reply)
                if result["status"] != 200:
                    raise BenchError(f"bare upload -> {result['status']}")
                return result

            progress(f"tus upload {label(size)} in {CHUNK // 1_000_000} MB chunks (tuspy) vs "
                     f"the bare receive-only endpoint, {rounds} round(s)")
            out["tus_upload"] = versus("tus upload", rounds, ours, baseline, progress)
            out["tus_upload"]["chunk_bytes"] = CHUNK
            bench.target(f"tus upload {label(size)} in 8 MB chunks vs bare receive-only",
                         out["tus_upload"], "ratio_to_baseline", ">=", 0.3,
                         mb_per_s=out["tus_upload"]["mb_per_s"],
                         baseline_mb_per_s=out["tus_upload"]["baseline_mb_per_s"])
            out["resume"] = resume(server, token, work, bench, progress, quick)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def resume(server: Server, token: str, work: Path, bench: Bench, progress: Progress,
           quick: bool) -> dict[str, Any]:
    """Cut the connection in the middle of a chunk, resume, count what was sent twice."""
    size = 64 * MIB if quick else 256 * MIB
    source = Source(work / "resume.bin", size).make(7)
    host, port = server.base_url.removeprefix("http://").rsplit(":", 1)
    cut_at = size // 2 + CHUNK // 2  # half way through a chunk
    proxy = CuttingProxy((host, int(port)), cut_after=cut_at)
    via = f"http://127.0.0.1:{proxy.port}/v1/uploads"
    from tusclient import client as tus_client

    tus = tus_client.TusClient(via, headers={"Authorization": f"Bearer {token}"})
    first = tus.uploader(file_path=str(source.path), chunk_size=CHUNK, retries=0,
                         metadata={"filename": source.path.name})
    with contextlib.suppress(Exception):  # the cut: tuspy raises
        first.upload()
    if not proxy.cut.is_set():
        raise BenchError("the proxy never cut the connection")
    before = proxy.sent
    proxy.cut_after = None
    second = tus_upload(via, token, source, upload_url=first.url)
    proxy.close()
    sent = proxy.sent + cut_at - before  # bytes that reached the proxy, the cut chunk's too
    resent = max(0, sent - size)
    ok = second["asset_id"] == source.sha256
    bench.check("resume: the resumed upload's asset id = sha256 of the bytes", ok,
                {"asset_id": second["asset_id"], "sha256": source.sha256})
    result = {"bytes": size, "chunk_bytes": CHUNK, "cut_at_byte": cut_at,
              "bytes_sent_in_all": sent, "bytes_resent": resent,
              "chunks_resent": round(resent / CHUNK, 3)}
    progress(f"  resume after a cut at {cut_at} of {size} bytes: {resent} bytes sent again "
             f"({result['chunks_resent']} chunks)")
    bench.target("resume after a killed connection: chunks re-sent", result, "chunks_resent",
                 "<=", 1.0)
    return result

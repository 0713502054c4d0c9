"""The assets phase: big uploads and downloads through a real ``faceforge serve``.

Every figure stands beside a baseline measured in the same run (DESIGN §10): a multipart
upload beside the bare Starlette app's receive-only ``POST /upload`` on the same Hypercorn
(the same ``curl -F`` body), a download beside nginx serving the very same blob file with
sendfile, a ``Range`` request for the last MiB beside nginx answering it.  The server's RSS
is sampled every 50 ms through a 2 GiB upload and download, on the filesystem provider and
then on the S3 provider against a real moto server.  Every transfer is checked: the asset id
is the sha256 of the bytes sent, and a download (read again untimed) hashes to it.

The client is ``curl`` reading a file made once in a temporary folder: a real client, whose
CPU time is reported beside each figure (and the server's too).  It is never what limits
Core; it does limit nginx (one core busy receiving ~4 GB/s), so the nginx figure is a floor
of what nginx can serve, and the download ratio errs in Core's favour by that much.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import resource
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from tests.bench.load import CpuMeter, process_cpu_s, summarize
from tests.bench.server import BareServer, BenchError, Server, cli, rss_bytes

if TYPE_CHECKING:
    from tests.bench.document import Bench

MB = 1_000_000
MIB = 2**20
RSS_LIMIT_MB = 150
#: the Range benchmark's request: the last MiB of the blob
TAIL = f"bytes=-{MIB}"
NGINX_CONF = """\
daemon off;
master_process off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log off;
    sendfile on;
    default_type application/octet-stream;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {root};
    }}
}}
"""

Progress = Callable[[str], None]


# --- the files sent -------------------------------------------------------------------------
@dataclass
class Source:
    """A file of pseudo-random bytes on disk, and the sha256 it should be stored under."""

    path: Path
    size: int
    sha256: str = ""

    def make(self, seed: int) -> Source:
        """Write ``size`` bytes (1 MiB blocks, each distinct) and hash them."""
        block = bytearray(os.urandom(MIB))
        digest = hashlib.sha256()
        with open(self.path, "wb") as fh:
            for index in range(-(-self.size // MIB)):
                block[:16] = seed.to_bytes(8, "big") + index.to_bytes(8, "big")
                piece = memoryview(block)[:min(MIB, self.size - index * MIB)]
                fh.write(piece)
                digest.update(piece)
        self.sha256 = digest.hexdigest()
        return self

    def revise(self, nonce: int) -> None:
        """New first bytes, so the next upload is new bytes (not deduplicated)."""
        with open(self.path, "r+b") as fh:
            fh.write(b"revision" + nonce.to_bytes(8, "big"))
        self.sha256 = sha256_of(self.path)

    def tail(self, n: int) -> bytes:
        with open(self.path, "rb") as fh:
            fh.seek(max(0, self.size - n))
            return fh.read()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(4 * MIB):
            digest.update(chunk)
    return digest.hexdigest()


# --- measuring a transfer -------------------------------------------------------------------
class Watch:
    """Samples a process's RSS every ``interval`` s in a thread (``peak``: the largest) and
    counts the CPU it spends meanwhile (``cpu_s``)."""

    def __init__(self, pid: int | None, interval: float = 0.05) -> None:
        self.pid, self.interval = pid, interval
        self.peak = 0
        self.samples = 0
        self.cpu_s: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while True:
            rss = rss_bytes(self.pid) if self.pid else None
            if rss is not None:
                self.peak = max(self.peak, rss)
                self.samples += 1
            if self._stop.wait(self.interval):
                return

    def __enter__(self) -> Watch:
        self._cpu0 = process_cpu_s(self.pid)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        cpu = process_cpu_s(self.pid)
        if cpu is not None and self._cpu0 is not None:
            self.cpu_s = cpu - self._cpu0

    def add_to(self, result: dict[str, Any]) -> dict[str, Any]:
        """``result`` (a transfer) with the server's peak RSS and CPU cores during it."""
        result["server_peak_rss_mb"] = round(self.peak / MB, 1)
        result["rss_samples"] = self.samples
        if self.cpu_s is not None:
            result["server_cpu_cores"] = round(self.cpu_s / max(result["seconds"], 1e-9), 2)
        return result


def high_water_mark(pid: int | None, reset: bool = False) -> int | None:
    """The kernel's own peak RSS (VmHWM) of ``pid``; ``reset`` starts it again from now
    (``/proc/PID/clear_refs``; needs the rights to trace the process)."""
    if pid is None:
        return None
    try:
        if reset:
            Path(f"/proc/{pid}/clear_refs").write_text("5")
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def curl(*args: str, timeout: float = 1800) -> dict[str, Any]:
    """One ``curl`` transfer; its status, bytes, seconds (curl's ``time_total``) and the CPU
    curl itself spent (so a reader can tell the client was not the bottleneck)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(
        ["curl", "-sS", "-w", "%{http_code} %{size_upload} %{size_download} %{time_total}",
         *args], capture_output=True, text=True, timeout=timeout)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise BenchError(f"curl {' '.join(args[-1:])} failed ({done.returncode}): "
                         f"{done.stderr.strip()[-500:]}")
    code, up, down, seconds = done.stdout.split()[-4:]
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"status": int(code), "bytes_up": int(float(up)), "bytes_down": int(float(down)),
            "seconds": float(seconds), "client_cpu_s": round(cpu, 3)}


def label(size: int) -> str:
    """``1 GiB``, ``256 MiB``."""
    return f"{size / 2**30:g} GiB" if size >= 2**30 else f"{size / MIB:g} MiB"


def _rate(result: dict[str, Any], size: int) -> dict[str, Any]:
    seconds = max(result["seconds"], 1e-9)
    result["mb_per_s"] = round(size / MB / seconds, 1)
    result["client_cpu_cores"] = round(result["client_cpu_s"] / seconds, 2)
    return result


def upload(base_url: str, path: str, source: Source, token: str | None,
           response_file: Path) -> dict[str, Any]:
    """``curl -F file=@...``: the multipart body streamed from the file; the reply kept."""
    auth = ["-H", f"Authorization: Bearer {token}"] if token else []
    # no "Expect: 100-continue": curl would wait for the interim answer before sending
    result = curl("-H", "Expect:", *auth, "-F", f"file=@{source.path};type=application/"
                  "octet-stream", "-o", str(response_file), base_url + path)
    result = _rate(result, source.size)
    try:
        result["reply"] = json.loads(response_file.read_text("utf-8"))
    except (OSError, ValueError):
        result["reply"] = None
    return result


def download(url: str, size: int, token: str | None = None,
             sign: tuple[str, ...] = ()) -> dict[str, Any]:
    auth = ["-H", f"Authorization: Bearer {token}"] if token else list(sign)
    result = _rate(curl(*auth, "-o", os.devnull, url), size)
    if result["status"] != 200 or result["bytes_down"] != size:
        raise BenchError(f"GET {url} -> {result['status']}, {result['bytes_down']} bytes "
                         f"(expected 200, {size} bytes)")
    return result


def downloaded_sha256(url: str, token: str) -> tuple[int, str]:
    """Bytes and sha256 of a download, read again untimed (the timed one is discarded)."""
    digest = hashlib.sha256()
    size = 0
    with httpx.stream("GET", url, headers={"Authorization": f"Bearer {token}"},
                      timeout=600) as response:
        if response.status_code != 200:
            raise BenchError(f"GET {url} -> {response.status_code}")
        for chunk in response.iter_raw(MIB):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


# --- nginx ------------------------------------------------------------------------------------
def nginx_binary() -> str:
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)),
        None)
    if not found:
        raise BenchError("the assets benchmark needs nginx (Debian: apt-get install "
                         "nginx-light; `nox -s bench` installs it when run as root)")
    return found


@contextlib.contextmanager
def nginx(root: Path, work: Path) -> Iterator[tuple[str, int]]:
    """nginx in the foreground (one process, sendfile) serving ``root``; yields its URL
    and process id."""
    from kernel.server import reserve_port

    work.mkdir(parents=True, exist_ok=True)
    port = reserve_port("127.0.0.1", 0)
    conf = work / "nginx.conf"
    conf.write_text(NGINX_CONF.format(dir=work, port=port, root=root), "utf-8")
    log = work / "error.log"
    proc = subprocess.Popen([nginx_binary(), "-p", str(work), "-c", str(conf), "-e", str(log)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            if proc.poll() is not None:
                raise BenchError(f"nginx exited with {proc.returncode}: "
                                 f"{log.read_text(errors='replace')[-1000:]}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(url + "/", timeout=1).status_code:
                    break
            if time.monotonic() > deadline:
                raise BenchError("nginx did not answer within 20 s")
            time.sleep(0.02)
        yield url, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --- the phase --------------------------------------------------------------------------------
def versus(label: str, rounds: int, figure: Callable[[int], dict[str, Any]],
           baseline: Callable[[int], dict[str, Any]], progress: Progress) -> dict[str, Any]:
    """``rounds`` transfers, each between two of the baseline's; round i's ratio is its MB/s
    over the mean of the baseline runs just before and after it (the machine's speed drifts).
    Reported: the round with the median ratio, its baseline figure, and every round."""
    base = [baseline(0)]
    runs = []
    for i in range(1, rounds + 1):
        runs.append(figure(i))
        base.append(baseline(i))
        progress(f"  {label} [round {i}/{rounds}]: {runs[-1]['mb_per_s']} MB/s (client CPU "
                 f"{runs[-1]['client_cpu_cores']} cores); baseline {base[-2]['mb_per_s']} / "
                 f"{base[-1]['mb_per_s']} MB/s")
    brackets = [(base[i]["mb_per_s"] + base[i + 1]["mb_per_s"]) / 2 for i in range(rounds)]
    ratios = [r["mb_per_s"] / b for r, b in zip(runs, brackets, strict=True)]
    mid = sorted(range(rounds), key=lambda i: ratios[i])[rounds // 2]
    result = {k: v for k, v in runs[mid].items() if k != "reply"}
    result |= {"baseline_mb_per_s": round(brackets[mid], 1),
               "ratio_to_baseline": round(ratios[mid], 3),
               "rounds_mb_per_s": [r["mb_per_s"] for r in runs],
               "rounds_baseline_mb_per_s": [round(b, 1) for b in brackets],
               "rounds_ratio_to_baseline": [round(x, 3) for x in ratios],
               "baseline_runs_mb_per_s": [b["mb_per_s"] for b in base],
               "baseline_client_cpu_cores": [b["client_cpu_cores"] for b in base]}
    progress(f"  => {label}: {result['mb_per_s']} MB/s = {result['ratio_to_baseline']} x "
             f"baseline {result['baseline_mb_per_s']} MB/s")
    return result


def range_latency(url: str, n: int, expect: bytes, token: str | None,
                  pid: int | None) -> dict[str, Any]:
    """``n`` sequential ``Range: bytes=-1048576`` requests on one keep-alive connection.

    The client is one ``curl`` given the URL ``n`` times (it reuses the connection and
    reports each transfer's ``time_total``): a Python client would add ~2 ms of its own to
    read a MiB, more than the server's share.
    """
    auth = ("-H", f"Authorization: Bearer {token}") if token else ()
    probe = subprocess.run(["curl", "-sS", "--fail", "-H", f"Range: {TAIL}", *auth, url],
                           capture_output=True, timeout=60)
    if probe.returncode != 0 or probe.stdout != expect:
        raise BenchError(f"GET {url} with Range {TAIL}: not the file's last MiB "
                         f"({probe.returncode}, {len(probe.stdout)} bytes)")
    warm = max(1, n // 10)  # the first opens the connection
    config = "".join(f'url = "{url}"\noutput = "{os.devnull}"\n' for _ in range(warm + n))
    meter = CpuMeter(pid).start()
    start = time.perf_counter()
    done = subprocess.run(
        ["curl", "-sS", "-H", f"Range: {TAIL}", *auth, "-w",
         "%{http_code} %{size_download} %{num_connects} %{time_total}\n", "-K", "-"],
        input=config.encode(), capture_output=True, timeout=600)
    wall = time.perf_counter() - start
    cpu = meter.stop(warm + n, wall)
    lines = [line.split() for line in done.stdout.decode().splitlines()]
    if done.returncode != 0 or len(lines) != warm + n or any(
            (code, size) != ("206", str(MIB)) for code, size, _, _ in lines):
        raise BenchError(f"{n} x GET {url} with Range {TAIL} failed ({done.returncode}): "
                         f"{done.stderr.decode()[-500:]} {lines[:3]}")
    result = summarize([float(t) for *_, t in lines[warm:]], wall)
    result["connections_opened"] = sum(int(c) for _, _, c, _ in lines)
    result["untimed_first_requests"] = warm
    result["server_cpu_ms_per_req"] = cpu.get("server_cpu_ms_per_req")
    return result


def write_s3_config(home: Path, endpoint_url: str, access_key: str, secret_key: str) -> None:
    (home / "config").mkdir(parents=True, exist_ok=True)
    config = {"storage": {"s3": {"enabled": True, "endpoint_url": endpoint_url,
                                 "access_key": access_key, "secret_key": secret_key,
                                 "bucket": "faceforge-bench"},
                          "routing": {"default_provider": "s3"}}}
    (home / "config" / "core.json").write_text(json.dumps(config, indent=2), "utf-8")


class AssetsPhase:
    """One run of the phase: its sources, servers and results."""

    def __init__(self, work: Path, bench: Bench, progress: Progress, *, size: int,
                 big_size: int, rounds: int, range_requests: int) -> None:
        self.work, self.bench, self.progress = work, bench, progress
        self.rounds, self.range_requests = rounds, range_requests
        self.one = Source(work / "one.bin", size)
        self.big = Source(work / "big.bin", big_size)
        self.reply = work / "reply.json"

    def quiet(self) -> None:
        self.bench.quiet()

    def check_upload(self, what: str, result: dict[str, Any], source: Source,
                     provider: str) -> None:
        reply = result.get("reply") or {}
        ok = (result["status"] == 201 and reply.get("asset_id") == source.sha256
              and reply.get("size") == source.size and reply.get("provider") == provider)
        self.bench.check(f"{what}: 201, asset id = sha256 of the bytes, size, provider "
                         f"{provider!r}", ok, {"status": result["status"],
                                               "asset_id": reply.get("asset_id"),
                                               "sha256": source.sha256,
                                               "provider": reply.get("provider"),
                                               "error": reply.get("error")})
        if result["status"] not in (200, 201):
            raise BenchError(f"{what} -> {result['status']}: {reply}")

    def check_download(self, what: str, url: str, token: str, source: Source) -> None:
        size, sha = downloaded_sha256(url, token)
        self.bench.check(f"{what}: the downloaded bytes hash to the asset id",
                         size == source.size and sha == source.sha256,
                         {"bytes": size, "sha256": sha, "expected": source.sha256})

    def transfers(self, server: Server, token: str, source: Source,
                  provider: str) -> dict[str, Any]:
        """Upload then download ``source`` with the server's RSS sampled; both checked."""
        pid = server.pid
        self.quiet()
        idle = server.rss()
        hwm_reset = high_water_mark(pid, reset=True) is not None
        with Watch(pid) as up_watch:
            up = upload(server.base_url, "/v1/assets/upload", source, token, self.reply)
        up_watch.add_to(up)
        self.check_upload(f"{label(source.size)} upload ({provider})", up, source, provider)
        self.quiet()
        url = f"{server.base_url}/v1/assets/{source.sha256}/download"
        with Watch(pid) as down_watch:
            down = download(url, source.size, token)
        down_watch.add_to(down)
        hwm = high_water_mark(pid)
        self.check_download(f"{label(source.size)} download ({provider})", url, token,
                            source)
        peak = max(up_watch.peak, down_watch.peak)
        self.progress(f"  {label(source.size)} via {provider}: upload {up['mb_per_s']} MB/s, "
                      f"download {down['mb_per_s']} MB/s, peak RSS {peak / MB:.1f} MB "
                      f"(idle {(idle or 0) / MB:.1f} MB)")
        up.pop("reply", None)
        return {"bytes": source.size,
                "upload": up,
                "download": down,
                "idle_rss_mb": round((idle or 0) / MB, 1),
                "peak_rss_mb": round(peak / MB, 1),
                "vm_hwm_mb": round(hwm / MB, 1) if hwm and hwm_reset else None}

    def fs(self, out: dict[str, Any]) -> None:
        """Upload, download and Range figures, then the RSS bound, on the filesystem."""
        home = self.work / "fs-home"
        token = cli(home, "token")
        one = self.one
        with BareServer(self.work / "bare") as bare, Server(home) as server:
            bare.start()
            server.start()
            out["idle_rss_mb"] = round((server.rss() or 0) / MB, 1)

            def ours(i: int) -> dict[str, Any]:
                if i > 1:  # new bytes each round: a fresh blob, never a deduplicated one
                    one.revise(i)
                self.quiet()
                with Watch(server.pid) as watch:
                    result = upload(server.base_url, "/v1/assets/upload", one, token,
                                    self.reply)
                self.check_upload(f"upload round {i}", result, one, "fs")
                return watch.add_to(result)

            def bare_upload(i: int) -> dict[str, Any]:
                self.quiet()
                with Watch(bare.pid) as watch:
                    result = upload(bare.base_url, "/upload", one, None, self.reply)
                watch.add_to(result)
                got = (result.get("reply") or {}).get("bytes")
                if result["status"] != 200 or got != result["bytes_up"]:
                    raise BenchError(f"bare upload -> {result['status']}, {got} bytes of "
                                     f"{result['bytes_up']}")
                return result

            self.progress(f"upload {label(one.size)}: faceforge vs the bare app's "
                          f"receive-only endpoint, {self.rounds} round(s)")
            out["upload"] = versus("upload", self.rounds, ours, bare_upload, self.progress)
            self.bench.target(f"upload {label(one.size)} vs bare receive-only",
                              out["upload"], "ratio_to_baseline", ">=", 0.4,
                              mb_per_s=out["upload"]["mb_per_s"],
                              baseline_mb_per_s=out["upload"]["baseline_mb_per_s"])

            url = f"{server.base_url}/v1/assets/{one.sha256}/download"
            self.check_download(f"{label(one.size)} download", url, token, one)
            blob = home / "assets" / one.sha256[:2] / one.sha256[2:4] / one.sha256
            if not blob.is_file():
                raise BenchError(f"the uploaded blob is not at {blob}")
            with nginx(blob.parent, self.work / "nginx") as (nginx_url, nginx_pid):
                def ours_down(i: int) -> dict[str, Any]:
                    self.quiet()
                    with Watch(server.pid) as watch:
                        result = download(url, one.size, token)
                    return watch.add_to(result)

                def nginx_down(i: int) -> dict[str, Any]:
                    self.quiet()
                    with Watch(nginx_pid) as watch:
                        result = download(f"{nginx_url}/{one.sha256}", one.size)
                    return watch.add_to(result)

                self.progress(f"download {label(one.size)}: faceforge vs nginx sendfile "
                              f"(the same blob file), {self.rounds} round(s)")
                out["download"] = versus("download", self.rounds, ours_down, nginx_down,
                                         self.progress)
                self.bench.target(f"download {label(one.size)} vs nginx sendfile",
                                  out["download"], "ratio_to_baseline", ">=", 0.5,
                                  mb_per_s=out["download"]["mb_per_s"],
                                  baseline_mb_per_s=out["download"]["baseline_mb_per_s"])

                self.progress(f"Range {TAIL} x{self.range_requests}: faceforge, then nginx")
                tail = one.tail(MIB)
                self.quiet()
                ranged = range_latency(url, self.range_requests, tail, token, server.pid)
                self.quiet()
                ranged_nginx = range_latency(f"{nginx_url}/{one.sha256}", self.range_requests,
                                             tail, None, None)
            self.bench.check("the Range requests reused one connection each",
                             ranged["connections_opened"] == ranged_nginx[
                                 "connections_opened"] == 1,
                             [ranged["connections_opened"], ranged_nginx["connections_opened"]])
            ranged["baseline_nginx_p50_ms"] = ranged_nginx["p50_ms"]
            ranged["baseline_nginx_p95_ms"] = ranged_nginx["p95_ms"]
            out["range_last_mib"] = ranged
            self.progress(f"  => Range: p50 {ranged['p50_ms']} ms, p95 {ranged['p95_ms']} ms "
                          f"(nginx p50 {ranged_nginx['p50_ms']} ms, p95 "
                          f"{ranged_nginx['p95_ms']} ms)")
            self.bench.target(f"Range last MiB of {label(one.size)}: p50", ranged, "p50_ms",
                              "<=", 3.0, p95_ms=ranged["p95_ms"],
                              baseline_nginx_p50_ms=ranged_nginx["p50_ms"])

            self.progress(f"{label(self.big.size)} upload + download, RSS sampled (fs)")
            out["big"] = self.transfers(server, token, self.big, "fs")
            self.bench.target(f"server peak RSS, {label(self.big.size)} upload + download "
                              f"(fs)", out["big"], "peak_rss_mb", "<=", RSS_LIMIT_MB,
                              vm_hwm_mb=out["big"]["vm_hwm_mb"])

    def s3(self, out: dict[str, Any]) -> None:
        """The RSS bound again, and MB/s, with S3 (moto) as the default provider."""
        big = self.big
        what = f"{label(big.size)} upload + download through S3 (moto)"
        missing = [m for m in ("providers.s3", "aiobotocore", "tests.s3servers", "moto.server")
                   if importlib.util.find_spec(m) is None]
        if missing:  # written by others; the rest of the phase runs without it
            self.progress(f"{what}: skipped ({', '.join(missing)} not available)")
            out |= {"skipped": f"not available: {', '.join(missing)}", "peak_rss_mb": None}
            self.bench.target(f"server peak RSS, {what}", out, "peak_rss_mb", "<=",
                              RSS_LIMIT_MB)
            return
        from tests.s3servers import moto_server

        self.progress(f"{what}: starting moto")
        with moto_server() as s3:
            home = self.work / "s3-home"
            write_s3_config(home, s3.endpoint_url, s3.access_key, s3.secret_key)
            token = cli(home, "token")
            with Server(home) as server:
                server.start()
                out |= self.transfers(server, token, big, "s3")
            # the baseline: moto itself, the same file PUT and GET straight with curl
            bucket = f"{s3.endpoint_url}/faceforge-bench-direct"
            sign = ("--aws-sigv4", f"aws:amz:{s3.region}:s3", "--user",
                    f"{s3.access_key}:{s3.secret_key}")
            made = curl(*sign, "-X", "PUT", "-o", os.devnull, bucket)
            self.quiet()
            put = _rate(curl(*sign, "-H", "Expect:", "-T", str(big.path), "-o", os.devnull,
                             bucket + "/blob"), big.size)
            if made["status"] != 200 or put["status"] != 200:
                raise BenchError(f"moto: PUT bucket -> {made['status']}, PUT object -> "
                                 f"{put['status']}")
            self.quiet()
            get = download(bucket + "/blob", big.size, sign=sign)
        out["baseline_moto_direct"] = {"put_mb_per_s": put["mb_per_s"],
                                       "get_mb_per_s": get["mb_per_s"],
                                       "note": "curl PUT/GET of the same file straight to "
                                               "moto: the S3 server's own ceiling"}
        out["upload"]["ratio_to_moto_direct"] = round(
            out["upload"]["mb_per_s"] / put["mb_per_s"], 3)
        out["download"]["ratio_to_moto_direct"] = round(
            out["download"]["mb_per_s"] / get["mb_per_s"], 3)
        self.bench.target(f"server peak RSS, {what}", out, "peak_rss_mb", "<=",
                          RSS_LIMIT_MB, vm_hwm_mb=out["vm_hwm_mb"])

    def run(self, out: dict[str, Any]) -> None:
        """Fill ``out`` as results come (a failure keeps what was measured)."""
        need = self.one.size * (self.rounds + 2) + self.big.size * 6 + 2**30
        free = shutil.disk_usage(self.work).free
        if free < need:
            raise BenchError(f"the assets benchmark needs {need / 2**30:.1f} GiB free in "
                             f"{self.work}; {free / 2**30:.1f} GiB are")
        nginx_binary()
        if not shutil.which("curl"):
            raise BenchError("the assets benchmark needs curl")
        self.progress(f"making {label(self.one.size)} and {label(self.big.size)} files")
        self.one.make(seed=1)
        self.big.make(seed=2)
        out |= {"file_bytes": self.one.size, "big_file_bytes": self.big.size}
        out["method"] = (
            f"real faceforge serve on loopback; client: curl (-F file=@ for uploads, "
            f"'Expect:' off; -o /dev/null for downloads). MB = 10^6 bytes; MB/s = file bytes "
            f"/ curl's time_total. upload/download: {self.rounds} round(s), each judged "
            f"against the mean of the baseline runs right before and after it (bare Starlette "
            f"POST /upload on the same Hypercorn, reading the same multipart body and dropping "
            f"it; nginx sendfile serving the very same blob file); the round with the median "
            f"ratio is reported. Every upload round sends new bytes (a fresh blob). Range: "
            f"{self.range_requests} sequential requests by one curl on one keep-alive "
            f"connection (latency = curl's time_total) after "
            f"{max(1, self.range_requests // 10)} untimed; nginx answering the same request "
            f"as baseline. client_cpu_cores / server_cpu_cores: CPU over the transfer's wall "
            f"time (curl; the server process, all threads); at nginx's rate curl keeps one "
            f"core busy, so that baseline is a floor. RSS: VmRSS of the server process "
            f"sampled every 50 ms (peak_rss_mb), and the kernel's VmHWM reset before the "
            f"transfers (vm_hwm_mb). S3: a second home with S3 (moto) as default provider, "
            f"Core's process only; baseline_moto_direct = curl PUT/GET of the same file "
            f"straight to moto. Each transfer checked: asset id = sha256 of the bytes sent; a "
            f"second, untimed download hashes to it.")
        self.fs(out.setdefault("fs", {}))
        self.s3(out.setdefault("s3", {}))


def bench_assets(root: Path, bench: Bench, progress: Progress, *, quick: bool,
                 keep: bool = False) -> None:
    """The phase, into ``bench.doc["assets"]``: 1 GiB (``quick``: 256 MiB) figures, 2 GiB
    (512 MiB) for the RSS bound."""
    work = Path(tempfile.mkdtemp(prefix="assets-", dir=root))
    phase = AssetsPhase(work, bench, progress,
                        size=256 * MIB if quick else 2**30,
                        big_size=512 * MIB if quick else 2 * 2**30,
                        rounds=1 if quick else 3, range_requests=200)
    try:
        phase.run(bench.doc.setdefault("assets", {}))
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
        else:  # the sources are big and made again in seconds
            for source in (phase.one, phase.big):
                source.path.unlink(missing_ok=True)

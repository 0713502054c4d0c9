"""Real S3 servers for tests (DESIGN §10): moto's server, and a one-node Ceph RGW.

Each is a context manager that starts the server on a free 127.0.0.1 port, waits until it
answers S3 requests, yields an :class:`S3Server`, and stops and removes everything on exit.
Start-up is bounded: past the deadline the error carries the tail of the server's logs.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MOTO_START_SECONDS = 30
#: the cluster answers after ~1 s here (see ``paxos propose interval``); ample room for CI
CEPH_START_SECONDS = 120
CEPH_ACCESS_KEY = "FACEFORGETESTKEY0000"
CEPH_SECRET_KEY = "faceforge-test-secret-0000000000000000000"


@dataclass(frozen=True, kw_only=True)
class S3Server:
    name: str
    endpoint_url: str
    access_key: str
    secret_key: str
    region: str = "us-east-1"

    def storage_s3(self, bucket: str) -> dict[str, Any]:
        """The ``storage.s3`` section of ``core.json`` for storing in ``bucket`` here."""
        return {"enabled": True, "bucket": bucket, "region": self.region,
                "endpoint_url": self.endpoint_url, "access_key": self.access_key,
                "secret_key": self.secret_key}


class ServerStartError(RuntimeError):
    """A test S3 server did not come up; the message ends with its log tail."""


def free_port() -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def answers_http(url: str) -> bool:
    """True once anything answers HTTP at ``url`` (an S3 error status counts)."""
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


def last_lines(text: str, lines: int = 40) -> str:
    return "\n".join(text.splitlines()[-lines:])


def tail(*paths: Path, lines: int = 40) -> str:
    parts = []
    for path in paths:
        with contextlib.suppress(OSError):
            text = last_lines(path.read_text(errors="replace"), lines)
            parts.append(f"--- {path} ---\n{text}")
    return "\n".join(parts) or "(no logs)"


def wait_until(ready: Callable[[], bool], *, seconds: float, what: str,
               procs: list[subprocess.Popen[bytes]], logs: Callable[[], str]) -> None:
    """Poll ``ready`` until it holds; fail early if a process died, or at the deadline."""
    deadline = time.monotonic() + seconds
    while not ready():
        dead = [p for p in procs if p.poll() is not None]
        if dead:
            args = dead[0].args
            name = args[0] if isinstance(args, list) else args
            raise ServerStartError(f"{what}: {name!s} exited with status "
                                   f"{dead[0].returncode}\n{logs()}")
        if time.monotonic() > deadline:
            raise ServerStartError(f"{what}: not ready after {seconds:.0f} s\n{logs()}")
        time.sleep(0.1)


def stop(proc: subprocess.Popen[bytes], *, grace: float = 10) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --- moto ----------------------------------------------------------------------------------

@contextlib.contextmanager
def moto_server() -> Iterator[S3Server]:
    """moto's standalone server (any keys are accepted)."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="faceforge-moto-") as tmp:
        log = Path(tmp) / "moto.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until(lambda: answers_http(url), seconds=MOTO_START_SECONDS,
                       what="moto server", procs=[proc], logs=lambda: tail(log))
            yield S3Server(name="moto", endpoint_url=url, access_key="testing",
                           secret_key="testing")
        finally:
            stop(proc)


# --- Ceph RGW ------------------------------------------------------------------------------

CEPH_CONF = """\
[global]
fsid = {fsid}
mon host = {mon_addr}
mon initial members = a
auth cluster required = none
auth service required = none
auth client required = none
# with auth off, clients must not ask for "secure" mode or they hang (DESIGN §10)
ms mon client mode = crc
ms client mode = crc
ms bind msgr1 = false
ms bind ipv6 = false
public addr = 127.0.0.1
run dir = {dir}/run
admin socket = {dir}/run/$name.asok
pid file = {dir}/run/$name.pid
log file = {dir}/log/$name.log
log to stderr = false
mon data = {dir}/mon/$name
osd data = {dir}/osd/$name
# one OSD in memory: nothing to format, nothing left on disk
osd objectstore = memstore
memstore device bytes = {memstore_bytes}
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon warn on pool no redundancy = false
mon max pg per osd = 1000
# a single monitor need not batch map updates: with the default (one commit a second)
# radosgw's start, creating its pools one after the other, takes ~12 s instead of ~1 s
paxos propose interval = 0.01
paxos min wait = 0.001
# the test machine's disk may be fuller than a production mon would accept
mon data avail crit = 0
mon data avail warn = 0

[client.rgw]
rgw frontends = beast endpoint=127.0.0.1:{rgw_port}
"""

class CephCluster:
    """A one-node cluster in ``dir``: a monitor, a memstore OSD and radosgw."""

    def __init__(self, root: Path, *, memstore_bytes: int = 4 << 30) -> None:
        self.dir = root
        self.conf = root / "ceph.conf"
        self.rgw_port = free_port()
        self.fsid = str(uuid.uuid4())
        self.mon_addr = f"v2:127.0.0.1:{free_port()}"
        self.procs: list[subprocess.Popen[bytes]] = []
        for sub in ("run", "log", "mon", "osd"):
            (root / sub).mkdir()
        self.conf.write_text(CEPH_CONF.format(
            fsid=self.fsid, mon_addr=self.mon_addr, dir=root, rgw_port=self.rgw_port,
            memstore_bytes=memstore_bytes))

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.rgw_port}"

    def logs(self) -> str:
        return tail(*sorted((self.dir / "log").glob("*.log")),
                    *sorted(self.dir.glob("*.out")))

    def run(self, *args: str, timeout: float = 60) -> str:
        """A one-shot Ceph tool against this cluster; its output, or an error with logs."""
        cmd = [args[0], "-c", str(self.conf), *args[1:]]
        try:
            done = subprocess.run(cmd, capture_output=True, timeout=timeout,
                                  stdin=subprocess.DEVNULL, check=False)
        except subprocess.TimeoutExpired as exc:
            raise ServerStartError(f"{' '.join(cmd)} hung for {timeout:.0f} s\n"
                                   f"{self.logs()}") from exc
        if done.returncode:
            raise ServerStartError(
                f"{' '.join(cmd)} failed ({done.returncode}): "
                f"{last_lines(done.stderr.decode(errors='replace'))}\n{self.logs()}")
        return done.stdout.decode()

    def daemon(self, name: str, *args: str) -> None:
        """A daemon kept in the foreground (``-f``) so that it is ours to stop."""
        with (self.dir / f"{name}.out").open("wb") as out:
            self.procs.append(subprocess.Popen(
                [name, "-f", "-c", str(self.conf), *args],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))

    def start(self) -> None:
        deadline = time.monotonic() + CEPH_START_SECONDS
        self.run("monmaptool", "--create", "--fsid", self.fsid, "--addv", "a",
                 f"[{self.mon_addr}]", str(self.dir / "monmap"))
        self.run("ceph-mon", "--mkfs", "-i", "a", "--monmap", str(self.dir / "monmap"))
        self.daemon("ceph-mon", "-i", "a")
        osd_uuid = str(uuid.uuid4())
        osd_id = self.run("ceph", "osd", "new", osd_uuid).strip()
        (self.dir / "osd" / f"osd.{osd_id}").mkdir()
        self.run("ceph-osd", "--mkfs", "-i", osd_id, "--osd-uuid", osd_uuid)
        self.daemon("ceph-osd", "-i", osd_id)
        # radosgw's first writes, sent before the OSD is up, are only resent at the client's
        # next 5 s tick: start it once the OSD is up
        wait_until(self.osd_up, seconds=max(deadline - time.monotonic(), 1),
                   what="Ceph OSD", procs=self.procs, logs=self.logs)
        self.daemon("radosgw", "-n", "client.rgw")
        wait_until(lambda: answers_http(self.endpoint_url),
                   seconds=max(deadline - time.monotonic(), 1), what="Ceph radosgw",
                   procs=self.procs, logs=self.logs)
        self.run("radosgw-admin", "user", "create", "--uid", "faceforge",
                 "--display-name", "FaceForge tests", "--access-key", CEPH_ACCESS_KEY,
                 "--secret-key", CEPH_SECRET_KEY)

    def osd_up(self) -> bool:
        return bool(json.loads(self.run("ceph", "osd", "stat", "-f", "json"))["num_up_osds"])

    def stop(self) -> None:
        # SIGKILL: the cluster is thrown away, and on SIGTERM a memstore OSD first writes
        # everything it holds to disk
        for proc in self.procs:
            proc.kill()
            proc.wait()


def ceph_available() -> bool:
    return all(shutil.which(tool) for tool in ("radosgw", "ceph-mon", "ceph-osd"))


@contextlib.contextmanager
def ceph_server() -> Iterator[S3Server]:
    """A throwaway one-node Ceph cluster serving S3 through radosgw."""
    if not ceph_available():
        raise ServerStartError("Ceph is not installed: radosgw, ceph-mon and ceph-osd are "
                               "needed (Debian: apt-get install ceph-mon ceph-osd radosgw)")
    # short path: Unix admin sockets live under it (108-byte limit)
    root = Path(tempfile.mkdtemp(prefix="ff-ceph-"))
    cluster = CephCluster(root)
    try:
        cluster.start()
        yield S3Server(name="ceph", endpoint_url=cluster.endpoint_url,
                       access_key=CEPH_ACCESS_KEY, secret_key=CEPH_SECRET_KEY)
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


SERVERS: dict[str, Callable[[], contextlib.AbstractContextManager[S3Server]]] = {
    "moto": moto_server,
    "ceph": ceph_server,
}


if __name__ == "__main__":
    # manual check: python -m tests.s3servers ceph
    with SERVERS[sys.argv[1] if len(sys.argv) > 1 else "moto"]() as server:
        print(server)

"""A real ``faceforge serve`` killed (SIGKILL) in the middle of a bulk import of thousands
of files, then started again on the same home: the job is recovered (queued again, with a
log line saying why) and succeeds; no asset twice, no blob without its row, nothing left
in ``tmp/``, and SQLite's integrity check passes."""

from __future__ import annotations

import ctypes
import os
import signal
import sqlite3
import subprocess
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from kernel.config import load_settings
from tests.kernel.test_serve_e2e import (
    clean_env,
    healthy,
    ports_json_port,
    serve_command,
    wait_for,
)
from tests.plugins_builtin.assets.folders import (
    all_assets,
    get_job,
    job_log,
    many_files,
    poll,
    shas,
    start_import,
    wait_for_job,
)

pytestmark = pytest.mark.e2e

FILES = 4000
FILE_BYTES = 4096
#: Linux capabilities that let root read past file permissions
CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH = 1, 2
PR_CAPBSET_DROP = 24


def _drop_dac_capabilities() -> None:
    """In the child before exec: without these, even root obeys file permissions (the
    bounding set caps what the exec'd program may hold)."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


@dataclass
class Served:
    process: subprocess.Popen[str]
    client: httpx.AsyncClient


def _start(home: Path, obey_permissions: bool) -> subprocess.Popen[str]:
    (home / "config" / "ports.json").unlink(missing_ok=True)
    env = clean_env()
    # their work per asset (ExifTool on every file) is not what these tests measure
    env["FACEFORGE_DISABLE_PLUGINS"] = "thumbnails,metadata_extract"
    preexec: Callable[[], None] | None = (
        _drop_dac_capabilities if obey_permissions and os.geteuid() == 0 else None)
    return subprocess.Popen(serve_command(home, "--port", "0"), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            preexec_fn=preexec)


@asynccontextmanager
async def serve(home: Path, *, obey_permissions: bool = False,
                kill: bool = False) -> AsyncIterator[Served]:
    """A Core process on ``home``; stopped with SIGTERM at the end (or SIGKILL if ``kill``,
    or if the test already killed it).  ``obey_permissions``: even as root, it cannot read
    what file permissions forbid (as a Core run by a user would)."""
    token = load_settings(home, env={}).install_token
    process = _start(home, obey_permissions)
    try:
        base = f"http://127.0.0.1:{ports_json_port(process, home)}"
        wait_for(process, healthy(base), "/healthz 200")
        async with httpx.AsyncClient(base_url=base, timeout=20, trust_env=False,
                                     headers={"Authorization": f"Bearer {token}"}) as client:
            yield Served(process, client)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        code = process.wait(timeout=30)
        _, err = process.communicate()
        if not kill and code != -signal.SIGKILL:
            assert code == 0, err
            assert "Traceback" not in err, err


async def test_a_crash_mid_import_is_recovered_without_duplicates(home: Path,
                                                                 tmp_path: Path):
    files = many_files(tmp_path / "src", FILES, size=FILE_BYTES)
    load_settings(home, env={})  # writes the home's config with its token

    async with serve(home, kill=True) as core:
        job_id = (await start_import(core.client, tmp_path / "src"))["job_id"]

        async def some_done() -> dict | None:
            job = await get_job(core.client, job_id)
            assert job["status"] in ("queued", "running"), job  # not over before the kill
            return job if job["progress"].get("counters", {}).get("files", 0) > 0 else None

        await poll(some_done, what="the first files to be imported")
        core.process.send_signal(signal.SIGKILL)
        assert core.process.wait(timeout=10) == -signal.SIGKILL

    settings = load_settings(home, env={})
    with sqlite3.connect(settings.paths.db_file) as db:
        status, = db.execute("SELECT status FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
    assert status == "running"  # as the crash left it

    async with serve(home) as core:
        job = await wait_for_job(core.client, job_id)
        assert job["status"] == "succeeded", job
        assert job["attempts"] == 2
        log = [line["message"] for line in await job_log(core.client, job_id)]
        recovered = [m for m in log if "Core stopped or crashed" in m]
        assert len(recovered) == 1 and "queued again" in recovered[0], log
        result = job["result"]
        assert result["files"] == FILES and result["failed"] == 0
        # the first run's batches were recorded with their assets: skipped, not re-read
        assert result["unchanged"] > 0 and result["imported"] > 0  # killed mid-way
        assert result["unchanged"] + result["imported"] == FILES
        assert result["deduplicated"] == 0

        ids = [a["asset_id"] for a in await all_assets(core.client)]
        assert len(ids) == len(set(ids)) == FILES  # no asset twice
        assert set(ids) == shas(files)

    # Core is stopped: look at what it left on disk
    with sqlite3.connect(settings.paths.db_file) as db:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        rows = {r[0] for r in db.execute("SELECT asset_id FROM assets")}
        (duplicates,) = db.execute("SELECT count(*) - count(DISTINCT asset_id) FROM assets"
                                   ).fetchone()
    assert duplicates == 0
    assert rows == shas(files)
    blobs = {p.name for p in settings.paths.assets_dir.rglob("*") if p.is_file()}
    assert blobs == rows  # every blob has its row, every row its blob
    assert list(settings.paths.tmp_dir.iterdir()) == []  # no staged file or batch folder


def test_the_capability_drop_makes_root_obey_permissions(tmp_path: Path) -> None:
    """The premise of the unreadable-file tests run as root."""
    secret = tmp_path / "secret"
    secret.write_text("x")
    secret.chmod(0)
    try:
        read = subprocess.run(["cat", str(secret)], capture_output=True,
                              preexec_fn=_drop_dac_capabilities if os.geteuid() == 0 else None)
    finally:
        secret.chmod(0o600)
    assert read.returncode != 0 and b"Permission denied" in read.stderr

"""Bulk import test helpers: folders of real files to import (with sidecars, links, many
distinct files), and following the import's job through the API as a user does —
``POST /v1/assets/bulk-import``, then ``GET /v1/jobs/{id}`` and its log."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import httpx

from tests.kernel.conftest import eventually

BULK_IMPORT = "/v1/assets/bulk-import"
FINAL = frozenset({"succeeded", "failed", "cancelled"})
#: the bound on waiting for an import (the biggest in-process one has 5,000 files)
JOB_SECONDS = 60.0


# -- folders -----------------------------------------------------------------------------

def content(label: str, size: int = 64) -> bytes:
    """``size`` bytes that differ for every ``label`` (a hash of it first, then its text)."""
    unit = hashlib.sha256(label.encode()).digest() + f" {label}\n".encode()
    return (unit * (size // len(unit) + 1))[:size]


def write_tree(root: Path, files: Mapping[str, bytes | str]) -> dict[str, bytes]:
    """Write ``{relative path: bytes or text}`` under ``root`` (folders made as needed);
    returns the files as bytes."""
    written = {}
    for relpath, data in files.items():
        raw = data.encode() if isinstance(data, str) else data
        path = root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(raw)
        written[relpath] = raw
    return written


def write_sidecar(path: Path, value: Any) -> Path:
    """A ``_meta.json`` sidecar holding ``value`` as JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value), "utf-8")
    return path


def sidecar_folder(root: Path, files: int, *, salt: str = "") -> Path:
    """``files`` small text files of distinct content in four sub-folders, every third with
    a ``_meta.json`` sidecar; a ``salt`` keeps them new to a server shared between tests."""
    tree: dict[str, bytes | str] = {}
    for n in range(files):
        tree[f"part{n % 4}/file{n}.txt"] = f"{salt} file {n}\n"
        if n % 3 == 0:
            tree[f"part{n % 4}/file{n}.txt_meta.json"] = json.dumps({"n": n})
    write_tree(root, tree)
    return root


def many_files(root: Path, count: int, *, size: int = 64, per_folder: int = 250,
               label: str = "file") -> dict[str, bytes]:
    """``count`` files of distinct contents, ``per_folder`` to a folder (``part-000/...``)."""
    files = {f"part-{i // per_folder:03d}/{label}-{i:05d}.bin": content(f"{label} {i}", size)
             for i in range(count)}
    return write_tree(root, files)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def shas(files: Mapping[str, bytes]) -> set[str]:
    """The asset ids the files should become (one per distinct content)."""
    return {sha(data) for data in files.values()}


def keep_stamp(path: Path, data: bytes) -> None:
    """Replace a file's bytes keeping its size and mtime: what a re-run cannot tell apart
    without reading the file."""
    st = path.stat()
    assert len(data) == st.st_size
    path.write_bytes(data)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def touch_later(path: Path) -> None:
    """A new mtime for an unchanged file (a second later than it was)."""
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


# -- the import, through the API ---------------------------------------------------------

async def start_import(client: httpx.AsyncClient, path: Path | str, **fields: Any) -> dict:
    """Start an import (202); returns the answer ``{job_id, job_type, status, ...}``."""
    r = await client.post(BULK_IMPORT, json={"path": str(path), **fields})
    assert r.status_code == 202, r.text
    return r.json()


async def get_job(client: httpx.AsyncClient, job_id: str) -> dict:
    r = await client.get(f"/v1/jobs/{job_id}")
    assert r.status_code == 200, r.text
    return r.json()


async def poll(check: Callable[[], Awaitable[Any]], *, seconds: float = JOB_SECONDS,
               what: str = "a condition", interval: float = 0.02) -> Any:
    """``check()``'s first truthy result; fails past the deadline."""
    return await eventually(check, timeout=seconds, what=what, interval=interval)


async def wait_for_job(client: httpx.AsyncClient, job_id: str, *,
                       seconds: float = JOB_SECONDS) -> dict:
    """The job once it has ended (succeeded, failed or cancelled)."""
    async def ended() -> dict | None:
        job = await get_job(client, job_id)
        return job if job["status"] in FINAL else None

    return await poll(ended, seconds=seconds, what=f"job {job_id} to end")


async def run_import(client: httpx.AsyncClient, path: Path | str, **fields: Any) -> dict:
    """Import a folder and wait: the job, which must have succeeded."""
    started = await start_import(client, path, **fields)
    job = await wait_for_job(client, started["job_id"])
    assert job["status"] == "succeeded", job
    return job


async def job_log(client: httpx.AsyncClient, job_id: str) -> list[dict]:
    """Every line of a job's log, oldest first."""
    lines: list[dict] = []
    after = 0
    while True:
        r = await client.get(f"/v1/jobs/{job_id}/log", params={"after_id": after,
                                                               "limit": 1000})
        assert r.status_code == 200, r.text
        page = r.json()
        lines += page["items"]
        if not page["items"]:
            return lines
        after = page["next_after_id"]


def warnings(lines: list[dict]) -> list[str]:
    return [line["message"] for line in lines if line["level"] == "warning"]


def lines_about(lines: list[dict], name: str) -> list[str]:
    """The messages of the lines that mention ``name``."""
    return [line["message"] for line in lines if name in line["message"]]


async def all_assets(client: httpx.AsyncClient, **params: Any) -> list[dict]:
    """Every asset ``GET /v1/assets`` lists (all pages)."""
    items: list[dict] = []
    cursor = None
    while True:
        query = {"limit": 500, **params, **({"cursor": cursor} if cursor else {})}
        r = await client.get("/v1/assets", params=query)
        assert r.status_code == 200, r.text
        page = r.json()
        items += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            return items


async def assets_by_id(client: httpx.AsyncClient, **params: Any) -> dict[str, dict]:
    return {a["asset_id"]: a for a in await all_assets(client, **params)}


async def job_ids(client: httpx.AsyncClient) -> list[str]:
    """Every job ``GET /v1/jobs`` lists."""
    r = await client.get("/v1/jobs", params={"limit": 500})
    assert r.status_code == 200, r.text
    return [job["job_id"] for job in r.json()["items"]]

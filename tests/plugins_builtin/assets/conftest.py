"""Assets test helpers: uploads (through httpx's multipart or a body made by hand), entities,
events, and what the store holds on disk and in its table — to prove that a failed upload
leaves nothing behind."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from kernel.config import Settings, load_settings
from kernel.services import Kernel

HEX64 = re.compile(r"^[0-9a-f]{64}$")
RFC3339_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")
UNKNOWN_ID = "0" * 64
UPLOAD = "/v1/assets/upload"
#: the smallest valid PNG: 1x1 pixel (content sniffing must see an image whatever its name)
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c63f8cfc0f01f0005000201e221bc330000000049454e44ae426082")


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def error_of(r: httpx.Response, status: int, code: str | None = None) -> dict:
    """The error envelope, exactly: ``{"error": {"code", "message", "details"}}``."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"code", "message", "details"}
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["details"], list)
    if code is not None:
        assert error["code"] == code, error
    return error


# -- uploads -----------------------------------------------------------------------------

async def upload(client: httpx.AsyncClient, data: bytes = b"hello, assets\n",
                 filename: str = "notes.bin", *, content_type: str = "application/octet-stream",
                 fields: dict[str, Any] | None = None, params: Any = None,
                 meta_file: bytes | None = None) -> httpx.Response:
    """POST one file (httpx's multipart, as a client library sends it)."""
    files: list[tuple[str, Any]] = [("file", (filename, data, content_type))]
    if meta_file is not None:
        files.append(("meta", ("photo_meta.json", meta_file, "application/json")))
    return await client.post(UPLOAD, files=files, data=fields or {}, params=params)


async def uploaded(client: httpx.AsyncClient, data: bytes = b"hello, assets\n",
                   filename: str = "notes.bin", *, status: int = 201, **kw: Any) -> dict:
    r = await upload(client, data, filename, **kw)
    assert r.status_code == status, r.text
    return r.json()


BOUNDARY = "ff-test-boundary-7d1c"


def part(name: str, body: bytes, *, filename: str | None = None,
         content_type: str | None = None, disposition: str | None = None) -> bytes:
    """One multipart part; ``disposition`` replaces the whole Content-Disposition value."""
    if disposition is None:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
    head = f"Content-Disposition: {disposition}\r\n".encode()
    if content_type is not None:
        head += f"Content-Type: {content_type}\r\n".encode()
    return head + b"\r\n" + body


def multipart(parts: Sequence[bytes], boundary: str = BOUNDARY, *, close: bool = True) -> bytes:
    """A multipart/form-data body made by hand (for what httpx would not send)."""
    dash = b"--" + boundary.encode()
    body = b"".join(dash + b"\r\n" + p + b"\r\n" for p in parts)
    return body + (dash + b"--\r\n" if close else b"")


async def raw_upload(client: httpx.AsyncClient, body: bytes, *,
                     content_type: str | None = f"multipart/form-data; boundary={BOUNDARY}",
                     params: Any = None) -> httpx.Response:
    headers = {} if content_type is None else {"Content-Type": content_type}
    return await client.post(UPLOAD, content=body, headers=headers, params=params)


# -- other resources ---------------------------------------------------------------------

async def make_entity(client: httpx.AsyncClient, name: str = "Ada Lovelace") -> str:
    r = await client.post("/v1/entities", json={"display_name": name})
    assert r.status_code == 201, r.text
    return r.json()["entity_id"]


async def events(client: httpx.AsyncClient, prefix: str = "asset.", after: int = 0
                 ) -> list[dict]:
    """Every event of a type starting with ``prefix``, oldest first."""
    r = await client.get("/v1/events", params={"type": prefix, "after": after, "limit": 1000})
    assert r.status_code == 200, r.text
    return r.json()["items"]


async def last_event_id(client: httpx.AsyncClient) -> int:
    r = await client.get("/v1/events", params={"after": 0, "limit": 1})
    assert r.status_code == 200, r.text
    return r.json()["last_id"]


# -- the store's state -------------------------------------------------------------------

@dataclass(frozen=True)
class Snapshot:
    rows: frozenset[str]
    blobs: frozenset[str]
    staged: frozenset[str]


class Store:
    """What the assets store holds: rows, blob files, staged files in ``tmp/``."""

    def __init__(self, kernel: Kernel, settings: Settings) -> None:
        self.kernel = kernel
        self.assets_dir = settings.paths.assets_dir
        self.tmp_dir = settings.paths.tmp_dir

    def blob_path(self, asset_id: str) -> Path:
        return self.assets_dir / asset_id[:2] / asset_id[2:4] / asset_id

    def blobs(self) -> frozenset[str]:
        return frozenset(p.name for p in self.assets_dir.rglob("*") if p.is_file())

    def staged(self) -> frozenset[str]:
        return frozenset(p.name for p in self.tmp_dir.glob("staged-*"))

    async def rows(self) -> frozenset[str]:
        rows = await self.kernel.db.fetchall("SELECT asset_id FROM assets")
        return frozenset(r[0] for r in rows)

    async def row(self, asset_id: str) -> Any:
        return await self.kernel.db.fetchone(
            "SELECT blob_state, deleted_at, provider FROM assets WHERE asset_id = ?",
            (asset_id,))

    async def snapshot(self) -> Snapshot:
        return Snapshot(await self.rows(), self.blobs(), self.staged())

    async def assert_nothing_left(self, before: Snapshot) -> None:
        """No staged file, no new blob, no new row since ``before``."""
        assert self.staged() == frozenset(), "a staged upload was left in tmp/"
        assert self.blobs() == before.blobs, "a blob was stored (or removed)"
        assert await self.rows() == before.rows, "an asset row was written (or removed)"


@pytest.fixture
def settings(home: Path) -> Settings:
    """The assets plugin without the thumbnails and metadata plugins: their work after an
    upload (more events, new versions, derived assets) would change what these tests count
    exactly.  Their own tests run them with assets."""
    return load_settings(home, env={"FACEFORGE_DISABLE_PLUGINS": "thumbnails,metadata_extract"})


@pytest.fixture
def kernel(client: httpx.AsyncClient, app: Starlette) -> Kernel:
    """The running kernel behind ``client``."""
    return app.state.kernel


@pytest.fixture
def store(kernel: Kernel, settings: Settings) -> Store:
    return Store(kernel, settings)


@pytest.fixture
def src(tmp_path: Path) -> Path:
    """The folder to import (beside the Core's home, not around it)."""
    return tmp_path / "src"

"""tus 1.0 test helpers: the protocol's headers and metadata encoding, a client that speaks
it to an in-process Core (checking that every answer carries ``Tus-Resumable``), and Cores
configured with small limits or short expiries."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from starlette.applications import Starlette

from kernel.config import Settings, load_settings
from tests.conftest import AppFactory, running

VERSION = "1.0.0"
TUS = {"Tus-Resumable": VERSION}
UPLOADS = "/v1/uploads"
OCTETS = "application/offset+octet-stream"
EXTENSIONS = {"creation", "creation-with-upload", "termination", "expiration", "checksum"}
ALGORITHMS = {"md5", "sha1", "sha256"}
UPLOAD_PATH = re.compile(r"^/v1/uploads/[0-9a-f]{32}$")
#: RFC 9110 IMF-fixdate, the form a server must send: ``Sun, 06 Nov 1994 08:49:37 GMT``
IMF_FIXDATE = re.compile(r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} "
                         r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} "
                         r"\d{2}:\d{2}:\d{2} GMT$")
DEFAULT_EXPIRY_SECONDS = 86400


def b64(value: str | bytes) -> str:
    raw = value.encode() if isinstance(value, str) else value
    return base64.b64encode(raw).decode("ascii")


def metadata(**fields: str | bytes) -> str:
    """An ``Upload-Metadata`` value, as tus clients encode it (``key base64,key base64``)."""
    return ",".join(f"{key} {b64(value)}" for key, value in fields.items())


def checksum(algorithm: str, data: bytes) -> str:
    """An ``Upload-Checksum`` value for ``data``."""
    return f"{algorithm} {b64(hashlib.new(algorithm, data).digest())}"


def upload_path(location: str) -> str:
    """The path of a ``Location`` (relative, as the contract says, or absolute)."""
    path = urlsplit(location).path
    assert UPLOAD_PATH.match(path), location
    return path


def upload_id(path: str) -> str:
    return path.rsplit("/", 1)[1]


def expires(response: httpx.Response) -> datetime:
    """``Upload-Expires`` of a response: present and an RFC 9110 date."""
    value = response.headers.get("upload-expires")
    assert value is not None, f"no Upload-Expires on {response.request.method}"
    assert IMF_FIXDATE.match(value), value
    return parsedate_to_datetime(value)


def assert_expires_in(response: httpx.Response, seconds: float, *, since: datetime) -> None:
    """``Upload-Expires`` is ``seconds`` after the request (at the header's 1 s precision)."""
    moment = expires(response)
    assert since.timestamp() + seconds - 1 <= moment.timestamp(), (moment, since)
    assert moment.timestamp() <= datetime.now(UTC).timestamp() + seconds + 1, (moment, since)


def offset_of(response: httpx.Response) -> int:
    value = response.headers.get("upload-offset")
    assert value is not None and value.isdigit(), (response.status_code, value)
    return int(value)


def assert_tus_answer(response: httpx.Response) -> httpx.Response:
    """Every tus response carries ``Tus-Resumable`` (the protocol's one universal rule)."""
    assert response.headers.get("tus-resumable") == VERSION, (
        response.request.method, response.status_code, dict(response.headers))
    return response


class Tus:
    """A tus client over an httpx client (in-process or on a socket)."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def options(self, headers: dict[str, str] | None = None) -> httpx.Response:
        return assert_tus_answer(await self.http.options(UPLOADS, headers=headers))

    async def create(self, length: int | None, meta: str | None = None, *,
                     body: bytes | None = None, headers: dict[str, str] | None = None,
                     tus: bool = True) -> httpx.Response:
        """``POST /v1/uploads``; ``body`` makes it creation-with-upload."""
        sent = dict(TUS) if tus else {}
        if length is not None:
            sent["Upload-Length"] = str(length)
        if meta is not None:
            sent["Upload-Metadata"] = meta
        if body is not None:
            sent["Content-Type"] = OCTETS
        sent.update(headers or {})
        r = await self.http.post(UPLOADS, content=body, headers=sent)
        return assert_tus_answer(r)

    async def created(self, length: int, meta: str | None = None, **kw: Any) -> str:
        """Create an upload; its path."""
        r = await self.create(length, meta, **kw)
        assert r.status_code == 201, r.text
        return upload_path(r.headers["location"])

    async def head(self, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
        r = await self.http.head(path, headers={**TUS, **(headers or {})})
        assert r.content == b"", "a HEAD answer has no body"
        return assert_tus_answer(r)

    async def offset(self, path: str) -> int:
        r = await self.head(path)
        assert r.status_code == 200, r.status_code
        return offset_of(r)

    async def patch(self, path: str, data: bytes, offset: int | None, *,
                    content_type: str | None = OCTETS,
                    headers: dict[str, str] | None = None) -> httpx.Response:
        sent = dict(TUS)
        if offset is not None:
            sent["Upload-Offset"] = str(offset)
        if content_type is not None:
            sent["Content-Type"] = content_type
        sent.update(headers or {})
        return assert_tus_answer(await self.http.patch(path, content=data, headers=sent))

    async def patched(self, path: str, data: bytes, offset: int, **kw: Any) -> httpx.Response:
        """A PATCH that must succeed: 204 with the new offset."""
        r = await self.patch(path, data, offset, **kw)
        assert r.status_code == 204, r.text
        assert offset_of(r) == offset + len(data)
        return r

    async def delete(self, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
        return assert_tus_answer(await self.http.delete(path, headers={**TUS, **(headers or {})}))

    async def upload(self, data: bytes, meta: str | None = None, *,
                     chunk: int = 64 * 1024) -> httpx.Response:
        """A whole upload in ``chunk``-sized PATCHes; the last PATCH's answer."""
        path = await self.created(len(data), meta)
        last: httpx.Response | None = None
        for start in range(0, len(data), chunk):
            last = await self.patched(path, data[start:start + chunk], start)
        assert last is not None, "upload() needs at least one byte"
        return last

    async def status(self, path: str) -> dict[str, Any]:
        """``GET /v1/uploads/<id>``: the upload as JSON (not a tus request)."""
        r = await self.http.get(path)
        assert r.status_code == 200, r.text
        return r.json()


def asset_id_of(response: httpx.Response, data: bytes, *, deduplicated: bool = False) -> str:
    """The answer that finished an upload names the asset: the sha256 of its bytes."""
    digest = hashlib.sha256(data).hexdigest()
    assert response.headers.get("faceforge-asset-id") == digest, dict(response.headers)
    assert response.headers.get("faceforge-deduplicated") == str(deduplicated).lower()
    return digest


def tmp_files(settings: Settings) -> frozenset[Path]:
    """Every file under ``<home>/tmp`` (partial uploads and whatever they keep beside)."""
    return frozenset(p for p in settings.paths.tmp_dir.rglob("*") if p.is_file())


def configured(settings: Settings, **assets: Any) -> Settings:
    """Settings of the same home with ``plugins.assets`` set in core.json (as a user would)."""
    config = settings.paths.config_file
    data = json.loads(config.read_text("utf-8"))
    data["plugins"] = {"assets": assets}
    config.write_text(json.dumps(data), encoding="utf-8")
    return load_settings(settings.paths.home, env={})


@asynccontextmanager
async def core(make_app: AppFactory, settings: Settings
               ) -> AsyncIterator[tuple[Starlette, httpx.AsyncClient]]:
    """A Core on ``settings`` (its lifespan run) and an install-token client for it."""
    app = make_app(settings=settings)
    async with running(app, settings.install_token) as http:
        yield app, http

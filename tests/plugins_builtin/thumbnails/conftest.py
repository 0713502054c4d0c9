"""Thumbnails test helpers: real image files made with Pillow, uploads through the API, and
waiting for the plugin's background work (its worker's ``join()``, never a sleep)."""

from __future__ import annotations

import io
import json
import struct
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from starlette.applications import Starlette

from kernel.config import Settings, load_settings
from kernel.services import Kernel
from tests.conftest import AppFactory, running

UPLOAD = "/v1/assets/upload"
RED, BLUE = (255, 0, 0), (0, 0, 255)
#: EXIF tag 0x0112: how the stored pixels must be turned to be shown upright
ORIENTATION = 0x0112


# -- images ------------------------------------------------------------------------------

def encode(image: Image.Image, fmt: str, **options: Any) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def photo(width: int, height: int) -> Image.Image:
    """An RGB picture with detail everywhere (gradients and noise), like a photo."""
    size = (width, height)
    channels = [Image.linear_gradient("L").resize(size), Image.radial_gradient("L").resize(size),
                Image.linear_gradient("L").rotate(90).resize(size)]
    return Image.merge("RGB", [Image.blend(c, Image.effect_noise(size, 30), 0.2)
                               for c in channels])


def halves(width: int, height: int, left: tuple[int, ...] = RED,
           right: tuple[int, ...] = BLUE, mode: str = "RGB") -> Image.Image:
    """Left half one colour, right half another: shows which way an image was turned."""
    image = Image.new(mode, (width, height), left)
    image.paste(Image.new(mode, (width - width // 2, height), right), (width // 2, 0))
    return image


def jpeg(width: int = 1600, height: int = 1200, *, orientation: int | None = None,
         image: Image.Image | None = None) -> bytes:
    image = image if image is not None else photo(width, height)
    options: dict[str, Any] = {"quality": 90}
    if orientation is not None:
        exif = Image.Exif()
        exif[ORIENTATION] = orientation
        options["exif"] = exif
    return encode(image, "JPEG", **options)


def png_header(width: int, height: int) -> bytes:
    """A PNG that claims ``width`` x ``height`` pixels in a few dozen bytes."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body)))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


def opened(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def near(pixel: Any, colour: tuple[int, ...], tolerance: int = 40) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, colour, strict=False))


# -- the running Core ----------------------------------------------------------------------

def configured(home: Path, **thumbnails: Any) -> Settings:
    """Settings for ``home`` with ``plugins.thumbnails`` set in its core.json."""
    config_dir = home / "config"
    config_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = config_dir / "core.json"
    config = json.loads(path.read_text("utf-8")) if path.exists() else {}
    config.setdefault("plugins", {})["thumbnails"] = thumbnails
    path.write_text(json.dumps(config), "utf-8")
    return load_settings(home, env={})


@asynccontextmanager
async def core(make_app: AppFactory, settings: Settings
               ) -> AsyncIterator[tuple[httpx.AsyncClient, Kernel]]:
    """A Core of its own on ``settings`` (started, and stopped on leaving)."""
    app = make_app(settings=settings)
    async with running(app, settings.install_token) as client:
        yield client, app.state.kernel


@pytest.fixture
def kernel(client: httpx.AsyncClient, app: Starlette) -> Kernel:
    """The running kernel behind ``client``."""
    return app.state.kernel


async def settle(kernel: Kernel) -> None:
    """Wait until every queued thumbnail is made and every committed event delivered --
    including the events that handling those events wrote (deleting an image deletes its
    thumbnails: more ``asset.deleted`` events for the entities plugin) -- and until metadata
    extraction is idle, since it changes the same assets (their ``version``)."""
    extractor = kernel.services.get("metadata_extract.worker")
    while True:
        await kernel.services["thumbnails.worker"].join()
        if extractor is not None:
            await extractor.idle()
        seen = kernel.events.last_id
        assert await kernel.events.drain(10)
        await kernel.services["thumbnails.worker"].join()
        if kernel.events.last_id == seen:
            return


async def upload(client: httpx.AsyncClient, data: bytes, filename: str,
                 status: int = 201, **fields: Any) -> dict[str, Any]:
    r = await client.post(UPLOAD, files={"file": (filename, data)}, data=fields)
    assert r.status_code == status, r.text
    return r.json()


async def asset(client: httpx.AsyncClient, asset_id: str) -> dict[str, Any]:
    r = await client.get(f"/v1/assets/{asset_id}")
    assert r.status_code == 200, r.text
    return r.json()


async def derived(client: httpx.AsyncClient, asset_id: str) -> list[dict[str, Any]]:
    r = await client.get(f"/v1/assets/{asset_id}/derived")
    assert r.status_code == 200, r.text
    return r.json()["items"]


async def download(client: httpx.AsyncClient, asset_id: str) -> bytes:
    r = await client.get(f"/v1/assets/{asset_id}/download")
    assert r.status_code == 200, r.text
    return r.content


async def thumbnails_of(client: httpx.AsyncClient, asset_id: str) -> dict[str, Any]:
    """``plugin_data.thumbnails`` of an asset (after :func:`settle`)."""
    return (await asset(client, asset_id))["plugin_data"]["thumbnails"]


def log_lines(home: Path) -> list[dict[str, Any]]:
    path = home / "logs" / "core.log"
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line]

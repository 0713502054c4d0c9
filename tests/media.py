"""Small real files for tests: an image that sniffs as PNG, uploaded through the API."""

from __future__ import annotations

import os

import httpx

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def png_bytes(size: int = 256) -> bytes:
    """Bytes that content sniffing takes for a PNG; different on every call."""
    return PNG_MAGIC + os.urandom(max(size - len(PNG_MAGIC), 16))


async def upload_image(client: httpx.AsyncClient, name: str = "face.png", **data: str) -> str:
    """Upload a fresh PNG; returns its asset id."""
    r = await client.post("/v1/assets/upload", files={"file": (name, png_bytes())}, data=data)
    assert r.status_code == 201, r.text
    return r.json()["asset_id"]

"""Helpers for the Assets page tests: files that sniff as a type, uploads through the API,
and what the thumbnail and metadata plugins would write, set by hand.

Those plugins are turned off (:data:`QUIET`) so that their work in the background never
changes a page while a test reads it.
"""

from __future__ import annotations

from typing import Any

import httpx

from tests.media import png_bytes
from tests.ui.browsing import tags

#: ``FACEFORGE_DISABLE_PLUGINS`` for a Core whose pages only change when the test says so
QUIET = {"FACEFORGE_DISABLE_PLUGINS": "thumbnails,metadata_extract"}
UNKNOWN_ID = "0" * 64
#: bytes that content sniffing takes for these types
MP3 = b"ID3\x03\x00\x00\x00\x00\x00\x00" + bytes(200)
MP4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + bytes(200)
PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n"


async def upload(client: httpx.AsyncClient, name: str, data: bytes | None = None,
                 **fields: Any) -> str:
    """Upload ``data`` (a fresh PNG by default) through the API; returns the asset id."""
    body = png_bytes() if data is None else data
    r = await client.post("/v1/assets/upload", files={"file": (name, body)}, data=fields)
    assert r.status_code in (200, 201), r.text
    return r.json()["asset_id"]


async def set_thumbnails(client: httpx.AsyncClient, asset_id: str, thumbnails: dict) -> None:
    """What the thumbnails plugin records: ``{"256": id, "1024": id}`` or ``{"error": ...}``."""
    r = await client.patch(f"/v1/assets/{asset_id}",
                           json={"plugin_data": {"thumbnails": thumbnails}})
    assert r.status_code == 200, r.text


async def create_entity(client: httpx.AsyncClient, name: str, **extra: Any) -> str:
    r = await client.post("/v1/entities", json={"display_name": name, **extra})
    assert r.status_code == 201, r.text
    return r.json()["entity_id"]


def download(asset_id: str) -> str:
    """The URL a page shows an asset's bytes at."""
    return f"/v1/assets/{asset_id}/download?inline=true"


def asset_ids(html: str) -> list[str]:
    """Assets shown (grid items, rows, list items), in page order."""
    return [t.attrs["data-asset-id"] for t in tags(html) if "data-asset-id" in t.attrs]

"""``GET /v1/assets/{asset_id}/thumbnail``: a redirect to a thumbnail's download, for
tools (ComfyUI nodes, scripts) that want a small picture of an asset in one request."""

from __future__ import annotations

import re
from typing import Any, Literal

import msgspec
from starlette.responses import RedirectResponse

from ff_plugin_sdk import ApiRoute, Kernel, NotFound
from plugins_builtin.thumbnails.derive import THUMBNAIL_KIND, thumbnail_ids

_ID = re.compile("^[0-9a-f]{64}$")
#: formats every browser shows: a small one of these is its own thumbnail
_WEB_IMAGES = frozenset({"image/jpeg", "image/png", "image/webp", "image/gif"})


class ThumbnailQuery(msgspec.Struct, kw_only=True):
    #: the long side in pixels
    size: Literal[256, 1024] = 256


async def thumbnail_of(store: Any, asset: dict[str, Any], size: int) -> str | None:
    """The id of the asset to show for ``asset`` at ``size`` px, or None (none yet)."""
    ids = thumbnail_ids(asset)
    if ids is not None and str(size) in ids:
        thumb = await store.find(ids[str(size)])
        live = thumb is not None and not thumb["deleted_at"] and thumb["blob_present"]
        return ids[str(size)] if live else None
    if not asset["mime_type"].startswith("image/") or not asset["blob_present"]:
        return None
    if asset["kind"] == THUMBNAIL_KIND:
        return str(asset["asset_id"])
    width, height = asset.get("width"), asset.get("height")
    if (asset["mime_type"] in _WEB_IMAGES and width and height
            and max(width, height) <= size):
        return str(asset["asset_id"])  # already small: thumbnails would be no smaller
    return None


def _why(asset: dict[str, Any]) -> str:
    recorded = asset["plugin_data"].get("thumbnails")
    if isinstance(recorded, dict) and "error" in recorded:
        return f": {recorded['error']}"
    if not asset["mime_type"].startswith("image/"):
        return f": it is {asset['mime_type']}, not an image"
    return " yet"


def routes(kernel: Kernel) -> list[ApiRoute]:
    async def thumbnail(request: Any, query: ThumbnailQuery) -> RedirectResponse:
        """Redirect (307) to the download of the asset's thumbnail of ``size`` px (for a
        thumbnail, or a small image, the asset itself); 404 ``thumbnail_not_found`` until
        there is one."""
        asset_id = request.path_params["asset_id"]
        if not _ID.match(asset_id):
            raise NotFound(f"no asset with id {asset_id!r}", code="asset_not_found")
        store = kernel.services["assets.store"]
        asset = await store.get(asset_id)
        target = await thumbnail_of(store, asset, query.size)
        if target is None:
            raise NotFound(f"asset {asset_id} has no {query.size} px thumbnail{_why(asset)}",
                           code="thumbnail_not_found")
        root = request.scope.get("root_path", "")
        return RedirectResponse(f"{root}/v1/assets/{target}/download", status_code=307)

    return [ApiRoute(path="/assets/{asset_id}/thumbnail", endpoint=thumbnail,
                     scope="assets:read", query=ThumbnailQuery, status_code=307,
                     tags=["assets"])]

"""One image's thumbnails: read its bytes, render them in a thread, store each as an
``image.thumbnail`` asset derived from it, record them on it, offer one to its entities.

Everything here goes through other plugins' services (``assets.store``, ``assets.ingest``,
``entities.store``) and the kernel's storage; what fails is logged and, unless it may pass
(storage unreachable), recorded as ``plugin_data.thumbnails = {"error": ...}`` so the image
is not tried again at every start.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import PurePosixPath
from typing import Any

import anyio
import anyio.to_thread

from ff_plugin_sdk import FaceForgeError, Kernel, NotFound
from ff_plugin_sdk.storage import BlobMissing, StorageUnavailable
from plugins_builtin.thumbnails.render import Refused, Thumbnail, render
from plugins_builtin.thumbnails.settings import Settings

THUMBNAIL_KIND = "image.thumbnail"
#: the key in ``plugin_data`` (``{"256": id, "1024": id}`` or ``{"error": reason}``)
KEY = "thumbnails"
#: a recorded reason is at most this long (Pillow's messages can quote the file)
MAX_REASON = 200
#: ids the catch-up reads per query
CATCH_UP_PAGE = 200
#: the catch-up's query: live images that are neither thumbnails nor derived from another
#: asset, with no ``plugin_data.thumbnails`` yet, in upload order
CATCH_UP_SQL = (
    "SELECT seq, asset_id FROM assets WHERE seq > ? AND deleted_at IS NULL"
    " AND mime_type >= 'image/' AND mime_type < 'image0' AND kind != ?"
    " AND derived_from_asset_id IS NULL AND blob_state != 'removed'"
    " AND json_extract(plugin_data, '$.thumbnails') IS NULL ORDER BY seq LIMIT ?")


def wanted(asset: dict[str, Any]) -> bool:
    """Does this asset get thumbnails?  Images only, and never a thumbnail or anything
    derived from another asset (so thumbnails are never thumbnailed)."""
    return (str(asset.get("mime_type", "")).startswith("image/")
            and asset.get("kind") != THUMBNAIL_KIND
            and not asset.get("derived_from_asset_id"))


def thumbnail_ids(asset: dict[str, Any]) -> dict[str, str] | None:
    """The recorded ``{"256": id, "1024": id}``, or None (none yet, or an error)."""
    recorded = asset["plugin_data"].get(KEY)
    if not isinstance(recorded, dict) or "error" in recorded:
        return None
    ids = {size: value for size, value in recorded.items() if isinstance(value, str)}
    return ids or None


def thumbnail_filename(source: str, thumbnail: Thumbnail) -> str:
    """``holiday.thumb256.webp`` for ``holiday.JPG``."""
    stem = PurePosixPath(source).stem.strip()[:200] or "image"
    return f"{stem}.thumb{thumbnail.size}.{thumbnail.suffix}"


class Thumbnailer:
    def __init__(self, kernel: Kernel, settings: Settings) -> None:
        self.kernel = kernel
        self.settings = settings
        self.log = kernel.logger("thumbnails")
        self._limiter: anyio.CapacityLimiter | None = None

    @property
    def assets(self) -> Any:
        return self.kernel.services["assets.store"]

    @property
    def entities(self) -> Any:
        return self.kernel.services.get("entities.store")

    @property
    def limiter(self) -> anyio.CapacityLimiter:
        """The threads decoding at once (made on first use: it needs the event loop)."""
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(self.settings.concurrency)
        return self._limiter

    # -- one image -------------------------------------------------------------------------
    async def derive(self, asset_id: str) -> None:
        """Make and record the thumbnails of one image, unless it has them already."""
        asset = await self.assets.find(asset_id)
        if asset is None or asset["deleted_at"] or not wanted(asset):
            return
        if KEY in asset["plugin_data"] and await self._still_there(asset):
            return
        try:
            data = await self._read(asset)
            thumbnails = await anyio.to_thread.run_sync(
                render, data, self.settings.max_pixels, limiter=self.limiter)
        except Refused as exc:
            await self._refused(asset_id, exc.reason)
            return
        except StorageUnavailable as exc:  # may pass: the next start tries again
            self.log.warning("no thumbnails for asset %s yet: %s", asset_id, exc.message)
            return
        del data
        ids: dict[str, str] = {}
        try:
            for thumbnail in thumbnails:
                ids[str(thumbnail.size)] = await self._store(asset, thumbnail)
        except FaceForgeError as exc:  # storage full or down, or the image deleted meanwhile
            self.log.warning("thumbnails of asset %s not stored: %s", asset_id, exc.message)
            return
        try:
            await self.assets.update(asset_id, {}, {"plugin_data": {KEY: ids}}, None)
        except FaceForgeError as exc:  # deleted meanwhile
            self.log.info("asset %s went away while its thumbnails were made: %s",
                          asset_id, exc.message)
            return
        # links made while the thumbnails were made count too
        linked = (await self.assets.get(asset_id))["linked_entity_ids"]
        for entity_id in linked:
            await self.offer(entity_id, ids["256"])

    async def _still_there(self, asset: dict[str, Any]) -> bool:
        """Recorded and (for thumbnails, not an error) every one still a live asset."""
        ids = thumbnail_ids(asset)
        if ids is None:
            return True  # an error: not tried again
        for thumb_id in ids.values():
            thumb = await self.assets.find(thumb_id)
            if thumb is None or thumb["deleted_at"] or not thumb["blob_present"]:
                return False
        return True

    async def _read(self, asset: dict[str, Any]) -> bytes:
        size = asset["size"]
        if size > self.settings.max_source_bytes:
            raise Refused(f"the image is {size} bytes, over the limit of "
                          f"{self.settings.max_source_bytes} (plugins.thumbnails."
                          f"max_source_bytes)")
        if size == 0:
            raise Refused("the file is empty")
        provider = self.kernel.storage.provider(asset["provider"])
        try:
            chunks = [chunk async for chunk in provider.open_range(asset["asset_id"], 0,
                                                                   size - 1)]
        except BlobMissing as exc:
            raise Refused("its bytes are missing from storage") from exc
        return b"".join(chunks)

    async def _refused(self, asset_id: str, reason: str) -> None:
        reason = reason if len(reason) <= MAX_REASON else reason[:MAX_REASON - 3] + "..."
        self.log.warning("no thumbnails for asset %s: %s", asset_id, reason)
        with contextlib.suppress(FaceForgeError):  # deleted meanwhile: nothing to record on
            await self.assets.update(asset_id, {}, {"plugin_data": {KEY: {"error": reason}}},
                                     None)

    async def _store(self, source: dict[str, Any], thumbnail: Thumbnail) -> str:
        staged = self.kernel.storage.stage()
        try:
            await staged.write(thumbnail.data)
            sha256 = await staged.finish()
        except BaseException:
            staged.discard()
            raise
        # ingest removes the staged file whatever happens
        stored, _ = await self.kernel.services["assets.ingest"].add(
            staged, sha256, filename=thumbnail_filename(source["filename"], thumbnail),
            kind=THUMBNAIL_KIND, derived_from=source["asset_id"], meta=None,
            head=thumbnail.data[:64])
        return str(stored["asset_id"])

    # -- entities --------------------------------------------------------------------------
    async def offer(self, entity_id: str, thumbnail_id: str) -> None:
        """The entity's primary thumbnail becomes ``thumbnail_id`` if it has none."""
        entities = self.entities
        if entities is None:
            return
        try:
            if await entities.offer_thumbnail(entity_id, thumbnail_id):
                self.log.info("entity %s: primary thumbnail %s", entity_id, thumbnail_id)
        except FaceForgeError as exc:  # the thumbnail was deleted meanwhile
            self.log.info("entity %s keeps no thumbnail %s: %s", entity_id, thumbnail_id,
                          exc.message)

    async def linked(self, asset_id: str, entity_id: str) -> None:
        """An asset was linked to an entity: offer its thumbnail if it has one already
        (one still being made is offered when it is done)."""
        asset = await self.assets.find(asset_id)
        if asset is None or asset["deleted_at"] or not wanted(asset):
            return
        ids = thumbnail_ids(asset)
        if ids is not None and "256" in ids:
            await self.offer(entity_id, ids["256"])

    async def deleted(self, asset_id: str) -> int:
        """An image was deleted: its thumbnails go with it (they would otherwise stay in
        every list, and keep their bytes).  Returns how many were deleted."""
        asset = await self.assets.find(asset_id)
        ids = thumbnail_ids(asset) if asset is not None else None
        count = 0
        for thumb_id in (ids or {}).values():
            thumb = await self.assets.find(thumb_id)
            if thumb is None or thumb["deleted_at"] or thumb["derived_from_asset_id"] != asset_id:
                continue  # gone already, or its bytes now belong to another image too
            try:
                await self.assets.delete(thumb_id, None)
                count += 1
            except NotFound:
                pass
        return count

    # -- the catch-up ----------------------------------------------------------------------
    async def missing(self) -> AsyncIterator[str]:
        """Ids of live images without ``plugin_data.thumbnails`` (made while Core was down,
        or cancelled at the last shutdown), oldest first, a page per query."""
        after = 0
        while rows := await self.kernel.db.fetchall(
                CATCH_UP_SQL, (after, THUMBNAIL_KIND, CATCH_UP_PAGE)):
            after = rows[-1][0]
            for row in rows:
                yield row[1]


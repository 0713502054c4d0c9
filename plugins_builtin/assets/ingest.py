"""Turning received bytes into an asset: dedupe by hash, route to a provider, record the
row with its links and events, then tell the plugins (``faceforge_asset_ingested``).

One path for every way bytes arrive (multipart upload now; resumable uploads and imports
later), published as the ``assets.ingest`` service.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import anyio

from ff_plugin_sdk import Kernel, NotFound, ValidationFailed
from ff_plugin_sdk.storage import StorageProvider, StorageUnavailable, StoredBlob
from plugins_builtin.assets.kinds import default_kind, sniff_mime, valid_kind
from plugins_builtin.assets.store import AssetStore


@dataclass(kw_only=True)
class Request:
    """What the uploader asked for besides the bytes."""

    filename: str
    kind: str | None = None
    meta: dict[str, Any] | None = None
    entity_ids: Sequence[str] = ()
    role: str | None = None
    derived_from: str | None = None
    declared_type: str | None = None
    head: bytes = b""
    extra: dict[str, Any] = field(default_factory=dict)


class Staged(Protocol):
    """Received bytes in a file under ``tmp/``: a ``StagedFile``, or a finished
    resumable upload."""

    path: Path
    size: int

    def discard(self) -> None: ...


def check_kind(kind: str | None, at: str = "kind") -> None:
    """422 naming ``at`` unless ``kind`` is a kind (or None)."""
    if kind is not None and not valid_kind(kind):
        raise ValidationFailed(
            f"kind {kind!r} is not a kind: use dotted lowercase words such as "
            f"'image.original' or 'model.lora'", details=[{"path": at,
                                                           "message": "not a kind"}])


class Ingest:
    def __init__(self, kernel: Kernel, store: AssetStore) -> None:
        self.kernel = kernel
        self.store = store
        self.log = kernel.logger("assets")

    async def check(self, request: Request, sha256: str | None = None) -> None:
        """Refuse what cannot be recorded, before any bytes are placed."""
        check_kind(request.kind)
        await self.store.require_entities(request.entity_ids)
        if request.derived_from is not None:
            if request.derived_from == sha256:
                raise ValidationFailed("an asset cannot be derived from itself", details=[
                    {"path": "derived_from_asset_id", "message": "same bytes"}])
            source = await self.store.find(request.derived_from)
            if source is None or source["deleted_at"]:
                raise NotFound(f"no asset with id {request.derived_from!r} to derive from",
                               code="asset_not_found")

    async def add(self, staged: Staged, sha256: str,
                  **request: Any) -> tuple[dict[str, Any], bool]:
        """:meth:`staged` for other plugins, which cannot import :class:`Request`: its
        fields as keywords (``filename``, ``kind``, ``derived_from``, ``meta``, ...)."""
        return await self.staged(staged, sha256, Request(**request))

    async def staged(self, staged: Staged, sha256: str,
                     request: Request) -> tuple[dict[str, Any], bool]:
        """Record a finished staged file as an asset; returns (asset, deduplicated).

        The staged file is gone afterwards, whatever happens.  Once here the work is not
        cancelled half-way (a client leaving now would otherwise leave a blob without a
        row): the bytes were all received.
        """
        try:
            await self.check(request, sha256)
            with anyio.CancelScope(shield=True):
                return await self._place_and_record(staged, sha256, request)
        finally:
            staged.discard()

    async def _place_and_record(self, staged: Staged, sha256: str,
                                request: Request) -> tuple[dict[str, Any], bool]:
        mime = sniff_mime(request.head, request.filename, request.declared_type)
        kind = request.kind or default_kind(mime, request.filename)
        async with self.store.blob_locks(sha256):
            existing = await self.store.find(sha256)
            blob: StoredBlob | None = None
            provider_name = existing["provider"] if existing else ""
            if existing is None or not await self._still_stored(existing):
                blob, provider = await self._place(staged, sha256, kind)
                provider_name = provider.name
            bucket = getattr(self.kernel.storage.providers.get(provider_name), "bucket", None)
            try:
                asset, deduplicated = await self.store.record(
                    asset_id=sha256, size=staged.size, provider=provider_name, bucket=bucket,
                    kind=kind, filename=request.filename, mime_type=mime, meta=request.meta,
                    kind_given=request.kind is not None, derived_from=request.derived_from,
                    links=request.entity_ids, role=request.role, store_blob=blob is not None)
            except BaseException:
                if blob is not None and blob.created and existing is None:
                    await self._forget(provider_name, sha256)
                raise
        if not deduplicated:
            self.kernel.asset_ingested({k: v for k, v in asset.items() if k[0] != "_"})
        return asset, deduplicated

    async def _still_stored(self, asset: dict[str, Any]) -> bool:
        """Does the provider still hold the blob?  (A file removed by hand is re-stored.)"""
        if not asset["blob_present"]:
            return False
        try:
            return await self.kernel.storage.provider(asset["provider"]).stat(
                asset["asset_id"]) is not None
        except StorageUnavailable:
            return True  # cannot tell now; the row says it is there

    async def _place(self, staged: Staged, sha256: str,
                     kind: str) -> tuple[StoredBlob, StorageProvider]:
        storage = self.kernel.storage
        provider = await storage.choose(kind, staged.size)
        try:
            return await provider.write_file(staged.path, sha256, staged.size), provider
        except StorageUnavailable as exc:
            fallback = storage.fallback()
            if provider is fallback:
                raise
            self.log.warning("storage provider %r failed while storing %s (%s): storing on "
                             "%r instead", provider.name, sha256, exc.message, fallback.name)
            return await fallback.write_file(staged.path, sha256, staged.size), fallback

    async def _forget(self, provider: str, sha256: str) -> None:
        try:
            await self.kernel.storage.provider(provider).delete(sha256)
        except Exception:
            self.log.exception("could not remove blob %s after a failed upload", sha256)

"""Storage providers: where asset bytes live (spec §3.2, §6.3; DESIGN §4, §10).

A provider keeps immutable, content-addressed blobs: a blob's key is the SHA-256 hex of its
bytes.  Providers are contributed through the ``faceforge_storage_providers`` hook as a
:class:`~ff_plugin_sdk.types.StorageProviderType` whose ``factory(context)`` builds one from
a :class:`StorageContext`; the kernel routes each upload to one of them
(:class:`Storage`).  Types only: importing this pulls in no server code.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ff_plugin_sdk.errors import FaceForgeError

if TYPE_CHECKING:
    from ff_plugin_sdk.staging import StagedFile

#: the size of the pieces bytes move in (DESIGN §10: 1 MiB writes and reads are ~2x faster
#: than 64 KiB ones here)
CHUNK_BYTES = 1024 * 1024


class StorageUnavailable(FaceForgeError):
    """The store cannot be reached or written (S3 down, folder not writable) -> 503."""

    status = 503
    code = "storage_unavailable"


class StorageFull(FaceForgeError):
    """The store has no room for the bytes -> 507."""

    status = 507
    code = "insufficient_storage"


class BlobMissing(FaceForgeError):
    """The provider does not hold the blob (it was removed outside Core) -> 404."""

    status = 404
    code = "blob_missing"


class TooLarge(FaceForgeError):
    """The stream went past the size the caller allowed -> 413."""

    status = 413
    code = "payload_too_large"


@dataclass(frozen=True, kw_only=True)
class StoredBlob:
    """What a provider wrote: the key (= ``sha256``) and the byte count."""

    sha256: str
    size: int
    provider: str
    #: False when the provider already held these bytes (nothing was rewritten)
    created: bool = True


@dataclass(frozen=True, kw_only=True)
class BlobStat:
    size: int
    #: when the blob was stored (RFC 3339), if the provider knows
    modified_at: str | None = None


@dataclass(frozen=True, kw_only=True)
class Health:
    ok: bool
    detail: str = ""


@dataclass(frozen=True, kw_only=True)
class StorageContext:
    """What a provider factory may use: folders and the ``storage`` part of the config."""

    home: Path
    #: the filesystem provider's root (``paths.assets_dir``)
    assets_dir: Path
    #: where partial files are written (``tmp/``, same file system as the home)
    tmp_dir: Path
    #: ``storage.s3`` of ``config/core.json`` (endpoint filled in from the ports if unset)
    s3: dict[str, Any] = field(default_factory=dict)
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger(
        "faceforge.storage"))


@runtime_checkable
class StorageProvider(Protocol):
    """One backend holding content-addressed blobs.  Every method is async."""

    name: str
    #: the bucket (S3-like providers) recorded with each asset; optional, None elsewhere
    #: bucket: str | None
    #: optional too: ``local_path(key) -> Path | None``, where a provider keeping files on
    #: this machine has the blob (for programs that need a path, such as ExifTool)
    #: and ``async write_files([(path, sha256, size), ...]) -> [StoredBlob]``: take many
    #: staged files at once with one durability sync for all (bulk imports); without it
    #: they are taken one by one with ``write_file``

    async def write(self, chunks: AsyncIterable[bytes], *,
                    max_bytes: int | None = None) -> StoredBlob:
        """Store a stream while hashing it; returns its hash and size.

        The blob becomes visible under its hash only once complete and durable; the same
        bytes twice leave the first blob untouched (``created=False``).  Past ``max_bytes``:
        :class:`TooLarge`.  If anything fails (or the caller is cancelled) nothing is left
        behind.  :class:`StorageFull` / :class:`StorageUnavailable` say why it failed.
        """
    async def write_file(self, path: Path, sha256: str, size: int) -> StoredBlob:
        """Take a finished file whose hash is known (staged under ``tmp/``).

        The provider may move it (the filesystem provider renames it into place).  On
        success the file is gone; on failure it is left where it was, so the caller can
        store it elsewhere (the fallback to ``fs``) or remove it.
        """
    def open_range(self, key: str, start: int = 0,
                   end: int | None = None) -> AsyncIterator[bytes]:
        """Bytes ``start`` to ``end`` inclusive (``None``: to the end), in large chunks.

        :class:`BlobMissing` / :class:`StorageUnavailable` are raised by the first
        ``anext()`` (a download peeks at it before sending headers)."""
    async def stat(self, key: str) -> BlobStat | None:
        """The blob's size, or None when the provider does not hold it."""
    async def delete(self, key: str) -> None:
        """Remove the blob; no error if it is already gone."""
    async def health(self) -> Health:
        """Can the provider be used right now?  Never raises."""
    async def close(self) -> None: ...


@runtime_checkable
class Storage(Protocol):
    """Every configured provider, and the routing rules of ``storage.routing``."""

    providers: dict[str, StorageProvider]
    context: StorageContext

    def stage(self) -> StagedFile:
        """A new file under ``tmp/`` to receive an upload into while hashing it."""
    def fallback(self) -> StorageProvider:
        """The filesystem provider, which is always there."""
    def provider(self, name: str) -> StorageProvider:
        """The provider called ``name``; :class:`StorageUnavailable` if none is configured."""
    async def choose(self, kind: str | None, size: int | None) -> StorageProvider:
        """Where a new blob goes: ``kind_map``, then ``s3_min_size_bytes``, then
        ``default_provider``; an unreachable choice falls back to ``fs`` (logged)."""

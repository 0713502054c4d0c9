"""The S3 provider: content-addressed blobs in a bucket of any S3-compatible store.

Layout: a blob's object key is its SHA-256 hex at the top of the bucket (``<sha256>``, no
prefix), with the hash also in its metadata (``x-amz-meta-sha256``), so any S3 tool can find
an asset by its id.  Streams whose hash is not yet known are uploaded under
``tmp/<unix time>-<uuid>`` first, then copied server-side to their hash key; a temporary
object or multipart upload is removed whatever happens (ones a crash left are swept, a day
later, when a provider first uses the bucket).

Memory stays bounded by the part size (8 MiB, S3's minimum is 5 MiB): a stream is cut into
parts as it arrives, a file is read one part at a time in a worker thread.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
import time
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Awaitable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import anyio.to_thread
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError

from ff_plugin_sdk.errors import FaceForgeError, RangeNotSatisfiable
from ff_plugin_sdk.storage import (
    CHUNK_BYTES,
    BlobMissing,
    BlobStat,
    Health,
    StorageContext,
    StorageFull,
    StorageUnavailable,
    StoredBlob,
    TooLarge,
)

MiB = 1024 * 1024
#: S3 accepts parts of 5 MiB to 5 GiB (the last may be smaller), at most 10,000 of them
PART_BYTES = 8 * MiB
MAX_PARTS = 10_000
#: CopyObject copies at most 5 GiB; larger objects are copied part by part
COPY_LIMIT = 5 * 1024 * MiB
COPY_PART_BYTES = 1024 * MiB
#: a temporary object or multipart upload older than this was left by a crash
STALE_SECONDS = 24 * 3600.0
TMP_PREFIX = "tmp/"
#: a reachable store is not asked again for this long; an unreachable one is, every time
HEALTHY_SECONDS = 5.0
HEALTH_TIMEOUT = 5.0
#: cleanup after a failure or a cancellation must not hang on a store that went away
CLEANUP_TIMEOUT = 10.0
#: error codes meaning "no room" (quota, object too big for the store)
FULL_CODES = {"QuotaExceeded", "EntityTooLarge", "InsufficientStorage",
              "InsufficientCapacity", "StorageFull", "TooLarge"}
_HASH = re.compile(r"[0-9a-f]{64}")


def _part_bytes(base: int, number: int) -> int:
    """Size for part ``number`` (1-based): grows every 1,000 parts so that 10,000 parts of a
    8 MiB base still hold 440 GiB, while small and medium uploads keep small parts."""
    return base * (1 + (number - 1) // 1000)


def _temp_key() -> str:
    # the key carries its creation time: some stores (moto) report made-up upload dates
    return f"{TMP_PREFIX}{int(time.time())}-{uuid.uuid4().hex}"


def _stale(key: str, cutoff: float) -> bool:
    stamp = key.removeprefix(TMP_PREFIX).partition("-")[0]
    return stamp.isascii() and stamp.isdigit() and int(stamp) < cutoff


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)


class _Pending:
    """Chunks waiting to become one part."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.size = 0

    def add(self, chunk: bytes) -> None:
        self.chunks.append(chunk)
        self.size += len(chunk)

    def take(self) -> bytes:
        """The chunks as one ``bytes``, emptying the buffer (no second reference is left
        behind to keep a part alive while the next one fills)."""
        data = b"".join(self.chunks)
        self.chunks.clear()
        self.size = 0
        return data


@dataclass(kw_only=True)
class _Multipart:
    """A multipart upload in progress; :meth:`discard` leaves nothing of it behind."""

    s3: S3Provider
    key: str
    upload_id: str
    parts: list[dict[str, Any]] = field(default_factory=list)
    completed: bool = False

    @property
    def next_number(self) -> int:
        return len(self.parts) + 1

    async def put(self, data: bytes) -> None:
        if self.next_number > MAX_PARTS:
            raise StorageFull(f"the object has more than {MAX_PARTS} parts, S3's limit")
        reply = await self.s3.call("upload_part", Key=self.key, UploadId=self.upload_id,
                                   PartNumber=self.next_number, Body=data)
        self.parts.append({"PartNumber": self.next_number, "ETag": reply["ETag"]})

    async def copy(self, source: str, first: int, last: int) -> None:
        reply = await self.s3.call(
            "upload_part_copy", Key=self.key, UploadId=self.upload_id,
            PartNumber=self.next_number, CopySourceRange=f"bytes={first}-{last}",
            CopySource={"Bucket": self.s3.bucket, "Key": source})
        self.parts.append({"PartNumber": self.next_number,
                           "ETag": reply["CopyPartResult"]["ETag"]})

    async def complete(self) -> None:
        await self.s3.call("complete_multipart_upload", Key=self.key, UploadId=self.upload_id,
                           MultipartUpload={"Parts": self.parts})
        self.completed = True

    async def discard(self, *, delete_object: bool) -> None:
        """Abort the upload (unless it completed); delete the object if asked.  Shielded from
        cancellation, bounded in time, never raises."""
        with anyio.move_on_after(CLEANUP_TIMEOUT, shield=True):
            if not self.completed:
                await self.s3.quietly(self.s3.call(
                    "abort_multipart_upload", Key=self.key, UploadId=self.upload_id))
            if delete_object:
                await self.s3.quietly(self.s3.call("delete_object", Key=self.key))


class S3Provider:
    """Blobs in one bucket of an S3-compatible endpoint (AWS, Ceph RGW, SeaweedFS, MinIO)."""

    name = "s3"

    def __init__(self, *, endpoint_url: str | None, access_key: str | None,
                 secret_key: str | None, bucket: str = "faceforge",
                 region: str = "us-east-1", use_ssl: bool = False, path_style: bool = True,
                 verify_tls: bool = True, part_bytes: int = PART_BYTES,
                 copy_limit: int = COPY_LIMIT, copy_part_bytes: int = COPY_PART_BYTES,
                 logger: logging.Logger | None = None) -> None:
        if endpoint_url and "://" not in endpoint_url:
            endpoint_url = f"{'https' if use_ssl else 'http'}://{endpoint_url}"
        self.endpoint_url = endpoint_url
        self.endpoint = endpoint_url or f"https://s3.{region}.amazonaws.com"
        self.bucket = bucket
        self.region = region
        self.part_bytes = part_bytes
        self.copy_limit = copy_limit
        self.copy_part_bytes = copy_part_bytes
        self.log = logger or logging.getLogger("faceforge.storage.s3")
        self._client_args: dict[str, Any] = dict(
            endpoint_url=endpoint_url, region_name=region, aws_access_key_id=access_key,
            aws_secret_access_key=secret_key, verify=verify_tls, config=AioConfig(
                # a store that is down must be noticed in seconds, not minutes: one retry
                # (botocore's "max_attempts" counts retries, "total_max_attempts" all tries)
                connect_timeout=3, read_timeout=60,
                retries={"total_max_attempts": 2, "mode": "standard"},
                s3={"addressing_style": "path" if path_style else "virtual"},
                # botocore's default CRC32 checksums (aws-chunked bodies) are not understood
                # by every S3-compatible store; size is verified after each write instead
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required"))
        self._stack = AsyncExitStack()
        self._client: Any = None
        self._bucket_ready = False
        self._swept = False
        self._lock = anyio.Lock()
        self._healthy_until = 0.0

    # --- the StorageProvider interface ---------------------------------------------------

    async def write(self, chunks: AsyncIterable[bytes], *,
                    max_bytes: int | None = None) -> StoredBlob:
        """Stream into a temporary key part by part while hashing, then copy to the hash key.

        A stream shorter than one part is put under its hash key directly.
        """
        await self._ready()
        digest = hashlib.sha256()
        size = 0
        pending = _Pending()
        upload: _Multipart | None = None
        try:
            async for chunk in chunks:
                size += len(chunk)
                if max_bytes is not None and size > max_bytes:
                    raise TooLarge(f"the file is larger than the limit of {max_bytes} bytes")
                digest.update(chunk)
                pending.add(chunk)
                number = upload.next_number if upload else 1
                if pending.size >= _part_bytes(self.part_bytes, number):
                    if upload is None:
                        upload = await self._start_upload(_temp_key())
                    await upload.put(pending.take())
            sha256 = digest.hexdigest()
            if upload is None:
                return await self._put(sha256, pending.take())
            if pending.size:
                await upload.put(pending.take())
            await upload.complete()
            return await self._publish(upload.key, sha256, size)
        finally:
            if upload is not None:
                await upload.discard(delete_object=True)

    async def write_file(self, path: Path, sha256: str, size: int) -> StoredBlob:
        """Upload a finished file under its known hash, then remove the file.

        Skipped when the bucket already holds the blob.  On failure the file is left where it
        was, so that the caller can store it elsewhere (the fallback to ``fs``).
        """
        if not _HASH.fullmatch(sha256):
            raise ValueError(f"not a sha256 hex digest: {sha256!r}")
        actual = (await anyio.to_thread.run_sync(path.stat)).st_size
        if actual != size:
            raise ValueError(f"{path} holds {actual} bytes, not {size}")
        await self._ready()
        created = await self._size_of(sha256) != size
        if created:
            if size <= self.part_bytes:
                await self._put_object(sha256, await anyio.to_thread.run_sync(path.read_bytes))
            else:
                await self._upload_file(path, sha256)
            await self._verify(sha256, size)
        await anyio.to_thread.run_sync(path.unlink)
        return StoredBlob(sha256=sha256, size=size, provider=self.name, created=created)

    async def open_range(self, key: str, start: int = 0,
                         end: int | None = None) -> AsyncIterator[bytes]:
        """A ranged GetObject, streamed in ~1 MiB chunks (never the whole object at once)."""
        if not _HASH.fullmatch(key):
            raise BlobMissing(f"no blob {key!r} in bucket {self.bucket!r}")
        await self._ready()
        ranged = {} if start == 0 and end is None else {
            "Range": f"bytes={start}-{'' if end is None else end}"}
        reply = await self.call("get_object", Key=key, **ranged)
        async with reply["Body"] as body:
            pending = _Pending()
            while True:
                async with self._translate("get_object", key):
                    piece: bytes = await body.read(CHUNK_BYTES)
                if not piece:
                    break
                pending.add(piece)
                if pending.size >= CHUNK_BYTES:
                    yield pending.take()
            if pending.size:
                yield pending.take()

    async def stat(self, key: str) -> BlobStat | None:
        if not _HASH.fullmatch(key):
            return None
        await self._ready()
        try:
            head = await self.call("head_object", Key=key)
        except BlobMissing:
            return None
        modified: datetime | None = head.get("LastModified")
        return BlobStat(size=int(head["ContentLength"]), modified_at=(
            modified.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ") if modified else None))

    async def delete(self, key: str) -> None:
        if _HASH.fullmatch(key):
            await self._ready()
            await self.call("delete_object", Key=key)  # S3 deletes succeed for missing keys

    async def health(self) -> Health:
        """HeadBucket (creating the bucket when missing) within a few seconds."""
        if self._healthy_until > time.monotonic():
            return Health(ok=True, detail=f"bucket {self.bucket!r} at {self.endpoint}")
        try:
            with anyio.fail_after(HEALTH_TIMEOUT):
                await self._ensure_bucket()
        except TimeoutError:
            return Health(ok=False, detail=f"S3 endpoint {self.endpoint} did not answer "
                                           f"within {HEALTH_TIMEOUT:.0f} s")
        except FaceForgeError as exc:
            return Health(ok=False, detail=exc.message)
        except Exception as exc:  # never raises, whatever the client library does
            return Health(ok=False, detail=f"S3 endpoint {self.endpoint}: {exc!r}")
        self._healthy_until = time.monotonic() + HEALTHY_SECONDS
        return Health(ok=True, detail=f"bucket {self.bucket!r} at {self.endpoint}")

    async def close(self) -> None:
        await self._stack.aclose()
        self._client = None
        self._bucket_ready = False

    # --- S3 calls and their errors -------------------------------------------------------

    async def call(self, operation: str, **params: Any) -> dict[str, Any]:
        """One S3 operation on the bucket; its failures become storage errors."""
        client = await self._connect()
        async with self._translate(operation, params.get("Key")):
            reply: dict[str, Any] = await getattr(client, operation)(Bucket=self.bucket,
                                                                     **params)
        return reply

    async def quietly(self, call: Awaitable[Any]) -> None:
        """Await a cleanup call; a failure is logged, not raised."""
        try:
            await call
        except FaceForgeError as exc:
            self.log.warning("S3 cleanup failed: %s", exc.message)

    @contextlib.asynccontextmanager
    async def _translate(self, operation: str, key: str | None) -> AsyncIterator[None]:
        try:
            yield
        except ClientError as exc:
            raise self._client_error(exc, operation, key) from exc
        except (BotoCoreError, aiohttp.ClientError, OSError, TimeoutError) as exc:
            self._healthy_until = 0.0
            raise StorageUnavailable(
                f"S3 endpoint {self.endpoint} is unreachable: {exc}") from exc

    def _client_error(self, exc: ClientError, operation: str,
                      key: str | None) -> FaceForgeError:
        code, status = _code(exc), _status(exc)
        reason = f"{code or status}: {exc.response.get('Error', {}).get('Message') or '-'}"
        if code == "NoSuchBucket":
            self._bucket_ready = False  # removed behind our back: create it again next time
            return StorageUnavailable(f"bucket {self.bucket!r} is missing at {self.endpoint}")
        if code in {"NoSuchKey", "NotFound"} or status == 404:
            return BlobMissing(f"blob {key} is missing from bucket {self.bucket!r}")
        if code == "InvalidRange" or status == 416:
            return RangeNotSatisfiable(f"the range is outside blob {key}")
        if code in FULL_CODES or status == 507:
            return StorageFull(f"S3 endpoint {self.endpoint} has no room ({reason})")
        if status >= 500:
            self._healthy_until = 0.0
            return StorageUnavailable(f"S3 endpoint {self.endpoint} failed ({reason})")
        return StorageUnavailable(f"S3 endpoint {self.endpoint} refused {operation} on "
                                  f"bucket {self.bucket!r} ({reason})")

    # --- the client and the bucket -------------------------------------------------------

    async def _connect(self) -> Any:
        if self._client is None:
            self._client = await self._stack.enter_async_context(
                get_session().create_client("s3", **self._client_args))
        return self._client

    async def _ready(self) -> None:
        """Create the bucket if missing, once (again after a NoSuchBucket)."""
        if self._bucket_ready:
            return
        async with self._lock:
            if not self._bucket_ready:
                await self._ensure_bucket()
                self._bucket_ready = True
                if not self._swept:
                    self._swept = True
                    await self._sweep()

    async def _ensure_bucket(self) -> None:
        client = await self._connect()
        async with self._translate("head_bucket", None):
            try:
                await client.head_bucket(Bucket=self.bucket)
                return
            except ClientError as exc:
                if _status(exc) != 404:
                    raise
        params = {} if self.region == "us-east-1" else {
            "CreateBucketConfiguration": {"LocationConstraint": self.region}}
        async with self._translate("create_bucket", None):
            try:
                await client.create_bucket(Bucket=self.bucket, **params)
            except ClientError as exc:
                if _code(exc) != "BucketAlreadyOwnedByYou":  # created meanwhile: fine
                    raise
        self.log.info("created bucket %r at %s", self.bucket, self.endpoint)

    async def _sweep(self) -> None:
        """Remove temporary objects and multipart uploads a crash left (best effort)."""
        cutoff = time.time() - STALE_SECONDS
        try:
            uploads = await self.call("list_multipart_uploads", Prefix=TMP_PREFIX)
            for item in uploads.get("Uploads", []):
                if _stale(item["Key"], cutoff):
                    await self.call("abort_multipart_upload", Key=item["Key"],
                                    UploadId=item["UploadId"])
            objects = await self.call("list_objects_v2", Prefix=TMP_PREFIX)
            for item in objects.get("Contents", []):
                if _stale(item["Key"], cutoff):
                    await self.call("delete_object", Key=item["Key"])
        except FaceForgeError as exc:
            self.log.warning("stale temporary S3 objects were not swept: %s", exc.message)

    # --- writing -------------------------------------------------------------------------

    async def _size_of(self, key: str) -> int | None:
        try:
            return int((await self.call("head_object", Key=key))["ContentLength"])
        except BlobMissing:
            return None

    async def _start_upload(self, key: str, **params: Any) -> _Multipart:
        reply = await self.call("create_multipart_upload", Key=key,
                                ContentType="application/octet-stream", **params)
        return _Multipart(s3=self, key=key, upload_id=reply["UploadId"])

    async def _put_object(self, sha256: str, data: bytes) -> None:
        await self.call("put_object", Key=sha256, Body=data, Metadata={"sha256": sha256},
                        ContentType="application/octet-stream")

    async def _put(self, sha256: str, data: bytes) -> StoredBlob:
        """A short stream: one PutObject under its hash, unless the blob is there."""
        created = await self._size_of(sha256) != len(data)
        if created:
            await self._put_object(sha256, data)
            await self._verify(sha256, len(data))
        return StoredBlob(sha256=sha256, size=len(data), provider=self.name, created=created)

    async def _upload_file(self, path: Path, sha256: str) -> None:
        upload = await self._start_upload(sha256, Metadata={"sha256": sha256})
        try:
            async with await anyio.open_file(path, "rb") as file:
                while data := await file.read(_part_bytes(self.part_bytes,
                                                          upload.next_number)):
                    await upload.put(data)
            await upload.complete()
        finally:
            # a completed upload is the finished blob: only an unfinished one is aborted
            await upload.discard(delete_object=False)

    async def _publish(self, temp: str, sha256: str, size: int) -> StoredBlob:
        """Copy a complete temporary object to its hash key, unless the blob is there."""
        created = await self._size_of(sha256) != size
        if created:
            if size <= self.copy_limit:
                await self.call("copy_object", Key=sha256,
                                CopySource={"Bucket": self.bucket, "Key": temp},
                                MetadataDirective="REPLACE", Metadata={"sha256": sha256},
                                ContentType="application/octet-stream")
            else:
                await self._copy_in_parts(temp, sha256, size)
            await self._verify(sha256, size)
        return StoredBlob(sha256=sha256, size=size, provider=self.name, created=created)

    async def _copy_in_parts(self, temp: str, sha256: str, size: int) -> None:
        upload = await self._start_upload(sha256, Metadata={"sha256": sha256})
        try:
            for first in range(0, size, self.copy_part_bytes):
                await upload.copy(temp, first, min(first + self.copy_part_bytes, size) - 1)
            await upload.complete()
        finally:
            await upload.discard(delete_object=False)

    async def _verify(self, sha256: str, size: int) -> None:
        """The stored object must have the size written; a wrong one is removed.

        A cancellation after a successful write leaves the blob: it is complete, and a
        concurrent writer of the same bytes may already count on it.
        """
        stored = await self._size_of(sha256)
        if stored != size:
            with anyio.move_on_after(CLEANUP_TIMEOUT, shield=True):
                await self.quietly(self.call("delete_object", Key=sha256))
            raise StorageUnavailable(f"S3 endpoint {self.endpoint} stored {stored} bytes for "
                                     f"blob {sha256}, not {size}")


def factory(context: StorageContext) -> S3Provider:
    """The provider for config ``storage.s3``.  ``use_ssl`` picks the scheme of an endpoint
    given without one; ``path_style`` and ``verify_tls`` default to True (self-hosted stores
    rarely have a DNS name per bucket)."""
    conf = context.s3
    return S3Provider(
        endpoint_url=conf.get("endpoint_url") or None, access_key=conf.get("access_key"),
        secret_key=conf.get("secret_key"), bucket=conf.get("bucket") or "faceforge",
        region=conf.get("region") or "us-east-1", use_ssl=bool(conf.get("use_ssl", False)),
        path_style=bool(conf.get("path_style", True)),
        verify_tls=bool(conf.get("verify_tls", True)), logger=context.logger)

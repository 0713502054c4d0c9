"""The S3 provider against real S3 servers (moto, and Ceph RGW when installed or required)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

from ff_plugin_sdk.errors import RangeNotSatisfiable
from ff_plugin_sdk.storage import (
    CHUNK_BYTES,
    BlobMissing,
    StorageContext,
    StorageProvider,
    StorageUnavailable,
    TooLarge,
)
from providers.s3 import S3Provider, factory
from tests.providers.conftest import Contents, MakeProvider, fresh_bucket
from tests.s3servers import S3Server, free_port, moto_server

MiB = 1024 * 1024
ReadContents = Callable[[str], Awaitable[Contents]]


async def stream(data: bytes, chunk: int = MiB) -> AsyncIterator[bytes]:
    for start in range(0, len(data), chunk):
        yield data[start:start + chunk]


async def read_all(provider: S3Provider, key: str, start: int = 0,
                   end: int | None = None) -> bytes:
    return b"".join([c async for c in provider.open_range(key, start, end)])


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- writing -------------------------------------------------------------------------------

@pytest.mark.parametrize("size", [0, 1000, 20 * MiB + 7], ids=["empty", "small", "3-parts"])
async def test_write_stores_the_bytes_under_their_hash(
        provider: S3Provider, contents: ReadContents, s3_client: Any, size: int) -> None:
    data = os.urandom(size)
    blob = await provider.write(stream(data))
    assert (blob.sha256, blob.size, blob.provider, blob.created) == (sha(data), size, "s3", True)
    assert await read_all(provider, blob.sha256) == data
    # only the blob: no temporary object, no unfinished upload
    assert await contents(provider.bucket) == Contents(objects={sha(data): size}, uploads=[])
    head = await s3_client.head_object(Bucket=provider.bucket, Key=sha(data))
    assert head["Metadata"] == {"sha256": sha(data)}


@pytest.mark.parametrize("size", [1000, 9 * MiB], ids=["small", "multipart"])
async def test_the_same_bytes_twice_are_stored_once(
        provider: S3Provider, contents: ReadContents, size: int) -> None:
    data = os.urandom(size)
    first = await provider.write(stream(data))
    again = await provider.write(stream(data, chunk=300_000))
    assert (first.created, again.created) == (True, False)
    assert again.sha256 == first.sha256 and again.size == size
    assert await contents(provider.bucket) == Contents(objects={sha(data): size}, uploads=[])


async def test_objects_past_the_copy_limit_are_copied_in_parts(
        make_provider: MakeProvider, contents: ReadContents, s3_client: Any) -> None:
    provider = make_provider(copy_limit=10 * MiB, copy_part_bytes=6 * MiB)
    data = os.urandom(20 * MiB)
    blob = await provider.write(stream(data))
    assert await read_all(provider, blob.sha256) == data
    assert await contents(provider.bucket) == Contents(objects={sha(data): len(data)},
                                                       uploads=[])
    head = await s3_client.head_object(Bucket=provider.bucket, Key=sha(data))
    assert head["Metadata"] == {"sha256": sha(data)}


@pytest.mark.parametrize("size", [5000, 17 * MiB], ids=["small", "multipart"])
async def test_write_file_uploads_then_removes_the_file(
        provider: S3Provider, contents: ReadContents, tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    path = tmp_path / "staged"
    path.write_bytes(data)
    blob = await provider.write_file(path, sha(data), size)
    assert (blob.sha256, blob.size, blob.created) == (sha(data), size, True)
    assert not path.exists()
    assert await read_all(provider, sha(data)) == data
    path.write_bytes(data)
    assert (await provider.write_file(path, sha(data), size)).created is False
    assert not path.exists()
    assert await contents(provider.bucket) == Contents(objects={sha(data): size}, uploads=[])


@pytest.mark.parametrize("size", [11, 20 * MiB], ids=["small", "multipart"])
async def test_past_max_bytes_is_too_large_and_leaves_nothing(
        provider: S3Provider, contents: ReadContents, size: int) -> None:
    with pytest.raises(TooLarge):
        await provider.write(stream(os.urandom(size)), max_bytes=size - 1)
    assert await contents(provider.bucket) == Contents(objects={}, uploads=[])


async def test_a_cancelled_write_leaves_nothing(
        provider: S3Provider, contents: ReadContents) -> None:
    one_part_sent = asyncio.Event()

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):  # 10 MiB: the first 8 MiB part is sent before the 11th is asked
            yield os.urandom(MiB)
        one_part_sent.set()
        await anyio.sleep_forever()

    task = asyncio.create_task(provider.write(chunks()))
    await one_part_sent.wait()
    assert len((await contents(provider.bucket)).uploads) == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await contents(provider.bucket) == Contents(objects={}, uploads=[])


async def test_a_failing_stream_leaves_nothing_and_keeps_its_error(
        provider: S3Provider, contents: ReadContents) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield os.urandom(MiB)
        raise ConnectionResetError("the client went away")

    with pytest.raises(ConnectionResetError):
        await provider.write(chunks())
    assert await contents(provider.bucket) == Contents(objects={}, uploads=[])


# --- reading, stat, delete -----------------------------------------------------------------

async def test_open_range_returns_exactly_the_range_in_large_chunks(
        provider: S3Provider) -> None:
    data = os.urandom(3 * MiB + 123)
    key = (await provider.write(stream(data))).sha256
    last = len(data) - 1
    for start, end in [(0, None), (0, last), (0, 0), (last, last), (last, None), (1, None),
                       (1000, 2 * MiB + 5), (MiB, 2 * MiB - 1)]:
        assert await read_all(provider, key, start, end) == data[start:None if end is None
                                                                  else end + 1]
    sizes = [len(c) async for c in provider.open_range(key)]
    assert all(CHUNK_BYTES <= n < 2 * CHUNK_BYTES for n in sizes[:-1]) and len(sizes) <= 4


async def test_a_range_past_the_end_is_not_satisfiable(provider: S3Provider) -> None:
    key = (await provider.write(stream(b"0123456789"))).sha256
    with pytest.raises(RangeNotSatisfiable):
        await read_all(provider, key, 10, None)


async def test_stat_and_delete(provider: S3Provider) -> None:
    data = b"some bytes"
    key = (await provider.write(stream(data))).sha256
    stat = await provider.stat(key)
    assert stat is not None and stat.size == len(data)
    assert stat.modified_at and stat.modified_at.endswith("Z")
    await provider.delete(key)
    assert await provider.stat(key) is None
    await provider.delete(key)  # already gone: no error
    with pytest.raises(BlobMissing):
        await read_all(provider, key)


@pytest.mark.parametrize("key", [sha(b"never written"), "../etc/passwd", "tmp/x"])
async def test_a_missing_blob(provider: S3Provider, key: str) -> None:
    with pytest.raises(BlobMissing):
        await read_all(provider, key)
    assert await provider.stat(key) is None


# --- bucket, health, interface -------------------------------------------------------------

async def test_the_bucket_is_created_when_missing(
        make_provider: MakeProvider, s3_client: Any) -> None:
    for first_use in ("health", "write"):
        provider = make_provider()
        if first_use == "health":
            assert (await provider.health()).ok
        else:
            await provider.write(stream(b"x"))
        await s3_client.head_bucket(Bucket=provider.bucket)  # raises if missing
        # and a second provider on the existing bucket is fine
        assert (await make_provider(bucket=provider.bucket).health()).ok


async def test_temporary_objects_left_by_a_crash_are_swept(
        make_provider: MakeProvider, s3_client: Any, contents: ReadContents) -> None:
    bucket = fresh_bucket()
    await s3_client.create_bucket(Bucket=bucket)
    now = int(time.time())
    for stamp in (now - 2 * 24 * 3600, now):  # temporary keys carry their creation time
        await s3_client.put_object(Bucket=bucket, Key=f"tmp/{stamp}-crashed", Body=b"part")
        await s3_client.create_multipart_upload(Bucket=bucket, Key=f"tmp/{stamp}-unfinished")
    await s3_client.put_object(Bucket=bucket, Key="tmp/not-ours", Body=b"kept")
    await make_provider(bucket=bucket).stat(sha(b"x"))  # the first use sweeps
    assert await contents(bucket) == Contents(
        objects={f"tmp/{now}-crashed": 4, "tmp/not-ours": 4}, uploads=[f"tmp/{now}-unfinished"])


async def test_health_and_the_protocol(provider: S3Provider, s3_server: S3Server) -> None:
    assert isinstance(provider, StorageProvider)
    health = await provider.health()
    assert health.ok and s3_server.endpoint_url in health.detail


async def test_factory_reads_the_storage_s3_config(s3_server: S3Server,
                                                   tmp_path: Path) -> None:
    host_port = s3_server.endpoint_url.removeprefix("http://")
    context = StorageContext(home=tmp_path, assets_dir=tmp_path, tmp_dir=tmp_path, s3={
        "enabled": True, "endpoint_url": host_port, "access_key": s3_server.access_key,
        "secret_key": s3_server.secret_key, "bucket": fresh_bucket(), "region": "us-east-1",
        "use_ssl": False})
    provider = factory(context)
    try:
        assert provider.endpoint_url == s3_server.endpoint_url  # scheme from use_ssl
        assert provider.bucket == context.s3["bucket"]
        key = (await provider.write(stream(b"from config"))).sha256
        assert await read_all(provider, key) == b"from config"
    finally:
        await provider.close()
    assert factory(StorageContext(home=tmp_path, assets_dir=tmp_path, tmp_dir=tmp_path,
                                  s3={})).bucket == "faceforge"


# --- S3 down -------------------------------------------------------------------------------

async def test_an_unreachable_endpoint_is_unavailable(
        make_provider: MakeProvider, tmp_path: Path) -> None:
    provider = make_provider(endpoint_url=f"http://127.0.0.1:{free_port()}")
    with anyio.fail_after(10):  # a bound against hanging, not a benchmark
        health = await provider.health()
    assert not health.ok and provider.endpoint in health.detail
    with pytest.raises(StorageUnavailable, match="is unreachable"):
        await provider.write(stream(b"data"))
    with pytest.raises(StorageUnavailable):
        await read_all(provider, sha(b"data"))
    with pytest.raises(StorageUnavailable):
        await provider.stat(sha(b"data"))
    path = tmp_path / "staged"
    path.write_bytes(b"data")
    with pytest.raises(StorageUnavailable):
        await provider.write_file(path, sha(b"data"), 4)
    assert path.read_bytes() == b"data"  # left for the caller's fallback


async def test_a_server_that_stops_makes_the_provider_unavailable() -> None:
    with moto_server() as server:
        provider = S3Provider(endpoint_url=server.endpoint_url, access_key=server.access_key,
                              secret_key=server.secret_key, bucket=fresh_bucket())
        key = (await provider.write(stream(b"before"))).sha256
        assert (await provider.health()).ok
    try:
        with pytest.raises(StorageUnavailable):
            await provider.write(stream(os.urandom(9 * MiB)))
        with pytest.raises(StorageUnavailable):
            await read_all(provider, key)
        assert not (await provider.health()).ok
    finally:
        await provider.close()


# --- memory --------------------------------------------------------------------------------

async def test_a_large_stream_is_written_and_read_in_bounded_memory(
        provider: S3Provider) -> None:
    block = os.urandom(MiB)
    count = 200
    digest = hashlib.sha256()

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(count):
            chunk = i.to_bytes(8, "big") + block[8:]  # a fresh 1 MiB each time
            digest.update(chunk)
            yield chunk

    tracemalloc.start()
    try:
        blob = await provider.write(chunks())
        _, written_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        read = hashlib.sha256()
        async for chunk in provider.open_range(blob.sha256):
            read.update(chunk)
        _, read_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (blob.size, blob.sha256, read.hexdigest()) == (
        count * MiB, digest.hexdigest(), digest.hexdigest())
    assert written_peak < 64 * MiB and read_peak < 64 * MiB, (written_peak, read_peak)

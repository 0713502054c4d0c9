"""The blocking client (``FaceForge``): the same methods as the async one, returning their
results, against a Core served on a real socket."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from ff_plugin_sdk import Conflict, NotFound
from ff_plugin_sdk.client import Entity, FaceForge, Retry
from tests.ff_plugin_sdk.sdk_core import Relay, Served, blob
from tests.plugins import job_types


@pytest.fixture
def served(make_app: Any) -> Iterator[Served]:
    with Served(make_app([("testjobs", job_types)])) as server:
        yield server


@pytest.fixture
def ff(served: Served, settings: Any) -> Iterator[FaceForge]:
    with FaceForge(served.url, settings.install_token) as client:
        yield client


def test_entities_jobs_and_errors(ff: FaceForge) -> None:
    made = [ff.entities.create(f"n{n}", tags=["t"]) for n in range(7)]
    assert all(isinstance(e, Entity) for e in made)
    assert sorted(e.entity_id for e in ff.entities.every(page_size=2)) == sorted(
        e.entity_id for e in made)
    updated = ff.entities.update(made[0].entity_id, aliases=["zero"])
    assert updated.aliases == ["zero"] and updated.version == 2
    with pytest.raises(NotFound) as missing:
        ff.entities.get("0" * 64)
    assert missing.value.code == "entity_not_found"
    job = ff.jobs.create(job_types.REMOTE)
    claimed = ff.jobs.claim([job_types.REMOTE], "sync-runner", wait=1)
    assert claimed is not None and claimed.job_id == job.job_id
    assert ff.jobs.fail(job.job_id, "sync-runner", "no luck", retryable=False).status == "failed"
    with pytest.raises(Conflict):
        ff.jobs.complete(job.job_id, "sync-runner")


def test_uploads_and_downloads_through_broken_connections(served: Served, settings: Any,
                                                          tmp_path: Path) -> None:
    data = blob(2_500_000, seed=3)
    path = tmp_path / "in.bin"
    path.write_bytes(data)
    with Relay(served.port) as relay, FaceForge(
            relay.url, settings.install_token, retries=Retry(retries=5, backoff=0.01)) as ff:
        plain = ff.assets.upload(iter([data[:1000], data[1000:]]), filename="chunks.bin")
        assert plain.asset_id == hashlib.sha256(data).hexdigest()
        relay.cut("up", 700_000)
        resumed = ff.assets.upload_resumable(path, chunk_bytes=1_000_000)
        assert resumed.asset_id == plain.asset_id and resumed.deduplicated
        relay.cut("down", 900_000)
        assert ff.assets.download(plain.asset_id, tmp_path / "out.bin").read_bytes() == data
        relay.cut("down", 100_000)
        assert b"".join(ff.assets.stream(plain.asset_id, offset=5, length=1_000_000)) == \
            data[5:1_000_005]


def test_an_async_iterable_needs_the_async_client(ff: FaceForge) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"x"

    with pytest.raises(TypeError, match="AsyncFaceForge"):
        ff.assets.upload(chunks(), filename="x.bin")

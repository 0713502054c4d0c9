"""Provider-test fixtures: real S3 servers (moto always; Ceph RGW when installed or required),
a fresh bucket per test, providers closed after the test, and a raw view of a bucket."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session

from kernel.config import Settings, load_settings
from providers.s3 import S3Provider
from tests.s3servers import SERVERS, S3Server


def server_names() -> list[str]:
    """moto always; Ceph when radosgw is installed, or when CI requires it (then a missing
    radosgw is a fixture error, never a skip)."""
    if shutil.which("radosgw") or os.environ.get("FACEFORGE_REQUIRE_CEPH") == "1":
        return ["moto", "ceph"]
    return ["moto"]


@pytest.fixture(scope="session", params=server_names())
def s3_server(request: pytest.FixtureRequest) -> Iterator[S3Server]:
    with SERVERS[request.param]() as server:
        yield server


def fresh_bucket() -> str:
    """A bucket name no test has used (3-63 lowercase characters, as every store accepts)."""
    return f"ff-test-{uuid.uuid4().hex[:20]}"


def with_s3(settings: Settings, server: S3Server, routing: dict[str, Any],
            disabled: str = "thumbnails,metadata_extract") -> Settings:
    """The home's ``core.json`` with S3 on (a fresh bucket on ``server``) and ``routing``;
    the settings read again, with the ``disabled`` plugins off."""
    config = settings.paths.config_file
    config.parent.mkdir(parents=True, exist_ok=True)
    data = json.loads(config.read_text("utf-8")) if config.exists() else {}
    data["storage"] = {"s3": server.storage_s3(fresh_bucket()), "routing": routing}
    config.write_text(json.dumps(data), encoding="utf-8")
    return load_settings(settings.paths.home, env={"FACEFORGE_DISABLE_PLUGINS": disabled})


MakeProvider = Callable[..., S3Provider]


@pytest.fixture
async def make_provider(s3_server: S3Server) -> AsyncIterator[MakeProvider]:
    """Build providers on the test's server (a fresh bucket unless named); all are closed
    at the end."""
    made: list[S3Provider] = []

    def make(**options: Any) -> S3Provider:
        options.setdefault("bucket", fresh_bucket())
        options.setdefault("endpoint_url", s3_server.endpoint_url)
        made.append(S3Provider(access_key=s3_server.access_key,
                               secret_key=s3_server.secret_key, region=s3_server.region,
                               **options))
        return made[-1]

    yield make
    for provider in made:
        await provider.close()


@pytest.fixture
async def provider(make_provider: MakeProvider) -> S3Provider:
    return make_provider()


@dataclass(frozen=True)
class Contents:
    """What a bucket holds: objects (key -> size) and unfinished multipart uploads' keys."""

    objects: dict[str, int]
    uploads: list[str]


@pytest.fixture
async def s3_client(s3_server: S3Server) -> AsyncIterator[Any]:
    """A plain aiobotocore client, to look at buckets without the provider under test."""
    async with get_session().create_client(
            "s3", endpoint_url=s3_server.endpoint_url, region_name=s3_server.region,
            aws_access_key_id=s3_server.access_key,
            aws_secret_access_key=s3_server.secret_key,
            config=AioConfig(s3={"addressing_style": "path"})) as client:
        yield client


@pytest.fixture
def contents(s3_client: Any) -> Callable[[str], Awaitable[Contents]]:
    async def read(bucket: str) -> Contents:
        objects = await s3_client.list_objects_v2(Bucket=bucket)
        uploads = await s3_client.list_multipart_uploads(Bucket=bucket)
        return Contents(objects={o["Key"]: o["Size"] for o in objects.get("Contents", [])},
                        uploads=[u["Key"] for u in uploads.get("Uploads", [])])

    return read

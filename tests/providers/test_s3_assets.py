"""Assets on S3 through the whole app, against real S3 servers: routing to S3, the fallback
to the filesystem when S3 is down at upload, 503 when it is down at download."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from kernel.config import Settings, load_settings
from tests.conftest import running
from tests.kernel.conftest import assert_envelope
from tests.providers.conftest import fresh_bucket
from tests.providers.test_seaweed import free_port
from tests.s3servers import S3Server, moto_server

MiB = 1024 * 1024


def s3_settings(home: Path, server: S3Server | None, bucket: str, *,
                routing: dict[str, Any] | None = None) -> Settings:
    """A home whose uploads go to S3 (``server`` None: an endpoint nobody listens on)."""
    nobody = S3Server(name="nobody", endpoint_url=f"http://127.0.0.1:{free_port()}",
                      access_key="nobody", secret_key="nothing")
    s3 = (server or nobody).storage_s3(bucket)
    (home / "config").mkdir(parents=True, exist_ok=True)
    (home / "config" / "core.json").write_text(json.dumps({"storage": {
        "s3": s3, "routing": routing or {"default_provider": "s3"}}}))
    return load_settings(home, env={})


def staged_files(home: Path) -> list[Path]:
    return list((home / "tmp").glob("staged-*"))


async def test_uploads_go_to_s3_and_come_back_whole(
        home: Path, make_app, s3_server: S3Server, contents) -> None:
    bucket = fresh_bucket()
    settings = s3_settings(home, s3_server, bucket)
    app = make_app(settings=settings)
    data = os.urandom(12 * MiB + 123)  # more than one multipart part
    sha = hashlib.sha256(data).hexdigest()
    async with running(app, settings.install_token) as client:
        r = await client.post("/v1/assets/upload", files={"file": ("lora.safetensors", data)})
        assert r.status_code == 201, r.text
        asset = r.json()
        assert asset["asset_id"] == sha and asset["provider"] == "s3"
        assert asset["storage"] == {"provider": "s3", "bucket": bucket, "key": sha}
        assert (await contents(bucket)).objects == {sha: len(data)}
        assert not staged_files(home) and not any((home / "assets").rglob(sha))

        r = await client.get(f"/v1/assets/{sha}/download")
        assert r.status_code == 200 and hashlib.sha256(r.content).hexdigest() == sha
        r = await client.get(f"/v1/assets/{sha}/download",
                             headers={"Range": f"bytes={5 * MiB}-{9 * MiB},-10"})
        assert r.status_code == 206 and r.headers["content-type"].startswith(
            "multipart/byteranges")
        assert data[5 * MiB:9 * MiB + 1] in r.content and data[-10:] in r.content

        again = await client.post("/v1/assets/upload", files={"file": ("copy.bin", data)})
        assert again.status_code == 200 and again.json()["deduplicated"] is True
        assert (await contents(bucket)).objects == {sha: len(data)}

        # deleted: the collector (woken by the delete, or run now) removes the object
        assert (await client.delete(f"/v1/assets/{sha}")).status_code == 204
        await app.state.kernel.services["assets.collector"].sweep()
        assert (await contents(bucket)).objects == {}
        r = await client.get(f"/v1/assets/{sha}", params={"include_deleted": "true"})
        assert r.json()["blob_present"] is False


async def test_s3_down_at_upload_falls_back_to_disk(home: Path, make_app) -> None:
    settings = s3_settings(home, None, fresh_bucket())
    app = make_app(settings=settings)
    data = os.urandom(MiB)
    async with running(app, settings.install_token) as client:
        r = await client.post("/v1/assets/upload", files={"file": ("a.bin", data)})
        assert r.status_code == 201, r.text
        sha = r.json()["asset_id"]
        assert r.json()["provider"] == "fs"
        blob = home / "assets" / sha[:2] / sha[2:4] / sha
        assert blob.read_bytes() == data
        assert (await client.get(f"/v1/assets/{sha}/download")).content == data
    log = (home / "logs" / "core.log").read_text()
    assert "is unreachable" in log and "storing on 'fs' instead" in log


async def test_s3_down_at_download_is_a_503(home: Path, make_app) -> None:
    bucket = fresh_bucket()
    data = os.urandom(2 * MiB)
    with contextlib.ExitStack() as s3:
        server = s3.enter_context(moto_server())
        settings = s3_settings(home, server, bucket)
        app = make_app(settings=settings)
        async with running(app, settings.install_token) as client:
            r = await client.post("/v1/assets/upload", files={"file": ("a.bin", data)})
            sha = r.json()["asset_id"]
            assert r.json()["provider"] == "s3"
            assert (await client.get(f"/v1/assets/{sha}/download")).content == data
            s3.close()  # S3 stops while Core runs
            r = await client.head(f"/v1/assets/{sha}/download")
            assert r.status_code == 503
            body = assert_envelope(await client.get(f"/v1/assets/{sha}/download"), 503,
                                   "storage_unavailable")
            assert server.endpoint_url in body["message"]
            # the record is still served, and a new upload goes to the disk meanwhile
            assert (await client.get(f"/v1/assets/{sha}")).json()["provider"] == "s3"
            r = await client.post("/v1/assets/upload", files={"file": ("b.bin", b"bee")})
            assert r.status_code == 201 and r.json()["provider"] == "fs"

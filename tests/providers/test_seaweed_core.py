"""Core runs the managed SeaweedFS when ``seaweed.enabled``: started with Core (with
generated S3 credentials), stopped with Core; without a ``weed`` Core still starts."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from kernel.config import load_settings
from tests.conftest import running
from tests.providers.test_seaweed import FakeWeed, free_port, gone, posix_only, until


def write_config(home: Path, seaweed: dict) -> None:
    (home / "config").mkdir(parents=True, exist_ok=True)
    (home / "config" / "core.json").write_text(json.dumps({"seaweed": seaweed}))


@posix_only
async def test_core_starts_and_stops_the_managed_seaweedfs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_app) -> None:
    home = tmp_path / "home"
    fake = FakeWeed(home)  # its weed lands in <home>/tools/weed, the first place looked
    monkeypatch.setenv("FAKE_WEED_STATE", str(fake.state))
    s3_port = free_port()
    write_config(home, {"enabled": True, "s3_port": s3_port, "master_port": free_port(),
                        "volume_port": free_port(), "filer_port": free_port()})
    settings = load_settings(home, env={})
    # never anonymous: credentials were generated and kept in core.json
    saved = json.loads((home / "config" / "core.json").read_text())["storage"]["s3"]
    assert saved["access_key"] and len(saved["secret_key"]) >= 32

    app = make_app(settings=settings)
    async with running(app, settings.install_token) as client:
        kernel = app.state.kernel
        seaweed = kernel.storage.seaweed
        await until(lambda: seaweed.status.state == "running")
        argv = fake.runs()[0]["argv"]
        assert f"-s3.port={s3_port}" in argv and "-s3" in argv
        assert f"-dir={home / 's3' / 'seaweedfs'}" in argv
        config_file = Path(next(a for a in argv if a.startswith("-s3.config="))
                           .split("=", 1)[1])
        assert config_file.stat().st_mode & 0o777 == 0o600
        identity = json.loads(config_file.read_text())["identities"][0]
        assert identity["credentials"][0] == {"accessKey": saved["access_key"],
                                              "secretKey": saved["secret_key"]}
        # the S3 provider is built and points at the managed endpoint
        assert kernel.storage.providers["s3"].endpoint_url == f"http://127.0.0.1:{s3_port}"
        assert (await client.get("/v1/ping")).status_code == 200
        pid = seaweed.status.pid
    assert seaweed.status.state == "stopped"
    assert gone(pid)


async def test_without_a_weed_binary_core_starts_and_stores_on_disk(
        home: Path, make_app) -> None:
    write_config(home, {"enabled": True, "s3_port": free_port()})
    settings = load_settings(home, env={})
    app = make_app(settings=settings)
    async with running(app, settings.install_token) as client:
        assert app.state.kernel.storage.seaweed is None
        assert "no weed binary was found" in (home / "logs" / "core.log").read_text()
        r = await client.post("/v1/assets/upload", files={"file": ("a.bin", os.urandom(64))})
        assert r.status_code == 201 and r.json()["provider"] == "fs"

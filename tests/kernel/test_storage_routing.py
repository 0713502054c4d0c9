"""Upload routing (``storage.routing``): kind_map, then s3_min_size_bytes, then the
default; a provider a plugin contributes is used like a built-in one."""

from __future__ import annotations

import json
import os
from pathlib import Path

import contributions

from kernel.config import load_settings
from tests.conftest import running
from tests.kernel.conftest import assert_envelope


def settings_with(home: Path, storage: dict):
    (home / "config").mkdir(parents=True, exist_ok=True)
    (home / "config" / "core.json").write_text(json.dumps({"storage": storage}))
    return load_settings(home, env={})


async def test_rules_in_order(home: Path, make_app) -> None:
    settings = settings_with(home, {"routing": {
        "default_provider": "fs", "s3_min_size_bytes": 1000,
        "kind_map": {"model.lora": "fs", "image": "memory", "image.thumbnail": "fs"}}})
    app = make_app(settings=settings)
    async with running(app, settings.install_token):
        storage = app.state.kernel.storage
        assert storage.route("image.thumbnail", 10**9) == "fs"  # the exact kind first
        assert storage.route("image.original", 10) == "memory"  # then its family
        assert storage.route("model.lora", 10**9) == "fs"  # kind_map beats the size rule
        assert storage.route("doc.pdf", 1000) == "s3"  # the size rule (>= the threshold)
        assert storage.route("doc.pdf", 999) == "fs"  # then the default
        assert storage.route(None, None) == "fs"


async def test_a_plugin_provider_receives_its_kinds(home: Path, make_app) -> None:
    settings = settings_with(home, {"routing": {"kind_map": {"contrib": "memory"}}})
    app = make_app([("contributions", contributions)], settings=settings)
    async with running(app, settings.install_token) as client:
        data = os.urandom(5000)
        r = await client.post("/v1/assets/upload", files={"file": ("s.bin", data)},
                              data={"kind": "contrib.sketch"})
        assert r.status_code == 201 and r.json()["provider"] == "memory"
        asset_id = r.json()["asset_id"]
        memory = app.state.kernel.storage.providers["memory"]
        assert memory.blobs[asset_id] == data
        assert not any((home / "assets").rglob(asset_id))  # not on disk as well
        assert not list((home / "tmp").iterdir())  # the staged file was taken
        r = await client.get(f"/v1/assets/{asset_id}/download")
        assert r.status_code == 200 and r.content == data
        # other kinds still go to the default
        r = await client.post("/v1/assets/upload", files={"file": ("o.bin", b"other")})
        assert r.json()["provider"] == "fs"


async def test_a_route_to_a_provider_that_is_not_enabled_stores_on_disk(
        home: Path, make_app) -> None:
    settings = settings_with(home, {"routing": {"default_provider": "s3"}})
    app = make_app(settings=settings)
    async with running(app, settings.install_token) as client:
        log = (home / "logs" / "core.log").read_text()
        assert "names provider 's3', which is not enabled" in log
        r = await client.post("/v1/assets/upload", files={"file": ("a.bin", b"abc")})
        assert r.status_code == 201 and r.json()["provider"] == "fs"


async def test_a_blob_on_a_provider_that_is_gone_is_a_503(home: Path, make_app) -> None:
    settings = settings_with(home, {"routing": {"kind_map": {"contrib": "memory"}}})
    app = make_app([("contributions", contributions)], settings=settings)
    async with running(app, settings.install_token) as client:
        r = await client.post("/v1/assets/upload", files={"file": ("s.bin", b"sketch")},
                              data={"kind": "contrib.sketch"})
        asset_id = r.json()["asset_id"]
    # the next start runs without the plugin that provided the store
    app = make_app(settings=settings)
    async with running(app, settings.install_token) as client:
        r = await client.get(f"/v1/assets/{asset_id}")
        assert r.status_code == 200 and r.json()["provider"] == "memory"
        body = assert_envelope(await client.get(f"/v1/assets/{asset_id}/download"), 503,
                               "storage_unavailable")
        assert "'memory'" in body["message"]


async def test_staging_a_crash_left_is_removed_at_start(home: Path, make_app) -> None:
    """Half-written uploads and the batch folders of a bulk import, not other files."""
    settings = load_settings(home, env={})
    tmp = settings.paths.tmp_dir
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "staged-abc.part").write_bytes(b"half")
    batch = tmp / "staged-run-batch-3"
    batch.mkdir()
    (batch / "staged-run-17.part").write_bytes(b"copied")
    (tmp / "keep.txt").write_text("not ours to remove")
    async with running(make_app(settings=settings), settings.install_token):
        assert sorted(p.name for p in tmp.iterdir()) == ["keep.txt"]

"""A separately installed plugin package, found only by its entry point, starts disabled;
enabled (without a restart) it adds a route, a table, a job type, an entity tab and an
event subscriber — and disabling it takes every one of them away at once.

The package is examples/sample_plugin (``pip install -e examples/sample_plugin``).
"""

from __future__ import annotations

import ast
from importlib import metadata
from pathlib import Path

from kernel.config import load_settings
from kernel.plugins import ENTRY_POINT_GROUP
from tests.conftest import running

from .conftest import eventually, kernel_of, require_sample_plugin
from .plugin_helpers import enable_plugin

PLUGIN = "sample"


def test_sample_is_a_real_distribution_with_an_entry_point() -> None:
    require_sample_plugin()
    dist = metadata.distribution("faceforge-sample-plugin")
    points = [ep for ep in dist.entry_points if ep.group == ENTRY_POINT_GROUP]
    assert [(ep.name, ep.value) for ep in points] == [(PLUGIN, "faceforge_sample_plugin")]


def test_sample_imports_only_the_sdk() -> None:
    sample = require_sample_plugin()
    tree = ast.parse(Path(sample.__file__).read_text(encoding="utf-8"))
    imported = {alias.name.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module}
    assert "ff_plugin_sdk" in imported
    server = {"kernel", "plugins_builtin", "ui", "providers", "starlette", "hypercorn",
              "aiosqlite"}
    assert not imported & server, imported


async def test_sample_contributions_are_live(make_app, settings) -> None:
    require_sample_plugin()
    app = make_app()  # no extra_plugins: found through the entry point only
    kernel = kernel_of(app)
    info = next(p for p in kernel.plugins if p.name == PLUGIN)
    assert info.distribution == "faceforge-sample-plugin"

    async with running(app, settings.install_token) as client:
        # third-party: disabled until someone enables it
        response = await client.get("/v1/plugins/sample/hello")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "plugin_disabled"
        assert not await kernel.db.fetchone(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name='sample_greetings'")
        assert "sample" not in {t.id for t in kernel.entity_tabs}
        await enable_plugin(client, PLUGIN)
        # route
        response = await client.get("/v1/plugins/sample/hello")
        assert response.status_code == 200
        assert response.json()["message"] == "hello from the sample plugin"
        operation = (await client.get("/openapi.json")).json()["paths"][
            "/v1/plugins/sample/hello"]["get"]
        assert operation["x-faceforge-plugin"] == PLUGIN
        assert operation["x-faceforge-scope"] == "system:read"
        # migration
        assert await kernel.db.fetchone(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name='sample_greetings'")
        assert await kernel.db.fetchone(
            "SELECT 1 FROM schema_migrations WHERE plugin = ? AND version = 1", (PLUGIN,))
        # job types: one run by Core's pool, one claimed by an out-of-process runner
        job = (await client.post("/v1/jobs", json={"type": "sample.greet"})).json()

        async def finished() -> dict | None:
            now = (await client.get(f"/v1/jobs/{job['job_id']}")).json()
            return now if now["status"] == "succeeded" else None

        done = await eventually(finished, what="the sample.greet job to succeed")
        assert done["result"] == {"greeting": "hello"} and done["runner_id"] == "core"
        await client.post("/v1/jobs", json={"type": "sample.render"})
        claimed = await client.post("/v1/jobs/claim", json={"types": ["sample.render"],
                                                            "runner_id": "sample-runner"})
        assert claimed.status_code == 200 and claimed.json()["type"] == "sample.render"
        # entity tab (a UI panel)
        tab = next(t for t in kernel.entity_tabs if t.id == "sample")
        assert tab.label == "Sample"
        assert "Hello from the sample plugin" in await tab.render(None, {"id": "e1"})
        # its settings, checked against its manifest's schema, reach it at once
        saved = await client.put("/v1/plugins/sample/config", json={"greeting": "Ahoy"})
        assert saved.status_code == 200 and saved.json()["greeting"] == "Ahoy"
        assert "Ahoy from the sample plugin" in await tab.render(None, {"id": "e1"})
        # event subscriber
        event_id = await kernel.db.write(lambda tx: tx.event("sample.test", {"hi": 1}))

        async def greeted() -> list:
            body = (await client.get("/v1/plugins/sample/hello")).json()
            return [g for g in body["greetings"] if g["event_id"] == event_id]

        seen = await eventually(greeted, what="the sample subscriber to write the event down")
        assert seen == [{"event_id": event_id, "event_type": "sample.test"}]

        # disabled: every contribution goes at once, without a restart
        assert (await client.post("/v1/plugins/sample/disable")).json()["state"] == "disabled"
        response = await client.get("/v1/plugins/sample/hello")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "plugin_disabled"
        assert "sample" not in {t.id for t in kernel.entity_tabs}
        refused = await client.post("/v1/jobs", json={"type": "sample.greet"})
        assert refused.status_code == 422
        assert "sample" not in {s.name for s in kernel.events.subscribers}
        quiet = await kernel.db.write(lambda tx: tx.event("sample.test", {"hi": 2}))
        await client.post("/v1/plugins/sample/enable",
                          json={"accept_permissions": ["entities:read", "events:read"]})
        later = await kernel.db.write(lambda tx: tx.event("sample.test", {"hi": 3}))

        async def heard() -> list:
            body = (await client.get("/v1/plugins/sample/hello")).json()
            return [g["event_id"] for g in body["greetings"]
                    if g["event_id"] >= quiet and g["event_type"] == "sample.test"] or None

        # enabled again, it hears what happens from then on, not what it missed
        assert await eventually(heard, what="the sample subscriber to hear the new event") \
            == [later]


async def test_sample_state_survives_a_restart(make_app, settings) -> None:
    require_sample_plugin()
    async with running(make_app(), settings.install_token) as client:
        await enable_plugin(client, PLUGIN)
    async with running(make_app(), settings.install_token) as client:
        assert (await client.get("/v1/plugins/sample/hello")).status_code == 200
        await client.post("/v1/plugins/sample/disable")
    async with running(make_app(), settings.install_token) as client:
        assert (await client.get("/v1/plugins/sample/hello")).status_code == 404


async def test_disabled_sample_contributes_nothing(make_app, home) -> None:
    require_sample_plugin()
    settings = load_settings(home, env={"FACEFORGE_DISABLE_PLUGINS": PLUGIN})
    app = make_app(settings=settings)
    kernel = kernel_of(app)
    assert PLUGIN not in {p.name for p in kernel.plugins}

    async with running(app, settings.install_token) as client:
        response = await client.get("/v1/plugins/sample/hello")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "plugin_not_found"
        assert "/v1/plugins/sample/hello" not in (await client.get("/openapi.json")).json()[
            "paths"]
        assert not await kernel.db.fetchone(
            "SELECT 1 FROM sqlite_master WHERE name='sample_greetings'")
        assert "sample.greet" not in kernel.job_types
        assert "sample" not in [t.id for t in kernel.entity_tabs]
        info = (await client.get("/v1/system/info")).json()
        assert PLUGIN not in {p["name"] for p in info["plugins"]}

"""Out-of-process plugins: folders with a plugin.json, found, validated, enabled with
consent, given a token holding exactly their scopes, run, configured and disabled."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import running

from .conftest import anonymous, assert_envelope, eventually, kernel_of

#: a runner that writes down the environment Core gave it, then waits to be stopped
RUNNER = """\
import json, os, pathlib, sys, time
keys = ("FACEFORGE_URL", "FACEFORGE_TOKEN", "FACEFORGE_PLUGIN_ID", "FACEFORGE_PLUGIN_PORT")
seen = {key: os.environ.get(key) for key in keys}
seen["cwd"] = os.getcwd()
pathlib.Path("env.json.tmp").write_text(json.dumps(seen))
os.replace("env.json.tmp", "env.json")
print("runner up, token", os.environ["FACEFORGE_TOKEN"], flush=True)
while True:
    time.sleep(1)
"""


def manifest(plugin_id: str = "watcher", **changes: Any) -> dict[str, Any]:
    return {"id": plugin_id, "name": "Watcher", "version": "1.0.0", "core_compat": ">=0.1",
            "capabilities": ["runner"], "permissions": ["entities:read", "network"],
            "job_types": [f"{plugin_id}.scan"],
            "entrypoints": {"runner": {"argv": ["python", "runner.py"]}},
            "config_schema": {"type": "object", "properties": {
                "depth": {"type": "integer", "minimum": 1},
                "paths": {"type": "array", "items": {"type": "string"}}},
                "additionalProperties": False},
            **changes}


def install(home: Path, folder: str, content: dict[str, Any] | str,
            runner: str = RUNNER) -> Path:
    path = home / "plugins" / folder
    path.mkdir(parents=True, exist_ok=True)
    text = content if isinstance(content, str) else json.dumps(content)
    (path / "plugin.json").write_text(text, "utf-8")
    (path / "runner.py").write_text(runner, "utf-8")
    return path


async def plugin(client: httpx.AsyncClient, plugin_id: str) -> dict[str, Any]:
    response = await client.get(f"/v1/plugins/{plugin_id}")
    assert response.status_code == 200, response.text
    return response.json()


def seen_env(folder: Path) -> dict[str, Any] | None:
    try:
        return json.loads((folder / "env.json").read_text("utf-8"))
    except FileNotFoundError:
        return None


@pytest.fixture
def with_home(home: Path) -> Path:
    (home / "plugins").mkdir(parents=True, exist_ok=True)
    return home


async def test_a_new_folder_plugin_starts_disabled_and_asks_for_consent(
        make_app, settings, with_home) -> None:
    folder = install(with_home, "watcher", manifest())
    async with running(make_app(), settings.install_token) as client:
        info = await plugin(client, "watcher")
        assert info["kind"] == "out_of_process" and info["state"] == "disabled"
        assert info["scopes"] == ["entities:read"] and info["needs"] == ["network"]
        assert info["needs_consent"] == ["entities:read", "network"]
        assert info["source"] == str(folder)

        refused = await client.post("/v1/plugins/watcher/enable")
        error = assert_envelope(refused, 409, "consent_required")
        assert {d["permission"]: d["kind"] for d in error["details"]} == {
            "entities:read": "scope", "network": "need"}
        partly = await client.post("/v1/plugins/watcher/enable",
                                   json={"accept_permissions": ["entities:read"]})
        assert_envelope(partly, 409, "consent_required")
        assert seen_env(folder) is None  # nothing ran without consent


async def test_enabling_runs_the_runner_with_a_token_holding_exactly_its_scopes(
        make_app, settings, with_home) -> None:
    folder = install(with_home, "watcher", manifest())
    app = make_app()
    async with running(app, settings.install_token) as client:
        enabled = await client.post("/v1/plugins/watcher/enable", json={
            "accept_permissions": ["entities:read", "network"]})
        assert enabled.status_code == 200, enabled.text
        assert enabled.json()["consent"]["version"] == "1.0.0"
        env = await eventually(lambda: seen_env(folder), what="the runner to start")
        assert env["FACEFORGE_PLUGIN_ID"] == "watcher"
        assert Path(env["cwd"]).resolve() == folder.resolve()
        assert env["FACEFORGE_URL"].startswith("http://127.0.0.1:")
        token = env["FACEFORGE_TOKEN"]
        assert token != settings.install_token

        as_plugin = anonymous(client)
        as_plugin.headers["Authorization"] = f"Bearer {token}"
        assert (await as_plugin.get("/v1/entities")).status_code == 200
        forbidden = await as_plugin.post("/v1/entities", json={"display_name": "x"})
        error = assert_envelope(forbidden, 403, "missing_scope")
        assert error["details"] == [{"missing_scope": "entities:write"}]
        assert_envelope(await as_plugin.get("/v1/plugins"), 403, "missing_scope")
        # its own settings, and nobody else's
        assert (await as_plugin.get("/v1/plugins/watcher/config")).status_code == 200
        assert_envelope(await as_plugin.get("/v1/plugins/sample/config"), 403,
                        "missing_scope")

        async def logged() -> str | None:
            tail = "\n".join((await plugin(client, "watcher"))["runner"]["log_tail"])
            return tail if "runner up" in tail else None

        log_tail = await eventually(logged, what="the runner's output in its log")
        assert token not in log_tail  # redacted
        info = await plugin(client, "watcher")
        assert info["runner"]["state"] == "running" and info["runner"]["pid"]
        assert "watcher.scan" in kernel_of(app).job_types

        # disabled: the token stops working and the runner goes
        assert (await client.post("/v1/plugins/watcher/disable")).json()["state"] == "disabled"
        assert_envelope(await as_plugin.get("/v1/entities"), 401, "unauthorized")
        assert (await plugin(client, "watcher"))["runner"]["state"] == "stopped"
        assert "watcher.scan" not in kernel_of(app).job_types
        await as_plugin.aclose()


async def test_enabled_state_survives_a_restart_with_a_fresh_token(
        make_app, settings, with_home) -> None:
    folder = install(with_home, "watcher", manifest())
    async with running(make_app(), settings.install_token) as client:
        await client.post("/v1/plugins/watcher/enable", json={
            "accept_permissions": ["entities:read", "network"]})
        first = (await eventually(lambda: seen_env(folder), what="the runner"))[
            "FACEFORGE_TOKEN"]
    (folder / "env.json").unlink()
    async with running(make_app(), settings.install_token) as client:
        env = await eventually(lambda: seen_env(folder), what="the runner after a restart")
        assert env["FACEFORGE_TOKEN"] != first
        assert (await plugin(client, "watcher"))["state"] == "enabled"
        old = anonymous(client)
        old.headers["Authorization"] = f"Bearer {first}"
        assert_envelope(await old.get("/v1/entities"), 401, "unauthorized")
        await old.aclose()


@pytest.mark.parametrize(("content", "reason"), [
    ("{not json", "not valid JSON"),
    (manifest(version="one"), "not a PEP 440 version"),
    (manifest(core_compat=">=99"), "needs FaceForge Core >=99"),
    (manifest(config_schema={"type": "object", "properties": {"x": {"type": "nope"}}}),
     "not a valid JSON Schema"),
    (manifest(job_types=["scan"]), "must be namespaced as 'watcher.<name>'"),
    (manifest(permissions=["read everything"]), "neither an API scope"),
    ({"id": "watcher"}, "name"),
    (manifest(config_schema={"type": "object", "properties": {
        "x": {"$ref": "https://example.com/schema.json"}}}), "only references inside"),
])
async def test_a_broken_plugin_is_listed_in_error_with_its_reason(
        make_app, settings, with_home, content, reason) -> None:
    install(with_home, "watcher", content)
    async with running(make_app(), settings.install_token) as client:
        listed = {p["id"]: p for p in (await client.get("/v1/plugins")).json()["items"]}
        info = listed["watcher"]
        assert info["state"] == "error" and reason in info["reason"]
        refused = await client.post("/v1/plugins/watcher/enable",
                                    json={"accept_permissions": ["entities:read", "network"]})
        assert_envelope(refused, 409, "plugin_error")


async def test_a_duplicate_id_is_an_error_naming_the_first(make_app, settings,
                                                           with_home) -> None:
    install(with_home, "a_watcher", manifest())
    install(with_home, "b_watcher", manifest())
    install(with_home, "c_sample", manifest("sample", job_types=[]))
    async with running(make_app(), settings.install_token) as client:
        items = (await client.get("/v1/plugins")).json()["items"]
        watchers = [p for p in items if p["id"] == "watcher"]
        assert [p["state"] for p in watchers] == ["disabled", "error"]
        assert "a_watcher" in watchers[1]["reason"]
        sample = [p for p in items if p["id"] == "sample"]
        assert [p["kind"] for p in sample] == ["in_process", "out_of_process"]
        assert "duplicate id" in sample[1]["reason"]


async def test_rescan_finds_new_changed_and_removed_folders(make_app, settings,
                                                            with_home) -> None:
    async with running(make_app(), settings.install_token) as client:
        assert "watcher" not in {p["id"] for p in (await client.get("/v1/plugins")).json()[
            "items"]}
        folder = install(with_home, "watcher", manifest())
        rescanned = (await client.post("/v1/plugins/rescan")).json()["items"]
        assert "watcher" in {p["id"] for p in rescanned}
        await client.post("/v1/plugins/watcher/enable", json={
            "accept_permissions": ["entities:read", "network"]})
        await eventually(lambda: seen_env(folder), what="the runner")

        # a new version asking for more: stopped until the user agrees again
        install(with_home, "watcher", manifest(version="1.1.0",
                                               permissions=["entities:read", "network", "gpu"]))
        await client.post("/v1/plugins/rescan")
        info = await plugin(client, "watcher")
        assert info["state"] == "disabled" and info["needs_consent"] == ["gpu"]
        assert "asks for more" in info["reason"]
        assert info["runner"] is None or info["runner"]["state"] == "stopped"
        again = await client.post("/v1/plugins/watcher/enable",
                                  json={"accept_permissions": ["gpu"]})
        assert again.json()["state"] == "enabled"
        assert again.json()["consent"]["version"] == "1.1.0"

        (folder / "plugin.json").unlink()
        await client.post("/v1/plugins/rescan")
        assert_envelope(await client.get("/v1/plugins/watcher"), 404, "plugin_not_found")


async def test_settings_are_checked_against_the_schema(make_app, settings, with_home) -> None:
    install(with_home, "watcher", manifest())
    async with running(make_app(), settings.install_token) as client:
        bad = await client.put("/v1/plugins/watcher/config",
                               json={"depth": 0, "paths": ["a", 3], "colour": "red"})
        error = assert_envelope(bad, 422, "invalid_config")
        paths = {d["path"] for d in error["details"]}
        assert {"$.depth", "$.paths[1]", "$"} <= paths
        assert (await client.get("/v1/plugins/watcher/config")).json() == {}
        good = await client.put("/v1/plugins/watcher/config",
                                json={"depth": 2, "paths": ["/srv"]})
        assert good.status_code == 200 and good.json() == {"depth": 2, "paths": ["/srv"]}
        assert (await client.get("/v1/plugins/watcher/config")).json() == good.json()
        not_object = await client.put("/v1/plugins/watcher/config", json=[1])
        assert_envelope(not_object, 422)
        assert_envelope(await client.put("/v1/plugins/nope/config", json={}), 404,
                        "plugin_not_found")


async def test_plugins_core_needs_cannot_be_disabled(client) -> None:
    for plugin_id in ("entities", "assets", "jobs", "ui", "plugin_admin"):
        assert_envelope(await client.post(f"/v1/plugins/{plugin_id}/disable"), 409,
                        "plugin_required")
    thumbnails = await client.post("/v1/plugins/thumbnails/disable")
    assert thumbnails.json()["state"] == "disabled"


async def test_plugins_admin_needs_its_scope(client) -> None:
    kernel_scoped = await kernel_of_client(client).scoped_tokens.issue("reader",
                                                                       ["entities:read"])
    reader = anonymous(client)
    reader.headers["Authorization"] = f"Bearer {kernel_scoped}"
    for method, path in [("GET", "/v1/plugins"), ("POST", "/v1/plugins/sample/enable"),
                         ("POST", "/v1/plugins/rescan"), ("GET", "/v1/plugins/sample/config"),
                         ("PUT", "/v1/plugins/sample/config")]:
        response = await reader.request(method, path, json={})
        assert_envelope(response, 403, "missing_scope")
    await reader.aclose()


def kernel_of_client(client: httpx.AsyncClient) -> Any:
    return kernel_of(client._transport.app)  # type: ignore[attr-defined]


def test_runner_argv_python_means_cores_python() -> None:
    from kernel.runners import RunnerProcess
    runner = RunnerProcess("x", ["python", "-V"], cwd=Path("."), log_file=Path("x.log"),
                           redact=str)
    assert runner.argv[0] == sys.executable


async def test_a_new_plugin_folder_is_noticed_without_a_rescan(make_app, settings,
                                                               with_home) -> None:
    async with running(make_app(), settings.install_token) as client:
        install(with_home, "watcher", manifest())

        async def listed() -> bool:
            items = (await client.get("/v1/plugins")).json()["items"]
            return "watcher" in {p["id"] for p in items}

        await eventually(listed, timeout=15, interval=0.1,
                         what="Core to notice the new plugin folder by itself")


async def test_an_in_process_plugin_failing_to_start_stays_disabled_saying_why(
        make_app, settings, monkeypatch) -> None:
    import faceforge_sample_plugin

    from ff_plugin_sdk import hookimpl

    @hookimpl
    def faceforge_startup(kernel: Any) -> None:
        raise RuntimeError("the GPU is on fire")

    monkeypatch.setattr(faceforge_sample_plugin, "faceforge_startup", faceforge_startup,
                        raising=False)
    async with running(make_app(), settings.install_token) as client:
        refused = await client.post("/v1/plugins/sample/enable", json={
            "accept_permissions": ["entities:read", "events:read"]})
        error = assert_envelope(refused, 409, "plugin_failed")
        assert "the GPU is on fire" in error["message"]
        info = await plugin(client, "sample")
        assert info["state"] == "disabled" and "the GPU is on fire" in info["reason"]
        assert_envelope(await client.get("/v1/plugins/sample/hello"), 404, "plugin_disabled")

"""Loading plugins and calling their hooks: failures name the plugin, order is plugin order,
and every contribution reaches the kernel through the ``Hooks`` façade."""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path

import async_routes
import bad_job_type
import broken_hook
import contributions
import failing_startup
import pytest
import wrong_args
from ordered import Ordered
from same_route import SameRoute
from scoped_routes import BadName, TakesKernelScope, UsesUnknown, Wraps
from subscribers import Collecting, Failing

from ff_plugin_sdk import Event
from kernel.config import load_settings
from kernel.errors import PluginError
from kernel.plugins import ENTRY_POINT_GROUP, build_plugin_manager
from tests.conftest import running

from .conftest import anonymous, eventually, kernel_of


def log_lines(home: Path) -> list[dict]:
    path = home / "logs" / "core.log"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


# --- load failures name the plugin ------------------------------------------------------


@pytest.mark.parametrize(("name", "plugin", "detail"), [
    ("broken_hook", broken_hook, "faceforge_rotes"),  # a misspelt hook name
    ("wrong_args", wrong_args, "app"),  # a hook argument that does not exist
    ("async_routes", async_routes, "faceforge_routes must not be async"),
    ("wraps", Wraps(), "hook wrapper for faceforge_routes"),  # wrappers are not run
    # scopes: undeclared, badly named, or taken from another owner
    ("uses_unknown", UsesUnknown(), "unknown scope 'notes:raed'"),
    ("bad_name", BadName(), "'Notes Read'"),
    ("takes_kernel_scope", TakesKernelScope(), "'kernel' already declares"),
])
def test_an_invalid_plugin_is_refused_naming_it_and_the_fault(make_app, name, plugin,
                                                             detail) -> None:
    with pytest.raises(PluginError) as info:
        make_app(extra_plugins=[(name, plugin)])
    assert f"'{name}'" in str(info.value)
    assert detail in str(info.value)


def test_same_plugin_name_twice_is_refused(make_app) -> None:
    with pytest.raises(PluginError, match="'twice' is registered twice"):
        make_app(extra_plugins=[("twice", SameRoute()), ("twice", Ordered("x", []))])


def test_two_plugins_adding_the_same_route_are_both_named(make_app) -> None:
    with pytest.raises(PluginError) as info:
        make_app(extra_plugins=[("first_owner", SameRoute()), ("second_owner", SameRoute())])
    message = str(info.value)
    assert "'first_owner'" in message and "'second_owner'" in message
    assert "GET /v1/same" in message


def test_third_party_entry_point_that_fails_to_import_is_kept_with_its_reason(
        monkeypatch) -> None:
    # not shipped with FaceForge: Core still starts and lists it in error, saying why
    ghost = metadata.EntryPoint(name="ghost", value="faceforge_no_such_module_xyz",
                                group=ENTRY_POINT_GROUP)
    monkeypatch.setattr(metadata, "entry_points", lambda group: [ghost])
    pm, infos = build_plugin_manager()
    assert not pm.has_plugin("ghost")
    [info] = infos
    assert info.name == "ghost" and not info.builtin and info.plugin is None
    assert "'ghost'" in info.error and "faceforge_no_such_module_xyz" in info.error


@pytest.mark.parametrize(("name", "plugin", "detail"), [
    ("failing_startup", failing_startup, "no GPU found"),  # its startup hook raises
    ("bad_job_type", bad_job_type, "'greet'"),  # a job type without a namespace
])
async def test_a_plugin_failing_at_start_stops_it_naming_the_plugin(make_app, name, plugin,
                                                                   detail) -> None:
    app = make_app(extra_plugins=[(name, plugin)])
    with pytest.raises(PluginError) as info:
        async with app.router.lifespan_context(app):
            pass
    assert f"'{name}'" in str(info.value)
    assert detail in str(info.value)
    # kept for the CLI, which prints it as its one-line error
    assert kernel_of(app).startup_error is info.value


# --- disabling --------------------------------------------------------------------------


def plugin_names(app) -> set[str]:
    return {p.name for p in kernel_of(app).plugins}


async def test_disable_plugins_blocks_an_entry_point(make_app, home) -> None:
    installed = {ep.name for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}
    assert "entities" in installed
    assert "entities" in plugin_names(make_app())

    blocked = make_app(settings=load_settings(
        home, env={"FACEFORGE_DISABLE_PLUGINS": "entities"}))
    assert "entities" not in plugin_names(blocked)
    async with running(blocked, kernel_of(blocked).settings.install_token) as client:
        info = (await client.get("/v1/system/info")).json()
    assert "entities" not in {p["name"] for p in info["plugins"]}


def test_disable_plugins_also_blocks_an_explicit_plugin(make_app, home) -> None:
    settings = load_settings(home, env={"FACEFORGE_DISABLE_PLUGINS": "broken_hook"})
    app = make_app(extra_plugins=[("broken_hook", broken_hook)], settings=settings)
    assert "broken_hook" not in plugin_names(app)


# --- call order -------------------------------------------------------------------------


async def test_async_results_are_awaited_in_plugin_order(make_app, settings) -> None:
    log: list[tuple[str, str]] = []
    app = make_app(extra_plugins=[("first", Ordered("first", log)),
                                  ("second", Ordered("second", log))])
    async with running(app, settings.install_token):
        # ready comes once every plugin has started
        assert log == [("startup", "first"), ("startup", "second"), ("ready", "first"),
                       ("ready", "second")]
        kinds = await kernel_of(app).hooks.asset_kinds()
        assert [(plugin, kind.name) for plugin, kind in kinds
                if plugin in ("first", "second")] == [("first", "first.kind"),
                                                      ("second", "second.kind")]
    # Shutdown runs in reverse plugin order.
    assert log[4:] == [("shutdown", "second"), ("shutdown", "first")]


async def test_a_failing_shutdown_does_not_skip_the_others(make_app, home) -> None:
    log: list[tuple[str, str]] = []
    app = make_app(extra_plugins=[("ordered", Ordered("ordered", log)),
                                  ("failing_startup", failing_startup)])
    with pytest.raises(PluginError):
        async with app.router.lifespan_context(app):
            pass
    assert ("shutdown", "ordered") in log
    assert any(line["message"] == "plugin 'failing_startup' failed in faceforge_shutdown"
               for line in log_lines(home))


# --- notification hooks -----------------------------------------------------------------


async def test_a_failing_event_subscriber_does_not_stop_the_next(make_app, settings,
                                                                 home) -> None:
    collecting = Collecting()
    app = make_app(extra_plugins=[("failing", Failing()), ("collecting", collecting)])
    async with running(app, settings.install_token):
        kernel = kernel_of(app)
        event_id = await kernel.db.write(lambda tx: tx.event("test.happened", {"n": 1}))
        await eventually(lambda: collecting.events, what="the event to reach 'collecting'")
    assert [(e.id, e.type, e.data) for e in collecting.events] == [
        (event_id, "test.happened", {"n": 1})]
    assert isinstance(collecting.events[0], Event)
    assert any(line["message"] == f"plugin 'failing' failed in faceforge_event for event "
               f"{event_id} (test.happened)"
               and "subscriber is broken" in line.get("exception", "")
               for line in log_lines(home))


async def test_asset_ingested_reaches_every_subscriber(make_app, settings) -> None:
    collecting = Collecting()
    app = make_app(extra_plugins=[("failing", Failing()), ("collecting", collecting)])
    async with running(app, settings.install_token):
        kernel = kernel_of(app)
        await kernel.hooks.asset_ingested(kernel, {"asset_id": "ab" * 32, "kind": "image"})
    assert collecting.assets == [{"asset_id": "ab" * 32, "kind": "image"}]


# --- contribution hooks reach the kernel -------------------------------------------------


@pytest.fixture
async def contrib_app(make_app):
    return make_app(extra_plugins=[("contributions", contributions)])


@pytest.fixture
async def contrib(contrib_app, settings):
    async with running(contrib_app, settings.install_token) as client:
        yield kernel_of(contrib_app), client


async def test_migrations_hook_creates_the_table(contrib) -> None:
    kernel, _ = contrib
    assert await kernel.db.fetchone(
        "SELECT name FROM sqlite_master WHERE type='table' AND name='contrib_notes'")
    contributed = await kernel.hooks.migrations()
    assert [(p, m.version) for p, m in contributed if p == "contributions"] == [
        ("contributions", 1)]


async def test_status_hook_lines_reach_the_api_and_the_system_page(contrib) -> None:
    _, client = contrib
    r = await client.get("/v1/system/status")
    assert r.status_code == 200
    assert {"plugin": "contributions", "name": "contrib widget", "state": "off",
            "message": "contrib widget off: no gears"} in r.json()["items"]
    page = await client.get("/ui/system")
    assert "contrib widget off: no gears" in page.text


async def test_job_types_hook(contrib) -> None:
    kernel, _ = contrib
    assert kernel.job_types["contrib.noop"].summary == "does nothing"
    assert ("contributions", "contrib.noop") in [
        (p, j.name) for p, j in await kernel.hooks.job_types(kernel)]


async def test_asset_kinds_hook(contrib) -> None:
    kernel, _ = contrib
    assert ("contributions", "contrib.sketch") in [
        (p, k.name) for p, k in await kernel.hooks.asset_kinds()]


async def test_storage_providers_hook(contrib) -> None:
    kernel, _ = contrib
    providers = {t.name: (p, t) for p, t in await kernel.hooks.storage_providers()}
    plugin, _ = providers["memory"]
    assert plugin == "contributions"
    # built at start from the storage context, beside the built-in filesystem provider
    built = kernel.storage.providers["memory"]
    assert type(built).__name__ == "MemoryStorage"
    assert built.context.assets_dir == kernel.paths.assets_dir
    assert kernel.storage.providers["fs"].name == "fs"


async def test_config_schema_hook(contrib) -> None:
    kernel, client = contrib
    schemas = await kernel.hooks.config_schemas()
    assert schemas["contributions"]["properties"]["greeting"] == {"type": "string"}
    # the plugins page and the API show it, and settings are checked against it
    listed = (await client.get("/v1/plugins/contributions")).json()
    assert listed["config_schema"] == schemas["contributions"]
    bad = await client.put("/v1/plugins/contributions/config", json={"greeting": 3})
    assert bad.status_code == 422 and bad.json()["error"]["details"][0]["path"] == "$.greeting"
    saved = await client.put("/v1/plugins/contributions/config", json={"greeting": "hi"})
    assert saved.status_code == 200
    assert kernel.plugin_config("contributions") == {"greeting": "hi"}


async def test_static_dirs_hook_serves_files_publicly(contrib) -> None:
    kernel, client = contrib
    assert [(p, d.name) for p, d in kernel.hooks.static_dirs()
            if p == "contributions"] == [("contributions", "contrib")]
    async with anonymous(client) as anon:
        response = await anon.get("/static/contrib/hello.txt")
    assert response.status_code == 200
    assert response.text.strip() == "hello from a plugin's static folder"


async def test_ui_templates_and_pages_hooks_render_a_page(contrib) -> None:
    kernel, client = contrib
    assert Path(contributions.__file__).parent / "contrib_templates" in \
        kernel.hooks.ui_templates()
    assert ("contributions", "/contrib") in [(p, page.path)
                                             for p, page in kernel.hooks.ui_pages(kernel)]
    response = await client.get("/ui/contrib")
    assert response.status_code == 200
    assert "<h1>Page from contrib</h1>" in response.text


async def test_ui_nav_hook_is_sorted_by_order_then_label(contrib) -> None:
    kernel, _ = contrib
    mine = [e.label for e in kernel.nav if e.href == "/ui/contrib"]
    assert mine == ["Alpha contrib", "Zeta contrib"]
    assert [e.label for e in await kernel.hooks.ui_nav(kernel)] == [e.label for e in kernel.nav]


async def test_ui_shell_widgets_hook_puts_live_elements_on_every_page(contrib) -> None:
    kernel, client = contrib
    mine = [w for w in kernel.shell_widgets if w.id.startswith("contrib-")]
    assert [w.id for w in mine] == ["contrib-a", "contrib-b"]  # by order, then id
    page = (await client.get("/ui/events")).text  # any page of the shell
    assert ('id="widget-contrib-b" hx-get="/ui/contrib"' in page
            and 'hx-trigger="load, every 7s"' in page)
    assert 'id="widget-contrib-a"' in page


async def test_ui_entity_tabs_hook(contrib) -> None:
    kernel, _ = contrib
    tab = next(t for t in kernel.entity_tabs if t.id == "contrib")
    assert tab.label == "Contrib"
    assert await tab.render(None, {"id": "e1"}) == "<p>contrib tab for e1</p>"
    assert "contrib" in [t.id for t in await kernel.hooks.ui_entity_tabs(kernel)]

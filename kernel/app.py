"""The app factory: plugins in, a Starlette app out.  Nothing global; one call, one Core."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from ff_plugin_sdk.types import ApiRoute, UIPage
from kernel import plugin_api, system_api
from kernel.access import AccessMiddleware
from kernel.auth import (
    PUBLIC,
    SIGNED_IN,
    Authenticator,
    AuthMiddleware,
    RouteTable,
    ScopeRegistry,
    check_form_csrf,
    declare,
)
from kernel.config import Settings, load_settings
from kernel.db import Database
from kernel.docs import docs_routes
from kernel.envelope import EXCEPTION_HANDLERS
from kernel.errors import NotFound, PluginError
from kernel.events import EventBus
from kernel.hooks import Hooks
from kernel.limits import BodyLimitMiddleware
from kernel.log import configure_logging
from kernel.migrations import apply_migrations
from kernel.openapi import build_openapi
from kernel.plugin_proxy import RunnerProxy
from kernel.plugins import build_plugin_manager
from kernel.registry import PluginRegistry
from kernel.routing import build_route
from kernel.runner_plugins import proxy_api_route, proxy_ui_routes, runner_factory
from kernel.services import Kernel, KernelAuth
from kernel.sessions import SessionStore
from kernel.storage import Storage
from kernel.templating import Templates
from kernel.tokens import InstallToken, ScopedTokens

log = logging.getLogger("faceforge.app")
KERNEL_STATIC = Path(__file__).parent / "static"
#: how long shutdown waits for subscribers to take the events committed so far
DRAIN_SECONDS = 5.0
PLUGIN_ROUTES = "/v1/plugins/"


def build_kernel(settings: Settings, extra_plugins: Sequence[tuple[str, Any]] = ()) -> Kernel:
    """Load plugins and wire the kernel's services; opens nothing."""
    pm, infos = build_plugin_manager(settings.disabled_plugins, extra_plugins)
    hooks = Hooks(pm)
    db = Database(settings.paths.db_file)
    auth_config = settings.config.auth
    install = InstallToken(settings.paths.config_file, settings.install_token)
    sessions = SessionStore(db, install, timedelta(hours=auth_config.session_ttl_hours),
                            timedelta(minutes=auth_config.session_idle_minutes))
    scopes = ScopeRegistry()
    for plugin, scope in hooks.scopes():
        scopes.add(plugin, scope.name, scope.description)
    scoped = ScopedTokens(db, scopes.names)
    authenticator = Authenticator(install, sessions, scoped, scopes.names)
    kernel = Kernel(
        settings=settings, hooks=hooks, plugins=infos, db=db, events=EventBus(db),
        tokens=install, scoped_tokens=scoped, sessions=sessions, scopes=scopes,
        auth=KernelAuth(authenticator),
    )
    kernel.registry = PluginRegistry(kernel, runner_factory(kernel))
    kernel.proxy = RunnerProxy()
    return kernel


async def open_kernel(kernel: Kernel) -> list[tuple[str, int, str]]:
    """Open the database, apply the kernel's migrations, read which plugins are enabled,
    then apply theirs; returns what was applied."""
    await kernel.db.open()
    try:
        applied = await apply_migrations(kernel.db, [])
        await kernel.scoped_tokens.load()
        await kernel.registry.load()
        return applied + await apply_migrations(kernel.db, await kernel.hooks.migrations())
    except BaseException:
        await kernel.db.close()
        raise


async def start_kernel(kernel: Kernel) -> None:
    """Everything after migrations: credentials, UI contributions, job types, events, plugins."""
    await kernel.sessions.load()
    await kernel.scoped_tokens.load()
    await kernel.refresh_contributions()
    kernel.storage = Storage(kernel.settings, await kernel.hooks.storage_providers())
    await kernel.storage.start()
    if swept := kernel.storage.sweep_staged():
        log.info("removed %d half-written upload(s) left in tmp/", swept)
    await kernel.events.start(kernel.hooks.event_subscribers(kernel))
    kernel.sessions.start_purging()
    await kernel.hooks.startup(kernel)
    await kernel.hooks.ready(kernel)
    await kernel.registry.start()


async def stop_kernel(kernel: Kernel) -> None:
    """Runners stop; streams end, subscribers get what was committed (bounded), plugins
    stop, db closes."""
    await kernel.registry.stop()
    await kernel.proxy.aclose()
    await kernel.events.close_streams()
    await kernel.finish_ingests(DRAIN_SECONDS)
    await kernel.events.drain(DRAIN_SECONDS)
    await kernel.events.stop()
    await kernel.sessions.stop()
    await kernel.hooks.shutdown(kernel)
    if kernel.storage is not None:
        await kernel.storage.close()
    await kernel.db.close()


def _api_routes(kernel: Kernel) -> list[tuple[str, str, ApiRoute]]:
    routes = [("kernel", r.path, r) for r in [*system_api.routes(kernel),
                                              *plugin_api.routes(kernel)]]
    routes += [(plugin, "/v1" + r.path, r) for plugin, r in kernel.hooks.routes(kernel)]
    routes.append(("kernel", "/v1/plugins/{plugin_id}/{path:path}", proxy_api_route(kernel)))
    owners: dict[tuple[str, str], str] = {}
    for plugin, path, route in routes:
        kernel.scopes.check(plugin, f"route {'/'.join(route.methods)} {path}", route.scope)
        for method in route.methods:
            if (method, path) in owners:
                raise PluginError(f"plugin {plugin!r} adds {method} {path}, which plugin "
                                  f"{owners[method, path]!r} already provides")
            owners[method, path] = plugin
    return routes


def _enabled(kernel: Kernel, plugin: str) -> Callable[[], None]:
    """Refuses a request to a disabled plugin's route or page."""

    def check() -> None:
        if plugin in kernel.hooks.inactive:
            raise NotFound(f"the plugin {plugin!r} is disabled; enable it on the plugins page",
                           code="plugin_disabled")

    return check


def _page(page: UIPage, check: Callable[[], None]) -> BaseRoute:
    endpoint = page.endpoint

    async def handle(request: Request) -> Response:
        check()
        await check_form_csrf(request)
        return await endpoint(request)

    return declare(Route("/ui" + page.path, handle, methods=list(page.methods),
                         name=page.name or getattr(endpoint, "__name__", None)),
                   PUBLIC if page.public else SIGNED_IN)


def _failed(kernel: Kernel, exc: Exception) -> None:
    """Keep the reason for the CLI, which prints it as one line."""
    kernel.startup_error = exc
    log.error("cannot start: %s", exc)


def create_app(
    settings: Settings | None = None,
    *,
    extra_plugins: Sequence[tuple[str, Any]] = (),
    console_log: bool = True,
) -> Starlette:
    """Build one Core: plugins, routes, OpenAPI, UI, middleware and lifespan."""
    settings = settings or load_settings()
    kernel = build_kernel(settings, extra_plugins)
    cfg = settings.config.logging
    redactor = configure_logging(settings.paths.logs_dir, level=cfg.level,
                                 max_bytes=cfg.max_bytes, backup_count=cfg.backup_count,
                                 secrets=[settings.install_token], console=console_log)
    kernel.tokens.listeners.append(redactor.secrets.append)
    kernel.redactor = redactor

    api = _api_routes(kernel)
    kernel.api_routes = api
    routes: list[BaseRoute] = [build_route(r, path, _enabled(kernel, plugin))
                               for plugin, path, r in api]
    routes += [declare(r, PUBLIC) for r in docs_routes(build_openapi(api, version=kernel.version))]

    kernel.templates = Templates(kernel, kernel.hooks.ui_templates())
    routes += [_page(page, _enabled(kernel, plugin))
               for plugin, page in kernel.hooks.ui_pages(kernel)]
    routes.append(declare(Route("/", lambda request: RedirectResponse("/ui/", status_code=303)),
                          SIGNED_IN))
    static = [("kernel", KERNEL_STATIC)] + [(d.name, d.path) for _, d in
                                            kernel.hooks.static_dirs()]
    routes += [declare(Mount(f"/static/{name}", StaticFiles(directory=path),
                             name=f"static-{name}"), PUBLIC)
               for name, path in static]
    routes += proxy_ui_routes(kernel)
    # Plugins' own routes first (in their order: the runner proxy stays last of them), so a
    # proxied request does not walk the whole table; no other path can match them.
    routes.sort(key=lambda r: not getattr(r, "path", "").startswith(PLUGIN_ROUTES))
    table = RouteTable(routes)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            await open_kernel(kernel)
        except Exception as exc:
            _failed(kernel, exc)
            raise
        try:
            try:
                await start_kernel(kernel)
            except Exception as exc:
                _failed(kernel, exc)
                raise
            log.info("FaceForge %s started; home %s; plugins: %s", kernel.version,
                     settings.paths.home, ", ".join(p.name for p in kernel.plugins) or "none")
            yield
        finally:
            await stop_kernel(kernel)
            log.info("FaceForge stopped")

    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(AccessMiddleware, access_log=cfg.access_log),
            Middleware(AuthMiddleware, authenticator=kernel.auth.authenticator, table=table),
            Middleware(BodyLimitMiddleware, default_limit=settings.config.limits.body_bytes),
        ],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )
    app.state.kernel = kernel
    return app

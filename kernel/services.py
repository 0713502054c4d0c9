"""The :class:`Kernel`: one running Core; what plugins receive in hooks.

It implements :class:`ff_plugin_sdk.kernel.Kernel` (the whole plugin surface) and holds the
kernel-only parts beside it (settings, hooks, credentials, the route table).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import platform
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
from starlette.requests import Request

from ff_plugin_sdk.types import ApiRoute, EntityTab, JobType, NavEntry, Principal, ShellWidget
from kernel import __version__, correlation
from kernel.auth import (
    SESSION_COOKIE,
    Authenticator,
    ScopeRegistry,
    check_form_csrf,
    principal_of,
)
from kernel.clock import utc_now
from kernel.config import CoreConfig, Settings
from kernel.db import Database
from kernel.errors import PluginError
from kernel.events import EventBus
from kernel.home import Paths
from kernel.hooks import Hooks
from kernel.log import Redactor
from kernel.plugins import PluginInfo
from kernel.runner_plugins import contributions
from kernel.sessions import SessionStore
from kernel.storage import Storage
from kernel.tokens import InstallToken, ScopedTokens

if TYPE_CHECKING:
    from starlette.responses import Response

    from kernel.plugin_proxy import RunnerProxy
    from kernel.registry import PluginRegistry
    from kernel.templating import Templates


class KernelAuth:
    """The auth part of the plugin surface: who is calling, UI sign-in and sign-out."""

    session_cookie = SESSION_COOKIE
    principal = staticmethod(principal_of)
    check_form_csrf = staticmethod(check_form_csrf)

    def __init__(self, authenticator: Authenticator) -> None:
        self.authenticator = authenticator
        self.sessions = authenticator.sessions

    @property
    def session_max_age(self) -> int:
        return int(self.sessions.ttl.total_seconds())

    def still_valid(self, principal: Principal) -> bool:
        return self.authenticator.still_valid(principal)

    def is_install_token(self, token: str) -> bool:
        return self.authenticator.install.matches(token)

    async def start_session(self) -> tuple[str, str]:
        return await self.sessions.create()

    async def end_session(self, session_id: str) -> None:
        await self.sessions.delete(session_id)


@dataclass
class Kernel:
    """One running Core.  Built by the app factory; usable by hooks from startup on."""

    settings: Settings
    hooks: Hooks
    plugins: list[PluginInfo]
    db: Database
    events: EventBus
    tokens: InstallToken
    scoped_tokens: ScopedTokens
    sessions: SessionStore
    scopes: ScopeRegistry
    auth: KernelAuth
    version: str = __version__
    started_at: float = field(default_factory=time.time)
    #: every API route as (plugin, full path, route)
    api_routes: list[tuple[str, str, ApiRoute]] = field(default_factory=list)
    templates: Templates | None = None
    nav: list[NavEntry] = field(default_factory=list)
    entity_tabs: list[EntityTab] = field(default_factory=list)
    shell_widgets: list[ShellWidget] = field(default_factory=list)
    job_types: dict[str, JobType] = field(default_factory=dict)
    #: set by the UI shell: renders an error page inside the layout
    error_page: Callable[[Request, int, str], Awaitable[Response]] | None = None
    #: why the lifespan failed, for the CLI's one-line message
    startup_error: Exception | None = None
    services: dict[str, Any] = field(default_factory=dict)
    storage: Storage | None = None  # set at start
    #: every installed plugin and its state (set by the app factory)
    registry: PluginRegistry = None  # type: ignore[assignment]
    #: forwards requests to out-of-process plugins' runners (set by the app factory)
    proxy: RunnerProxy = None  # type: ignore[assignment]
    #: removes secrets from log lines (set with the logging, by the app factory)
    redactor: Redactor | None = None
    #: set when Core begins to stop: long waits (a runner's claim) end at once
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    #: ``faceforge_asset_ingested`` calls still running
    _ingest_tasks: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def config(self) -> CoreConfig:
        return self.settings.config

    @property
    def paths(self) -> Paths:
        return self.settings.paths

    @property
    def home(self) -> Path:
        return self.settings.paths.home

    @property
    def tools_dir(self) -> Path:
        return self.settings.paths.tools_dir

    def tools_config(self) -> dict[str, Any]:
        return msgspec.structs.asdict(self.config.tools)

    @staticmethod
    def now() -> str:
        return utc_now()

    def plugin_config(self, plugin: str) -> dict[str, Any]:
        return self.registry.config(plugin)

    async def refresh_contributions(self) -> None:
        """What the enabled plugins add to the UI and the job queue, read again (at start,
        and whenever a plugin is enabled or disabled)."""
        job_types, nav, tabs = contributions(self.registry)
        self.nav = sorted([*await self.hooks.ui_nav(self), *nav],
                          key=lambda e: (e.order, e.label))
        self.entity_tabs = sorted([*await self.hooks.ui_entity_tabs(self), *tabs],
                                  key=lambda t: (t.order, t.label))
        self.shell_widgets = await self.hooks.ui_shell_widgets(self)
        types = {}
        for plugin, job_type in [*await self.hooks.job_types(self),
                                 *(("outside", t) for t in job_types)]:
            if "." not in job_type.name:
                raise PluginError(f"plugin {plugin!r}: job type {job_type.name!r} must be "
                                  f"namespaced as '<plugin>.<name>'")
            types[job_type.name] = job_type
        # changed in place: the job queue holds this very dict
        self.job_types.clear()
        self.job_types.update(types)

    async def plugin_started(self, plugin: str) -> None:
        """An in-process plugin enabled while Core runs: its startup, ready and events."""
        await self.hooks.startup(self, only=plugin)
        await self.hooks.ready(self, only=plugin)
        await self.events.start(self.hooks.event_subscribers(self, only=plugin))

    async def plugin_stopped(self, plugin: str) -> None:
        """An in-process plugin disabled while Core runs: no more events; its shutdown."""
        await self.events.forget(plugin)
        await self.hooks.shutdown(self, only=plugin)

    @staticmethod
    def logger(plugin: str) -> logging.Logger:
        return logging.getLogger(f"faceforge.plugins.{plugin}")

    @staticmethod
    def correlation_id() -> str | None:
        return correlation.correlation_id.get()

    @staticmethod
    @contextlib.contextmanager
    def correlated(correlation_id: str | None) -> Iterator[None]:
        token = correlation.correlation_id.set(correlation_id)
        try:
            yield
        finally:
            correlation.correlation_id.reset(token)

    def asset_ingested(self, asset: dict[str, Any]) -> None:
        task = asyncio.get_running_loop().create_task(self._ingested(asset))
        self._ingest_tasks.add(task)
        task.add_done_callback(self._ingest_tasks.discard)

    async def _ingested(self, asset: dict[str, Any]) -> None:
        try:
            await self.hooks.asset_ingested(self, asset)
        except Exception:
            logging.getLogger("faceforge.hooks").exception(
                "faceforge_asset_ingested failed for asset %s", asset.get("asset_id"))

    async def finish_ingests(self, timeout: float) -> None:
        """Let running ``asset_ingested`` work finish (bounded), then cancel the rest."""
        pending = set(self._ingest_tasks)
        if not pending:
            return
        _, late = await asyncio.wait(pending, timeout=timeout)
        for task in late:
            task.cancel()
        if late:
            await asyncio.wait(late)

    async def status(self) -> list[dict[str, str]]:
        try:
            lines = await self.hooks.status(self)
        except Exception as exc:  # a plugin's failure is a line of status, not a 500
            logging.getLogger("faceforge.hooks").exception("faceforge_status failed")
            return [{"plugin": "?", "name": "status", "state": "error", "message": str(exc)}]
        return [{"plugin": plugin, "name": line.name, "state": line.state,
                 "message": line.message} for plugin, line in lines]

    def system_info(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "home": str(self.paths.home),
            "paths": self.paths.as_dict(),
            "plugins": [{"name": p.name, "module": p.module, "version": p.version,
                         "distribution": p.distribution} for p in self.plugins],
            "routes": sorted({(path, plugin) for plugin, path, _ in self.api_routes}),
            "scopes": {name: {"plugin": owner, "description": text}
                       for name, (owner, text) in sorted(self.scopes.scopes.items())},
            "sqlite_version": self.db.sqlite_version,
            "python_version": sys.version.split()[0],
            "platform": platform.platform(),
            "started_at": self.started_at,
            "uptime_seconds": round(time.time() - self.started_at, 3),
            "bind_host": self.settings.host,
            "port": self.settings.port,
        }

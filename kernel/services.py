"""The :class:`Kernel`: what plugins receive in hooks — config, paths, database, events."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ff_plugin_sdk.types import ApiRoute, EntityTab, JobType, NavEntry
from kernel import __version__
from kernel.auth import SessionStore, TokenStore
from kernel.config import CoreConfig, Settings
from kernel.db import Database
from kernel.events import EventBus
from kernel.home import Paths
from kernel.hooks import Hooks
from kernel.plugins import PluginInfo

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from kernel.templating import Templates


@dataclass
class Kernel:
    """One running Core.  Built by the app factory; usable by hooks from startup on."""

    settings: Settings
    hooks: Hooks
    plugins: list[PluginInfo]
    db: Database
    events: EventBus
    tokens: TokenStore
    sessions: SessionStore
    version: str = __version__
    started_at: float = field(default_factory=time.time)
    #: every API route as (plugin, full path, route)
    api_routes: list[tuple[str, str, ApiRoute]] = field(default_factory=list)
    templates: Templates | None = None
    nav: list[NavEntry] = field(default_factory=list)
    entity_tabs: list[EntityTab] = field(default_factory=list)
    job_types: dict[str, JobType] = field(default_factory=dict)
    #: set by the UI shell: renders an error page inside the layout
    error_page: Callable[[Request, int, str], Awaitable[Response]] | None = None
    #: why the lifespan failed, for the CLI's one-line message
    startup_error: Exception | None = None
    #: services plugins publish for each other, keyed by ``<plugin>.<name>``
    services: dict[str, Any] = field(default_factory=dict)

    @property
    def config(self) -> CoreConfig:
        return self.settings.config

    @property
    def paths(self) -> Paths:
        return self.settings.paths

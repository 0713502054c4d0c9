"""The one place hooks are called (tox's façade).

pluggy is synchronous; implementations may be ``async def``.  Every call here runs the
implementations in plugin order, awaits any awaitable result, and attributes failures to the
plugin that raised them.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy

from ff_plugin_sdk.types import (
    ApiRoute,
    AssetKind,
    EntityTab,
    Event,
    JobType,
    Migration,
    NavEntry,
    Scope,
    ShellWidget,
    StaticDir,
    StatusLine,
    StorageProviderType,
    UIPage,
)
from kernel.errors import PluginError
from kernel.events import Deliver

if TYPE_CHECKING:
    from kernel.services import Kernel

log = logging.getLogger("faceforge.hooks")
#: hooks that only describe what a plugin would add: read from every installed plugin when
#: the app is built (routes and pages are mounted once and answer 404 while it is disabled)
DESCRIBING = frozenset({"faceforge_scopes", "faceforge_routes", "faceforge_ui_pages",
                        "faceforge_static_dirs", "faceforge_ui_templates"})


class Hooks:
    """Typed calls into the plugins registered on one plugin manager."""

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self.pm = pm
        #: plugins that are disabled (or in error): no hook but the describing ones calls them
        self.inactive: set[str] = set()

    # -- plumbing ------------------------------------------------------------------------
    def _impls(self, name: str, reverse: bool = False,
               only: str | None = None) -> list[pluggy.HookImpl]:
        # pluggy lists implementations in registration order (it *calls* them last-registered
        # first); plugin order is registration order, with tryfirst/trylast still honoured.
        impls = sorted(getattr(self.pm.hook, name).get_hookimpls(),
                       key=lambda impl: (not impl.tryfirst, impl.trylast))
        if only is not None:  # one plugin being enabled or disabled while the others run
            impls = [i for i in impls if i.plugin_name == only]
        elif name not in DESCRIBING:
            impls = [i for i in impls if i.plugin_name not in self.inactive]
        return impls[::-1] if reverse else impls

    @staticmethod
    def _failed(impl: pluggy.HookImpl, name: str, exc: Exception) -> PluginError:
        return PluginError(
            f"plugin {impl.plugin_name!r} failed in {name}: {type(exc).__name__}: {exc}")

    def _invoke(self, impl: pluggy.HookImpl, name: str, kwargs: dict[str, Any]) -> Any:
        try:
            return impl.function(*[kwargs[a] for a in impl.argnames])
        except Exception as exc:
            raise self._failed(impl, name, exc) from exc

    def call_sync(self, name: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """Call a hook whose implementations must be synchronous."""
        results = []
        for impl in self._impls(name):
            result = self._invoke(impl, name, kwargs)
            if inspect.isawaitable(result):
                result.close()  # type: ignore[attr-defined]
                raise PluginError(f"plugin {impl.plugin_name!r}: {name} must not be async")
            if result is not None:
                results.append((impl.plugin_name, result))
        return results

    async def call(self, name: str, only: str | None = None,
                   **kwargs: Any) -> list[tuple[str, Any]]:
        """Call a hook, awaiting async implementations one after another in plugin order
        (``only``: just that plugin's)."""
        results = []
        for impl in self._impls(name, only=only):
            result = self._invoke(impl, name, kwargs)
            if inspect.isawaitable(result):
                try:
                    result = await result
                except Exception as exc:
                    raise self._failed(impl, name, exc) from exc
            if result is not None:
                results.append((impl.plugin_name, result))
        return results

    @staticmethod
    def _flatten(results: Iterable[tuple[str, Any]]) -> list[tuple[str, Any]]:
        return [(plugin, item) for plugin, items in results for item in items]

    # -- contribution --------------------------------------------------------------------
    def scopes(self) -> list[tuple[str, Scope]]:
        return self._flatten(self.call_sync("faceforge_scopes"))

    async def migrations(self, only: str | None = None) -> list[tuple[str, Migration]]:
        return self._flatten(await self.call("faceforge_migrations", only=only))

    def routes(self, kernel: Kernel) -> list[tuple[str, ApiRoute]]:
        return self._flatten(self.call_sync("faceforge_routes", kernel=kernel))

    async def job_types(self, kernel: Kernel) -> list[tuple[str, JobType]]:
        return self._flatten(await self.call("faceforge_job_types", kernel=kernel))

    async def asset_kinds(self) -> list[tuple[str, AssetKind]]:
        return self._flatten(await self.call("faceforge_asset_kinds"))

    async def storage_providers(self) -> list[tuple[str, StorageProviderType]]:
        return self._flatten(await self.call("faceforge_storage_providers"))

    async def config_schemas(self) -> dict[str, dict[str, Any]]:
        return dict(await self.call("faceforge_config_schema"))

    def static_dirs(self) -> list[tuple[str, StaticDir]]:
        return self._flatten(self.call_sync("faceforge_static_dirs"))

    def ui_templates(self) -> list[Path]:
        return [path for _, path in self._flatten(self.call_sync("faceforge_ui_templates"))]

    async def status(self, kernel: Kernel) -> list[tuple[str, StatusLine]]:
        return self._flatten(await self.call("faceforge_status", kernel=kernel))

    async def ui_nav(self, kernel: Kernel) -> list[NavEntry]:
        entries = [e for _, e in self._flatten(await self.call("faceforge_ui_nav", kernel=kernel))]
        return sorted(entries, key=lambda e: (e.order, e.label))

    def ui_pages(self, kernel: Kernel) -> list[tuple[str, UIPage]]:
        return self._flatten(self.call_sync("faceforge_ui_pages", kernel=kernel))

    async def ui_shell_widgets(self, kernel: Kernel) -> list[ShellWidget]:
        widgets = self._flatten(await self.call("faceforge_ui_shell_widgets", kernel=kernel))
        return sorted((w for _, w in widgets), key=lambda w: (w.order, w.id))

    async def ui_entity_tabs(self, kernel: Kernel) -> list[EntityTab]:
        tabs = self._flatten(await self.call("faceforge_ui_entity_tabs", kernel=kernel))
        return sorted((t for _, t in tabs), key=lambda t: (t.order, t.label))

    # -- lifecycle -----------------------------------------------------------------------
    async def startup(self, kernel: Kernel, only: str | None = None) -> None:
        await self.call("faceforge_startup", only=only, kernel=kernel)

    async def ready(self, kernel: Kernel, only: str | None = None) -> None:
        await self.call("faceforge_ready", only=only, kernel=kernel)

    async def shutdown(self, kernel: Kernel, only: str | None = None) -> None:
        """Every plugin gets its shutdown, in reverse order, even when an earlier one fails."""
        await self.notify("faceforge_shutdown", reverse=True, only=only, kernel=kernel)

    # -- notification / processing -------------------------------------------------------
    async def notify(self, name: str, reverse: bool = False, only: str | None = None,
                     **kwargs: Any) -> None:
        """Call every implementation; one failing is logged and does not stop the rest."""
        for impl in self._impls(name, reverse, only):
            try:
                result = impl.function(*[kwargs[a] for a in impl.argnames])
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("plugin %r failed in %s", impl.plugin_name, name)

    def event_subscribers(self, kernel: Kernel,
                          only: str | None = None) -> list[tuple[str, Deliver]]:
        """One delivery function per plugin implementing ``faceforge_event``, in plugin
        order; a failing delivery is logged, never raised."""

        def deliver_with(impl: pluggy.HookImpl) -> Deliver:
            async def deliver(event: Event) -> None:
                if impl.plugin_name in self.inactive:  # disabled while the event was on its way
                    return
                try:
                    result = impl.function(*[{"kernel": kernel, "event": event}[a]
                                             for a in impl.argnames])
                    if inspect.isawaitable(result):
                        await result
                except Exception:
                    log.exception("plugin %r failed in faceforge_event for event %d (%s)",
                                  impl.plugin_name, event.id, event.type)
            return deliver

        return [(impl.plugin_name, deliver_with(impl))
                for impl in self._impls("faceforge_event", only=only)]

    async def asset_ingested(self, kernel: Kernel, asset: dict[str, Any]) -> None:
        await self.notify("faceforge_asset_ingested", kernel=kernel, asset=asset)

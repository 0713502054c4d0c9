"""Finding and registering plugins: the ``faceforge.plugins`` entry points.

Built-in features and third-party packages are found the same way.  The manager is built by
the app factory for each app, never at import.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from importlib import metadata
from typing import Any

import pluggy

from ff_plugin_sdk import PROJECT_NAME
from kernel import hookspecs
from kernel.errors import PluginError

ENTRY_POINT_GROUP = "faceforge.plugins"


@dataclass(frozen=True)
class PluginInfo:
    """What ``/v1/system/info`` and the plugins page say about a loaded plugin."""

    name: str
    module: str
    version: str | None
    distribution: str | None
    #: the registered module or object (None when it could not be registered)
    plugin: Any = None
    #: shipped with FaceForge (or added by the app builder): enabled unless told otherwise
    builtin: bool = True
    #: why a third-party plugin could not be registered (it is listed in ``error`` state)
    error: str | None = None


def parse_disabled(value: str | None) -> frozenset[str]:
    """``FACEFORGE_DISABLE_PLUGINS=a,b`` -> {"a", "b"}."""
    return frozenset(p.strip() for p in (value or "").split(",") if p.strip())


def build_plugin_manager(
    disabled: Iterable[str] = (),
    extra: Sequence[tuple[str, Any]] = (),
) -> tuple[pluggy.PluginManager, list[PluginInfo]]:
    """Load every entry point not in ``disabled``, then ``extra`` (name, plugin) pairs.

    Raises :class:`PluginError` naming the plugin when a built-in one fails to import or
    implements a hook that does not exist or has the wrong arguments; a third-party package
    failing so is returned with its ``error`` instead (Core starts; the plugins page says why).
    """
    pm = pluggy.PluginManager(PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    blocked = set(disabled)
    infos: list[PluginInfo] = []
    seen: set[str] = set()
    for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        if ep.name in blocked or ep.name in seen:
            continue
        seen.add(ep.name)
        dist = ep.dist
        distribution = dist.metadata["Name"] if dist else None
        info = PluginInfo(name=ep.name, module=ep.value, version=dist.version if dist else None,
                          distribution=distribution, builtin=distribution == PROJECT_NAME)
        try:
            try:
                plugin = ep.load()
            except Exception as exc:
                raise PluginError(f"plugin {ep.name!r} ({ep.value}) failed to load: "
                                  f"{type(exc).__name__}: {exc}") from exc
            _register(pm, ep.name, plugin)
        except PluginError as exc:
            if info.builtin:
                raise
            infos.append(replace(info, error=str(exc)))
            continue
        infos.append(replace(info, plugin=plugin))
    for name, plugin in extra:
        if name in blocked:
            continue
        _register(pm, name, plugin)
        infos.append(PluginInfo(name, getattr(plugin, "__name__", repr(plugin)), None, None,
                                plugin=plugin))
    return pm, infos


def _register(pm: pluggy.PluginManager, name: str, plugin: Any) -> None:
    if pm.has_plugin(name):
        raise PluginError(f"plugin {name!r} is registered twice")
    try:
        pm.register(plugin, name=name)
    except (pluggy.PluginValidationError, ValueError) as exc:
        raise PluginError(f"plugin {name!r} is invalid: {exc}") from exc
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        pm.unregister(name=name)
        raise PluginError(f"plugin {name!r} implements an unknown hook: {exc}") from exc
    wrappers = [caller.name for caller in pm.get_hookcallers(pm.get_plugin(name)) or ()
                for impl in caller.get_hookimpls()
                if impl.plugin_name == name and (impl.hookwrapper or impl.wrapper)]
    if wrappers:
        pm.unregister(name=name)
        raise PluginError(
            f"plugin {name!r} declares a hook wrapper for {', '.join(wrappers)}; FaceForge "
            f"awaits each implementation in plugin order and does not run wrappers: "
            f"implement the hook itself (tryfirst/trylast set the order)")

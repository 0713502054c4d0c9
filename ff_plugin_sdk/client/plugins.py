"""``client.plugins``: installed plugins, their state, consent, runner and settings."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ff_plugin_sdk.client._group import Group, M, endpoint
from ff_plugin_sdk.client._plan import Call, Plan, seg
from ff_plugin_sdk.plugins import PluginPage, PluginView

PluginList = list[PluginView]


class Plugins(Group[M]):
    @endpoint
    def list(self) -> Plan[PluginList]:
        """Every installed plugin, in or out of process: state (enabled, disabled, error
        with its reason), permissions, runner status."""
        page = yield from self._fetch(Call("GET", "/v1/plugins"), PluginPage)
        return page.items

    @endpoint
    def get(self, plugin_id: str) -> Plan[PluginView]:
        """One plugin, with the newest lines of its runner's log."""
        return self._fetch(Call("GET", f"/v1/plugins/{seg(plugin_id)}"), PluginView)

    @endpoint
    def enable(self, plugin_id: str, *,
               accept_permissions: Sequence[str] = ()) -> Plan[PluginView]:
        """Enable a plugin; one that asks for permissions needs them all in
        ``accept_permissions`` (``Conflict`` ``consent_required`` lists what is missing)."""
        return self._fetch(Call("POST", f"/v1/plugins/{seg(plugin_id)}/enable",
                                json={"accept_permissions": list(accept_permissions)},
                                idempotent=True), PluginView)

    @endpoint
    def disable(self, plugin_id: str) -> Plan[PluginView]:
        """Disable at once: its routes, hooks, runner and token stop."""
        return self._fetch(Call("POST", f"/v1/plugins/{seg(plugin_id)}/disable",
                                idempotent=True), PluginView)

    @endpoint
    def get_config(self, plugin_id: str) -> Plan[dict[str, Any]]:
        """The plugin's settings (a plugin's own token may read its own)."""
        return self._fetch(Call("GET", f"/v1/plugins/{seg(plugin_id)}/config"),
                           dict[str, Any])

    @endpoint
    def put_config(self, plugin_id: str, config: Mapping[str, Any]) -> Plan[dict[str, Any]]:
        """Replace the settings; ``ValidationFailed`` lists every path the plugin's
        ``config_schema`` refuses."""
        return self._fetch(Call("PUT", f"/v1/plugins/{seg(plugin_id)}/config",
                                json=dict(config)), dict[str, Any])

    @endpoint
    def rescan(self) -> Plan[PluginList]:
        """Look at the plugins folder again (new, changed and removed plugins)."""
        page = yield from self._fetch(Call("POST", "/v1/plugins/rescan", idempotent=True),
                                      PluginPage)
        return page.items

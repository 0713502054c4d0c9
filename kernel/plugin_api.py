"""``/v1/plugins``: list, inspect, enable, disable, configure and rescan plugins (spec §9.2.7).

The kernel serves these itself: a plugin that could be disabled must not be the one that
enables plugins again.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from ff_plugin_sdk.errors import Forbidden
from ff_plugin_sdk.plugins import EnableRequest, PluginPage, PluginView
from ff_plugin_sdk.types import ApiRoute, Principal
from kernel.auth import SIGNED_IN
from kernel.services import Kernel

ADMIN = "plugins:admin"


def _own_or_admin(request: Request, plugin_id: str) -> None:
    """A plugin's own token may read its settings; anyone else needs ``plugins:admin``."""
    principal: Principal | None = request.scope.get("ff.principal")
    if principal is None:
        raise Forbidden("sign in first", code="missing_scope")
    if ADMIN in principal.scopes:
        return
    if principal.kind == "token" and principal.name == f"plugin:{plugin_id}":
        return
    raise Forbidden(f"this route needs the {ADMIN!r} scope, which this credential does not "
                    f"hold", code="missing_scope", details=[{"missing_scope": ADMIN}])


def routes(kernel: Kernel) -> list[ApiRoute]:
    registry = kernel.registry

    async def list_plugins(request: Request) -> PluginPage:
        """Every installed plugin, in or out of process, with its state and runner."""
        return PluginPage(items=registry.views())

    async def get_plugin(request: Request) -> PluginView:
        """One plugin, with the newest lines of its runner's log."""
        return registry.get(request.path_params["plugin_id"], tail=True)

    async def enable(request: Request, body: EnableRequest | None) -> PluginView:
        """Enable: a third-party plugin asking for permissions needs them in
        ``accept_permissions`` (409 ``consent_required`` lists what is missing)."""
        accepted = body.accept_permissions if body is not None else []
        return await registry.enable(request.path_params["plugin_id"], accepted)

    async def disable(request: Request) -> PluginView:
        """Disable at once: routes answer 404 ``plugin_disabled``, hooks stop, the runner
        stops and the plugin's token stops working (409 for a plugin Core needs)."""
        return await registry.disable(request.path_params["plugin_id"])

    async def get_config(request: Request) -> dict[str, Any]:
        """The plugin's settings (readable by the plugin's own token too)."""
        plugin_id = request.path_params["plugin_id"]
        _own_or_admin(request, plugin_id)
        registry.find(plugin_id)
        return registry.config(plugin_id)

    async def put_config(request: Request, body: dict[str, Any]) -> dict[str, Any]:
        """Replace the settings; checked against the manifest's ``config_schema`` (422
        lists every failing path)."""
        return await registry.set_config(request.path_params["plugin_id"], body)

    async def rescan(request: Request) -> PluginPage:
        """Look at the plugins folder again: new, changed and removed plugins."""
        return PluginPage(items=await registry.rescan())

    one = "/v1/plugins/{plugin_id}"
    tags = ["plugins"]
    return [
        ApiRoute(path="/v1/plugins", endpoint=list_plugins, scope=ADMIN, response=PluginPage,
                 tags=tags),
        ApiRoute(path="/v1/plugins/rescan", endpoint=rescan, methods=["POST"], scope=ADMIN,
                 response=PluginPage, tags=tags),
        ApiRoute(path=one, endpoint=get_plugin, scope=ADMIN, response=PluginView, tags=tags),
        ApiRoute(path=one + "/enable", endpoint=enable, methods=["POST"], scope=ADMIN,
                 body=EnableRequest, body_required=False, response=PluginView, tags=tags),
        ApiRoute(path=one + "/disable", endpoint=disable, methods=["POST"], scope=ADMIN,
                 response=PluginView, tags=tags),
        ApiRoute(path=one + "/config", endpoint=get_config, scope=SIGNED_IN,
                 response=dict[str, Any], tags=tags),
        ApiRoute(path=one + "/config", endpoint=put_config, methods=["PUT"], scope=ADMIN,
                 body=dict[str, Any], response=dict[str, Any], tags=tags),
    ]

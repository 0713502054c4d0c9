"""``client.system``: is Core there, which version, how its features are doing."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from ff_plugin_sdk.client._group import Group, M, endpoint
from ff_plugin_sdk.client._plan import Call, Plan
from ff_plugin_sdk.client.models import Ping


class System(Group[M]):
    @endpoint
    def ping(self) -> Plan[Ping]:
        """Check that Core answers and the token works (401 ``Unauthorized`` if not)."""
        return self._fetch(Call("GET", "/v1/ping"), Ping)

    @endpoint
    def health(self) -> Plan[dict[str, Any]]:
        """``/healthz``: needs no token."""
        return self._fetch(Call("GET", "/healthz"), dict[str, Any])

    @endpoint
    def info(self) -> Plan[dict[str, Any]]:
        """Version, resolved paths, loaded plugins, routes and scopes."""
        return self._fetch(Call("GET", "/v1/system/info"), dict[str, Any])

    @endpoint
    def status(self) -> Plan[list[dict[str, Any]]]:
        """How each plugin's features are doing: ``{plugin, name, state, message}``."""
        page = yield from self._fetch(Call("GET", "/v1/system/status"), dict[str, Any])
        return list(page["items"])


class Raw(Group[M]):
    """Calls the typed groups do not cover: a plugin's own routes
    (``/v1/plugins/<id>/...``), a newer Core's endpoints."""

    @endpoint
    def call(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
             json: Any = None, headers: Mapping[str, str] | None = None,
             idempotent: bool | None = None) -> Plan[Any]:
        """Send a request; the answer's JSON (None for an empty one, the text for one
        that is not JSON).  Errors raise the typed exceptions; retried as
        :class:`~ff_plugin_sdk.client.Retry` allows (a POST only when ``idempotent=True``)."""
        response = yield from self._send(Call(method.upper(), path, params=params, json=json,
                                              headers=headers, idempotent=idempotent))
        if not response.content:
            return None
        if "json" not in response.headers.get("content-type", ""):
            return response.text
        return msgspec.json.decode(response.content)

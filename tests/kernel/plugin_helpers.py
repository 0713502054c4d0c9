"""Enabling a third-party plugin the way a user does: through the API, agreeing to what its
manifest asks for."""

from __future__ import annotations

from typing import Any

import httpx


async def enable_plugin(client: httpx.AsyncClient, plugin_id: str) -> dict[str, Any]:
    info = (await client.get(f"/v1/plugins/{plugin_id}")).json()
    response = await client.post(f"/v1/plugins/{plugin_id}/enable",
                                 json={"accept_permissions": info["permissions"]})
    assert response.status_code == 200, response.text
    return response.json()

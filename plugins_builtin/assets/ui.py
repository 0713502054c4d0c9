"""The Assets pages and the entity Attachments tab (server-rendered, htmx)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from ff_plugin_sdk import Kernel, UIPage
from plugins_builtin.assets.store import AssetStore


def pages(kernel: Kernel, store: AssetStore) -> list[UIPage]:
    return []


def attachments_renderer(kernel: Kernel,
                         store: AssetStore) -> Callable[[Any, dict[str, Any]], Awaitable[str]]:
    async def render(request: Any, entity: dict[str, Any]) -> str:
        return ""

    return render

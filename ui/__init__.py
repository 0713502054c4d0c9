"""The UI shell: base layout, navigation from hooks, login, error pages, static files.

Registered through its entry point like any plugin; feature pages extend ``_base.html``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ff_plugin_sdk import Kernel, NavEntry, StaticDir, hookimpl
from ui import pages

HERE = Path(__file__).parent


@hookimpl
def faceforge_ui_templates() -> list[Path]:
    return [HERE / "templates"]


@hookimpl
def faceforge_static_dirs() -> list[StaticDir]:
    return [StaticDir(name="ui", path=HERE / "static")]


@hookimpl
def faceforge_ui_pages(kernel: Kernel) -> list[Any]:
    return pages.pages(kernel)


@hookimpl
def faceforge_ui_nav(kernel: Kernel) -> list[NavEntry]:
    return [NavEntry(label="Events", href="/ui/events", order=800),
            NavEntry(label="System", href="/ui/system", order=900)]


@hookimpl
def faceforge_startup(kernel: Kernel) -> None:
    kernel.error_page = pages.error_page_renderer(kernel)

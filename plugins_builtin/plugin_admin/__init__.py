"""The Plugins page: every plugin with its state, consent to enable, its runner and its
settings form (drawn from its ``config_schema`` by :mod:`.schema_form`).

It uses only ``kernel.registry`` (what ``/v1/plugins`` uses).  Core cannot work without it:
it is the way back to enabling the others, so it cannot be disabled.
"""

from __future__ import annotations

from pathlib import Path

from ff_plugin_sdk import Kernel, NavEntry, StaticDir, UIPage, hookimpl
from plugins_builtin.plugin_admin import ui

HERE = Path(__file__).parent


@hookimpl
def faceforge_ui_templates() -> list[Path]:
    return [HERE / "templates"]


@hookimpl
def faceforge_static_dirs() -> list[StaticDir]:
    return [StaticDir(name="plugin_admin", path=HERE / "static")]


@hookimpl
def faceforge_ui_pages(kernel: Kernel) -> list[UIPage]:
    return ui.pages(kernel)


@hookimpl
def faceforge_ui_nav(kernel: Kernel) -> list[NavEntry]:
    return [NavEntry(label="Plugins", href="/ui/plugins", order=850)]

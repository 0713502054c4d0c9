"""Descriptors: time-bound facts about an entity, with their history (spec §7.3) — API,
the entity page's Descriptors tab and its forms.

A descriptor is one value of one key (``address``, ``phone``) for the days it held
(``valid_from``/``valid_to``, inclusive, open when null); a key has many over time.  Values
are checked by the key's descriptor-scope field definition from the entities plugin's
``entities.fields`` service, when it is there.

Service published for other plugins: ``descriptors.store`` (:class:`DescriptorStore`).
"""

from __future__ import annotations

from pathlib import Path

from ff_plugin_sdk import (
    ApiRoute,
    EntityTab,
    Kernel,
    Migration,
    Scope,
    StaticDir,
    UIPage,
    hookimpl,
)
from plugins_builtin.descriptors import api, ui
from plugins_builtin.descriptors.schema import MIGRATIONS
from plugins_builtin.descriptors.store import DescriptorStore

SERVICE = "descriptors.store"
HERE = Path(__file__).parent


def store_for(kernel: Kernel) -> DescriptorStore:
    """The store of this kernel, made once and published."""
    if SERVICE not in kernel.services:
        kernel.services[SERVICE] = DescriptorStore(kernel)
    store: DescriptorStore = kernel.services[SERVICE]
    return store


@hookimpl
def faceforge_scopes() -> list[Scope]:
    return [Scope(name="descriptors:read", description="list and read entities' descriptors"),
            Scope(name="descriptors:write", description="record, change and delete "
                                                         "entities' descriptors")]


@hookimpl
def faceforge_migrations() -> list[Migration]:
    return MIGRATIONS


@hookimpl
def faceforge_routes(kernel: Kernel) -> list[ApiRoute]:
    return api.routes(store_for(kernel))


@hookimpl
def faceforge_ui_templates() -> list[Path]:
    return [HERE / "templates"]


@hookimpl
def faceforge_static_dirs() -> list[StaticDir]:
    return [StaticDir(name="descriptors", path=HERE / "static")]


@hookimpl
def faceforge_ui_pages(kernel: Kernel) -> list[UIPage]:
    return ui.pages(kernel, store_for(kernel))


@hookimpl
def faceforge_ui_entity_tabs(kernel: Kernel) -> list[EntityTab]:
    return [EntityTab(id="descriptors", label="Descriptors", order=20,
                      render=ui.tab_renderer(kernel, store_for(kernel)))]

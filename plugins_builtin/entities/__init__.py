"""Entities: the primary identity objects (spec §7.1) — API, UI pages and Overview tab."""

from __future__ import annotations

from pathlib import Path

from ff_plugin_sdk import (
    ApiRoute,
    EntityTab,
    Event,
    Kernel,
    Migration,
    NavEntry,
    Scope,
    StaticDir,
    UIPage,
    hookimpl,
)
from plugins_builtin.entities import api, bulk, field_api, field_ui, ui
from plugins_builtin.entities.field_defs import FieldDefs
from plugins_builtin.entities.schema import MIGRATIONS
from plugins_builtin.entities.store import EntityStore

SERVICE = "entities.store"
#: the field definitions: other plugins check values with them (descriptors)
FIELDS_SERVICE = "entities.fields"


def store_for(kernel: Kernel) -> EntityStore:
    """The store of this kernel, published so other plugins can look entities up."""
    if SERVICE not in kernel.services:
        kernel.services[FIELDS_SERVICE] = FieldDefs(kernel)
        kernel.services[SERVICE] = EntityStore(kernel, kernel.services[FIELDS_SERVICE])
    return kernel.services[SERVICE]


@hookimpl
def faceforge_scopes() -> list[Scope]:
    return [Scope(name="entities:read", description="list, search and read entities"),
            Scope(name="entities:write", description="create, change, delete and restore "
                                                      "entities"),
            Scope(name="fields:admin", description="define, change and delete field "
                                                   "definitions")]


@hookimpl
def faceforge_migrations() -> list[Migration]:
    return MIGRATIONS


@hookimpl
def faceforge_routes(kernel: Kernel) -> list[ApiRoute]:
    store = store_for(kernel)
    return api.routes(store) + bulk.routes(store) + field_api.routes(store.fields)


@hookimpl
async def faceforge_startup(kernel: Kernel) -> None:
    await store_for(kernel).fields.load()


@hookimpl
def faceforge_ui_templates() -> list[Path]:
    return [Path(__file__).parent / "templates"]


@hookimpl
def faceforge_ui_nav(kernel: Kernel) -> list[NavEntry]:
    return [NavEntry(label="Entities", href="/ui/entities", order=10),
            NavEntry(label="Fields", href="/ui/admin/fields", order=60)]


@hookimpl
def faceforge_ui_pages(kernel: Kernel) -> list[UIPage]:
    store = store_for(kernel)
    return ui.pages(kernel, store) + field_ui.pages(kernel, store.fields)


@hookimpl
def faceforge_static_dirs() -> list[StaticDir]:
    return [StaticDir(name="entities", path=Path(__file__).parent / "static")]


@hookimpl
def faceforge_ui_entity_tabs(kernel: Kernel) -> list[EntityTab]:
    return [EntityTab(id="overview", label="Overview", order=0,
                      render=ui.overview_renderer(kernel))]


@hookimpl
async def faceforge_event(kernel: Kernel, event: Event) -> None:
    if event.type == "asset.deleted":
        await store_for(kernel).forget_thumbnail(event.data["asset_id"])

"""Relationships: directed, typed, time-bound links between two entities, and the registry
of relation types (spec §7.4, §9.2.5) — API and the entity Relationships tab.

Relationships of a deleted entity are hidden, and shown again when it is restored: the
entities store (service ``entities.store``) runs this plugin's listener inside its delete and
restore transactions.  Service published: ``relationships.store``.
"""

from __future__ import annotations

from pathlib import Path

from ff_plugin_sdk import (
    ApiRoute,
    EntityTab,
    Kernel,
    Migration,
    Scope,
    UIPage,
    hookimpl,
)
from plugins_builtin.relationships import api, ui
from plugins_builtin.relationships.schema import MIGRATIONS
from plugins_builtin.relationships.store import ENTITIES, RelationshipStore

SERVICE = "relationships.store"


def store_for(kernel: Kernel) -> RelationshipStore:
    """The store of this kernel, made once and published."""
    if SERVICE not in kernel.services:
        kernel.services[SERVICE] = RelationshipStore(kernel)
    return kernel.services[SERVICE]


@hookimpl
def faceforge_scopes() -> list[Scope]:
    return [Scope(name="relationships:read",
                  description="list and read relationships and relation types"),
            Scope(name="relationships:write",
                  description="create, change and delete relationships; register relation "
                              "types")]


@hookimpl
def faceforge_migrations() -> list[Migration]:
    return MIGRATIONS


@hookimpl
def faceforge_routes(kernel: Kernel) -> list[ApiRoute]:
    return api.routes(store_for(kernel))


@hookimpl
def faceforge_startup(kernel: Kernel) -> None:
    entities = kernel.services.get(ENTITIES)
    if entities is not None:  # without the entities plugin every route says so (404)
        entities.on_delete(store_for(kernel).entity_deleted)


@hookimpl
def faceforge_ui_templates() -> list[Path]:
    return [Path(__file__).parent / "templates"]


@hookimpl
def faceforge_ui_pages(kernel: Kernel) -> list[UIPage]:
    return ui.pages(kernel, store_for(kernel))


@hookimpl
def faceforge_ui_entity_tabs(kernel: Kernel) -> list[EntityTab]:
    return [EntityTab(id="relationships", label="Relationships", order=30,
                      render=ui.tab_renderer(kernel, store_for(kernel)))]

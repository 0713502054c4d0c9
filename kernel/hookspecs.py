"""The plugin contract: every hook FaceForge calls.

Each spec says when it is called, what it returns, and whether the implementation may be
``async def``.  Hooks are called only through :class:`kernel.hooks.Hooks`, which awaits async
results in plugin order; no spec uses ``firstresult`` and hook wrappers are refused at load.
``kernel`` is the running Core as the :class:`ff_plugin_sdk.Kernel` protocol describes it:
everything a plugin may use of the server (database reads and one-hop write transactions,
events, templates, auth, config, logger).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy

from ff_plugin_sdk import PROJECT_NAME
from ff_plugin_sdk.types import (
    ApiRoute,
    AssetKind,
    EntityTab,
    Event,
    JobType,
    Migration,
    NavEntry,
    Scope,
    ShellWidget,
    StaticDir,
    StatusLine,
    StorageProviderType,
    UIPage,
)

if TYPE_CHECKING:
    from ff_plugin_sdk.kernel import Kernel

hookspec = pluggy.HookspecMarker(PROJECT_NAME)


# --- contribution hooks: called once while the app is built or started -----------------


@hookspec
def faceforge_migrations() -> Sequence[Migration]:
    """Contribute this plugin's schema migrations.

    Called: once per start for each enabled plugin (and by ``faceforge migrate``), before
    ``faceforge_startup``; and when a plugin is enabled while Core runs.
    Each migration runs once in its own transaction, recorded as (plugin, version).
    Async: may be ``async def``.
    """


@hookspec
def faceforge_routes(kernel: Kernel) -> Sequence[ApiRoute]:
    """Contribute API routes, mounted under ``/v1``; each declares its permission scope.

    Called: once per app build, for every installed plugin: a disabled plugin's routes
    answer 404 ``plugin_disabled``.  Async: no (the route table is built synchronously).
    """


@hookspec
def faceforge_scopes() -> Sequence[Scope]:
    """Declare the permission scopes this plugin's routes require (``entities:read``).

    Called: once per app build, before routes are checked; a route requiring a scope no
    plugin declared is a load error naming the plugin.  Async: no.
    """


@hookspec
def faceforge_job_types(kernel: Kernel) -> Sequence[JobType]:
    """Contribute namespaced job types (``<plugin>.<verb>``) and their handlers.

    Called: at start and whenever a plugin is enabled or disabled (a disabled plugin's
    types are unknown).  Async: may be ``async def``.
    """


@hookspec
def faceforge_asset_kinds() -> Sequence[AssetKind]:
    """Contribute asset kinds (``image.original``, ``model.lora``) and derived artefact kinds.

    Called: once per start.  Async: may be ``async def``.
    """


@hookspec
def faceforge_storage_providers() -> Sequence[StorageProviderType]:
    """Contribute storage provider types (``fs``, ``s3``) by name.

    Each type's ``factory(context)`` builds a :class:`ff_plugin_sdk.storage.StorageProvider`
    from a :class:`ff_plugin_sdk.storage.StorageContext` at start (the built-in ``s3`` only
    when ``storage.s3.enabled``), and uploads reach it through ``storage.routing``.
    Called: once per start, before plugins start.  Async: may be ``async def``.
    """


@hookspec
def faceforge_config_schema() -> dict[str, Any] | None:
    """Return the JSON Schema of this plugin's settings, rendered as a form in the UI.

    Called: for a built-in plugin's settings (third-party plugins put it in their
    manifest), when the plugins are listed.  Async: may be ``async def``.
    """


@hookspec
def faceforge_static_dirs() -> Sequence[StaticDir]:
    """Contribute folders of static files, served publicly at ``/static/<name>/``.

    Called: once per app build.  Async: no.
    """


@hookspec
def faceforge_ui_templates() -> Sequence[Path]:
    """Contribute Jinja template folders; pages extend ``_base.html`` from the UI shell.

    Called: once per app build.  Async: no.
    """


@hookspec
def faceforge_status(kernel: Kernel) -> Sequence[StatusLine]:
    """Say how the plugin's features are doing (``"metadata extraction off: exiftool not
    found"``), for the System page and ``GET /v1/system/status``.

    Called: on every such request, so keep it cheap.  Async: may be ``async def``.
    """


@hookspec
def faceforge_ui_nav(kernel: Kernel) -> Sequence[NavEntry]:
    """Contribute entries to the UI's main navigation.

    Called: at start and whenever a plugin is enabled or disabled; the nav is rendered from
    the result.  Async: may be ``async def``.
    """


@hookspec
def faceforge_ui_pages(kernel: Kernel) -> Sequence[UIPage]:
    """Contribute server-rendered pages, mounted under ``/ui`` behind the session login.

    Called: once per app build, for every installed plugin: a disabled plugin's pages
    answer 404 ``plugin_disabled``.  Async: no.
    """


@hookspec
def faceforge_ui_shell_widgets(kernel: Kernel) -> Sequence[ShellWidget]:
    """Contribute small live elements to the UI shell's top bar (shown on every page).

    Called: at start and whenever a plugin is enabled or disabled.  Async: may be
    ``async def``.
    """


@hookspec
def faceforge_ui_entity_tabs(kernel: Kernel) -> Sequence[EntityTab]:
    """Contribute tabs (and plugin panels) to the entity detail page.

    Called: at start and whenever a plugin is enabled or disabled.  Async: may be
    ``async def``.
    """


# --- lifecycle hooks --------------------------------------------------------------------


@hookspec
def faceforge_startup(kernel: Kernel) -> None:
    """Start this plugin's background work; the database is migrated and open.

    Called: once, in the app lifespan, after migrations; and when the plugin is enabled
    while Core runs.  Async: may be ``async def``.
    """


@hookspec
def faceforge_ready(kernel: Kernel) -> None:
    """Every plugin has started: begin work that may use other plugins' services (the
    jobs plugin runs queued jobs from here on).

    Called: once, in the app lifespan, after every ``faceforge_startup``; and right after
    the plugin's own startup when it is enabled while Core runs.  Async: may be
    ``async def``.
    """


@hookspec
def faceforge_shutdown(kernel: Kernel) -> None:
    """Stop this plugin's background work; the database is still open.

    Called: once, in the app lifespan, in reverse plugin order; and when the plugin is
    disabled while Core runs.  Async: may be ``async def``.
    """


# --- notification hooks -----------------------------------------------------------------


@hookspec
def faceforge_event(kernel: Kernel, event: Event) -> None:
    """An event was committed (``entity.created``, ``asset.created``, ``job.completed``...).

    Called: after the transaction that recorded it commits, in id order, at least once: each
    subscribing plugin has a durable cursor, so events committed but not delivered when Core
    stopped or crashed are delivered after the next start (make handling idempotent).  A
    plugin subscribing for the first time starts with the events after its first start.
    A disabled plugin hears nothing; enabled again, it hears what happens from then on.
    Shutdown waits (bounded) for delivery before ``faceforge_shutdown``.  A failing
    subscriber is logged, does not affect others and does not get the event again.
    Async: may be ``async def``.
    """


# --- processing hooks -------------------------------------------------------------------


@hookspec
def faceforge_asset_ingested(kernel: Kernel, asset: dict[str, Any]) -> None:
    """An asset's bytes were stored: derive thumbnails, extract metadata.

    Called: once per newly stored asset (not for a deduplicated upload), after its row
    commits, in the background (``kernel.asset_ingested``): never on the request's path.
    ``asset`` is the record as ``GET /v1/assets/{id}`` returns it.  Async: may be
    ``async def``.
    """

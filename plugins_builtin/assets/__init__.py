"""Assets: content-addressed files attached to entities (spec §7.2) — upload, download,
links, the Attachments tab and the Assets pages.

Services published for other plugins: ``assets.store`` (:class:`AssetStore`),
``assets.ingest`` (:class:`Ingest`: turn staged bytes into an asset), ``assets.collector``
``assets.uploads`` (:class:`Uploads`: resumable uploads, spoken as tus at
``/v1/uploads``) and ``assets.importer`` (:class:`Importer`: bulk imports of a folder, the
``assets.bulk_import`` job).

Settings (``plugins.assets`` in ``config/core.json``): ``max_upload_bytes`` (default 1 TiB),
``collect_interval_seconds`` (default 300), ``upload_expiry_seconds`` (default 86400: how
long an unfinished resumable upload is kept after its last bytes).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ff_plugin_sdk import (
    ApiRoute,
    AssetKind,
    EntityTab,
    JobType,
    Kernel,
    Migration,
    NavEntry,
    Scope,
    StaticDir,
    UIPage,
    hookimpl,
)
from plugins_builtin.assets import api, bulk_import, tus, ui
from plugins_builtin.assets.collector import DEFAULT_INTERVAL_SECONDS, Collector
from plugins_builtin.assets.ingest import Ingest
from plugins_builtin.assets.kinds import KINDS
from plugins_builtin.assets.resumable import Uploads
from plugins_builtin.assets.schema import MIGRATIONS
from plugins_builtin.assets.store import AssetStore

DEFAULT_MAX_UPLOAD_BYTES = 1024**4
DEFAULT_UPLOAD_EXPIRY_SECONDS = 24 * 3600


def _setting(kernel: Kernel, key: str, default: Any) -> Any:
    value = kernel.plugin_config("assets").get(key, default)
    if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"plugins.assets.{key} must be a positive number, got {value!r}")
    return value


def parts(kernel: Kernel) -> tuple[AssetStore, Ingest, Collector, Uploads]:
    """This kernel's store, ingest path, collector and uploads, made once and published."""
    services = kernel.services
    if "assets.store" not in services:
        store = AssetStore(kernel)
        ingest = Ingest(kernel, store)
        services["assets.store"] = store
        services["assets.ingest"] = ingest
        services["assets.collector"] = Collector(
            store, _setting(kernel, "collect_interval_seconds", DEFAULT_INTERVAL_SECONDS))
        services["assets.uploads"] = Uploads(
            kernel, store, ingest,
            _setting(kernel, "upload_expiry_seconds", DEFAULT_UPLOAD_EXPIRY_SECONDS))
    return (services["assets.store"], services["assets.ingest"],
            services["assets.collector"], services["assets.uploads"])


def importer(kernel: Kernel) -> bulk_import.Importer:
    """The ``assets.importer`` service (bulk imports), made once."""
    if "assets.importer" not in kernel.services:
        store, ingest, _, _ = parts(kernel)
        kernel.services["assets.importer"] = bulk_import.Importer(kernel, store, ingest)
    found: bulk_import.Importer = kernel.services["assets.importer"]
    return found


@hookimpl
def faceforge_scopes() -> list[Scope]:
    return [Scope(name="assets:read", description="list, read and download assets"),
            Scope(name="assets:write", description="upload, change, link and delete assets")]


@hookimpl
def faceforge_migrations() -> list[Migration]:
    return MIGRATIONS


@hookimpl
def faceforge_asset_kinds() -> list[AssetKind]:
    return KINDS


@hookimpl
def faceforge_routes(kernel: Kernel) -> list[ApiRoute]:
    store, ingest, _, uploads = parts(kernel)
    limit = int(_setting(kernel, "max_upload_bytes", DEFAULT_MAX_UPLOAD_BYTES))
    return [*api.routes(kernel, store, ingest, limit), *tus.routes(uploads, ingest, limit),
            *bulk_import.routes(importer(kernel))]


@hookimpl
def faceforge_job_types(kernel: Kernel) -> list[JobType]:
    return [importer(kernel).job_type()]


@hookimpl
def faceforge_startup(kernel: Kernel) -> None:
    _, _, collector, uploads = parts(kernel)
    collector.start()
    uploads.start()


@hookimpl
async def faceforge_shutdown(kernel: Kernel) -> None:
    _, _, collector, uploads = parts(kernel)
    await uploads.stop()
    await collector.stop()


@hookimpl
def faceforge_ui_templates() -> list[Path]:
    return [Path(__file__).parent / "templates"]


@hookimpl
def faceforge_static_dirs() -> list[StaticDir]:
    return [StaticDir(name="assets", path=Path(__file__).parent / "static")]


@hookimpl
def faceforge_ui_nav(kernel: Kernel) -> list[NavEntry]:
    return [NavEntry(label="Assets", href="/ui/assets", order=20)]


@hookimpl
def faceforge_ui_pages(kernel: Kernel) -> list[UIPage]:
    return ui.pages(kernel, parts(kernel)[0])


@hookimpl
def faceforge_ui_entity_tabs(kernel: Kernel) -> list[EntityTab]:
    return [EntityTab(id="attachments", label="Attachments", order=30,
                      render=ui.attachments_renderer(kernel, parts(kernel)[0]))]

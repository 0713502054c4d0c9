"""Throwaway plugin: one contribution of every kind, to check each reaches the kernel."""

from pathlib import Path

from ff_plugin_sdk import (
    AssetKind,
    EntityTab,
    JobType,
    Migration,
    NavEntry,
    Scope,
    StaticDir,
    StorageProviderType,
    UIPage,
    hookimpl,
)

HERE = Path(__file__).parent


async def _noop_job(*args, **kwargs):
    return None


async def _render_tab(request, entity):
    return f"<p>contrib tab for {entity['id']}</p>"


class MemoryStorage:
    def __init__(self, **config):
        self.config = config


@hookimpl
def faceforge_scopes():
    return [Scope(name="contrib:read", description="read the contrib notes")]


@hookimpl
def faceforge_migrations():
    return [Migration(version=1, name="contrib table",
                      sql="CREATE TABLE contrib_notes (id INTEGER PRIMARY KEY, text TEXT)")]


@hookimpl
async def faceforge_job_types(kernel):
    return [JobType(name="contrib.noop", summary="does nothing", handler=_noop_job)]


@hookimpl
async def faceforge_asset_kinds():
    return [AssetKind(name="contrib.sketch", description="a pencil sketch")]


@hookimpl
def faceforge_storage_providers():
    return [StorageProviderType(name="memory", factory=MemoryStorage)]


@hookimpl
async def faceforge_config_schema():
    return {"type": "object", "properties": {"greeting": {"type": "string"}}}


@hookimpl
def faceforge_static_dirs():
    return [StaticDir(name="contrib", path=HERE / "contrib_static")]


@hookimpl
def faceforge_ui_templates():
    return [HERE / "contrib_templates"]


@hookimpl
async def faceforge_ui_nav(kernel):
    return [NavEntry(label="Zeta contrib", href="/ui/contrib", order=5),
            NavEntry(label="Alpha contrib", href="/ui/contrib", order=5)]


@hookimpl
def faceforge_ui_pages(kernel):
    async def page(request):
        return kernel.templates.render(request, "contrib_page.html", {"who": "contrib"})

    return [UIPage(path="/contrib", endpoint=page, name="contrib-page")]


@hookimpl
async def faceforge_ui_entity_tabs(kernel):
    return [EntityTab(id="contrib", label="Contrib", render=_render_tab, order=1)]

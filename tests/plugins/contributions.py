"""Throwaway plugin: one contribution of every kind, to check each reaches the kernel."""

from pathlib import Path

from ff_plugin_sdk import (
    AssetKind,
    EntityTab,
    JobType,
    Migration,
    NavEntry,
    Scope,
    ShellWidget,
    StaticDir,
    StatusLine,
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
    """A storage provider kept in a dict: proves a plugin can add one."""

    name = "memory"

    def __init__(self, context):
        self.context = context
        self.blobs = {}

    async def write(self, chunks, *, max_bytes=None):
        data = b"".join([chunk async for chunk in chunks])
        return await self._keep(data)

    async def write_file(self, path, sha256, size):
        blob = await self._keep(path.read_bytes())
        path.unlink()
        return blob

    async def _keep(self, data):
        import hashlib

        from ff_plugin_sdk.storage import StoredBlob
        key = hashlib.sha256(data).hexdigest()
        created = key not in self.blobs
        self.blobs[key] = data
        return StoredBlob(sha256=key, size=len(data), provider=self.name, created=created)

    async def open_range(self, key, start=0, end=None):
        from ff_plugin_sdk.storage import BlobMissing
        if key not in self.blobs:
            raise BlobMissing(key)
        yield self.blobs[key][start:None if end is None else end + 1]

    async def stat(self, key):
        from ff_plugin_sdk.storage import BlobStat
        return BlobStat(size=len(self.blobs[key])) if key in self.blobs else None

    async def delete(self, key):
        self.blobs.pop(key, None)

    async def health(self):
        from ff_plugin_sdk.storage import Health
        return Health(ok=True)

    async def close(self):
        pass


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
async def faceforge_status(kernel):
    return [StatusLine(name="contrib widget", state="off", message="contrib widget off: no gears")]


@hookimpl
async def faceforge_ui_nav(kernel):
    return [NavEntry(label="Zeta contrib", href="/ui/contrib", order=5),
            NavEntry(label="Alpha contrib", href="/ui/contrib", order=5)]


@hookimpl
async def faceforge_ui_shell_widgets(kernel):
    return [ShellWidget(id="contrib-b", url="/ui/contrib", refresh_seconds=7, order=2),
            ShellWidget(id="contrib-a", url="/ui/contrib", order=2)]


@hookimpl
def faceforge_ui_pages(kernel):
    async def page(request):
        return kernel.templates.render(request, "contrib_page.html", {"who": "contrib"})

    return [UIPage(path="/contrib", endpoint=page, name="contrib-page")]


@hookimpl
async def faceforge_ui_entity_tabs(kernel):
    return [EntityTab(id="contrib", label="Contrib", render=_render_tab, order=1)]

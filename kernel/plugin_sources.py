"""Where plugins come from, each described by a manifest: Python packages registered through
the ``faceforge.plugins`` entry points, and folders ``<plugins_dir>/*/plugin.json``.

A plugin that cannot be used (a broken manifest, a duplicate id, a Core version outside its
``core_compat``) is still found: it is returned with the reason, never silently dropped.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ff_plugin_sdk.manifest import MANIFEST_FILE, Manifest, ManifestError, read_manifest, satisfies
from ff_plugin_sdk.plugins import Kind
from kernel.plugins import PluginInfo


@dataclass(frozen=True)
class Found:
    """One plugin as discovered: its manifest, or why it has none that can be used."""

    id: str
    kind: Kind
    manifest: Manifest
    #: the folder (out-of-process) or ``distribution (module)`` (in-process)
    source: str
    #: why it cannot run; it is then listed in ``error`` state
    error: str | None = None
    folder: Path | None = None


def _placeholder(plugin_id: str, version: str = "0") -> Manifest:
    """What stands in for a manifest that could not be read (the plugin is in error)."""
    return Manifest(id=plugin_id, name=plugin_id, version=version, core_compat="")


def _first_paragraph(plugin: object) -> str:
    """A built-in's description: the first paragraph of its docstring, on one line."""
    doc = (getattr(plugin, "__doc__", None) or "").strip()
    return " ".join(doc.split("\n\n")[0].split())


def _compat_error(manifest: Manifest, core_version: str) -> str | None:
    if satisfies(manifest, core_version):
        return None
    return (f"needs FaceForge Core {manifest.core_compat}; this Core is {core_version}")


def in_process(infos: Iterable[PluginInfo], core_version: str) -> list[Found]:
    """Built-ins describe themselves from their entry point; third-party packages with the
    ``plugin.json`` inside the package, whose id must be the entry point's name."""
    found = []
    for info in infos:
        source = f"{info.distribution or 'app'} ({info.module})"
        if info.builtin:
            manifest = Manifest(id=info.name, name=info.name.replace("_", " ").capitalize(),
                                version=info.version or core_version, core_compat="",
                                description=_first_paragraph(info.plugin))
            found.append(Found(info.name, "builtin", manifest, source))
            continue
        version = info.version or "0"
        if info.error is not None:
            found.append(Found(info.name, "in_process", _placeholder(info.name, version),
                               source, info.error))
            continue
        package = Path(getattr(info.plugin, "__file__", "") or ".").parent
        try:
            manifest = read_manifest(package / MANIFEST_FILE)
        except ManifestError as exc:
            found.append(Found(info.name, "in_process", _placeholder(info.name, version), source,
                               f"{MANIFEST_FILE}: {exc}", package))
            continue
        error = _compat_error(manifest, core_version)
        if manifest.id != info.name:
            error = (f"{MANIFEST_FILE} says id {manifest.id!r} but the entry point is named "
                     f"{info.name!r}; they must be the same")
        found.append(Found(info.name, "in_process", manifest, source, error, package))
    return found


def out_of_process(plugins_dir: Path, core_version: str, taken: Iterable[str]) -> list[Found]:
    """Every folder of ``plugins_dir`` holding a ``plugin.json``, in name order; an id
    already ``taken`` (by an in-process plugin or an earlier folder) is an error."""
    seen = {plugin_id: "an installed Python package" for plugin_id in taken}
    found = []
    try:
        folders = sorted(p for p in plugins_dir.iterdir()
                         if p.is_dir() and (p / MANIFEST_FILE).is_file())
    except OSError:
        return []
    for folder in folders:
        try:
            manifest = read_manifest(folder / MANIFEST_FILE)
        except ManifestError as exc:
            found.append(Found(folder.name, "out_of_process", _placeholder(folder.name),
                               str(folder), f"{MANIFEST_FILE}: {exc}", folder))
            continue
        error = _compat_error(manifest, core_version)
        if manifest.id in seen:
            error = f"duplicate id {manifest.id!r}: {seen[manifest.id]} already uses it"
        else:
            seen[manifest.id] = f"the plugin in {folder}"
        found.append(Found(manifest.id, "out_of_process", manifest, str(folder), error, folder))
    return found


def folder_signature(plugins_dir: Path) -> tuple[tuple[str, int, int], ...]:
    """What changes when a plugin folder or manifest is added, edited or removed: cheap
    enough (one stat per plugin) to poll."""
    entries = []
    try:
        for folder in plugins_dir.iterdir():
            try:
                st = (folder / MANIFEST_FILE).stat()
            except OSError:
                continue
            entries.append((folder.name, st.st_mtime_ns, st.st_size))
    except OSError:
        return ()
    return tuple(sorted(entries))

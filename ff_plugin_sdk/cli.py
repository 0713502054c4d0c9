"""``python -m ff_plugin_sdk``: check a plugin before installing it, or start a new one.

``check <folder>`` reads the plugin's ``plugin.json`` exactly as Core does
(:func:`ff_plugin_sdk.manifest.read_manifest`), then checks what a manifest alone cannot
say: that the runner's program and files are there, that an in-process package's entry
point carries the plugin's id, and (as warnings) that its scopes are ones Core knows.  It
prints each problem as ``plugin.json: <path>: <message>`` on stderr and exits 1, or prints
a summary and exits 0.

``new <name>`` writes a working plugin of either kind (:mod:`ff_plugin_sdk.scaffold`).

Needs nothing of Core: the scopes Core knows are listed here (a test keeps the list in step
with Core), or asked of a running Core with ``--url``.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shlex
import shutil
import sys
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ff_plugin_sdk.manifest import MANIFEST_FILE, Manifest, ManifestError, read_manifest
from ff_plugin_sdk.scaffold import KINDS, ScaffoldError, create

#: the scopes of a Core with only its built-in plugins (``GET /v1/system/info``)
KNOWN_SCOPES = frozenset({
    "system:read", "events:read", "plugins:admin", "plugins:use",
    "entities:read", "entities:write", "fields:admin",
    "assets:read", "assets:write",
    "descriptors:read", "descriptors:write",
    "relationships:read", "relationships:write",
    "jobs:read", "jobs:write", "jobs:run",
})
ENTRY_POINT_GROUP = "faceforge.plugins"


@dataclass
class Checked:
    """What ``check`` found: the manifest (when it could be read), its kind and folder,
    the problems that make it unusable and the warnings that do not."""

    manifest: Manifest | None = None
    kind: str = "out-of-process"
    file: Path | None = None
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def check(folder: Path, scopes: frozenset[str] = KNOWN_SCOPES) -> Checked:
    """Check the plugin in ``folder`` (an out-of-process plugin's folder, an in-process
    project or package folder, or a ``plugin.json``)."""
    found = Checked()
    file, project = _locate(folder, found)
    if file is None:
        return found
    found.file = file
    try:
        manifest = read_manifest(file)
    except ManifestError as exc:
        found.problems += [f"{MANIFEST_FILE}: {p}" for p in exc.problems]
        return found
    found.manifest = manifest
    package = (file.parent / "__init__.py").is_file()
    found.kind = "in-process" if package else "out-of-process"
    runner = manifest.entrypoints.runner
    if runner is not None:
        found.problems += _runner_problems(runner.argv, file.parent)
    if package:
        if project is not None:
            _check_project(project, file.parent, manifest, found)
        if runner is not None:
            found.warnings.append(f"{MANIFEST_FILE}: entrypoints.runner: Core starts runners "
                                  f"of plugin folders, not of installed packages")
    else:
        ui = manifest.entrypoints.ui
        if runner is None and (manifest.routes_prefix or (ui and (ui.pages or ui.entity_tab))):
            found.problems.append(
                f"{MANIFEST_FILE}: entrypoints.runner: an out-of-process plugin's routes and "
                f"pages are served by its runner: add one (with serves_http true)")
        if runner is None and manifest.job_types:
            found.warnings.append(f"{MANIFEST_FILE}: job_types: no runner of this plugin "
                                  f"claims them (entrypoints.runner is not set)")
    for i, permission in enumerate(manifest.permissions):
        if permission in manifest.scopes and permission not in scopes:
            found.warnings.append(
                f"{MANIFEST_FILE}: permissions[{i}]: {permission!r} is not a scope this Core "
                f"knows; it would grant nothing (known: {', '.join(sorted(scopes))})")
    return found


def _locate(folder: Path, found: Checked) -> tuple[Path | None, Path | None]:
    """The manifest to read and, for an in-process project folder, the project."""
    if folder.is_file():
        return folder, None
    if not folder.is_dir():
        found.problems.append(f"{MANIFEST_FILE}: {folder} is not a folder")
        return None, None
    if (folder / MANIFEST_FILE).is_file():
        if not (folder / "__init__.py").is_file():
            return folder / MANIFEST_FILE, None
        # a package folder: its project is next to it, or above a src/ folder
        above = folder.resolve().parent
        above = above.parent if above.name == "src" else above
        return folder / MANIFEST_FILE, above if (above / "pyproject.toml").is_file() else None
    # an in-process project: the manifest is inside its package (flat or src layout)
    inside = sorted(p for pattern in (f"*/{MANIFEST_FILE}", f"src/*/{MANIFEST_FILE}")
                    for p in folder.glob(pattern) if (p.parent / "__init__.py").is_file())
    if len(inside) > 1:
        found.problems.append(f"{MANIFEST_FILE}: {folder} holds several packages with a "
                              f"{MANIFEST_FILE} ({', '.join(str(p.parent) for p in inside)}); "
                              f"check one of them")
        return None, None
    if inside:
        return inside[0], folder if (folder / "pyproject.toml").is_file() else None
    return folder / MANIFEST_FILE, None  # read_manifest says it is missing


def _runner_problems(argv: Sequence[str], folder: Path) -> list[str]:
    """Whether the runner's program, module or script can be found (cwd: the folder)."""
    where = f"{MANIFEST_FILE}: entrypoints.runner.argv"
    program = argv[0]
    if program == "python":  # the Python running Core
        rest = list(argv[1:])
        if rest[:1] == ["-m"]:
            if len(rest) < 2:
                return [f"{where}: '-m' needs a module name after it"]
            missing = _missing_module(rest[1], folder)
            return [f"{where}[2]: {missing}"] if missing else []
        if not rest or rest[0].startswith("-"):
            return [] if rest[:1] == ["-c"] else [
                f"{where}: 'python' needs a module ('-m', 'name') or a script to run"]
        if not (folder / rest[0]).is_file():
            return [f"{where}[1]: no script {rest[0]!r} in {folder}"]
        return []
    if "/" in program or os.sep in program:
        path = folder / program
        if not path.is_file():
            return [f"{where}[0]: no program {program!r} in {folder} (a path is relative to "
                    f"the plugin folder)"]
        if not os.access(path, os.X_OK):
            return [f"{where}[0]: {program!r} is not executable (chmod +x it)"]
        return []
    if shutil.which(program) is None:
        return [f"{where}[0]: no program {program!r} on PATH"]
    return []


def _missing_module(module: str, folder: Path) -> str | None:
    """Why ``python -m module`` would fail in ``folder``, or None."""
    parts = module.split(".")
    if not all(p.isidentifier() for p in parts):
        return f"{module!r} is not a module name"
    base = folder.joinpath(*parts)
    if base.with_suffix(".py").is_file():
        return None
    if (base / "__init__.py").is_file():
        return None if (base / "__main__.py").is_file() else (
            f"package {module!r} has no __main__.py, so 'python -m {module}' cannot run it")
    if (folder / parts[0]).is_dir() or (folder / f"{parts[0]}.py").is_file():
        return f"no module {module!r} in {folder}"
    # only the top level: finding a submodule would import its parents
    if importlib.util.find_spec(parts[0]) is None:
        return (f"no module {module!r} in {folder} (looked for {parts[-1]}.py) nor installed "
                f"in {sys.executable}")
    return None


def _check_project(project: Path, package: Path, manifest: Manifest, found: Checked) -> None:
    """An in-process project's ``pyproject.toml``: the entry point Core finds it by."""
    where = "pyproject.toml"
    try:
        data = tomllib.loads((project / where).read_text("utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        found.problems.append(f"{where}: cannot be read: {exc}")
        return
    project_table = data.get("project", {})
    points = project_table.get("entry-points", {}).get(ENTRY_POINT_GROUP)
    parts = package.resolve().relative_to(project.resolve()).parts
    module = ".".join(parts[1:] if parts[0] == "src" else parts)
    wanted = f'[project.entry-points."{ENTRY_POINT_GROUP}"] {manifest.id} = "{module}"'
    if not isinstance(points, dict) or not points:
        found.problems.append(f"{where}: no {ENTRY_POINT_GROUP} entry point, so Core cannot "
                              f"find the plugin: add {wanted}")
    elif manifest.id not in points:
        found.problems.append(f"{where}: entry points {sorted(points)} do not name the plugin "
                              f"id {manifest.id!r} ({MANIFEST_FILE}'s id must be the entry "
                              f"point's name): add {wanted}")
    elif str(points[manifest.id]).split(":")[0].strip() != module:
        found.problems.append(f"{where}: entry point {manifest.id} = {points[manifest.id]!r} "
                              f"is not the package holding {MANIFEST_FILE} ({module!r})")
    backend = data.get("build-system", {}).get("build-backend", "")
    shipped = data.get("tool", {}).get("setuptools", {}).get("package-data", {})
    globs = [g for key in (module, "*") for g in shipped.get(key, [])]
    if backend.startswith("setuptools") and not any(g in (MANIFEST_FILE, "*.json", "*")
                                                     for g in globs):
        found.warnings.append(f'{where}: {MANIFEST_FILE} may be left out of the built package: '
                              f'add [tool.setuptools.package-data] {module} = '
                              f'["{MANIFEST_FILE}"]')


def summary(found: Checked) -> str:
    m = found.manifest
    assert m is not None
    runner = m.entrypoints.runner
    lines = [f"ok: {m.id} {m.version} ({found.kind}): {m.name}, in {found.file}",
             f"  core_compat: {m.core_compat}",
             f"  scopes: {', '.join(m.scopes) or 'none'}",
             f"  non-API needs: {', '.join(m.needs) or 'none'}",
             f"  job types: {', '.join(m.job_types) or 'none'}",
             f"  runner: {shlex.join(runner.argv) if runner else 'none'}"
             + (" (serves HTTP)" if runner and runner.serves_http else "")]
    if m.routes_prefix:
        lines.append(f"  routes: {m.routes_prefix}/...")
    if m.config_schema and isinstance(m.config_schema.get("properties"), dict):
        lines.append(f"  settings: {', '.join(m.config_schema['properties'])}")
    return "\n".join(lines)


def core_scopes(url: str, token: str | None) -> frozenset[str]:
    """The scopes a running Core knows (its ``/v1/system/info``, which needs system:read)."""
    import httpx

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = httpx.get(url.rstrip("/") + "/v1/system/info", headers=headers, timeout=10)
    if response.status_code != 200:
        try:
            message = response.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = response.reason_phrase
        raise OSError(f"{response.status_code} {message}")
    return frozenset(response.json()["scopes"])


def _check_command(args: argparse.Namespace) -> int:
    import httpx

    scopes = KNOWN_SCOPES
    if args.url:
        try:
            scopes = core_scopes(args.url, args.token or os.environ.get("FACEFORGE_TOKEN"))
        except (httpx.HTTPError, OSError, ValueError, KeyError) as exc:
            print(f"cannot ask the Core at {args.url} which scopes it knows: {exc}",
                  file=sys.stderr)
            return 2
    found = check(args.folder, scopes)
    for line in found.problems:
        print(line, file=sys.stderr)
    for line in found.warnings:
        print(f"warning: {line}", file=sys.stderr)
    if found.problems:
        return 1
    print(summary(found))
    return 0


def _new_command(args: argparse.Namespace) -> int:
    try:
        folder = create(args.name, args.kind, args.dir)
    except ScaffoldError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    found = check(folder)
    print(f"made a new {args.kind} plugin in {folder}")
    if found.problems:  # a bug in the templates, not the user's doing
        for line in found.problems:
            print(line, file=sys.stderr)
        return 1
    print(summary(found))
    m = found.manifest
    assert m is not None
    if args.kind == "in-process":
        print(f"\nnext: pip install -e {folder} (in Core's Python), restart Core and enable "
              f"{m.id} on the Plugins page")
    else:
        print(f"\nnext: put the folder at $FACEFORGE_HOME/plugins/{m.id}/, rescan and "
              f"enable {m.id} on the Plugins page")
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m ff_plugin_sdk",
                                  description="Tools for writing FaceForge plugins.")
    commands = top.add_subparsers(dest="command", required=True)
    check_cmd = commands.add_parser(
        "check", help="check a plugin's plugin.json and what it points at",
        description="Check a plugin folder (out-of-process), a project or package folder "
                    "(in-process) or a plugin.json.  Exits 1 when it has problems.")
    check_cmd.add_argument("folder", type=Path)
    check_cmd.add_argument("--url", help="ask this running Core which scopes exist, instead "
                                         "of using the built-in list")
    check_cmd.add_argument("--token", help="a token for --url with system:read (default: "
                                           "$FACEFORGE_TOKEN)")
    check_cmd.set_defaults(run=_check_command)
    new_cmd = commands.add_parser(
        "new", help="write a new working plugin",
        description="Write a new plugin into ./<id> (or --dir): the id is the name in lower "
                    "case with _ between words ('My Plugin' -> my_plugin).")
    new_cmd.add_argument("name")
    new_cmd.add_argument("--kind", choices=KINDS, default="out-of-process",
                         help="in-process: a Python package Core loads; out-of-process "
                              "(default): a folder with a runner Core starts")
    new_cmd.add_argument("--dir", type=Path, help="the folder to write (must be new or empty)")
    new_cmd.set_defaults(run=_new_command)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    code: int = args.run(args)
    return code

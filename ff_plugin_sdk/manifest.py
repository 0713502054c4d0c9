"""The plugin manifest (spec §8.2): what a plugin is, needs and offers, checked in one place.

Out-of-process plugins ship it as ``plugin.json`` in their folder; in-process packages ship
the same file inside the package (next to ``__init__.py``).  Core, ``python -m ff_plugin_sdk
check`` and the plugins page all read it through :func:`read_manifest`, so a manifest that
passes the check loads, and one that does not is refused with the same sentences.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

MANIFEST_FILE = "plugin.json"
ID_PATTERN = r"^[a-z][a-z0-9_]{1,39}$"
#: capabilities a manifest may declare (what the plugins page shows)
CAPABILITIES = ("api", "runner", "ui", "jobs", "events", "assets", "integration")
#: permissions that are not API scopes: shown to the user on the consent screen
NEEDS = ("network", "gpu", "filesystem")
_ID = re.compile(ID_PATTERN)
_SCOPE = re.compile(r"^[a-z][a-z0-9_]*:[a-z][a-z0-9_]*$")
_NEED = re.compile(r"^(network|gpu)$|^(network|filesystem):.+$")

PluginId = Annotated[str, msgspec.Meta(pattern=ID_PATTERN,
                                       description="lower case, digits and _, 2-40 long")]


class Runner(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """How Core starts the plugin's process: ``argv`` run in the plugin folder.  A first
    element ``python`` means the Python running Core."""

    argv: Annotated[list[Annotated[str, msgspec.Meta(min_length=1)]], msgspec.Meta(min_length=1)]
    #: the runner serves HTTP on the port Core passes in ``FACEFORGE_PLUGIN_PORT``: Core
    #: proxies ``/v1/plugins/<id>/...`` and the plugin's UI pages to it
    serves_http: bool = False


class UIPageEntry(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A page the runner serves, shown inside the Core UI at ``/ui/plugins/<id><path>``."""

    path: Annotated[str, msgspec.Meta(pattern=r"^/[A-Za-z0-9._~/\-]*$")]
    label: Annotated[str, msgspec.Meta(min_length=1, max_length=60)]
    #: also an entry in the main navigation
    nav: bool = True


class EntityTabEntry(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A tab on the entity page whose body the runner renders: Core asks
    ``GET <path>?entity_id=...`` and shows the HTML fragment it answers."""

    path: Annotated[str, msgspec.Meta(pattern=r"^/[A-Za-z0-9._~/\-]*$")]
    label: Annotated[str, msgspec.Meta(min_length=1, max_length=40)]


class UIEntrypoints(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    pages: list[UIPageEntry] = []
    entity_tab: EntityTabEntry | None = None


class Entrypoints(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    runner: Runner | None = None
    ui: UIEntrypoints | None = None


class Manifest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    id: PluginId
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    version: str
    #: the Core versions it works with: a PEP 440 specifier set (``>=0.1,<1``)
    core_compat: str
    description: str = ""
    capabilities: list[Literal["api", "runner", "ui", "jobs", "events", "assets",
                               "integration"]] = []
    #: JSON Schema of the plugin's settings (rendered as a form on the plugins page)
    config_schema: dict[str, Any] | None = None
    #: API scopes (``entities:read``) and non-API needs (``network``, ``network:<host>``,
    #: ``gpu``, ``filesystem:<path>``)
    permissions: list[str] = []
    routes_prefix: str | None = None
    job_types: list[str] = []
    entrypoints: Entrypoints = msgspec.field(default_factory=Entrypoints)

    @property
    def scopes(self) -> list[str]:
        """The API scopes its token carries."""
        return sorted({p for p in self.permissions if not is_need(p)})

    @property
    def needs(self) -> list[str]:
        """What it asks for beyond the API (network, GPU, filesystem paths)."""
        return sorted({p for p in self.permissions if is_need(p)})


def is_need(permission: str) -> bool:
    return bool(_NEED.match(permission))


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a manifest: where (a JSON path) and what, as a sentence."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class ManifestError(Exception):
    """A manifest that cannot be used; ``problems`` says every reason found."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = problems


def read_manifest(path: Path) -> Manifest:
    """Read and check ``plugin.json`` (or a folder holding one); raises :class:`ManifestError`."""
    if path.is_dir():
        path = path / MANIFEST_FILE
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ManifestError([Problem("", f"no {MANIFEST_FILE} in {path.parent}")]) from None
    except OSError as exc:
        raise ManifestError([Problem("", f"cannot read {path}: {exc.strerror}")]) from None
    try:
        data = json.loads(raw)
    except UnicodeDecodeError:
        raise ManifestError([Problem("", f"{path.name} is not UTF-8 text")]) from None
    except json.JSONDecodeError as exc:
        raise ManifestError([Problem(
            "", f"{path.name} is not valid JSON: {exc.msg} at line {exc.lineno} "
                f"column {exc.colno}")]) from None
    return check_manifest(data)


def check_manifest(data: Any) -> Manifest:
    """Check a decoded manifest: its shape, then every rule a shape cannot say."""
    if not isinstance(data, dict):
        raise ManifestError([Problem("", "a manifest is a JSON object")])
    try:
        manifest = msgspec.convert(data, Manifest)
    except msgspec.ValidationError as exc:
        message, _, where = str(exc).partition(" - at `")
        path = where.rstrip("`").removeprefix("$").lstrip(".") if where else ""
        raise ManifestError([Problem(path, message)]) from None
    problems = list(_rules(manifest))
    if problems:
        raise ManifestError(problems)
    return manifest


def _rules(m: Manifest) -> list[Problem]:
    from jsonschema import Draft202012Validator, SchemaError
    from packaging.specifiers import InvalidSpecifier, SpecifierSet
    from packaging.version import InvalidVersion, Version

    problems = []
    try:
        Version(m.version)
    except InvalidVersion:
        problems.append(Problem("version", f"{m.version!r} is not a PEP 440 version "
                                           f"(such as 1.0.2)"))
    try:
        SpecifierSet(m.core_compat)
    except InvalidSpecifier:
        problems.append(Problem("core_compat", f"{m.core_compat!r} is not a PEP 440 "
                                               f"version range (such as '>=0.1,<1')"))
    if m.config_schema is not None:
        try:
            Draft202012Validator.check_schema(m.config_schema)
        except SchemaError as exc:
            where = "/".join(str(p) for p in exc.path)
            problems.append(Problem("config_schema" + (f"/{where}" if where else ""),
                                    f"not a valid JSON Schema: {exc.message}"))
        else:
            for where in _remote_refs(m.config_schema, "config_schema"):
                problems.append(Problem(where, "only references inside the schema ('#/...') "
                                               "are allowed: Core fetches nothing"))
            if m.config_schema.get("type", "object") != "object":
                problems.append(Problem("config_schema", "the settings schema must describe "
                                                         "an object (\"type\": \"object\")"))
    for i, permission in enumerate(m.permissions):
        if not (_SCOPE.match(permission) or is_need(permission)):
            problems.append(Problem(
                f"permissions[{i}]", f"{permission!r} is neither an API scope "
                f"('<area>:<verb>', such as 'entities:read') nor one of network, "
                f"network:<host>, gpu, filesystem:<path>"))
    for i, job_type in enumerate(m.job_types):
        if not job_type.startswith(m.id + ".") or len(job_type) <= len(m.id) + 1:
            problems.append(Problem(f"job_types[{i}]", f"{job_type!r} must be namespaced "
                                                       f"as '{m.id}.<name>'"))
    prefix = f"/v1/plugins/{m.id}"
    if m.routes_prefix is not None and m.routes_prefix.rstrip("/") != prefix:
        problems.append(Problem("routes_prefix", f"must be {prefix!r}: a plugin's routes live "
                                                 f"under its own id"))
    runner = m.entrypoints.runner
    served = runner is not None and runner.serves_http
    if (m.routes_prefix or (m.entrypoints.ui and (m.entrypoints.ui.pages
                                                  or m.entrypoints.ui.entity_tab))) \
            and runner is not None and not served:
        problems.append(Problem("entrypoints.runner.serves_http",
                                "routes_prefix and entrypoints.ui are served by the runner: "
                                "set serves_http to true"))
    return problems


def _remote_refs(node: Any, path: str) -> list[str]:
    """Where ``node`` holds a ``$ref`` outside itself (it could never be resolved)."""
    if isinstance(node, dict):
        found = [f"{path}/$ref"] if isinstance(node.get("$ref"), str) and not \
            node["$ref"].startswith("#") else []
        return found + [where for key, value in node.items()
                        for where in _remote_refs(value, f"{path}/{key}")]
    if isinstance(node, list):
        return [where for i, value in enumerate(node)
                for where in _remote_refs(value, f"{path}/{i}")]
    return []


def satisfies(manifest: Manifest, core_version: str) -> bool:
    """Whether this Core's version is inside the manifest's ``core_compat`` range."""
    from packaging.specifiers import SpecifierSet

    return SpecifierSet(manifest.core_compat).contains(core_version, prereleases=True)


Kind = Literal["builtin", "in_process", "out_of_process"]

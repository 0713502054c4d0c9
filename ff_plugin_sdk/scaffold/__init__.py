"""New plugins from templates: ``python -m ff_plugin_sdk new <name>``.

The templates are the files under ``templates/<kind>/``: ``{{id}}``, ``{{package}}`` and the
other keys of :func:`_words` are replaced in their names and text, and a ``.tmpl`` suffix
(which keeps them from being linted or imported as part of the SDK) is dropped.  The
manifest is written from a dict rather than a template, so a display name with quotes in
it still makes valid JSON.
"""

from __future__ import annotations

import json
import re
import unicodedata
from importlib import metadata, resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, Literal

from ff_plugin_sdk.manifest import ID_PATTERN, MANIFEST_FILE, check_manifest

Kind = Literal["in-process", "out-of-process"]
KINDS: tuple[Kind, ...] = ("in-process", "out-of-process")
_ID = re.compile(ID_PATTERN)
_TOKEN = re.compile(r"\{\{([a-z_]+)\}\}")


class ScaffoldError(Exception):
    """A plugin that cannot be made (a bad name, a folder in the way); says why."""


def plugin_id(name: str) -> str:
    """The plugin id a name gives: ``"My Plugin"`` -> ``my_plugin``."""
    # accents go ("Café" -> cafe); other letters cannot be part of an id
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    candidate = re.sub(r"[^a-z0-9]+", "_", ascii_name.lower()).strip("_")
    if not _ID.match(candidate):
        raise ScaffoldError(
            f"{name!r} does not make a plugin id ({candidate!r}): an id starts with a letter "
            f"and holds 2-40 lower case letters, digits and _ (such as 'face_tagger')")
    return candidate


def display_name(name: str, pid: str) -> str:
    """What the Plugins page calls it: the name as typed, unless it was typed as an id."""
    name = " ".join(name.split())
    return name if name != pid else pid.replace("_", " ").capitalize()


def core_compat() -> str:
    """This Core's release series: ``>=0.1,<1`` for 0.1.x."""
    try:
        version = metadata.version("faceforge")
    except metadata.PackageNotFoundError:
        return ">=0.1,<1"
    major, _, rest = version.partition(".")
    minor = rest.partition(".")[0]
    if not (major.isdigit() and minor.isdigit()):
        return ">=0.1,<1"
    return f">={major}.{minor},<{int(major) + 1}"


def manifest(kind: Kind, pid: str, name: str) -> dict[str, Any]:
    """The new plugin's ``plugin.json``."""
    data: dict[str, Any] = {
        "id": pid,
        "name": name[:100],
        "version": "0.1.0",
        "core_compat": core_compat(),
        "description": "",
        "config_schema": {
            "type": "object",
            "properties": {"greeting": {
                "type": "string", "title": "Greeting", "default": "Hello", "maxLength": 40,
                "description": "What the plugin says before a name"}},
            "additionalProperties": False,
        },
        "job_types": [f"{pid}.hello"],
    }
    if kind == "in-process":
        data |= {"description": "Says hello: a route, a job type, an entity tab and an event "
                                "subscriber, inside Core.",
                 "capabilities": ["api", "ui", "jobs", "events"],
                 "permissions": ["entities:read", "events:read"],
                 "routes_prefix": f"/v1/plugins/{pid}"}
    else:
        data |= {"description": "Says hello from a job runner of its own.",
                 "capabilities": ["runner", "jobs"],
                 "permissions": ["jobs:run", "entities:read"],
                 "entrypoints": {"runner": {"argv": ["python", "-m", "runner"]}}}
    check_manifest(data)  # a template that makes a bad manifest is a bug here, not theirs
    return data


def create(name: str, kind: Kind, target: Path | None = None) -> Path:
    """Write a new plugin of ``kind`` into ``target`` (default ``./<id>``); returns the
    folder.  Refuses a folder that exists and is not empty."""
    pid = plugin_id(name)
    target = target if target is not None else Path.cwd() / pid
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ScaffoldError(f"{target} already exists and is not empty: choose another name "
                            f"or --dir")
    words = _words(pid, display_name(name, pid))
    root = resources.files(__name__).joinpath("templates", kind.replace("-", "_"))
    target.mkdir(parents=True, exist_ok=True)
    _copy(root, target, words)
    home = target / words["package"] if kind == "in-process" else target
    (home / MANIFEST_FILE).write_text(
        json.dumps(manifest(kind, pid, words["name"]), indent=2, ensure_ascii=False) + "\n",
        "utf-8")
    return target


def _words(pid: str, name: str) -> dict[str, str]:
    return {"id": pid, "name": name, "package": f"faceforge_{pid}",
            "dist": "faceforge-" + pid.replace("_", "-"),
            # a Python string literal (JSON's escapes are Python's too)
            "tab_label": json.dumps(name if len(name) <= 40 else pid, ensure_ascii=False)}


def _copy(source: Traversable, target: Path, words: dict[str, str]) -> None:
    for entry in source.iterdir():
        out = target / _fill(entry.name, words).removesuffix(".tmpl")
        if entry.is_dir():
            out.mkdir(exist_ok=True)
            _copy(entry, out, words)
        else:
            out.write_text(_fill(entry.read_text("utf-8"), words), "utf-8")


def _fill(text: str, words: dict[str, str]) -> str:
    return _TOKEN.sub(lambda m: words[m.group(1)], text)

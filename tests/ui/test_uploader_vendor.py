"""The vendored Uppy (plugins_builtin/assets/static/vendor): each file matches the sha256 pinned
in vendor.json and in the README note, every file there is pinned, the licence is MIT with its
notice kept, and the uploader template loads exactly the pinned files."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
STATIC = REPO_ROOT / "plugins_builtin/assets/static"
VENDOR = STATIC / "vendor"
TEMPLATE = REPO_ROOT / "plugins_builtin/assets/templates/assets/_uploader.html"
NOTES = VENDOR / "README.md"
MANIFEST = json.loads((VENDOR / "vendor.json").read_text(encoding="utf-8"))["files"]
# not assets: the manifest and the note about them
UNPINNED = {"vendor.json", "README.md"}


@pytest.mark.parametrize(("rel", "entry"), sorted(MANIFEST.items()), ids=sorted(MANIFEST))
def test_pinned_file_matches_its_sha256(rel: str, entry: dict) -> None:
    path = VENDOR / rel
    assert path.is_file(), f"{rel} is pinned in vendor.json but missing"
    assert {"package", "version", "source", "sha256", "license", "integrity"} <= entry.keys()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"]
    assert re.fullmatch(r"sha512-[A-Za-z0-9+/]{86}==", entry["integrity"])
    # the README note gives the same sum for the same file
    assert f"| `{rel}` | `{entry['source']}` | `{entry['sha256']}` |" in NOTES.read_text("utf-8")


@pytest.mark.parametrize("path", sorted(p for p in VENDOR.rglob("*") if p.is_file()
                                        and p.name not in UNPINNED),
                         ids=lambda p: p.relative_to(VENDOR).as_posix())
def test_every_vendored_file_is_pinned(path: Path) -> None:
    assert path.relative_to(VENDOR).as_posix() in MANIFEST


def test_uppy_is_mit_and_its_notice_is_kept() -> None:
    versions = {(e["package"], e["version"], e["license"]) for e in MANIFEST.values()}
    assert versions == {("uppy", "6.0.1", "MIT")}
    licence = (VENDOR / "uppy-6.0.1/LICENSE").read_text("utf-8")
    assert "The MIT License" in licence and "Copyright (c) 2018 Transloadit" in licence
    # the bundle keeps the notices of what it bundles (tus-js-client among them)
    assert "tus-js-client" in (VENDOR / "uppy-6.0.1/uppy.min.js").read_text("utf-8")[-8000:]


def test_the_uploader_loads_the_pinned_files_from_this_server() -> None:
    html = TEMPLATE.read_text("utf-8")
    loaded = set(re.findall(r'(?:href|src|data-uppy-script)="/static/assets/vendor/([^"]+)"',
                            html))
    assert loaded == {"uppy-6.0.1/uppy.min.css", "uppy-6.0.1/uppy.min.js"}
    assert loaded <= MANIFEST.keys()
    assert "http://" not in html and "https://" not in html

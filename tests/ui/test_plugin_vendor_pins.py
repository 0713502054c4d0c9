"""Front-end files vendored by plugins (Uppy for the assets plugin, the htmx SSE extension for
the jobs plugin): each file matches the sha256 pinned in its folder's vendor.json and README
note, and every file in such a folder is pinned.  What each package must be beyond that
(licence, who loads it) is in its own test module."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
VENDOR_DIRS = [REPO_ROOT / "plugins_builtin/assets/static/vendor",
               REPO_ROOT / "plugins_builtin/jobs/static/vendor"]
# not assets: the manifest and the note about them
UNPINNED = {"vendor.json", "README.md"}


def manifest(vendor: Path) -> dict[str, dict]:
    return json.loads((vendor / "vendor.json").read_text(encoding="utf-8"))["files"]


def _id(vendor: Path, rel: str) -> str:
    return f"{vendor.parents[1].name}:{rel}"


PINNED = [(vendor, rel, entry) for vendor in VENDOR_DIRS
          for rel, entry in sorted(manifest(vendor).items())]
PRESENT = [(vendor, path) for vendor in VENDOR_DIRS for path in sorted(vendor.rglob("*"))
           if path.is_file() and path.name not in UNPINNED]


@pytest.mark.parametrize(("vendor", "rel", "entry"), PINNED,
                         ids=[_id(v, r) for v, r, _ in PINNED])
def test_pinned_file_matches_its_sha256(vendor: Path, rel: str, entry: dict) -> None:
    path = vendor / rel
    assert path.is_file(), f"{rel} is pinned in vendor.json but missing"
    assert {"package", "version", "source", "sha256", "license", "integrity"} <= entry.keys()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"]
    assert re.fullmatch(r"sha512-[A-Za-z0-9+/]{86}==", entry["integrity"])
    # the README note gives the same sum for the same file
    note = (vendor / "README.md").read_text("utf-8")
    assert f"| `{rel}` | `{entry['source']}` | `{entry['sha256']}` |" in note


@pytest.mark.parametrize(("vendor", "path"), PRESENT,
                         ids=[_id(v, p.relative_to(v).as_posix()) for v, p in PRESENT])
def test_every_vendored_file_is_pinned(vendor: Path, path: Path) -> None:
    assert path.relative_to(vendor).as_posix() in manifest(vendor)

"""The vendored htmx SSE extension (plugins_builtin/jobs/static/vendor): each file matches the
sha256 pinned in vendor.json and in the README note, every file there is pinned, the licence
is 0BSD as shipped, and the Jobs templates load exactly the pinned script from this server."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
JOBS = REPO_ROOT / "plugins_builtin/jobs"
VENDOR = JOBS / "static/vendor"
NOTES = VENDOR / "README.md"
MANIFEST = json.loads((VENDOR / "vendor.json").read_text(encoding="utf-8"))["files"]
HTMX_MANIFEST = json.loads((REPO_ROOT / "ui/static/vendor/vendor.json").read_text("utf-8"))
# not assets: the manifest and the note about them
UNPINNED = {"vendor.json", "README.md"}


@pytest.mark.parametrize(("rel", "entry"), sorted(MANIFEST.items()), ids=sorted(MANIFEST))
def test_pinned_file_matches_its_sha256(rel: str, entry: dict) -> None:
    path = VENDOR / rel
    assert path.is_file(), f"{rel} is pinned in vendor.json but missing"
    assert {"package", "version", "source", "sha256", "license", "integrity"} <= entry.keys()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"]
    assert re.fullmatch(r"sha512-[A-Za-z0-9+/]{86}==", entry["integrity"])
    assert f"| `{rel}` | `{entry['source']}` | `{entry['sha256']}` |" in NOTES.read_text("utf-8")


@pytest.mark.parametrize("path", sorted(p for p in VENDOR.rglob("*") if p.is_file()
                                        and p.name not in UNPINNED),
                         ids=lambda p: p.relative_to(VENDOR).as_posix())
def test_every_vendored_file_is_pinned(path: Path) -> None:
    assert path.relative_to(VENDOR).as_posix() in MANIFEST


def test_the_extension_is_0bsd_and_made_for_the_vendored_htmx() -> None:
    versions = {(e["package"], e["version"], e["license"]) for e in MANIFEST.values()}
    assert versions == {("htmx-ext-sse", "2.2.4", "0BSD")}
    assert "BSD Zero Clause License" in (VENDOR / "htmx-ext-sse-2.2.4/LICENSE").read_text()
    # a 2.x extension for the 2.x htmx the shell loads
    htmx = {e["version"] for e in HTMX_MANIFEST["files"].values()}
    assert htmx == {"2.0.11"}
    script = (VENDOR / "htmx-ext-sse-2.2.4/sse.min.js").read_text("utf-8")
    assert 'htmx.defineExtension("sse"' in script


def test_the_jobs_pages_load_the_pinned_script_from_this_server() -> None:
    loaded = set()
    for template in (JOBS / "templates").glob("*.html"):
        html = template.read_text("utf-8")
        loaded |= set(re.findall(r'src="/static/jobs/vendor/([^"]+)"', html))
        assert "http://" not in html and "https://" not in html
    assert loaded == {"htmx-ext-sse-2.2.4/sse.min.js"}

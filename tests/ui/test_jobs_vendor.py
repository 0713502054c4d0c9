"""The vendored htmx SSE extension (plugins_builtin/jobs/static/vendor): the licence is 0BSD
as shipped, it is made for the vendored htmx, and the Jobs templates load exactly the pinned
script from this server (the pins themselves: test_plugin_vendor_pins.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
JOBS = REPO_ROOT / "plugins_builtin/jobs"
VENDOR = JOBS / "static/vendor"
MANIFEST = json.loads((VENDOR / "vendor.json").read_text(encoding="utf-8"))["files"]
HTMX_MANIFEST = json.loads((REPO_ROOT / "ui/static/vendor/vendor.json").read_text("utf-8"))


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

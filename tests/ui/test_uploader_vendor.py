"""The vendored Uppy (plugins_builtin/assets/static/vendor): the licence is MIT with its
notice kept, and the uploader template loads exactly the pinned files (the pins themselves:
test_plugin_vendor_pins.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
STATIC = REPO_ROOT / "plugins_builtin/assets/static"
VENDOR = STATIC / "vendor"
TEMPLATE = REPO_ROOT / "plugins_builtin/assets/templates/assets/_uploader.html"
MANIFEST = json.loads((VENDOR / "vendor.json").read_text(encoding="utf-8"))["files"]


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

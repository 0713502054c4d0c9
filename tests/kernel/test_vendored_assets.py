"""Vendored front-end assets must match their pinned sha256 in vendor.json."""

import hashlib
import json
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
VENDOR_DIRS = [REPO_ROOT / "ui/static/vendor", REPO_ROOT / "kernel/static/vendor"]


def _manifest(vendor_dir: Path) -> dict:
    return json.loads((vendor_dir / "vendor.json").read_text(encoding="utf-8"))["files"]


def _is_exempt(path: Path) -> bool:
    # vendor.json itself and licence texts need not be pinned.
    return path.name == "vendor.json" or "LICENSE" in path.name or path.name == "NOTICE"


PINNED = [
    pytest.param(vdir, rel, entry, id=f"{vdir.relative_to(REPO_ROOT)}/{rel}")
    for vdir in VENDOR_DIRS
    for rel, entry in sorted(_manifest(vdir).items())
]

ON_DISK = [
    pytest.param(vdir, path, id=str(path.relative_to(REPO_ROOT)))
    for vdir in VENDOR_DIRS
    for path in sorted(vdir.rglob("*"))
    if path.is_file() and not _is_exempt(path)
]


@pytest.mark.parametrize(("vendor_dir", "rel", "entry"), PINNED)
def test_pinned_file_matches_sha256(vendor_dir: Path, rel: str, entry: dict) -> None:
    path = vendor_dir / rel
    assert path.is_file(), f"{path} listed in vendor.json but missing"
    assert {"package", "version", "source", "sha256", "license"} <= entry.keys()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"]


@pytest.mark.parametrize(("vendor_dir", "path"), ON_DISK)
def test_vendored_file_is_listed(vendor_dir: Path, path: Path) -> None:
    rel = path.relative_to(vendor_dir).as_posix()
    assert rel in _manifest(vendor_dir), f"{rel} is not pinned in {vendor_dir}/vendor.json"

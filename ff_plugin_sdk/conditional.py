"""Versioned resources over HTTP: ``ETag: "3"``, ``If-Match`` (-> 412) and ``If-None-Match``
(-> 304).  A resource with a ``version`` column that every change bumps uses these."""

from __future__ import annotations

import re
from typing import Any

from ff_plugin_sdk.errors import BadRequest

_TAG = re.compile(r'^(W/)?"([^"]*)"$')
#: a version as its tag spells it: ASCII digits, no leading zero ("01" is another tag),
#: small enough for SQLite
_VERSION = re.compile(r"[1-9][0-9]{0,17}")


def parse_version(text: str) -> int | None:
    """The version a tag's text (or an edit form's field) names; None when it names none."""
    return int(text) if _VERSION.fullmatch(text) else None


def version_etag(resource: dict[str, Any]) -> str:
    return f'"{resource["version"]}"'


def if_match(request: Any) -> frozenset[int] | None:
    """The versions an ``If-Match`` header allows; None without one (or with ``*``).

    If-Match compares strongly (RFC 9110 §13.1.1): a weak tag matches nothing.
    """
    header = request.headers.get("if-match")
    if header is None or header.strip() == "*":
        return None
    versions = set()
    # a list may hold empty elements, which a recipient ignores (RFC 9110 §5.6.1.2)
    parts = [part.strip() for part in header.split(",") if part.strip()]
    for part in parts or [header]:
        match = _TAG.match(part)
        if match is None:
            raise BadRequest(f"If-Match must be '*' or quoted entity tags such as '\"3\"'; "
                             f"got {header!r}", code="invalid_if_match")
        weak, value = match.groups()
        version = None if weak else parse_version(value)
        if version is not None:
            versions.add(version)
    return frozenset(versions)


def not_modified(request: Any, current_etag: str) -> bool:
    """``If-None-Match`` names ``current_etag`` (weak comparison): answer 304."""
    header = request.headers.get("if-none-match")
    if header is None:
        return False
    return header.strip() == "*" or any(
        part.strip().removeprefix("W/") == current_etag for part in header.split(","))

"""What of ExifTool's answer is kept, and the dimensions lifted onto the asset record.

Kept: every ``Group:Tag`` (``-G1``) except ``SourceFile`` and the ``System`` group (the blob's
local path, permissions and file times, which say nothing about the content), and the
ExifTool version (shown in the status instead).  With ``-n`` sizes are numbers and durations
are seconds.
"""

from __future__ import annotations

from typing import Any

_DROPPED_GROUPS = ("System:",)
_DROPPED_TAGS = frozenset({"SourceFile", "ExifTool:ExifToolVersion"})
#: where pixel sizes are, most trusted first (``Composite:ImageSize`` is ExifTool's own pick)
_WIDTH_GROUPS = ("File", "PNG", "RIFF", "GIF", "BMP", "QuickTime", "Track1", "Track2",
                 "Matroska", "EXIF", "ExifIFD", "XMP-exif")
_DURATION_TAGS = ("Composite:Duration", "QuickTime:Duration", "Matroska:Duration",
                  "RIFF:Duration", "Track1:TrackDuration", "Track2:TrackDuration")


def clean_tags(tags: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in tags.items()
            if key not in _DROPPED_TAGS and not key.startswith(_DROPPED_GROUPS)}


def _positive_int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value) if 0 < value < 2**31 else None


def dimensions(tags: dict[str, Any]) -> tuple[int | None, int | None]:
    """Width and height in pixels, or (None, None)."""
    size = tags.get("Composite:ImageSize")
    if isinstance(size, str):
        parts = size.replace("x", " ").split()
        if len(parts) == 2 and all(p.isdigit() for p in parts):
            width, height = (_positive_int(int(p)) for p in parts)
            if width and height:
                return width, height
    candidates = [g for g in _WIDTH_GROUPS] + sorted(
        {k.split(":", 1)[0] for k in tags if k.endswith(":ImageWidth")} - set(_WIDTH_GROUPS))
    for group in candidates:
        width = _positive_int(tags.get(f"{group}:ImageWidth"))
        height = _positive_int(tags.get(f"{group}:ImageHeight"))
        if width and height:
            return width, height
    return None, None


def duration(tags: dict[str, Any]) -> float | None:
    """Playing time in seconds (audio, video, animations), or None."""
    for key in _DURATION_TAGS:
        value = tags.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
            return float(value)
    return None

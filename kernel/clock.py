"""Timestamps: RFC 3339 UTC strings with microseconds (``2026-11-21T16:10:00.123456Z``),
one format throughout, so they sort and compare as text."""

from __future__ import annotations

from datetime import UTC, datetime

FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def stamp(moment: datetime) -> str:
    """A timezone-aware datetime as the one text format."""
    return moment.astimezone(UTC).strftime(FORMAT)


def utc_now() -> str:
    return datetime.now(UTC).strftime(FORMAT)


def now() -> datetime:
    """The current time (aware, UTC); what injectable clocks default to."""
    return datetime.now(UTC)

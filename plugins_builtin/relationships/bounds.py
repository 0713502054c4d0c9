"""A relationship's time bounds (``valid_from``/``valid_to``): one rule, shared by the API
and the UI.

A bound is a date (``1815-12-10``) or an RFC 3339 date-time with an offset
(``1852-11-27T10:00:00+01:00``).  Date-times are stored in UTC (``...Z``), dates as given.
A date stands for the whole UTC day, so ``valid_from`` must not come after ``valid_to``
where ``valid_from`` is read at its earliest moment and ``valid_to`` at its latest:
``2020-01-01`` .. ``2020-01-01`` is one day; ``2020-01-01T12:00:00Z`` .. ``2020-01-01`` is
half of it.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, time

from ff_plugin_sdk import ValidationFailed

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$")
EXPECTED = "a date (YYYY-MM-DD) or an RFC 3339 date-time with an offset (2020-01-31T18:00:00Z)"


def _refuse(name: str, value: str, why: str = EXPECTED) -> ValidationFailed:
    return ValidationFailed(f"{name} {value!r} is not {why}", code="invalid_time_bound",
                            details=[{"path": f"$.{name}", "message": f"expected {why}"}])


def normalize(name: str, value: str | None) -> str | None:
    """The bound as stored, or None; 422 naming ``name`` unless it is a valid one."""
    if value is None:
        return None
    text = value.strip()
    try:
        if _DATE.match(text):
            datetime.strptime(text, "%Y-%m-%d")  # a real day: not 2020-02-30
            return text
        if _DATETIME.match(text):
            moment = datetime.fromisoformat(text.upper()).astimezone(UTC)
            stamp = moment.strftime("%Y-%m-%dT%H:%M:%S")
            if moment.microsecond:
                stamp += f".{moment.microsecond:06d}".rstrip("0")
            # strftime pads years below 1000 differently per platform: fix it by hand
            return f"{moment.year:04d}{stamp[stamp.index('-'):]}Z"
    except (ValueError, OverflowError):
        raise _refuse(name, value) from None
    raise _refuse(name, value)


def _earliest(bound: str) -> datetime:
    if len(bound) == 10:
        return datetime.combine(datetime.strptime(bound, "%Y-%m-%d").date(), time.min, UTC)
    return datetime.fromisoformat(bound)


def _latest(bound: str) -> datetime:
    if len(bound) == 10:
        return datetime.combine(datetime.strptime(bound, "%Y-%m-%d").date(), time.max, UTC)
    return datetime.fromisoformat(bound)


def check_order(valid_from: str | None, valid_to: str | None) -> None:
    """422 unless ``valid_from`` (normalized) is not after ``valid_to``."""
    if valid_from is None or valid_to is None:
        return
    if _earliest(valid_from) > _latest(valid_to):
        raise ValidationFailed(
            f"valid_from {valid_from} is after valid_to {valid_to}", code="invalid_time_bound",
            details=[{"path": "$.valid_from", "message": "must not be after valid_to"}])

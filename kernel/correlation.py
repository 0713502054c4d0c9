"""The correlation id of the work in progress (a request, a job), carried in a contextvar."""

from __future__ import annotations

import re
import secrets
from contextvars import ContextVar

HEADER = "x-correlation-id"
_VALID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")

correlation_id: ContextVar[str | None] = ContextVar("faceforge_correlation_id", default=None)


def new_id() -> str:
    return secrets.token_hex(8)


def accept(value: str | None) -> str:
    """Use the caller's id when it is a sane token; otherwise make one (never log junk)."""
    return value if value and _VALID.match(value) else new_id()

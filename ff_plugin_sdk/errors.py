"""Errors that become the JSON error envelope.

Each carries its HTTP status and a stable machine ``code``; the kernel renders
``{"error": {"code", "message", "details"}}`` from them.  They are plain Python so
in-process plugins can raise them without importing the server.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec


class FaceForgeError(Exception):
    """Base class: an error with an HTTP status, a code and a human message."""

    status: int = 500
    code: str = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        details: list[Any] | None = None,
        status: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.details: list[Any] = details or []
        #: extra response headers (a protocol's own, such as tus's ``Tus-Resumable``)
        self.headers: dict[str, str] = dict(headers or {})


class BadRequest(FaceForgeError):
    status = 400
    code = "bad_request"


class Unauthorized(FaceForgeError):
    status = 401
    code = "unauthorized"


class Forbidden(FaceForgeError):
    status = 403
    code = "forbidden"


class NotFound(FaceForgeError):
    status = 404
    code = "not_found"


class MethodNotAllowed(FaceForgeError):
    status = 405
    code = "method_not_allowed"


class Conflict(FaceForgeError):
    status = 409
    code = "conflict"


class PreconditionFailed(FaceForgeError):
    """An ``If-Match`` that no longer matches: someone changed the resource meanwhile."""

    status = 412
    code = "precondition_failed"


class PayloadTooLarge(FaceForgeError):
    status = 413
    code = "payload_too_large"


class RangeNotSatisfiable(FaceForgeError):
    status = 416
    code = "range_not_satisfiable"


class ValidationFailed(FaceForgeError):
    status = 422
    code = "validation_error"


_AT = re.compile(r" - at (`key` in )?`([^`]*)`$")


def validation_error(exc: msgspec.ValidationError, root: str = "$") -> ValidationFailed:
    """msgspec's "Expected `str`, got `int` - at `$.name`" -> 422 with the path in details;
    ``root`` replaces the ``$`` of msgspec's path (``$.input`` for a field inside a body)."""
    text = str(exc)
    match = _AT.search(text)
    path = match.group(2) if match else "$"
    if path.startswith("$"):
        path = root + path[1:]
    why = text[: match.start()] if match else text
    if match and match.group(1):
        why += " (in a key)"
    return ValidationFailed(f"invalid {path}: {why}", details=[{"path": path, "message": why}])


#: the class a status maps to when an answer from Core is read back (the HTTP client)
_BY_STATUS: dict[int, type[FaceForgeError]] = {
    cls.status: cls for cls in (BadRequest, Unauthorized, Forbidden, NotFound, MethodNotAllowed,
                                Conflict, PreconditionFailed, PayloadTooLarge,
                                RangeNotSatisfiable, ValidationFailed)}


def error_from_envelope(status: int, body: Any,
                        headers: dict[str, str] | None = None) -> FaceForgeError:
    """The typed error an answer of ``status`` carrying ``body`` stands for (the reverse of
    rendering the envelope): ``NotFound`` for a 404, with the envelope's code, message and
    details.  A body that is not an envelope (a proxy's HTML page) keeps its first line as
    the message, with the code ``http_<status>``."""
    cls = _BY_STATUS.get(status, FaceForgeError)
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        code = error.get("code")
        details = error.get("details")
        return cls(error["message"], code=code if isinstance(code, str) else None,
                   details=details if isinstance(details, list) else None, status=status,
                   headers=headers)
    text = body.strip().splitlines()[0][:300] if isinstance(body, str) and body.strip() else ""
    return cls(text or f"HTTP {status} without an error body", code=f"http_{status}",
               status=status, headers=headers)

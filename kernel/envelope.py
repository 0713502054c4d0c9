"""The JSON error envelope and the handlers that render every error into it (DESIGN §5)."""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from kernel.correlation import correlation_id
from kernel.errors import FaceForgeError

log = logging.getLogger("faceforge.http")

_STARLETTE_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 409: "conflict", 412: "precondition_failed",
    413: "payload_too_large", 416: "range_not_satisfiable", 422: "validation_error",
}


class ErrorBody(msgspec.Struct, kw_only=True):
    code: str
    message: str
    details: list[Any] = []


class ErrorEnvelope(msgspec.Struct, kw_only=True):
    """Every error response: ``{"error": {"code", "message", "details"}}``."""

    error: ErrorBody


def error_response(
    status: int, code: str, message: str, details: list[Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body = ErrorEnvelope(error=ErrorBody(code=code, message=message, details=details or []))
    return Response(msgspec.json.encode(body), status_code=status,
                    media_type="application/json", headers=headers)


def _wants_html(request: Request) -> bool:
    return request.url.path == "/" or request.url.path.startswith("/ui")


async def _html_or_json(request: Request, status: int, code: str, message: str,
                        details: list[Any], headers: dict[str, str] | None = None) -> Response:
    kernel = getattr(request.app.state, "kernel", None)
    renderer = getattr(kernel, "error_page", None)
    if renderer is not None and _wants_html(request):
        return await renderer(request, status, message)
    return error_response(status, code, message, details, headers)


async def handle_faceforge_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, FaceForgeError)
    headers = dict(getattr(exc, "headers", None) or {})
    if exc.status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return await _html_or_json(request, exc.status, exc.code, exc.message, exc.details,
                               headers or None)


async def handle_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _STARLETTE_CODES.get(exc.status_code, "http_error")
    if exc.status_code == 404:
        message = f"no route matches {request.method} {request.url.path}"
    elif exc.status_code == 405:
        message = f"method {request.method} is not allowed on {request.url.path}"
    else:
        message = str(exc.detail)
    headers = dict(exc.headers or {})
    return await _html_or_json(request, exc.status_code, code, message, [], headers or None)


async def handle_unexpected(request: Request, exc: Exception) -> Response:
    cid = correlation_id.get()
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    message = f"internal error; quote correlation id {cid} when reporting it"
    return await _html_or_json(request, 500, "internal_error", message,
                               [{"correlation_id": cid}])


EXCEPTION_HANDLERS: dict[Any, Any] = {
    FaceForgeError: handle_faceforge_error,
    HTTPException: handle_http_exception,
}

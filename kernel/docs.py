"""``/openapi.json``, ``/docs`` (Swagger UI) and ``/redoc``, from vendored files only."""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

SWAGGER = "/static/kernel/vendor/swagger-ui-5.35.0"
REDOC = "/static/kernel/vendor/redoc-2.5.4"

_SWAGGER_PAGE = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>FaceForge Core API</title>
<link rel="stylesheet" href="{SWAGGER}/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="{SWAGGER}/swagger-ui-bundle.js"></script>
<script>
window.ui = SwaggerUIBundle({{
  url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true,
  validatorUrl: null, persistAuthorization: true
}});
</script></body></html>"""

_REDOC_PAGE = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>FaceForge Core API</title></head>
<body><redoc spec-url="/openapi.json"></redoc>
<script src="{REDOC}/redoc.standalone.js"></script></body></html>"""

# ReDoc's footer loads a logo from its vendor's CDN and has no switch for it; the policy
# keeps every request on this machine.
_OFFLINE_CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
                "script-src 'self' 'unsafe-inline'; worker-src 'self' blob:; "
                "connect-src 'self'; font-src 'self' data:")


def docs_routes(openapi: dict[str, Any]) -> list[Route]:
    document = msgspec.json.encode(openapi)

    async def openapi_json(request: Request) -> Response:
        return Response(document, media_type="application/json")

    async def swagger(request: Request) -> Response:
        return HTMLResponse(_SWAGGER_PAGE, headers={"Content-Security-Policy": _OFFLINE_CSP})

    async def redoc(request: Request) -> Response:
        return HTMLResponse(_REDOC_PAGE, headers={"Content-Security-Policy": _OFFLINE_CSP})

    return [
        Route("/openapi.json", openapi_json, methods=["GET"]),
        Route("/docs", swagger, methods=["GET"]),
        Route("/redoc", redoc, methods=["GET"]),
    ]

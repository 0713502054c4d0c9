"""A bare Starlette app on Hypercorn answering ``GET /healthz``: the per-request ceiling the
kernel's overhead is measured against (DESIGN §10), measured in the same run so machine load
affects both alike.  ``POST /upload`` reads the body to its end and drops it: the ceiling for
an upload on the same server.  Run as ``python -m tests.bench.bare_app PORT``."""

from __future__ import annotations

import asyncio
import sys

from hypercorn.asyncio import serve
from hypercorn.config import Config
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

BODY = b'{"status":"ok","version":"0.1.0"}'


async def healthz(request: Request) -> Response:
    return Response(BODY, media_type="application/json")


async def upload(request: Request) -> Response:
    """Receive the whole body, keep nothing: answers its size in bytes."""
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
    return JSONResponse({"bytes": size})


def main() -> None:
    config = Config()
    config.bind = [f"127.0.0.1:{int(sys.argv[1])}"]
    config.accesslog = None
    config.keep_alive_timeout = 75
    app = Starlette(routes=[Route("/healthz", healthz),
                            Route("/upload", upload, methods=["POST"])])
    asyncio.run(serve(app, config))  # type: ignore[arg-type]


if __name__ == "__main__":
    main()

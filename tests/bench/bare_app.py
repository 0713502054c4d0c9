"""A bare Starlette app on Hypercorn answering ``GET /healthz``: the per-request ceiling the
kernel's overhead is measured against (DESIGN §10), measured in the same run so machine load
affects both alike.  Run as ``python -m tests.bench.bare_app PORT``."""

from __future__ import annotations

import asyncio
import sys

from hypercorn.asyncio import serve
from hypercorn.config import Config
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

BODY = b'{"status":"ok","version":"0.1.0"}'


async def healthz(request: Request) -> Response:
    return Response(BODY, media_type="application/json")


def main() -> None:
    config = Config()
    config.bind = [f"127.0.0.1:{int(sys.argv[1])}"]
    config.accesslog = None
    config.keep_alive_timeout = 75
    asyncio.run(serve(Starlette(routes=[Route("/healthz", healthz)]), config))  # type: ignore[arg-type]


if __name__ == "__main__":
    main()

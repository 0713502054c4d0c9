"""Jinja rendering for server-side pages, from template folders contributed by plugins.

An htmx request for a page renders only the named ``block`` of the same template, so a
fragment is never a copy of page markup.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from kernel.auth import principal_of

if TYPE_CHECKING:
    from kernel.services import Kernel


def is_htmx(request: Request) -> bool:
    """A partial swap (not a boosted full navigation and not a history restore)."""
    headers = request.headers
    return ("hx-request" in headers and "hx-boosted" not in headers
            and "hx-history-restore-request" not in headers)


class Templates:
    def __init__(self, kernel: Kernel, folders: Sequence[Path]) -> None:
        self.kernel = kernel
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader([str(f) for f in folders]),
            autoescape=jinja2.select_autoescape(["html", "xml"], default=True),
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.globals["version"] = kernel.version

    is_htmx = staticmethod(is_htmx)

    @staticmethod
    def redirect(request: Request, url: str) -> Response:
        """After a form post: a 303, or ``HX-Redirect`` for htmx (no double render)."""
        if "hx-request" in request.headers:
            return Response(status_code=200, headers={"HX-Redirect": url})
        return RedirectResponse(url, status_code=303)

    def context(self, request: Request, extra: dict[str, Any]) -> dict[str, Any]:
        principal = principal_of(request)
        return {
            "request": request,
            "nav": self.kernel.nav,
            "shell_widgets": self.kernel.shell_widgets,
            "signed_in": principal is not None,
            "csrf_token": (principal.csrf_token if principal else None) or "",
            "current_path": request.url.path,
            **extra,
        }

    def render_string(self, request: Request, name: str, context: dict[str, Any],
                      block: str | None = None) -> str:
        template = self.env.get_template(name)
        ctx = self.context(request, context)
        if block is None:
            return template.render(ctx)
        return "".join(template.blocks[block](template.new_context(ctx)))

    def render(self, request: Request, name: str, context: dict[str, Any] | None = None, *,
               block: str | None = None, status: int = 200,
               headers: dict[str, str] | None = None) -> HTMLResponse:
        """The full page, or just ``block`` when htmx asks for a fragment."""
        use_block = block if block and is_htmx(request) else None
        html = self.render_string(request, name, context or {}, use_block)
        return HTMLResponse(html, status_code=status, headers=headers)

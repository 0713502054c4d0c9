"""Login, logout, the landing redirect, the system page and error pages."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from ff_plugin_sdk import Kernel, UIPage, parse_event_id

EVENTS_PAGE = 100
_TITLES = {400: "Bad request", 401: "Sign in needed", 403: "Not allowed", 404: "Not found",
           405: "Not allowed", 409: "Conflict", 413: "Too large", 422: "Invalid input",
           500: "Something went wrong"}


def safe_next(target: str | None) -> str:
    """Only same-site paths: never redirect a signed-in user to another host."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return "/ui/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or "\\" in target:
        return "/ui/"
    return target


def pages(kernel: Kernel) -> list[UIPage]:
    def render(request: Request, name: str, ctx: dict[str, Any], **kw: Any) -> Response:
        return kernel.templates.render(request, name, ctx, **kw)

    async def home(request: Request) -> Response:
        first = next((e.href for e in kernel.nav if e.href.startswith("/ui/")), "/ui/system")
        return RedirectResponse(first, status_code=303)

    async def login_form(request: Request) -> Response:
        if kernel.auth.principal(request) is not None:
            return RedirectResponse(safe_next(request.query_params.get("next")), 303)
        return render(request, "login.html", {"next": request.query_params.get("next", ""),
                                              "error": None})

    async def login(request: Request) -> Response:
        form = await request.form()
        token = str(form.get("token") or "").strip()
        target = safe_next(str(form.get("next") or ""))
        if not token or not kernel.auth.is_install_token(token):
            return render(request, "login.html", {
                "next": target, "error": "That token is not this install's token. "
                "Run 'faceforge token' on the machine running Core to see it."}, status=401)
        session_id, _ = await kernel.auth.start_session()
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            kernel.auth.session_cookie, session_id, httponly=True, samesite="strict", path="/",
            secure=request.url.scheme == "https", max_age=kernel.auth.session_max_age)
        return response

    async def logout_form(request: Request) -> Response:
        return render(request, "logout.html", {})

    async def logout(request: Request) -> Response:
        principal = kernel.auth.principal(request)
        if principal is not None and principal.session_id:
            await kernel.auth.end_session(principal.session_id)
        response = RedirectResponse("/ui/login", status_code=303)
        response.delete_cookie(kernel.auth.session_cookie, path="/", httponly=True,
                               samesite="strict")
        return response

    async def system(request: Request) -> Response:
        return render(request, "system.html", {"info": kernel.system_info(),
                                               "status": await kernel.status()})

    async def events(request: Request) -> Response:
        params = request.query_params
        type_prefix = params.get("type", "").strip()
        before = parse_event_id(params.get("before"))
        page = await kernel.events.list(
            0, type_prefix or None, EVENTS_PAGE,
            before=kernel.events.last_id + 1 if before is None else before)
        return render(request, "events.html", {
            "events": page, "type": type_prefix, "before": before,
            "newest": page[0].id if page and before is None else kernel.events.last_id,
            "older": page[-1].id if len(page) == EVENTS_PAGE else None,
        })

    async def newer_events(request: Request) -> Response:
        """Polled by the events page: rows newer than ``after``, and the next poller."""
        params = request.query_params
        after = parse_event_id(params.get("after"))
        type_prefix = params.get("type", "").strip()
        start = kernel.events.last_id if after is None else after
        fresh = (await kernel.events.list(start, type_prefix or None, EVENTS_PAGE))[::-1]
        return HTMLResponse(kernel.templates.render_string(request, "events.html", {
            "events": fresh, "type": type_prefix, "before": None,
            "newest": fresh[0].id if fresh else start}, block="newer"))

    return [
        UIPage(path="/", endpoint=home, name="ui-home"),
        UIPage(path="/events", endpoint=events, name="ui-events"),
        UIPage(path="/events/newer", endpoint=newer_events, name="ui-events-newer"),
        UIPage(path="/login", endpoint=login_form, name="ui-login", public=True),
        UIPage(path="/login", endpoint=login, methods=["POST"], name="ui-login-post",
               public=True),
        UIPage(path="/logout", endpoint=logout_form, name="ui-logout"),
        UIPage(path="/logout", endpoint=logout, methods=["POST"], name="ui-logout-post"),
        UIPage(path="/system", endpoint=system, name="ui-system"),
    ]


def error_page_renderer(kernel: Kernel) -> Callable[[Request, int, str], Awaitable[Response]]:
    """Errors under /ui render inside the layout; an htmx request gets the fragment only,
    retargeted at the main area so the user sees it."""

    async def error_page(request: Request, status: int, message: str) -> Response:
        headers = ({"HX-Retarget": "#main", "HX-Reswap": "innerHTML"}
                   if kernel.templates.is_htmx(request) else {})
        return kernel.templates.render(
            request, "error.html",
            {"status": status, "title": _TITLES.get(status, "Error"), "message": message},
            block="content", status=status, headers=headers)

    return error_page

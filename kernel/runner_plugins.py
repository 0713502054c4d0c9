"""What an out-of-process plugin adds to Core, from its manifest: job types, nav entries, an
entity tab, and the routes that proxy ``/v1/plugins/<id>/...`` and ``/ui/ext/<id>/...`` to
the HTTP server its runner serves on a local port.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from html import escape
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ff_plugin_sdk.errors import NotFound
from ff_plugin_sdk.types import ApiRoute, EntityTab, JobType, NavEntry
from kernel.auth import CSRF_FIELD, SIGNED_IN, declare
from kernel.log import Redactor
from kernel.plugin_proxy import PluginUnavailable, check_proxied_form_csrf
from kernel.runners import RunnerProcess, free_port

if TYPE_CHECKING:
    from kernel.registry import PluginRegistry, Record, RunnerFactory
    from kernel.services import Kernel

#: the scope a caller needs to reach an out-of-process plugin's own API routes
USE_SCOPE = "plugins:use"
LOCALHOST = "127.0.0.1"
#: where a runner's UI pages appear (``/ui/plugins/<id>`` is the plugin's own settings page)
UI_PREFIX = "/ui/ext"
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
#: bodies sent to a runner are streamed through, never held: as large as an upload may be
PROXY_MAX_BODY_BYTES = 1 << 40


def core_url(kernel: Kernel) -> str:
    host = kernel.settings.host
    if host in ("0.0.0.0", "::", ""):  # bound to every address: loopback reaches it
        host = LOCALHOST
    return f"http://{'[' + host + ']' if ':' in host else host}:{kernel.settings.port}"


def runner_factory(kernel: Kernel) -> RunnerFactory:
    """Builds the :class:`RunnerProcess` of a plugin: each start gets a fresh token (and a
    fresh port when the runner serves HTTP)."""

    def build(record: Record, issue_token: Callable[[Record], Awaitable[str]]
              ) -> RunnerProcess:
        runner = record.manifest.entrypoints.runner
        assert runner is not None and record.found.folder is not None

        async def env() -> Mapping[str, str]:
            values = {"FACEFORGE_URL": core_url(kernel),
                      "FACEFORGE_TOKEN": await issue_token(record),
                      "FACEFORGE_PLUGIN_ID": record.id}
            record.base_url = None
            if runner.serves_http:
                port = free_port(LOCALHOST)
                values |= {"FACEFORGE_PLUGIN_HOST": LOCALHOST,
                           "FACEFORGE_PLUGIN_PORT": str(port)}
                record.base_url = f"http://{LOCALHOST}:{port}"
            return values

        logging_config = kernel.config.logging
        return RunnerProcess(
            record.id, runner.argv, cwd=record.found.folder,
            log_file=kernel.paths.logs_dir / "plugins" / f"{record.id}.log",
            # Core's own redactor: it follows a rotated install token
            redact=kernel.redactor or Redactor([kernel.tokens.current()]), env=env,
            max_bytes=logging_config.max_bytes, backup_count=logging_config.backup_count)

    return build


def contributions(registry: PluginRegistry) -> tuple[list[JobType], list[NavEntry],
                                                      list[EntityTab]]:
    """Job types, nav entries and entity tabs of the enabled out-of-process plugins."""
    job_types, nav, tabs = [], [], []
    for record in registry.records:
        if record.found.kind != "out_of_process" or record.state != "enabled":
            continue
        m = record.manifest
        job_types += [JobType(name=name, summary=f"{m.name} (out of process)")
                      for name in m.job_types]
        ui = m.entrypoints.ui
        if ui is None:
            continue
        nav += [NavEntry(label=page.label, href=f"{UI_PREFIX}/{record.id}{page.path}",
                         order=500) for page in ui.pages if page.nav]
        if ui.entity_tab is not None:
            tabs.append(EntityTab(id=f"plugin-{record.id}", label=ui.entity_tab.label,
                                  render=_tab(registry, record.id, ui.entity_tab.path),
                                  order=800))
    return job_types, nav, tabs


def _tab(registry: PluginRegistry, plugin_id: str, path: str) -> Any:
    async def render(request: Request, entity: dict[str, Any]) -> str:
        record, base_url = _serving(registry, plugin_id)
        query = "entity_id=" + quote(entity["entity_id"])
        page = await registry.kernel.proxy.fetch_html(request, base_url,
                                                      f"{path}?{query}",
                                                      prefix=f"{UI_PREFIX}/{plugin_id}")
        if page.status >= 400 or page.text is None:
            raise PluginUnavailable(f"the {record.manifest.name} plugin could not show this "
                                    f"tab (it answered {page.status})", code="plugin_tab_failed")
        return with_csrf(page.text, request)

    return render


_POST_FORM = re.compile(r"<form\b[^>]*\bmethod\s*=\s*[\"']?post\b[^>]*>", re.I)


def with_csrf(html: str, request: Request) -> str:
    """A runner's HTML, its POST forms given the session's CSRF token (the runner cannot
    know it; Core checks it before passing the form on)."""
    principal = request.scope.get("ff.principal")
    token = getattr(principal, "csrf_token", None)
    if not token:
        return html
    field = f'<input type="hidden" name="{CSRF_FIELD}" value="{escape(token)}">'
    return _POST_FORM.sub(lambda m: m.group(0) + field, html)


def _serving(registry: PluginRegistry, plugin_id: str) -> tuple[Record, str]:
    """The plugin, enabled, out of process, with a runner serving HTTP, and where it
    serves; else 404."""
    record = registry.find(plugin_id)
    if record.state != "enabled":
        raise NotFound(f"the plugin {plugin_id!r} is disabled", code="plugin_disabled")
    if record.found.kind != "out_of_process" or record.base_url is None:
        raise NotFound(f"the plugin {plugin_id!r} serves no routes of its own",
                       code="not_found")
    return record, record.base_url


def proxy_api_route(kernel: Kernel) -> ApiRoute:
    """``/v1/plugins/<id>/<path>``, served by the plugin's runner; mounted after every other
    route, so Core's own ``/v1/plugins/...`` routes win.  The caller needs ``plugins:use``."""
    registry = kernel.registry

    async def call_plugin(request: Request) -> Response:
        """A route an out-of-process plugin serves (streamed both ways)."""
        plugin_id = request.path_params["plugin_id"]
        _, base_url = _serving(registry, plugin_id)
        prefix = f"/v1/plugins/{plugin_id}"
        return await kernel.proxy.forward(request, base_url,
                                          f"{prefix}/{request.path_params['path']}",
                                          prefix=prefix)

    return ApiRoute(path="/v1/plugins/{plugin_id}/{path:path}", endpoint=call_plugin,
                    methods=ALL_METHODS, scope=USE_SCOPE, tags=["plugins"],
                    max_body_bytes=PROXY_MAX_BODY_BYTES)


def proxy_ui_routes(kernel: Kernel) -> list[BaseRoute]:
    """``/ui/ext/<id>/<path>``: a runner's UI pages, shown inside the Core UI shell."""
    registry = kernel.registry

    async def page(request: Request) -> Response:
        plugin_id = request.path_params["plugin_id"]
        record, base_url = _serving(registry, plugin_id)
        body = await check_proxied_form_csrf(request)
        path = "/" + request.path_params.get("path", "")
        prefix = f"{UI_PREFIX}/{plugin_id}"
        page = await kernel.proxy.fetch_html(request, base_url, path, body=body,
                                             prefix=prefix)
        if page.text is None or 300 <= page.status < 400:  # a redirect, a file: as it is
            return Response(page.body, status_code=page.status, headers=page.headers)
        assert kernel.templates is not None
        return kernel.templates.render(request, "plugin_page.html", {
            "plugin": registry.view(record), "body": with_csrf(page.text, request),
            "path": path}, status=page.status)

    return [
        declare(Route(UI_PREFIX + "/{plugin_id}/{path:path}", page, methods=ALL_METHODS),
                SIGNED_IN),
        declare(Route(UI_PREFIX + "/{plugin_id}", page, methods=["GET"]), SIGNED_IN),
    ]

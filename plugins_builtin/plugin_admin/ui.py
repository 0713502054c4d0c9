"""The Plugins pages: the list (``/ui/plugins``), one plugin (``/ui/plugins/{id}``), the
consent screen (``/ui/plugins/{id}/enable``) and the form posts behind their buttons.

Everything goes through ``kernel.registry``, the same calls ``/v1/plugins`` makes.  Every
form is a plain POST that redirects with a notice, and an htmx post too:

- enable and disable redirect in both cases (``HX-Redirect`` for htmx), since the main
  navigation may change with them;
- rescan and the settings form answer htmx with the block they change (the list, the
  settings card), notice included;
- a refusal from the registry (409: consent needed, Core needs the plugin, the plugin is
  in error) shows the page the form came from again, with the message.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import Response

from ff_plugin_sdk import Conflict, Kernel, UIPage, ValidationFailed
from ff_plugin_sdk.plugins import PluginView
from plugins_builtin.plugin_admin.permissions import (
    KIND_LABELS,
    KINDS,
    asks_consent,
    explain,
)
from plugins_builtin.plugin_admin.schema_form import (
    form_fields,
    parse_form,
    unplaced_errors,
    validate,
)

LIST, DETAIL, CONSENT = ("plugin_admin/plugins.html", "plugin_admin/plugin.html",
                         "plugin_admin/consent.html")
#: the runner states worth refreshing the page for
LIVE = frozenset({"starting", "running", "restarting"})
#: the pages a form may return to (never a URL from the form: no open redirect)
ORIGINS = ("list", "detail", "consent")
#: names a rescan notice repeats from its URL (anything else is dropped)
_NOTICE_NAME = re.compile(r"^[\w .-]{1,60}$")
_NOTICE_NAMES = 20


def url(plugin_id: str, rest: str = "") -> str:
    """A plugin's page (``rest``: below it); a folder in error may have any name."""
    return "/ui/plugins/" + quote(plugin_id, safe="") + rest


def rescan_changes(before: list[PluginView], after: list[PluginView]) -> dict[str, list[str]]:
    """What a rescan found: new, changed and removed plugin ids."""
    old = {v.id: v for v in before}
    now = {v.id: v for v in after}

    def key(v: PluginView) -> tuple[Any, ...]:
        return v.version, v.state, v.reason, v.source, v.permissions

    return {"new": [i for i in now if i not in old],
            "changed": [i for i in now if i in old and key(now[i]) != key(old[i])],
            "removed": [i for i in old if i not in now]}


def rescan_notice(changes: dict[str, list[str]], views: list[PluginView]) -> str:
    names = {v.id: v.name for v in views}

    def shown(ids: list[str]) -> str:
        ids = [i for i in ids if _NOTICE_NAME.match(i)][:_NOTICE_NAMES]
        return ", ".join(f"{names[i]} ({i})" if i in names and names[i] != i else i
                         for i in ids)

    parts = [f"{label}: {shown(changes[key])}" for key, label in
             (("new", "new"), ("changed", "changed"), ("removed", "removed"))
             if shown(changes.get(key, []))]
    return "Rescanned the plugins folder: " + ("; ".join(parts) if parts
                                               else "nothing has changed") + "."


def config_errors(exc: ValidationFailed) -> list[dict[str, str]]:
    """The registry's refusal (paths ``$.a.b[0]``) at the form's names (``a.b[0]``)."""
    errors = [{"path": str(d.get("path", "")).removeprefix("$").removeprefix("."),
               "message": str(d.get("message", ""))}
              for d in exc.details or [] if isinstance(d, dict)]
    return errors or [{"path": "", "message": exc.message}]


def pages(kernel: Kernel) -> list[UIPage]:
    registry = kernel.registry
    templates = kernel.templates

    def page(request: Request, name: str, ctx: dict[str, Any], *, block: str = "content",
             status: int = 200) -> Response:
        return templates.render(request, name, {"kinds": KINDS, "kind_labels": KIND_LABELS,
                                                "asks_consent": asks_consent, **ctx},
                                block=block, status=status)

    # -- the list --------------------------------------------------------------------------
    def list_page(request: Request, *, notice: str | None = None, problem: str | None = None,
                  status: int = 200) -> Response:
        return page(request, LIST, {"plugins": registry.views(), "notice": notice,
                                    "problem": problem}, status=status)

    async def listing(request: Request) -> Response:
        params = request.query_params
        views = registry.views()
        notice = None
        if params.get("notice") == "rescanned":
            notice = rescan_notice({k: params.get(k, "").split(",") for k in
                                    ("new", "changed", "removed")}, views)
        elif params.get("notice") in ("enabled", "disabled"):
            view = next((v for v in views if v.id == params.get("plugin")), None)
            if view is not None:
                notice = f"{view.name} is {params['notice']}."
        return list_page(request, notice=notice)

    async def rescan(request: Request) -> Response:
        before = registry.views()
        after = await registry.rescan()
        changes = rescan_changes(before, after)
        if templates.is_htmx(request):
            return list_page(request, notice=rescan_notice(changes, after))
        query = {"notice": "rescanned"} | {k: ",".join(v) for k, v in changes.items() if v}
        return templates.redirect(request, "/ui/plugins?" + urlencode(query))

    # -- one plugin ------------------------------------------------------------------------
    def settings_context(view: PluginView, values: dict[str, Any],
                         errors: list[dict[str, str]], saved: bool = False) -> dict[str, Any]:
        fields = form_fields(view.config_schema, values, errors) if view.config_schema else []
        return {"fields": fields, "unplaced": unplaced_errors(fields, errors),
                "settings_failed": bool(errors), "saved": saved}

    def detail_page(request: Request, plugin_id: str, *, notice: str | None = None,
                    problem: str | None = None, status: int = 200,
                    settings: dict[str, Any] | None = None, block: str = "content") -> Response:
        view = registry.get(plugin_id, tail=True)
        scopes, needs = explain(view.permissions, kernel.system_info()["scopes"])
        return page(request, DETAIL, {
            "p": view, "scopes": scopes, "needs": needs, "notice": notice, "problem": problem,
            "live": view.runner is not None and view.runner.state in LIVE,
            **(settings or settings_context(view, registry.config(plugin_id), []))},
            block=block, status=status)

    async def detail(request: Request) -> Response:
        plugin_id = request.path_params["plugin_id"]
        name = registry.get(plugin_id).name
        notice = {"enabled": f"{name} is enabled.", "disabled": f"{name} is disabled.",
                  "saved": "Saved."}.get(request.query_params.get("notice", ""))
        return detail_page(request, plugin_id, notice=notice)

    async def runner(request: Request) -> Response:
        """The runner card alone, polled by the plugin's page while the runner runs."""
        plugin_id = request.path_params["plugin_id"]
        if not templates.is_htmx(request):
            return templates.redirect(request, url(registry.get(plugin_id).id, "#runner"))
        return detail_page(request, plugin_id, block="runner")

    async def save_settings(request: Request) -> Response:
        plugin_id = request.path_params["plugin_id"]
        view = registry.get(plugin_id)
        if not view.config_schema:
            return detail_page(request, plugin_id, status=409,
                               problem=f"{view.name} has no settings to save.")
        form = await request.form()
        sent = [(k, v) for k, v in form.multi_items() if isinstance(v, str)]
        data, errors = parse_form(view.config_schema, sent)
        unread = {e["path"] for e in errors}  # their text would fail the schema's types too
        errors += [e for e in validate(view.config_schema, data) if e["path"] not in unread]
        if not errors:
            try:
                await registry.set_config(plugin_id, data)
            except ValidationFailed as exc:  # the schema changed meanwhile (a rescan)
                errors = config_errors(exc)
        if errors:
            return detail_page(request, plugin_id, status=422, block="settings",
                               settings=settings_context(view, data, errors))
        if templates.is_htmx(request):
            return detail_page(request, plugin_id, block="settings", settings=settings_context(
                view, registry.config(plugin_id), [], saved=True))
        return templates.redirect(request, url(plugin_id, "?notice=saved#settings"))

    # -- enable and disable ----------------------------------------------------------------
    def consent_page(request: Request, plugin_id: str, *, problem: str | None = None,
                     status: int = 200) -> Response:
        view = registry.get(plugin_id)
        scopes, needs = explain(view.needs_consent, kernel.system_info()["scopes"])
        return page(request, CONSENT, {"p": view, "scopes": scopes, "needs": needs,
                                       "problem": problem}, status=status)

    async def consent(request: Request) -> Response:
        """What enabling the plugin means, and the button to agree."""
        return consent_page(request, request.path_params["plugin_id"])

    def back(plugin_id: str, origin: str, notice: str) -> str:
        if origin == "list":
            return "/ui/plugins?" + urlencode({"notice": notice, "plugin": plugin_id})
        return url(plugin_id, f"?notice={notice}")

    def refused(request: Request, plugin_id: str, origin: str, exc: Conflict) -> Response:
        """The page the form came from, saying why; consent asked for again on its screen."""
        if exc.code == "consent_required":
            problem = ("It asks for more than this screen showed (it changed meanwhile): "
                       "read the list again." if origin == "consent" else None)
            return consent_page(request, plugin_id, problem=problem, status=exc.status)
        if origin == "list":
            return list_page(request, problem=exc.message, status=exc.status)
        return detail_page(request, plugin_id, problem=exc.message, status=exc.status)

    async def origin_of(request: Request) -> str:
        origin = str((await request.form()).get("from") or "detail")
        return origin if origin in ORIGINS else "detail"

    async def enable(request: Request) -> Response:
        plugin_id = request.path_params["plugin_id"]
        form = await request.form()
        accepted = [v for v in form.getlist("accept_permissions") if isinstance(v, str)]
        origin = await origin_of(request)
        try:
            await registry.enable(plugin_id, accepted)
        except Conflict as exc:
            return refused(request, plugin_id, origin, exc)
        return templates.redirect(request, back(plugin_id, origin, "enabled"))

    async def disable(request: Request) -> Response:
        plugin_id = request.path_params["plugin_id"]
        origin = await origin_of(request)
        try:
            await registry.disable(plugin_id)
        except Conflict as exc:
            return refused(request, plugin_id, origin, exc)
        return templates.redirect(request, back(plugin_id, origin, "disabled"))

    one = "/plugins/{plugin_id}"
    post = ["POST"]
    return [
        UIPage(path="/plugins", endpoint=listing, name="plugins-list"),
        UIPage(path="/plugins/rescan", endpoint=rescan, methods=post, name="plugins-rescan"),
        UIPage(path=one, endpoint=detail, name="plugins-detail"),
        UIPage(path=one + "/runner", endpoint=runner, name="plugins-runner"),
        UIPage(path=one + "/settings", endpoint=save_settings, methods=post,
               name="plugins-settings"),
        UIPage(path=one + "/enable", endpoint=consent, name="plugins-consent"),
        UIPage(path=one + "/enable", endpoint=enable, methods=post, name="plugins-enable"),
        UIPage(path=one + "/disable", endpoint=disable, methods=post, name="plugins-disable"),
    ]

"""The entity page's Descriptors tab and its form posts (server-rendered, htmx).

The tab (``descriptors/_tab.html``) groups an entity's live descriptors by key: the values
valid today, then upcoming and past ones.  Adding is two steps that also work without
JavaScript: choose a key (a GET form; htmx swaps in the value form as the key changes),
then fill the value input its definition asks for.  Posts redirect back to the tab; a
refused one renders the tab again with the messages next to the inputs (422, or 409 for a
duplicate) — as a fragment for htmx, inside ``descriptors/page.html`` otherwise.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from ff_plugin_sdk import Conflict, Kernel, NotFound, UIPage, ValidationFailed
from plugins_builtin.descriptors import form as forms
from plugins_builtin.descriptors.api import check_entity_id, check_id
from plugins_builtin.descriptors.store import DescriptorStore, state_on

#: descriptors one tab shows (a page of the API's largest size, twice)
MAX_SHOWN = 1000
NOTICES = {"added": "Value added.", "saved": "Changes saved.", "deleted": "Value deleted."}
_encoder = msgspec.json.Encoder(order="sorted")


def tab_url(entity_id: str) -> str:
    return f"/ui/entities/{entity_id}?tab=descriptors"


def shown(value: Any, definition: dict[str, Any] | None) -> str:
    """A value as the tab prints it: text as itself, yes/no, choices joined, else JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, list) and all(isinstance(v, str) for v in value) and (
            forms.input_kind(definition) == "multi_enum"):
        return ", ".join(value)
    return _encoder.encode(value).decode()


def validity(d: dict[str, Any]) -> str:
    start, end = d["valid_from"], d["valid_to"]
    if start and end:
        return f"{start} – {end}" if start != end else f"on {start}"
    if start:
        return f"since {start}"
    if end:
        return f"until {end}"
    return "no dates"


async def _all_live(store: DescriptorStore, entity_id: str) -> tuple[list[dict], bool]:
    rows: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = await store.list(entity_id, limit=500, cursor=cursor)
        rows += page.rows
        cursor = page.next_cursor
        if cursor is None or len(rows) >= MAX_SHOWN:
            return rows[:MAX_SHOWN], cursor is not None


class Tab:
    """Everything the tab template needs, for one entity."""

    def __init__(self, kernel: Kernel, store: DescriptorStore) -> None:
        self.kernel = kernel
        self.store = store

    async def context(self, request: Request, entity: dict[str, Any], *,
                      key: str | None = None, editing: dict[str, Any] | None = None,
                      values: dict[str, Any] | None = None,
                      errors: dict[str, str] | None = None,
                      notice: str | None = None) -> dict[str, Any]:
        errors = dict(errors or {})
        entity_id = entity["entity_id"]
        rows, truncated = await _all_live(self.store, entity_id)
        definitions = {str(d["field_key"]): d for d in await self.store.definitions.all()}
        today = self.store.today()
        groups: dict[str, dict[str, Any]] = {}
        for d in rows:
            definition = definitions.get(d["key"])
            group = groups.setdefault(d["key"], {
                "key": d["key"], "label": (definition or {}).get("label") or d["key"],
                "help": (definition or {}).get("help") or "",
                "current": [], "future": [], "past": []})
            group[state_on(d, today)].append(
                {**d, "shown": shown(d["value"], definition), "validity": validity(d)})
        if key:
            key, key_error = forms.check_key(key)
            if key_error:
                errors.setdefault("key", key_error)
        form_key = editing["key"] if editing else key
        definition = definitions.get(form_key) if form_key and "key" not in errors else None
        kind = forms.input_kind(definition)
        if values is None:
            values = forms.form_values(editing, kind) if editing else dict.fromkeys(
                forms.FIELDS, "")
            if kind in ("bool", "multi_enum") and not editing:
                values["value"] = False if kind == "bool" else []
        key_choices = {k: (d.get("label") or k) for k, d in sorted(definitions.items())}
        for k in groups:
            key_choices.setdefault(k, groups[k]["label"])
        return {
            "entity": entity, "live": not entity["deleted_at"], "tab_url": tab_url(entity_id),
            "groups": sorted(groups.values(), key=lambda g: g["key"]),
            "truncated": truncated, "max_shown": MAX_SHOWN, "today": today, "notice": notice,
            "key": key or "", "editing": editing, "definition": definition, "kind": kind,
            "options": forms.options_of(definition), "values": values, "errors": errors,
            "key_choices": sorted(key_choices.items()),
        }

    def renderer(self) -> Callable[[Any, dict[str, Any]], Awaitable[str]]:
        async def render(request: Request, entity: dict[str, Any]) -> str:
            params = request.query_params
            editing, notice = None, NOTICES.get(params.get("notice", ""))
            if edit := params.get("edit"):
                editing = await self._descriptor_of(entity, edit)
                if editing is None:
                    notice = "That value was deleted, or is not one of this entity's."
            ctx = await self.context(request, entity, key=params.get("key"),
                                     editing=editing, notice=notice)
            return self.kernel.templates.render_string(request, "descriptors/_tab.html", ctx)

        return render

    async def _descriptor_of(self, entity: dict[str, Any],
                             descriptor_id: str) -> dict[str, Any] | None:
        try:
            d = await self.store.get(check_id(descriptor_id))
        except NotFound:
            return None
        return d if d["entity_id"] == entity["entity_id"] else None


def tab_renderer(kernel: Kernel,
                 store: DescriptorStore) -> Callable[[Any, dict[str, Any]], Awaitable[str]]:
    return Tab(kernel, store).renderer()


def pages(kernel: Kernel, store: DescriptorStore) -> list[UIPage]:
    tab = Tab(kernel, store)

    async def refused(request: Request, entity: dict[str, Any], status: int,
                      **ctx: Any) -> Response:
        """The tab again with the form as posted and its messages."""
        context = await tab.context(request, entity, **ctx)
        return kernel.templates.render(request, "descriptors/page.html", context,
                                       block="panel", status=status)

    def back(request: Request, entity_id: str, notice: str) -> Response:
        return kernel.templates.redirect(request, f"{tab_url(entity_id)}&notice={notice}")

    async def save(request: Request, entity: dict[str, Any], kind: str,
                   write: Callable[[dict[str, Any]], Awaitable[Any]],
                   **ctx: Any) -> Response | None:
        """Parse the posted form and ``write`` it; None when written, else the refusal."""
        form = await request.form()
        data, errors = forms.parse(form, kind)
        values = forms.posted_values(form, kind)
        if not errors:
            try:
                await write(data)
                return None
            except ValidationFailed as exc:
                errors = forms.error_fields(exc)
            except Conflict as exc:
                return await refused(request, entity, 409, values=values,
                                     errors={"value": exc.message}, **ctx)
        return await refused(request, entity, 422, values=values, errors=errors, **ctx)

    async def add(request: Request) -> Response:
        entity_id = check_entity_id(request.path_params["entity_id"])
        entity = await store.live_entity(entity_id)
        form = await request.form()
        key, key_error = forms.check_key(str(form.get("key") or ""))
        if key_error:
            return await refused(request, entity, 422, key=key, errors={"key": key_error})
        kind = forms.input_kind(await store.definitions.get(key))

        async def write(data: dict[str, Any]) -> None:
            await store.create(entity_id, {"key": key, **data})

        answer = await save(request, entity, kind, write, key=key)
        return answer or back(request, entity_id, "added")

    async def edit(request: Request) -> Response:
        descriptor = await store.get(check_id(request.path_params["descriptor_id"]))
        entity = await store.live_entity(descriptor["entity_id"])
        kind = forms.input_kind(await store.definitions.get(descriptor["key"]))

        async def write(data: dict[str, Any]) -> None:
            await store.update(descriptor["descriptor_id"], data)

        answer = await save(request, entity, kind, write, editing=descriptor)
        return answer or back(request, entity["entity_id"], "saved")

    async def delete(request: Request) -> Response:
        descriptor = await store.get(check_id(request.path_params["descriptor_id"]))
        await store.delete(descriptor["descriptor_id"])
        return back(request, descriptor["entity_id"], "deleted")

    one = "/descriptors/{descriptor_id}"
    return [
        UIPage(path="/entities/{entity_id}/descriptors", endpoint=add, methods=["POST"],
               name="descriptors-add"),
        UIPage(path=one + "/edit", endpoint=edit, methods=["POST"], name="descriptors-edit"),
        UIPage(path=one + "/delete", endpoint=delete, methods=["POST"],
               name="descriptors-delete"),
    ]

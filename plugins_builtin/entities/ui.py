"""The entities pages: list/gallery with live search, create/edit forms, detail with tabs."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from ff_plugin_sdk import (
    BadRequest,
    EntityTab,
    Kernel,
    NotFound,
    PreconditionFailed,
    UIPage,
    ValidationFailed,
)
from ff_plugin_sdk.conditional import parse_version
from ff_plugin_sdk.jsontext import NotJson, parse_json
from plugins_builtin.entities.api import EntityCreate, check_id, normalize
from plugins_builtin.entities.store import SORTS, EntityStore

SORT_CHOICES = [
    ("created_at:desc", "Newest first"), ("created_at:asc", "Oldest first"),
    ("updated_at:desc", "Recently updated"), ("display_name:asc", "Name A–Z"),
    ("display_name:desc", "Name Z–A"),
]
PAGE_SIZE = 48
FORM_FIELDS = ("display_name", "aliases", "tags", "fields")
#: a textarea's line breaks (browsers send CRLF); not str.splitlines, which also splits
#: at U+2028, form feeds... that a field value may hold
_NEWLINE = re.compile(r"\r\n|\r|\n")
_KEY_DECODER = msgspec.json.Decoder(str)


def split_list(text: str) -> list[str]:
    """"a, b" or one per line -> ["a", "b"]."""
    return [p.strip() for p in text.replace("\n", ",").split(",") if p.strip()]


def format_fields(fields: dict[str, Any]) -> str:
    """The inverse of :func:`parse_fields`: saving the form unchanged keeps every value."""
    return "\n".join(f"{_key(k)}: {v if _plain(v) else msgspec.json.encode(v).decode()}"
                     for k, v in fields.items())


def _key(key: str) -> str:
    """A name with a colon, a quote or edge spaces is written as a JSON string."""
    if ":" in key or key.startswith('"') or key != key.strip() or _NEWLINE.search(key):
        return msgspec.json.encode(key).decode()
    return key


def _plain(value: Any) -> bool:
    """A string that parse_fields reads back as itself; others are written as JSON
    ("1815", "true" or "null" would change type; a line break would split the line)."""
    if not isinstance(value, str) or value != value.strip() or _NEWLINE.search(value):
        return False
    try:
        parse_json(value)
    except NotJson:
        return True
    return value == ""


def parse_fields(text: str) -> tuple[dict[str, Any], str | None]:
    """``key: value`` lines; a value that is valid JSON (number, true, list...) keeps its type."""
    fields: dict[str, Any] = {}
    for number, line in enumerate(_NEWLINE.split(text), 1):
        if not line.strip():
            continue
        key, sep, value = _split_key(line)
        if not sep or not key.strip():
            return fields, f"line {number}: write each field as 'name: value'"
        value = value.strip()
        try:
            parsed: Any = parse_json(value) if value else ""
        except NotJson:
            parsed = value
        fields[key if line.lstrip().startswith('"') else key.strip()] = parsed
    return fields, None


def _split_key(line: str) -> tuple[str, str, str]:
    """``name: value``, or ``"a name: with colon": value`` (a JSON string key)."""
    stripped = line.lstrip()
    if stripped.startswith('"'):
        end = 0
        while (end := stripped.find('"', end + 1)) != -1:
            try:
                key = _KEY_DECODER.decode(stripped[: end + 1])
            except msgspec.DecodeError:
                continue  # an escaped quote inside the key
            rest = stripped[end + 1:].lstrip()
            if rest.startswith(":"):
                return key, ":", rest[1:]
            break
    return line.partition(":")


def form_to_entity(form: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """Form fields -> (entity data, {field: message}); validated like the API's body."""
    errors: dict[str, str] = {}
    fields, fields_error = parse_fields(str(form.get("fields") or ""))
    if fields_error:
        errors["fields"] = fields_error
    data = {
        "display_name": str(form.get("display_name") or ""),
        "aliases": split_list(str(form.get("aliases") or "")),
        "tags": split_list(str(form.get("tags") or "")),
        "fields": fields,
    }
    try:
        normalize(data)
        msgspec.convert(data, EntityCreate)
    except ValidationFailed:  # raised for a blank name
        errors["display_name"] = "A name is required."
    except msgspec.ValidationError as exc:
        text = str(exc)
        field = next((f for f in ("display_name", "aliases", "tags", "fields") if f in text),
                     "display_name")
        errors.setdefault(field, text.split(" - at ")[0])
    return data, errors


def form_values(entity: dict[str, Any]) -> dict[str, Any]:
    """An entity as the edit form shows it."""
    return {"display_name": entity["display_name"], "aliases": ", ".join(entity["aliases"]),
            "tags": ", ".join(entity["tags"]), "fields": format_fields(entity["fields"])}


def overview_renderer(kernel: Kernel) -> Any:
    async def render(request: Request, entity: dict[str, Any]) -> str:
        return kernel.templates.render_string(request, "entities/_overview.html",
                                              {"entity": entity})

    return render


def pages(kernel: Kernel, store: EntityStore) -> list[UIPage]:
    def render(request: Request, name: str, ctx: dict[str, Any], **kw: Any) -> Response:
        return kernel.templates.render(request, name, ctx, **kw)

    async def list_page(request: Request) -> Response:
        params = request.query_params
        q = params.get("q", "")
        tags = [t for raw in params.getlist("tag") for t in split_list(raw)]
        sort = params.get("sort", "created_at:desc")
        sort_by, _, order = sort.partition(":")
        if sort_by not in SORTS or order not in ("asc", "desc"):
            sort_by, order, sort = "created_at", "desc", "created_at:desc"
        view = "gallery" if params.get("view") == "gallery" else "list"
        state = "deleted" if params.get("state") == "deleted" else "active"
        cursor = params.get("cursor") or None
        filtered = bool(q.strip() or tags or state == "deleted")
        try:
            result = await store.list(
                limit=PAGE_SIZE, cursor=cursor, sort_by=sort_by, sort_order=order, q=q,
                tags=tags, deleted="only" if state == "deleted" else "exclude",
                include_total=filtered and not cursor)
        except BadRequest as exc:  # a stale cursor (the sort changed): start over
            if exc.code != "invalid_cursor":
                raise
            result = await store.list(limit=PAGE_SIZE, sort_by=sort_by, sort_order=order,
                                      q=q, tags=tags,
                                      deleted="only" if state == "deleted" else "exclude")
            cursor = None

        def link(**change: Any) -> str:
            query = {"q": q, "tag": ",".join(tags), "sort": sort, "view": view,
                     "state": state} | change
            return "/ui/entities?" + urlencode({k: v for k, v in query.items() if v})

        return render(request, "entities/list.html", {
            "items": result.rows, "next_cursor": result.next_cursor, "total": result.total,
            "q": q, "tags": tags, "sort": sort, "sorts": SORT_CHOICES, "view": view,
            "state": state, "cursor": cursor, "link": link,
            "top_tags": await store.all_tags(30), "notice": params.get("notice"),
        }, block="results")

    def form_page(request: Request, entity: dict[str, Any] | None, values: dict[str, Any],
                  errors: dict[str, str] | None = None) -> Response:
        """The create/edit form; with errors, a 422 whose htmx fragment is the form block."""
        return render(request, "entities/form.html",
                      {"entity": entity, "values": values, "errors": errors or {},
                       "conflict": None}, block="form", status=422 if errors else 200)

    async def new_form(request: Request) -> Response:
        return form_page(request, None, dict.fromkeys(FORM_FIELDS, ""))

    async def create(request: Request) -> Response:
        form = await request.form()
        data, errors = form_to_entity(form)
        if errors:
            return form_page(request, None, dict(form), errors)
        entity = await store.create({**data, "plugin_data": {},
                                     "primary_thumbnail_asset_id": None})
        return kernel.templates.redirect(request,
                                         f"/ui/entities/{entity['entity_id']}?notice=created")

    async def detail(request: Request) -> Response:
        entity = await store.get(check_id(request.path_params["entity_id"]),
                                 include_deleted=True)
        tabs: list[EntityTab] = kernel.entity_tabs
        tab_id = request.query_params.get("tab") or (tabs[0].id if tabs else "")
        tab = next((t for t in tabs if t.id == tab_id), None)
        if tab is None:
            raise NotFound(f"this entity has no tab {tab_id!r}", code="tab_not_found")
        return render(request, "entities/detail.html", {
            "entity": entity, "tabs": tabs, "tab": tab,
            "panel": await tab.render(request, entity),
            "notice": request.query_params.get("notice"),
        }, block="tab_panel")

    async def edit_form(request: Request) -> Response:
        entity = await store.get(check_id(request.path_params["entity_id"]))
        return form_page(request, entity, form_values(entity))

    async def edit(request: Request) -> Response:
        entity_id = check_id(request.path_params["entity_id"])
        form = await request.form()
        data, errors = form_to_entity(form)
        opened = str(form.get("version") or "")
        if errors:
            entity = await store.get(entity_id)
            if "version" in form:
                # the values shown are still those read at the opened version: saving them
                # once fixed must still notice a change made meanwhile
                entity = {**entity, "version": opened}
            return form_page(request, entity, dict(form), errors)
        version = parse_version(opened)
        try:
            await store.update(entity_id, data, {},
                               if_match=None if version is None else {version})
        except PreconditionFailed:
            # someone saved since this form was opened: show theirs, keep ours to copy
            current = await store.get(entity_id)
            return render(request, "entities/form.html", {
                "entity": current, "values": form_values(current), "errors": {},
                "conflict": {k: str(form.get(k) or "") for k in FORM_FIELDS},
            }, block="form", status=409)
        return kernel.templates.redirect(request, f"/ui/entities/{entity_id}?notice=saved")

    async def delete_form(request: Request) -> Response:
        entity = await store.get(check_id(request.path_params["entity_id"]))
        return render(request, "entities/delete.html", {"entity": entity})

    async def delete(request: Request) -> Response:
        entity_id = check_id(request.path_params["entity_id"])
        await store.set_deleted(entity_id, True)
        return kernel.templates.redirect(request,
                                         "/ui/entities?" + urlencode({"notice": "deleted"}))

    async def restore(request: Request) -> Response:
        entity_id = check_id(request.path_params["entity_id"])
        await store.set_deleted(entity_id, False)
        return kernel.templates.redirect(request, f"/ui/entities/{entity_id}?notice=restored")

    one = "/entities/{entity_id}"
    return [
        UIPage(path="/entities", endpoint=list_page, name="entities-list"),
        UIPage(path="/entities/new", endpoint=new_form, name="entities-new"),
        UIPage(path="/entities/new", endpoint=create, methods=["POST"], name="entities-create"),
        UIPage(path=one, endpoint=detail, name="entities-detail"),
        UIPage(path=one + "/edit", endpoint=edit_form, name="entities-edit"),
        UIPage(path=one + "/edit", endpoint=edit, methods=["POST"], name="entities-update"),
        UIPage(path=one + "/delete", endpoint=delete_form, name="entities-delete"),
        UIPage(path=one + "/delete", endpoint=delete, methods=["POST"],
               name="entities-delete-post"),
        UIPage(path=one + "/restore", endpoint=restore, methods=["POST"],
               name="entities-restore"),
    ]

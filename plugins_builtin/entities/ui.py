"""The entities pages: list/gallery with live search, create/edit forms, detail with tabs."""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any
from urllib.parse import urlencode

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from ff_plugin_sdk import (
    BadRequest,
    Conflict,
    EntityTab,
    Kernel,
    NotFound,
    PreconditionFailed,
    UIPage,
    ValidationFailed,
)
from ff_plugin_sdk.conditional import parse_version
from ff_plugin_sdk.jsontext import NotJson, parse_json
from plugins_builtin.entities import field_form, field_search
from plugins_builtin.entities.api import EntityCreate, check_id, normalize
from plugins_builtin.entities.field_filters import parse_field_filters
from plugins_builtin.entities.list_filters import read_external_id
from plugins_builtin.entities.store import SORTS, EntityStore, ListResult

SORT_CHOICES = [
    ("created_at:desc", "Newest first"), ("created_at:asc", "Oldest first"),
    ("updated_at:desc", "Recently updated"), ("display_name:asc", "Name A–Z"),
    ("display_name:desc", "Name Z–A"),
]
PAGE_SIZE = 48
FORM_FIELDS = ("display_name", "aliases", "tags", "fields", "external_ids")
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


def parse_external_ids(text: str) -> tuple[dict[str, str], str | None]:
    """``namespace: value`` lines -> {namespace: value}."""
    ids: dict[str, str] = {}
    for number, line in enumerate(_NEWLINE.split(text), 1):
        if not line.strip():
            continue
        namespace, sep, value = line.partition(":")
        if not (sep and namespace.strip() and value.strip()):
            return ids, f"line {number}: write each id as 'namespace: value'"
        ids[namespace.strip()] = value.strip()
    return ids, None


def form_to_entity(form: Any, typed: Collection[str] = ()
                   ) -> tuple[dict[str, Any], dict[str, str]]:
    """Form fields -> (entity data, {field: message}); validated like the API's body.
    ``typed``: the defined keys the form has inputs for (not written in the textarea)."""
    errors: dict[str, str] = {}
    fields, fields_error = parse_fields(str(form.get("fields") or ""))
    if fields_error:
        errors["fields"] = fields_error
    elif twice := [k for k in fields if k in typed]:
        errors["fields"] = f"{twice[0]!r} has its own input above; change it there"
    external_ids, ids_error = parse_external_ids(str(form.get("external_ids") or ""))
    if ids_error:
        errors["external_ids"] = ids_error
    data = {
        "display_name": str(form.get("display_name") or ""),
        "aliases": split_list(str(form.get("aliases") or "")),
        "tags": split_list(str(form.get("tags") or "")),
        "fields": fields,
        "external_ids": external_ids,
    }
    try:
        normalize(data)
        msgspec.convert(data, EntityCreate)
    except ValidationFailed:  # raised for a blank name
        errors["display_name"] = "A name is required."
    except msgspec.ValidationError as exc:
        text = str(exc)
        field = next((f for f in ("display_name", "aliases", "tags", "external_ids", "fields")
                      if f in text), "display_name")
        errors.setdefault(field, text.split(" - at ")[0])
    return data, errors


def form_values(entity: dict[str, Any], defined: Collection[str] = ()) -> dict[str, Any]:
    """An entity as the edit form shows it (``defined`` keys have inputs of their own)."""
    return {"display_name": entity["display_name"], "aliases": ", ".join(entity["aliases"]),
            "tags": ", ".join(entity["tags"]),
            "fields": format_fields({k: v for k, v in entity["fields"].items()
                                     if k not in defined}),
            "external_ids": "\n".join(f"{k}: {v}" for k, v in
                                      entity.get("external_ids", {}).items())}


def changed_keys(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """A merge patch turning ``old`` into ``new`` (None removes a key)."""
    enc = msgspec.json.encode
    patch: dict[str, Any] = {k: v for k, v in new.items()
                             if k not in old or enc(old[k]) != enc(v)}
    patch.update((k, None) for k in old if k not in new)
    return patch


def store_errors(exc: ValidationFailed | Conflict, typed: Collection[str]) -> dict[str, str]:
    """A refused write's details as messages next to the inputs they concern."""
    errors: dict[str, str] = {}
    for detail in exc.details:
        path = str(detail.get("path", "")) if isinstance(detail, dict) else ""
        message = detail.get("message") if isinstance(detail, dict) else None
        if path.startswith("$.fields."):
            key = path.removeprefix("$.fields.")
            errors.setdefault(field_form.name_of(key) if key in typed else "fields",
                              message if key in typed else f"{key}: {message}")
        elif path.startswith("$.external_ids"):
            errors.setdefault("external_ids", exc.message)
        else:
            errors.setdefault("form", exc.message)
    return errors or {"form": exc.message}


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
        defs = {d["field_key"]: d for d in store.fields.definitions("entity")}
        search = field_search.read(params.multi_items(), defs)
        external = read_external_id(params.get("external_id", ""))
        filtered = bool(q.strip() or tags or state == "deleted" or search.params
                        or external.text)
        filter_error = None
        try:
            query = {"limit": PAGE_SIZE, "sort_by": sort_by, "sort_order": order, "q": q,
                     "tags": tags, "deleted": "only" if state == "deleted" else "exclude",
                     "field_filters": parse_field_filters(search.params),
                     "external_id": external.pair}
            try:
                result = ListResult([], None, None) if external.error else await store.list(
                    cursor=cursor, include_total=filtered and not cursor, **query)
            except BadRequest as exc:  # a stale cursor (the sort changed): start over
                if exc.code != "invalid_cursor":
                    raise
                result = await store.list(**query)
                cursor = None
        except ValidationFailed as exc:  # a field filter that names no field, or a bad value
            if not all(str(d.get("path", "")).startswith("query.field") for d in exc.details):
                raise
            filter_error = exc.message.removeprefix("field.")
            result = ListResult([], None, None)

        def link(**change: Any) -> str:
            query = {"q": q, "tag": ",".join(tags), "external_id": external.text,
                     "sort": sort, "view": view, "state": state} | change
            fields = query.pop("fields", search.params)
            pairs = [(k, v) for k, v in query.items() if v] + list(fields)
            return "/ui/entities?" + urlencode(pairs)

        # a form sent without JavaScript named the row's inputs: the address bar gets the
        # field.* parameters the page's links use
        headers = ({"HX-Replace-Url": link(cursor=cursor)}
                   if any(name in params for name in field_search.ROW)
                   and "hx-request" in request.headers else None)
        return render(request, "entities/list.html", {
            "items": result.rows, "next_cursor": result.next_cursor, "total": result.total,
            "q": q, "tags": tags, "sort": sort, "sorts": SORT_CHOICES, "view": view,
            "state": state, "cursor": cursor, "link": link,
            "top_tags": await store.all_tags(30), "notice": params.get("notice"),
            "defs": defs, "search": search, "chips": search.chips(defs),
            "filter_error": filter_error, "row_defn": defs.get(search.row["filter_field"]),
            "input_type": field_search.input_type, "ranged": field_search.ranged,
            "external": external,
        }, block="results", headers=headers,
            status=422 if filter_error or external.error else 200)

    def form_page(request: Request, entity: dict[str, Any] | None, values: dict[str, Any],
                  errors: dict[str, str] | None = None, form: Any = None,
                  status: int | None = None, conflict: dict[str, str] | None = None
                  ) -> Response:
        """The create/edit form; with errors, a 422 whose htmx fragment is the form block.
        ``form``: what was posted, shown again in the typed inputs."""
        errors = errors or {}
        stored = entity["fields"] if entity else {}
        inputs = field_form.inputs(store.fields.definitions("entity"), stored, form, errors)
        return render(request, "entities/form.html",
                      {"entity": entity, "values": values, "errors": errors,
                       "conflict": conflict, "inputs": inputs},
                      block="form", status=status or (422 if errors else 200))

    def defined() -> dict[str, dict[str, Any]]:
        return {d["field_key"]: d for d in store.fields.definitions("entity")}

    async def new_form(request: Request) -> Response:
        return form_page(request, None, dict.fromkeys(FORM_FIELDS, ""))

    async def create(request: Request) -> Response:
        form = await request.form()
        typed, keys, typed_errors = field_form.read(defined(), form, None)
        data, errors = form_to_entity(form, keys)
        errors |= typed_errors
        if errors:
            return form_page(request, None, dict(form), errors, form)
        data["fields"] |= typed
        try:
            entity = await store.create({**data, "plugin_data": {},
                                         "primary_thumbnail_asset_id": None})
        except (ValidationFailed, Conflict) as exc:
            if isinstance(exc, Conflict) and exc.code != "external_id_taken":
                raise
            return form_page(request, None, dict(form), store_errors(exc, keys), form)
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
        return form_page(request, entity, form_values(entity, defined()))

    async def edit(request: Request) -> Response:
        entity_id = check_id(request.path_params["entity_id"])
        form = await request.form()
        opened = str(form.get("version") or "")
        entity = await store.get(entity_id)
        if "version" in form:
            # the values shown are those read at the opened version: saving them once
            # fixed must still notice a change made meanwhile
            entity = {**entity, "version": opened}
        defs = defined()
        typed, keys, typed_errors = field_form.read(defs, form, entity["fields"])
        data, errors = form_to_entity(form, keys)
        errors |= typed_errors
        if errors:
            return form_page(request, entity, dict(form), errors, form)
        # only what changed is sent: a value stored before a later rule stays as it was
        free_before = {k: v for k, v in entity["fields"].items() if k not in keys}
        merges = {"fields": changed_keys(free_before, data.pop("fields")) | typed,
                  "external_ids": changed_keys(entity["external_ids"],
                                               data.pop("external_ids"))}
        version = parse_version(opened)
        try:
            await store.update(entity_id, data, {k: v for k, v in merges.items() if v},
                               if_match=None if version is None else {version})
        except PreconditionFailed:
            # someone saved since this form was opened: show theirs, keep ours to copy
            current = await store.get(entity_id)
            typed_text = {defs[k]["label"]: ", ".join(map(str, form.getlist(
                field_form.name_of(k)))) for k in keys}
            return form_page(request, current, form_values(current, defs), {}, None, 409,
                             {k: str(form.get(k) or "") for k in FORM_FIELDS} | typed_text)
        except (ValidationFailed, Conflict) as exc:
            if isinstance(exc, Conflict) and exc.code != "external_id_taken":
                raise
            return form_page(request, entity, dict(form), store_errors(exc, keys), form)
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

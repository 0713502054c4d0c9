"""The entity Relationships tab: both directions labelled from the entity's side, an add
form (type suggestions from the registry, entity search) and remove buttons.

The add form works without JavaScript: its first submit button ("Find") posts the form back
with type suggestions and entity candidates for what was typed, and the entity is chosen
with a radio button.  With htmx, typing fetches the same blocks of ``_form.html`` from
``/ui/relationships/types`` and ``/ui/entities/{id}/relationships/candidates``; choosing a
suggested type fills the type field.
"""

from __future__ import annotations

import contextlib
import re
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from ff_plugin_sdk import BadRequest, Conflict, Kernel, NotFound, UIPage, ValidationFailed
from ff_plugin_sdk.jsontext import NotJson, parse_json
from plugins_builtin.relationships import bounds
from plugins_builtin.relationships.api import check_entity_id, entity_page
from plugins_builtin.relationships.store import TYPE_NAME, TYPE_RULE, RelationshipStore, is_id

TAB_PAGE = 50
SUGGESTIONS = 8
CANDIDATES = 10
NOTICES = {"added": "Relationship added.", "removed": "Relationship removed."}
FORM_KEYS = ("direction", "type", "other_q", "other_entity_id", "valid_from", "valid_to",
             "fields")
_NEWLINE = re.compile(r"\r\n|\r|\n")


def type_name(text: str) -> str:
    """What a person types -> a type name: "Spouse of" -> "spouse_of"."""
    return re.sub(r"[\s-]+", "_", text.strip().lower())


def parse_fields(text: str) -> tuple[dict[str, Any], str | None]:
    """``name: value`` lines; a value that is JSON (a number, true, a list) keeps its type."""
    fields: dict[str, Any] = {}
    for number, line in enumerate(_NEWLINE.split(text), 1):
        if not line.strip():
            continue
        key, sep, value = line.partition(":")
        if not sep or not key.strip():
            return fields, f"Line {number}: write each field as 'name: value'."
        value = value.strip()
        try:
            fields[key.strip()] = parse_json(value) if value else ""
        except NotJson:
            fields[key.strip()] = value
    return fields, None


def form_values(form: Any = None) -> dict[str, str]:
    values = {k: str((form or {}).get(k) or "") for k in FORM_KEYS}
    if values["direction"] not in ("from", "to"):
        values["direction"] = "from"
    return values


async def _candidates(store: RelationshipStore, entity_id: str,
                      values: dict[str, str]) -> list[dict[str, Any]]:
    """Entities matching ``other_q`` (or the pasted id), and the one already chosen."""
    entities = store.entities()
    text = values["other_q"].strip()[:500]
    found: list[dict[str, Any]] = []
    wanted = [values["other_entity_id"]] if is_id(values["other_entity_id"]) else []
    if is_id(text.lower()):
        wanted.append(text.lower())
    elif text:
        found = (await entities.list(q=text, limit=CANDIDATES)).rows
    for other in wanted:
        if all(e["entity_id"] != other for e in found):
            with contextlib.suppress(NotFound):  # deleted meanwhile: not offered
                found.insert(0, await entities.get(other))
    return [e for e in found if e["entity_id"] != entity_id]


def tab_renderer(kernel: Kernel, store: RelationshipStore) -> Any:
    async def render(request: Request, entity: dict[str, Any]) -> str:
        return kernel.templates.render_string(
            request, "relationships/tab.html", await tab_context(request, entity))

    async def tab_context(request: Request, entity: dict[str, Any]) -> dict[str, Any]:
        params = request.query_params
        entity_id = entity["entity_id"]
        cursor = params.get("cursor") or None
        items: list[dict[str, Any]] = []
        next_cursor = None
        if not entity["deleted_at"]:
            try:
                items, next_cursor = await entity_page(store, entity_id, limit=TAB_PAGE,
                                                       cursor=cursor)
            except BadRequest as exc:  # a cursor from a hand-edited URL: start over
                if exc.code != "invalid_cursor":
                    raise
                items, next_cursor = await entity_page(store, entity_id, limit=TAB_PAGE)
                cursor = None

        def link(**change: Any) -> str:
            query = {"tab": "relationships"} | change
            return f"/ui/entities/{entity_id}?" + urlencode({k: v for k, v in query.items()
                                                             if v})

        return {"entity": entity, "items": items, "cursor": cursor,
                "next_cursor": next_cursor, "link": link,
                "notice": NOTICES.get(params.get("notice", "")),
                **form_context(entity, form_values(), {}, [], [])}

    return render


def form_context(entity: dict[str, Any], values: dict[str, str], errors: dict[str, str],
                 suggestions: list[dict[str, Any]],
                 candidates: list[dict[str, Any]]) -> dict[str, Any]:
    return {"entity": entity, "values": values, "errors": errors,
            "suggestions": suggestions, "candidates": candidates,
            "action": f"/ui/entities/{entity['entity_id']}/relationships"}


def pages(kernel: Kernel, store: RelationshipStore) -> list[UIPage]:
    def fragment(request: Request, block: str, ctx: dict[str, Any]) -> Response:
        return HTMLResponse(kernel.templates.render_string(
            request, "relationships/_form.html", ctx, block=block))

    async def suggestions_for(text: str) -> list[dict[str, Any]]:
        return (await store.types(type_name(text), limit=SUGGESTIONS)).rows

    async def type_suggestions(request: Request) -> Response:
        """The registry's types starting with what was typed, most used first."""
        text = request.query_params.get("type", "")[:100]
        return fragment(request, "type_suggestions", {"suggestions":
                                                      await suggestions_for(text)})

    async def candidates(request: Request) -> Response:
        """Entities whose name, alias, tag or field matches what was typed."""
        entity = await store.entities().get(check_entity_id(request.path_params["entity_id"]))
        values = form_values(request.query_params)
        return fragment(request, "candidates", form_context(
            entity, values, {}, [], await _candidates(store, entity["entity_id"], values)))

    async def form_page(request: Request, entity: dict[str, Any], values: dict[str, str],
                        errors: dict[str, str], status: int) -> Response:
        """The add form again: with what was found for it, and any errors inline."""
        ctx = form_context(entity, values, errors, await suggestions_for(values["type"]),
                           await _candidates(store, entity["entity_id"], values))
        return kernel.templates.render(request, "relationships/add.html", ctx,
                                       block="add_form", status=status)

    async def add(request: Request) -> Response:
        entity = await store.entities().get(check_entity_id(request.path_params["entity_id"]))
        entity_id = entity["entity_id"]
        form = await request.form()
        values = form_values(form)
        if form.get("action") != "add":  # "Find", or Enter in a search field
            return await form_page(request, entity, values, {}, 200)
        errors: dict[str, str] = {}
        data: dict[str, Any] = {"type": type_name(values["type"])}
        if not data["type"]:
            errors["type"] = "Choose a relationship type or type a new one."
        elif not TYPE_NAME.match(data["type"]):
            errors["type"] = f"A type is {TYPE_RULE}."
        other = values["other_entity_id"]
        if not is_id(other):
            errors["other"] = "Find the other entity and choose it."
        for key in ("valid_from", "valid_to"):
            try:
                data[key] = bounds.normalize(key, values[key].strip() or None)
            except ValidationFailed:
                errors[key] = f"Write {bounds.EXPECTED}."
        data["fields"], fields_error = parse_fields(values["fields"])
        if fields_error:
            errors["fields"] = fields_error
        if not errors:
            try:
                bounds.check_order(data["valid_from"], data["valid_to"])
            except ValidationFailed:
                errors["valid_to"] = "The end must not be before the start."
        if errors:
            return await form_page(request, entity, values, errors, 422)
        data["from_entity_id"], data["to_entity_id"] = (
            (entity_id, other) if values["direction"] == "from" else (other, entity_id))
        try:
            await store.create(data)
        except Conflict as exc:
            return await form_page(request, entity, values, {"form": exc.message}, 409)
        except ValidationFailed as exc:
            field = "type" if exc.code == "invalid_type_name" else "other"
            if exc.code == "entity_not_found" and entity_id in exc.message:
                field = "form"  # this entity was deleted meanwhile
            return await form_page(request, entity, values, {field: exc.message}, 422)
        return kernel.templates.redirect(
            request, f"/ui/entities/{entity_id}?tab=relationships&notice=added")

    async def remove(request: Request) -> Response:
        form = await request.form()
        back = str(form.get("entity_id") or "")
        await store.delete(request.path_params["relationship_id"])
        target = (f"/ui/entities/{back}?tab=relationships&notice=removed" if is_id(back)
                  else "/ui/entities")
        return kernel.templates.redirect(request, target)

    tab = "/entities/{entity_id}/relationships"
    return [
        UIPage(path="/relationships/types", endpoint=type_suggestions,
               name="relationships-types"),
        UIPage(path=tab + "/candidates", endpoint=candidates, name="relationships-candidates"),
        UIPage(path=tab, endpoint=add, methods=["POST"], name="relationships-add"),
        UIPage(path="/relationships/{relationship_id}/delete", endpoint=remove,
               methods=["POST"], name="relationships-remove"),
    ]

"""The entity Relationships tab: both directions labelled from the entity's side, an add
form (type suggestions from the registry, entity search; a new type's inverse), and edit and
remove actions.

The add form works without JavaScript: its first submit button ("Find") posts the form back
with type suggestions and entity candidates for what was typed, and the entity is chosen
with a radio button.  With htmx, typing fetches the same blocks of ``_form.html`` from
``/ui/relationships/types`` and ``/ui/entities/{id}/relationships/candidates``; choosing a
suggested type fills the type field.

Edit opens a form of its own (``edit.html``; htmx puts it in the tab).  Both forms check
what was typed with the API's rules (:mod:`.form_input`) and write through the same store
calls the API makes.
"""

from __future__ import annotations

import contextlib
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from ff_plugin_sdk import BadRequest, Conflict, Kernel, NotFound, UIPage, ValidationFailed
from plugins_builtin.relationships.api import check_entity_id, entity_page
from plugins_builtin.relationships.form_input import (
    EDIT_KEYS,
    check_values,
    fields_patch,
    form_values,
    format_fields,
    new_type_inputs,
    register_type,
    type_name,
)
from plugins_builtin.relationships.store import TYPE_NAME, RelationshipStore, check_ends, is_id

TAB_PAGE = 50
SUGGESTIONS = 8
CANDIDATES = 10
NOTICES = {"added": "Relationship added.", "updated": "Relationship updated.",
           "removed": "Relationship removed."}


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
                **form_context(entity, form_values(), {}, NO_TYPES, [])}

    return render


NO_TYPES: dict[str, Any] = {"suggestions": [], "new_type": ""}


def form_context(entity: dict[str, Any], values: dict[str, str], errors: dict[str, str],
                 types: dict[str, Any], candidates: list[dict[str, Any]]) -> dict[str, Any]:
    return {"entity": entity, "values": values, "errors": errors, **types,
            "candidates": candidates,
            "action": f"/ui/entities/{entity['entity_id']}/relationships"}


def back_to(entity_id: str, notice: str | None = None) -> str:
    """The Relationships tab an action was started from (the list, if it came without
    a valid entity id)."""
    if not is_id(entity_id):
        return "/ui/entities"
    query = {"tab": "relationships"} | ({"notice": notice} if notice else {})
    return f"/ui/entities/{entity_id}?{urlencode(query)}"


def pages(kernel: Kernel, store: RelationshipStore) -> list[UIPage]:
    def fragment(request: Request, block: str, ctx: dict[str, Any]) -> Response:
        return HTMLResponse(kernel.templates.render_string(
            request, "relationships/_form.html", ctx, block=block))

    async def types_for(text: str) -> dict[str, Any]:
        """Suggestions for what was typed, and its name if no type has it yet."""
        name = type_name(text)
        new = bool(TYPE_NAME.match(name)) and not await store.type_info([name])
        return {"suggestions": (await store.types(name, limit=SUGGESTIONS)).rows,
                "new_type": name if new else ""}

    async def type_suggestions(request: Request) -> Response:
        """The registry's types starting with what was typed, most used first."""
        text = request.query_params.get("type", "")[:100]
        return fragment(request, "type_suggestions", await types_for(text))

    async def candidates(request: Request) -> Response:
        """Entities whose name, alias, tag or field matches what was typed."""
        entity = await store.entities().get(check_entity_id(request.path_params["entity_id"]))
        values = form_values(request.query_params)
        return fragment(request, "candidates", form_context(
            entity, values, {}, NO_TYPES, await _candidates(store, entity["entity_id"], values)))

    async def form_page(request: Request, entity: dict[str, Any], values: dict[str, str],
                        errors: dict[str, str], status: int) -> Response:
        """The add form again: with what was found for it, and any errors inline."""
        ctx = form_context(entity, values, errors, await types_for(values["type"]),
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
        data, errors = check_values(values)
        inverse, symmetric, inverse_errors = await new_type_inputs(store, data["type"], values)
        errors |= inverse_errors
        other = values["other_entity_id"]
        if not is_id(other):
            errors["other"] = "Find the other entity and choose it."
        if errors:
            return await form_page(request, entity, values, errors, 422)
        data["from_entity_id"], data["to_entity_id"] = (
            (entity_id, other) if values["direction"] == "from" else (other, entity_id))
        try:
            check_ends(data["from_entity_id"], data["to_entity_id"])
            # before the relationship, so that it is labelled by the inverse at once
            if (inverse or symmetric) and (errors := await register_type(
                    store, data["type"], inverse, symmetric)):
                return await form_page(request, entity, values, errors, 409)
            await store.create(data)
        except Conflict as exc:
            return await form_page(request, entity, values, {"form": exc.message}, 409)
        except ValidationFailed as exc:
            field = "type" if exc.code == "invalid_type_name" else "other"
            if exc.code == "entity_not_found" and entity_id in exc.message:
                field = "form"  # this entity was deleted meanwhile
            return await form_page(request, entity, values, {field: exc.message}, 422)
        return kernel.templates.redirect(request, back_to(entity_id, "added"))

    def edit_response(request: Request, ctx: dict[str, Any], status: int) -> Response:
        return kernel.templates.render(request, "relationships/edit.html",
                                       {"gone": False} | ctx, block="edit_form",
                                       status=status)

    def gone(request: Request, entity_id: str) -> Response:
        """Removed (or an end deleted) since the tab was shown: say so, not a bare 404."""
        return edit_response(request, {"gone": True, "back": back_to(entity_id)}, 404)

    async def edit_context(rel: dict[str, Any], entity_id: str, values: dict[str, str],
                           errors: dict[str, str]) -> dict[str, Any]:
        ends = (rel["from_entity_id"], rel["to_entity_id"])
        names = await store.names(list(ends))
        return {"rel": rel, "values": values, "errors": errors,
                "from_name": names.get(ends[0], "(unknown entity)"),
                "to_name": names.get(ends[1], "(unknown entity)"),
                "entity_id": entity_id if entity_id in ends else ends[0],
                "back": back_to(entity_id if entity_id in ends else ends[0]),
                "action": f"/ui/relationships/{rel['relationship_id']}/edit"}

    async def edit_form(request: Request) -> Response:
        """The edit form, filled in with the relationship as stored."""
        entity_id = request.query_params.get("entity_id", "")
        try:
            rel = await store.get(request.path_params["relationship_id"])
        except NotFound:
            return gone(request, entity_id)
        values = {"type": rel["type"], "valid_from": rel["valid_from"] or "",
                  "valid_to": rel["valid_to"] or "", "fields": format_fields(rel["fields"])}
        return edit_response(request, await edit_context(rel, entity_id, values, {}), 200)

    async def edit(request: Request) -> Response:
        """Save the edit form as the API's PATCH does; refused: the form with its errors."""
        relationship_id = request.path_params["relationship_id"]
        form = await request.form()
        entity_id = str(form.get("entity_id") or "")
        values = form_values(form, EDIT_KEYS)
        status = 422
        try:
            rel = await store.get(relationship_id)
            data, errors = check_values(values)
            if not errors:
                fields = fields_patch(rel["fields"], data.pop("fields"))
                await store.update(relationship_id, data, fields or None)
        except NotFound as exc:
            if exc.code != "relationship_not_found":
                raise
            return gone(request, entity_id)
        except Conflict as exc:  # the new type makes it a copy of another one
            errors, status = {"type": exc.message}, 409
        except ValidationFailed as exc:
            errors = {"type" if exc.code == "invalid_type_name" else "form": exc.message}
        if errors:
            return edit_response(request, await edit_context(rel, entity_id, values, errors),
                                 status)
        return kernel.templates.redirect(request, back_to(entity_id, "updated"))

    async def remove(request: Request) -> Response:
        form = await request.form()
        await store.delete(request.path_params["relationship_id"])
        return kernel.templates.redirect(
            request, back_to(str(form.get("entity_id") or ""), "removed"))

    tab = "/entities/{entity_id}/relationships"
    one = "/relationships/{relationship_id}"
    return [
        UIPage(path="/relationships/types", endpoint=type_suggestions,
               name="relationships-types"),
        UIPage(path=tab + "/candidates", endpoint=candidates, name="relationships-candidates"),
        UIPage(path=tab, endpoint=add, methods=["POST"], name="relationships-add"),
        UIPage(path=one + "/edit", endpoint=edit_form, name="relationships-edit"),
        UIPage(path=one + "/edit", endpoint=edit, methods=["POST"],
               name="relationships-update"),
        UIPage(path=one + "/delete", endpoint=remove, methods=["POST"],
               name="relationships-remove"),
    ]

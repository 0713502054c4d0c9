"""The Fields admin pages: list, define, change and delete field definitions.

The forms are read into the API's own types (``FieldDefCreate`` / ``FieldDefPatch``), so a
definition is judged here as ``/v1/admin/field-defs`` judges it; every refusal is shown next
to the input it concerns (its ``details`` path), never as an error page.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from ff_plugin_sdk import Conflict, Kernel, UIPage, ValidationFailed
from plugins_builtin.entities.field_api import FieldDefCreate, FieldDefPatch
from plugins_builtin.entities.field_defs import SCOPES, FieldDefs
from plugins_builtin.entities.field_types import ENUM_TYPES, FIELD_TYPES, TEXT_TYPES

FORM = ("field_key", "scope", "field_type", "label", "help", "regex", "min", "max", "options")
#: the rules a patch may change (scope and type are fixed once defined)
RULES = ("label", "help", "required", "regex", "min", "max", "options")
TYPE_HINTS = {
    "string": "one line of text", "text": "longer text", "int": "a whole number",
    "float": "a number", "bool": "yes or no", "date": "a date (YYYY-MM-DD)",
    "datetime": "a date and time (UTC)", "url": "a web address",
    "enum": "one of the options", "multi_enum": "any of the options", "json": "any JSON value",
}
_NEWLINE = re.compile(r"\r\n|\r|\n")
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_AT = re.compile(r" - at `\$\.?([A-Za-z_]*)[^`]*`$")


def rules_summary(defn: dict[str, Any]) -> str:
    """A definition's rules in one line: ``required; 1-10 characters; matches ^[A-Z]``."""
    parts = ["required"] if defn["required"] else []
    low, high = defn.get("min"), defn.get("max")
    if low is not None or high is not None:
        unit = {"multi_enum": " choices"}.get(defn["field_type"],
                                              " characters" if defn["field_type"]
                                              in TEXT_TYPES else "")
        if low is not None and high is not None:
            parts.append(f"{low}–{high}{unit}")
        elif low is not None:
            parts.append(f"≥ {low}{unit}")
        else:
            parts.append(f"≤ {high}{unit}")
    if defn.get("regex"):
        parts.append(f"matches {defn['regex']}")
    if defn.get("options"):
        parts.append("options: " + ", ".join(defn["options"]))
    return "; ".join(parts)


def bound(text: str, ftype: str) -> Any:
    """A min/max input: a number for numbers, lengths and counts; dates stay text (a
    rule that makes no sense for the type is the definition check's to refuse)."""
    text = text.strip()
    if not text:
        return None
    if ftype not in ("date", "datetime") and _NUMBER.match(text):
        return int(text) if re.match(r"^[+-]?\d+$", text) else float(text)
    return text


def form_to_def(form: Any, ftype: str) -> dict[str, Any]:
    """The posted form as a definition body (blank inputs are no rule)."""
    def text(name: str) -> str:
        return str(form.get(name) or "")

    options = [line.strip() for line in _NEWLINE.split(text("options")) if line.strip()]
    return {"label": text("label").strip(), "help": text("help").strip(),
            "required": bool(form.get("required")), "regex": text("regex") or None,
            "min": bound(text("min"), ftype), "max": bound(text("max"), ftype),
            "options": options or None}


def shape_errors(exc: msgspec.ValidationError) -> dict[str, str]:
    """msgspec's "Expected ... - at `$.regex`" -> {"regex": "Expected ..."}."""
    text = str(exc)
    match = _AT.search(text)
    name = match.group(1) if match and match.group(1) in FORM else "form"
    return {name: text[: match.start()] if match else text}


def refusal_errors(exc: ValidationFailed | Conflict) -> dict[str, str]:
    """The store's details (``$.regex``, rule ``regex``) -> {input name: message}."""
    if isinstance(exc, Conflict):
        return {"field_key": exc.message}
    errors: dict[str, str] = {}
    for detail in exc.details:
        path = str(detail.get("path", "")).removeprefix("$.")
        # shown at its input: "regex: not a valid..." needs no "regex: "
        message = str(detail.get("message") or exc.message).removeprefix(f"{path}: ")
        errors.setdefault(path if path in FORM or path == "required" else "form", message)
    return errors or {"form": exc.message}


def values_of(defn: dict[str, Any]) -> dict[str, Any]:
    """A definition as its form shows it."""
    return {**{k: "" if defn.get(k) is None else str(defn[k]) for k in FORM},
            "options": "\n".join(defn.get("options") or []), "required": defn["required"]}


def pages(kernel: Kernel, fields: FieldDefs) -> list[UIPage]:
    def render(request: Request, name: str, ctx: dict[str, Any], **kw: Any) -> Response:
        return kernel.templates.render(request, name, {
            "types": FIELD_TYPES, "scopes": SCOPES, "type_hints": TYPE_HINTS,
            "enum_types": ENUM_TYPES, **ctx}, **kw)

    def form_page(request: Request, defn: dict[str, Any] | None, values: dict[str, Any],
                  errors: dict[str, str] | None = None) -> Response:
        return render(request, "fields/form.html",
                      {"defn": defn, "values": values, "errors": errors or {}},
                      block="form", status=422 if errors else 200)

    async def list_page(request: Request) -> Response:
        defs = await fields.list()
        return render(request, "fields/list.html", {
            "defs": defs, "summary": rules_summary,
            "notice": request.query_params.get("notice"),
            "key": request.query_params.get("key", "")})

    async def new_form(request: Request) -> Response:
        return form_page(request, None, {**dict.fromkeys(FORM, ""), "scope": "entity",
                                         "field_type": "string", "required": False})

    async def create(request: Request) -> Response:
        form = await request.form()
        values = {**{k: str(form.get(k) or "") for k in FORM},
                  "required": bool(form.get("required"))}
        ftype = values["field_type"]
        body = {"field_key": values["field_key"].strip(), "field_type": ftype,
                "scope": values["scope"] or "entity", **form_to_def(form, ftype)}
        try:
            data = msgspec.structs.asdict(msgspec.convert(body, FieldDefCreate))
            await fields.create(data)
        except msgspec.ValidationError as exc:
            return form_page(request, None, values, shape_errors(exc))
        except (ValidationFailed, Conflict) as exc:
            return form_page(request, None, values, refusal_errors(exc))
        return kernel.templates.redirect(request, "/ui/admin/fields?" + urlencode(
            {"notice": "created", "key": body["field_key"]}))

    async def edit_form(request: Request) -> Response:
        defn = await fields.get(request.path_params["field_key"])
        return form_page(request, defn, values_of(defn))

    async def edit(request: Request) -> Response:
        defn = await fields.get(request.path_params["field_key"])
        form = await request.form()
        values = {**values_of(defn), **{k: str(form.get(k) or "") for k in RULES
                                        if k != "required"},
                  "required": bool(form.get("required"))}
        changes = form_to_def(form, defn["field_type"])
        try:
            patch = msgspec.convert(changes, FieldDefPatch)
            await fields.update(defn["field_key"], {
                k: v for k, v in msgspec.structs.asdict(patch).items()
                if v is not msgspec.UNSET})
        except msgspec.ValidationError as exc:
            return form_page(request, defn, values, shape_errors(exc))
        except ValidationFailed as exc:
            return form_page(request, defn, values, refusal_errors(exc))
        return kernel.templates.redirect(request, "/ui/admin/fields?" + urlencode(
            {"notice": "saved", "key": defn["field_key"]}))

    async def delete_form(request: Request) -> Response:
        defn = await fields.get(request.path_params["field_key"])
        return render(request, "fields/delete.html", {"defn": defn})

    async def delete(request: Request) -> Response:
        key = request.path_params["field_key"]
        await fields.delete(key)
        return kernel.templates.redirect(request, "/ui/admin/fields?" + urlencode(
            {"notice": "deleted", "key": key}))

    one = "/admin/fields/{field_key}"
    return [
        UIPage(path="/admin/fields", endpoint=list_page, name="fields-list"),
        UIPage(path="/admin/fields/new", endpoint=new_form, name="fields-new"),
        UIPage(path="/admin/fields/new", endpoint=create, methods=["POST"],
               name="fields-create"),
        UIPage(path=one + "/edit", endpoint=edit_form, name="fields-edit"),
        UIPage(path=one + "/edit", endpoint=edit, methods=["POST"], name="fields-update"),
        UIPage(path=one + "/delete", endpoint=delete_form, name="fields-delete"),
        UIPage(path=one + "/delete", endpoint=delete, methods=["POST"],
               name="fields-delete-post"),
    ]

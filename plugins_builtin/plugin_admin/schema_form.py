"""A plugin's settings form, drawn from its ``config_schema`` (a JSON Schema).

:func:`form_fields` turns the schema, the current values and error messages into a tree of
:class:`Field` that ``plugin_admin/_schema_form.html`` renders; :func:`parse_form` reads what
the browser sent back into JSON typed by the schema; :func:`validate` checks that JSON with
jsonschema.  One naming scheme joins the three: a field's form name is its JSON path
(``training.steps``, ``tags[0]``, ``items[1].name``) and an error's ``path`` is the same
string, so each message lands next to its input.

It works without JavaScript: a checkbox sends a hidden ``false`` before itself (the last
value wins, so an unchecked box still says false); an array shows its items plus one empty
row, and an empty row is dropped when read back (so clearing an item removes it); a saved
item of an array of objects has a "remove" box.  What a form cannot express (arrays of
arrays, ``allOf``, objects without ``properties``) is a JSON textarea.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

#: the form name of an array-of-objects item's "remove" box; its value is the item's name
REMOVE = "@remove"
#: ``$ref`` hops followed before a (recursive) schema is shown as JSON text
_MAX_DEPTH = 12
#: strings longer than this get a textarea
_LONG_TEXT = 200
_INT = re.compile(r"^[+-]?\d+$")
_FLOAT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_MISSING: Any = object()
_SCALARS = ("text", "password", "textarea", "number", "select")


class Unparsed(str):
    """Text a field could not read (``"12x"`` for a number): :func:`parse_form` leaves it in
    the data with an error, so the form shows again what was typed."""


@dataclass
class Option:
    """One choice of a select (``name`` empty) or one checkbox of a ``choices`` field."""

    value: str
    label: str
    selected: bool = False
    name: str = ""


@dataclass
class Field:
    """One input, or one fieldset (``object``, ``array``) holding others in ``children``.

    ``kind`` is one of text, password, textarea, number, checkbox, select, choices (an
    array of enum values: a checkbox each), json, object, array.
    """

    name: str
    label: str
    kind: str
    help: str = ""
    required: bool = False
    #: the text the input shows (a checkbox: ``checked``)
    value: str = ""
    checked: bool = False
    options: list[Option] = field(default_factory=list)
    children: list[Field] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    #: HTML attributes from the schema's bounds: min, max, step, minlength, maxlength
    attrs: dict[str, str] = field(default_factory=dict)
    #: a saved item of an array of objects: offers a remove box
    removable: bool = False
    #: an array's empty row, for a new item
    new: bool = False

    @property
    def id(self) -> str:
        # quote() is one-to-one, so two names never share an id
        return "cfg-" + quote(self.name, safe="._-")

    def walk(self) -> Iterator[Field]:
        yield self
        for child in self.children:
            yield from child.walk()


# --- the schema, normalised ----------------------------------------------------------------

def _node(schema: Any, root: Any, depth: int = 0) -> dict[str, Any]:
    """The subschema to draw: local ``$ref`` followed, ``X or null`` read as ``X``."""
    if not isinstance(schema, dict):
        return {}  # true / false: anything, shown as JSON
    node = schema
    while isinstance(node.get("$ref"), str) and node["$ref"].startswith("#") \
            and depth < _MAX_DEPTH:
        target = _pointer(root, node["$ref"])
        if not isinstance(target, dict):
            break
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        depth += 1
    if depth >= _MAX_DEPTH:
        return {"title": node.get("title"), "description": node.get("description")}
    for key in ("anyOf", "oneOf"):
        branches = node.get(key)
        if isinstance(branches, list) and len(branches) == 2 and {"type": "null"} in branches:
            other = next(b for b in branches if b != {"type": "null"})
            rest = {k: v for k, v in node.items() if k != key}
            return _node({**other, **rest} if isinstance(other, dict) else other, root, depth)
    kind = node.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if k != "null"]
        node = {**node, "type": kinds[0] if len(kinds) == 1 else kinds}
    return node


def _pointer(root: Any, ref: str) -> Any:
    target = root
    for part in ref.lstrip("#").split("/")[1:]:
        part = part.replace("~1", "/").replace("~0", "~")
        if isinstance(target, dict) and part in target:
            target = target[part]
        elif isinstance(target, list) and part.isdigit() and int(part) < len(target):
            target = target[int(part)]
        else:
            return None
    return target


def _choices(node: dict[str, Any]) -> list[tuple[Any, str]] | None:
    """The values a select offers, with their labels: ``enum``, or ``oneOf`` of consts."""
    if isinstance(node.get("enum"), list) and node["enum"]:
        return [(v, v if isinstance(v, str) else json.dumps(v)) for v in node["enum"]]
    for key in ("oneOf", "anyOf"):
        branches = node.get(key)
        if isinstance(branches, list) and branches and all(
                isinstance(b, dict) and "const" in b for b in branches):
            return [(b["const"], str(b.get("title") or _text(b["const"]))) for b in branches]
    return None


def _kind_at(node: dict[str, Any], root: Any, name: str) -> str:
    """The field's kind; nested too deep (a recursive schema) it is JSON text."""
    kind = _kind(node, root)
    deep = name.count(".") + name.count("[") >= _MAX_DEPTH
    return "json" if deep and kind in ("object", "array") else kind


def _kind(node: dict[str, Any], root: Any) -> str:
    kind = node.get("type")
    if _choices(node) is not None and kind not in ("object", "array"):
        return "select"
    if kind == "string":
        if node.get("format") == "password":
            return "password"
        long = node.get("format") == "textarea" or (
            isinstance(node.get("maxLength"), int) and node["maxLength"] > _LONG_TEXT)
        return "textarea" if long else "text"
    if kind in ("integer", "number"):
        return "number"
    if kind == "boolean":
        return "checkbox"
    if kind in ("object", None) and isinstance(node.get("properties"), dict):
        return "object"
    if kind == "array" and isinstance(node.get("items"), dict):
        items = _node(node["items"], root)
        item_kind = _kind(items, root)
        if item_kind == "select":
            return "choices"
        if item_kind in _SCALARS or item_kind == "object":
            return "array"
    return "json"


def _choice_texts(choices: list[tuple[Any, str]]) -> list[str]:
    """What each choice sends: the string itself, or JSON when any choice is not a string
    (so ``1`` and ``"1"`` stay apart)."""
    if all(isinstance(v, str) for v, _ in choices):
        return [v for v, _ in choices]
    return [json.dumps(v) for v, _ in choices]


def _required(node: dict[str, Any]) -> list[str]:
    needed = node.get("required")
    return needed if isinstance(needed, list) else []


def _text(value: Any) -> str:
    if value is None or value is _MISSING:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)


def _join(name: str, key: str) -> str:
    return f"{name}.{key}" if name else key


# --- schema + values -> fields -------------------------------------------------------------

def form_fields(schema: dict[str, Any], values: dict[str, Any] | None = None,
                errors: Iterable[dict[str, str]] = ()) -> list[Field]:
    """The inputs of a settings form: ``values`` shown (defaults where a value is
    missing), each error of ``errors`` ({path, message}) on the field at its path or the
    nearest one above it.  Errors above every field: :func:`unplaced_errors`."""
    root = _node(schema, schema)
    if _kind(root, schema) != "object":
        return []  # no properties to draw: nothing to configure through a form
    fields = _properties(root, schema, "", values if isinstance(values, dict) else {},
                         blank=False)
    by_name = {f.name: f for top in fields for f in top.walk()}
    for error in errors:
        path, message = error["path"], error["message"]
        target = _nearest(path, by_name)
        if target is not None:
            target.errors.append(message if target.name == path else f"{path}: {message}")
    return fields


def unplaced_errors(fields: Sequence[Field], errors: Iterable[dict[str, str]]) -> list[str]:
    """Messages no field can show (about the settings as a whole, or keys the schema does
    not describe): the form shows them above its fields."""
    by_name = {f.name: f for top in fields for f in top.walk()}
    return [f"{e['path']}: {e['message']}" if e["path"] else e["message"]
            for e in errors if _nearest(e["path"], by_name) is None]


def _nearest(path: str, by_name: dict[str, Field]) -> Field | None:
    while path:
        if path in by_name:
            return by_name[path]
        cut = max(path.rfind("."), path.rfind("["))
        path = path[:max(cut, 0)]
    return None


def _properties(node: dict[str, Any], root: Any, name: str, value: Any,
                blank: bool) -> list[Field]:
    required = _required(node)
    value = value if isinstance(value, dict) else {}
    return [_field(_node(sub, root), root, _join(name, key), key, value.get(key, _MISSING),
                   key in required, blank)
            for key, sub in node["properties"].items()]


def _field(node: dict[str, Any], root: Any, name: str, key: str, value: Any,
           required: bool, blank: bool = False) -> Field:
    """One field; ``blank``: an array's empty row, which shows no defaults (they would make
    it a new item at every save)."""
    if value is _MISSING and not blank:
        value = node.get("default", _MISSING)
    kind = _kind_at(node, root, name)
    f = Field(name=name, label=str(node.get("title") or key), kind=kind,
              help=str(node.get("description") or ""), required=required)
    if kind == "object":
        f.children = _properties(node, root, name, value, blank)
    elif kind == "array":
        _array(f, node, root, value)
    elif kind == "choices":
        choices = _choices(_node(node["items"], root)) or []
        chosen = value if isinstance(value, list) else []
        f.options = [Option(value=text, label=label, selected=v in chosen, name=f"{name}[{i}]")
                     for i, ((v, label), text) in enumerate(zip(choices, _choice_texts(choices),
                                                                 strict=True))]
    elif kind == "select":
        choices = _choices(node) or []
        f.options = [Option(value=text, label=label, selected=value is not _MISSING
                            and v == value and type(v) is type(value))
                     for (v, label), text in zip(choices, _choice_texts(choices), strict=True)]
    elif kind == "checkbox":
        f.checked = value is True
    elif kind == "json":
        f.value = value if isinstance(value, Unparsed) else (
            "" if value is _MISSING else json.dumps(value, indent=2, ensure_ascii=False))
    else:
        f.value = _text(value)
        f.attrs = _bounds(node, kind)
    return f


def _array(f: Field, node: dict[str, Any], root: Any, value: Any) -> None:
    items_node = _node(node["items"], root)
    items = value if isinstance(value, list) else []
    label = str(items_node.get("title") or "Item")
    for i, item in enumerate(items):
        child = _field(items_node, root, f"{f.name}[{i}]", "", item, False)
        child.label = f"{label} {i + 1}"
        child.removable = child.kind == "object"
        f.children.append(child)
    most = node.get("maxItems")
    if not (isinstance(most, int) and len(items) >= most):
        extra = _field(items_node, root, f"{f.name}[{len(items)}]", "", _MISSING, False,
                       blank=True)
        extra.label, extra.new = f"New {label.lower()}", True
        f.children.append(extra)


def _bounds(node: dict[str, Any], kind: str) -> dict[str, str]:
    attrs: dict[str, str] = {}
    if kind == "number":
        whole = node.get("type") == "integer"
        for key, attr, low in (("minimum", "min", True), ("maximum", "max", False),
                               ("exclusiveMinimum", "min", True),
                               ("exclusiveMaximum", "max", False)):
            bound = node.get(key)
            if not isinstance(bound, int | float) or isinstance(bound, bool):
                continue
            if whole:  # the nearest whole number inside the bound
                inside = math.floor(bound) + 1 if low else math.ceil(bound) - 1
                bound = inside if key.startswith("exclusive") else (
                    math.ceil(bound) if low else math.floor(bound))
            elif key.startswith("exclusive"):
                continue  # HTML has no exclusive bound for decimals; the server checks
            attrs[attr] = _text(bound)
        multiple = node.get("multipleOf")
        attrs["step"] = (_text(multiple) if isinstance(multiple, int | float)
                         and not isinstance(multiple, bool) else "1" if whole else "any")
    else:
        for key, attr in (("minLength", "minlength"), ("maxLength", "maxlength")):
            if isinstance(node.get(key), int) and not isinstance(node.get(key), bool):
                attrs[attr] = str(node[key])
    return attrs


# --- what the browser sent -> JSON ---------------------------------------------------------

def parse_form(schema: dict[str, Any], form: Iterable[tuple[str, str]]
               ) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """The settings a submitted form describes, typed by the schema, and the fields that
    could not be read ({path, message}).

    Empty optional inputs are left out; arrays are rebuilt in form order without their
    empty rows; names the schema does not describe are ignored.  A field that could not be
    read keeps its text in the data (an :class:`Unparsed`), so :func:`form_fields` shows it
    again: save the data only when there are no errors.
    """
    sent: dict[str, list[str]] = {}
    for key, text in form:
        sent.setdefault(key, []).append(text)
    reader = _Reader(schema, sent)
    data, _ = reader.read(_node(schema, schema), "", "", required=True)
    return (data if isinstance(data, dict) else {}), reader.errors


class _Reader:
    def __init__(self, root: Any, sent: dict[str, list[str]]) -> None:
        self.root = root
        self.sent = sent
        self.removed = set(sent.get(REMOVE, ()))
        self.errors: list[dict[str, str]] = []

    def fail(self, path: str, message: str, text: str) -> tuple[Any, bool]:
        self.errors.append({"path": path, "message": message})
        return Unparsed(text), True

    def read(self, node: dict[str, Any], name: str, path: str,
             required: bool) -> tuple[Any, bool]:
        """(value or _MISSING, whether anything was filled in); ``name`` is where the
        value is in the form, ``path`` where it goes in the data (an array's items are
        numbered again once empty rows are dropped)."""
        kind = _kind_at(node, self.root, name)
        if kind == "object":
            out: dict[str, Any] = {}
            filled = False
            needed = _required(node)
            for key, sub in node["properties"].items():
                value, got = self.read(_node(sub, self.root), _join(name, key),
                                       _join(path, key), key in needed)
                if value is not _MISSING:
                    out[key] = value
                filled = filled or got
            return (_MISSING, False) if not out and not required else (out, filled)
        if kind in ("array", "choices"):
            return self.read_array(node, kind, name, path, required)
        texts = self.sent.get(name)
        if texts is None:
            return _MISSING, False
        text = texts[-1]  # a checkbox's hidden "false" comes before its "true"
        if kind == "checkbox":
            return text == "true", text == "true"
        if kind in ("text", "password", "textarea"):
            text = text.replace("\r\n", "\n")
            if text:
                return text, True
            # a default the user emptied is a choice; otherwise empty is "not set"
            default = node.get("default")
            return ("", False) if isinstance(default, str) and default else (_MISSING, False)
        if not text.strip():
            return _MISSING, False
        if kind == "number":
            return self.number(node, text.strip(), path)
        if kind == "select":
            choices = _choices(node) or []
            for (value, _), sends in zip(choices, _choice_texts(choices), strict=True):
                if sends == text:
                    return value, True
            return self.fail(path, "must be one of the listed choices", text)
        try:
            return json.loads(text), True
        except json.JSONDecodeError as exc:
            return self.fail(path, f"is not valid JSON: {exc.msg} at line {exc.lineno} "
                                   f"column {exc.colno}", text)

    def number(self, node: dict[str, Any], text: str, path: str) -> tuple[Any, bool]:
        whole = node.get("type") == "integer"
        if _INT.match(text):
            return int(text), True
        if _FLOAT.match(text):
            number = float(text)
            if math.isfinite(number):
                if whole and number.is_integer():
                    return int(number), True
                if not whole:
                    return number, True
        return self.fail(path, "must be a whole number" if whole else "must be a number", text)

    def read_array(self, node: dict[str, Any], kind: str, name: str, path: str,
                   required: bool) -> tuple[Any, bool]:
        indices = self.indices(name)
        if name not in self.sent and not indices:
            return _MISSING, False  # not in this form at all
        items_node = _node(node["items"], self.root)
        items: list[Any] = []
        if kind == "choices":
            choices = _choices(items_node) or []
            by_text = dict(zip(_choice_texts(choices), (v for v, _ in choices), strict=True))
            for i in indices:
                text = self.sent[f"{name}[{i}]"][-1]
                if text in by_text:
                    if by_text[text] not in items:
                        items.append(by_text[text])
                else:
                    items.append(self.fail(f"{path}[{len(items)}]",
                                           "must be one of the listed choices", text)[0])
        else:
            for i in indices:
                item_name = f"{name}[{i}]"
                if item_name in self.removed:
                    continue
                value, filled = self.read(items_node, item_name, f"{path}[{len(items)}]",
                                          required=False)
                if value is not _MISSING and filled:
                    items.append(value)
        if items:
            return items, True
        default = node.get("default")
        keep = required or (isinstance(default, list) and default)
        return ([], False) if keep else (_MISSING, False)

    def indices(self, name: str) -> list[int]:
        """The item numbers sent for an array, in order: ``tags[0]``, ``items[3].name``."""
        prefix = name + "["
        found = set()
        for key in self.sent:
            if key.startswith(prefix):
                digits, close, rest = key[len(prefix):].partition("]")
                if close and digits.isdigit() and len(digits) < 7 and rest[:1] in ("", ".", "["):
                    found.add(int(digits))
        return sorted(found)


# --- JSON -> messages per field ------------------------------------------------------------

def validate(schema: dict[str, Any], data: Any) -> list[dict[str, str]]:
    """Every way ``data`` breaks the schema, as {path, message} with the path a form name
    (``training.steps``); a missing required key is reported at its own path."""
    from jsonschema import Draft202012Validator

    out: list[dict[str, str]] = []
    seen: set[tuple[str, str]] = set()
    for error in Draft202012Validator(schema).iter_errors(data):
        for path, message in _explain(error):
            if (path, message) not in seen:
                seen.add((path, message))
                out.append({"path": path, "message": message})
    return out


def path_name(parts: Iterable[str | int]) -> str:
    """A JSON path as a form name: ``["items", 0, "name"]`` -> ``items[0].name``."""
    name = ""
    for part in parts:
        name = f"{name}[{part}]" if isinstance(part, int) else _join(name, part)
    return name


def _explain(error: Any) -> Iterator[tuple[str, str]]:
    path = path_name(error.absolute_path)
    rule, limit, instance = error.validator, error.validator_value, error.instance
    if rule == "required" and isinstance(instance, dict):
        for key in limit:
            if key not in instance:
                yield _join(path, key), "is required"
        return
    plural = "" if limit == 1 else "s"
    messages = {
        "minimum": f"must be at least {_text(limit)}",
        "maximum": f"must be at most {_text(limit)}",
        "exclusiveMinimum": f"must be more than {_text(limit)}",
        "exclusiveMaximum": f"must be less than {_text(limit)}",
        "multipleOf": f"must be a multiple of {_text(limit)}",
        "minLength": f"must be at least {_text(limit)} character{plural} long",
        "maxLength": f"must be at most {_text(limit)} character{plural} long",
        "minItems": f"must have at least {_text(limit)} item{plural}",
        "maxItems": f"must have at most {_text(limit)} item{plural}",
        "pattern": f"must match the pattern {_text(limit)}",
        "uniqueItems": "must not repeat an item",
    }
    if rule == "type":
        names = {"integer": "a whole number", "number": "a number", "string": "text",
                 "boolean": "true or false", "array": "a list", "object": "an object",
                 "null": "null"}
        wanted = limit if isinstance(limit, list) else [limit]
        yield path, "must be " + " or ".join(names.get(str(w), str(w)) for w in wanted)
    elif rule == "enum":
        yield path, "must be one of: " + ", ".join(_text(v) for v in limit)
    elif rule in messages and not (rule == "uniqueItems" and not limit):
        yield path, messages[rule]
    else:
        yield path, error.message

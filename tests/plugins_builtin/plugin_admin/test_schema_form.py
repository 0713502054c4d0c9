"""The settings form drawn from a config_schema: rendered, submitted as a browser would,
read back into the same JSON, and checked with messages next to their fields."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from kernel.templating import Templates
from plugins_builtin import plugin_admin
from plugins_builtin.plugin_admin.schema_form import (
    REMOVE,
    form_fields,
    parse_form,
    path_name,
    unplaced_errors,
    validate,
)

TEMPLATES = Path(plugin_admin.__file__).parent / "templates"

SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "title": "Name", "description": "What to call it"},
        "api_key": {"type": "string", "format": "password"},
        "notes": {"type": "string", "maxLength": 2000},
        "steps": {"type": "integer", "minimum": 1, "maximum": 10000},
        "rate": {"type": "number", "exclusiveMinimum": 0, "multipleOf": 0.25},
        "enabled": {"type": "boolean"},
        "fast": {"type": "boolean", "default": True},
        "mode": {"type": "string", "enum": ["fast", "slow", "exact"]},
        "size": {"enum": [512, 768, 1024]},
        "flavours": {"type": "array", "items": {"enum": ["a", "b", "c"]}},
        "tags": {"type": "array", "items": {"type": "string"}},
        "weights": {"type": "array", "items": {"type": "number"}},
        "training": {
            "type": "object",
            "title": "Training",
            "required": ["epochs"],
            "properties": {
                "epochs": {"type": "integer", "minimum": 1},
                "resume": {"type": "boolean"},
                "optimizer": {"type": "object", "properties": {
                    "name": {"type": "string"}, "beta": {"type": "number"}}},
            },
        },
        "datasets": {
            "type": "array",
            "items": {"type": "object", "title": "Dataset", "required": ["path"],
                      "properties": {"path": {"type": "string"},
                                     "repeat": {"type": "integer", "default": 1},
                                     "shuffle": {"type": "boolean"}}},
        },
        "extra": {"type": "array", "items": {"type": "array", "items": {"type": "integer"}}},
    },
}

FULL: dict[str, Any] = {
    "name": "LoRA trainer", "api_key": "s3cr3t", "notes": "line one\nline two",
    "steps": 1500, "rate": 0.75, "enabled": True, "fast": False, "mode": "exact",
    "size": 768, "flavours": ["a", "c"], "tags": ["portrait", "studio light"],
    "weights": [0.5, 2, -1.25],
    "training": {"epochs": 3, "resume": True, "optimizer": {"name": "adamw", "beta": 0.9}},
    "datasets": [{"path": "/data/one", "repeat": 2, "shuffle": True},
                 {"path": "/data/two", "repeat": 1, "shuffle": False}],
    "extra": [[1, 2], [3]],
}


@pytest.fixture(scope="module")
def templates() -> Templates:
    # the app's own Jinja setup (autoescape, StrictUndefined) on this plugin's templates
    return Templates(SimpleNamespace(version="test"), [TEMPLATES])  # type: ignore[arg-type]


def render(templates: Templates, schema: dict[str, Any], values: Any = None,
           errors: list[dict[str, str]] | None = None) -> str:
    fields = form_fields(schema, values, errors or [])
    source = ('{% from "plugin_admin/_schema_form.html" import schema_form %}'
              '<form method="post">{{ schema_form(fields, unplaced) }}</form>')
    template = templates.env.from_string(source)
    return template.render(fields=fields, unplaced=unplaced_errors(fields, errors or []))


class Browser(HTMLParser):
    """What a browser submits for a form: successful controls in document order, plus
    the ids, labels and aria references a check of the markup needs."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.sent: list[tuple[str, str]] = []
        self.ids: list[str] = []
        self.label_for: list[str] = []
        self.described: list[str] = []
        self.controls: list[str] = []  # ids of visible inputs
        self.wrapped = 0  # controls inside their <label>
        self.legends = 0
        self._label_depth = 0
        self._select: tuple[str, list[tuple[str, bool]]] | None = None
        self._textarea: tuple[str, list[str]] | None = None
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if "id" in a:
            self.ids.append(a["id"])
        self.described += a.get("aria-describedby", "").split()
        name = a.get("name", "")
        if tag == "label":
            self._label_depth += 1
            if "for" in a:
                self.label_for.append(a["for"])
        elif tag == "legend":
            self.legends += 1
        elif tag == "input":
            kind = a.get("type", "text")
            if kind != "hidden":
                if "id" in a:
                    self.controls.append(a["id"])
                elif self._label_depth:
                    self.wrapped += 1
            if kind == "checkbox":
                if "checked" in a and name:
                    self.sent.append((name, a.get("value", "on")))
            elif name:
                self.sent.append((name, a.get("value", "")))
        elif tag == "select":
            self.controls.append(a["id"])
            self._select = (name, [])
        elif tag == "option" and self._select is not None:
            self._select[1].append((a.get("value", ""), "selected" in a))
        elif tag == "textarea":
            self.controls.append(a["id"])
            self._textarea = (name, [])

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self._textarea[1].append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "label":
            self._label_depth -= 1
        elif tag == "select" and self._select is not None:
            name, options = self._select
            chosen = [v for v, selected in options if selected] or [options[0][0]]
            self.sent.append((name, chosen[-1]))
            self._select = None
        elif tag == "textarea" and self._textarea is not None:
            name, parts = self._textarea
            text = "".join(parts)
            # the HTML parser drops one newline right after <textarea>; browsers send CRLF
            self.sent.append((name, text.removeprefix("\n").replace("\n", "\r\n")))
            self._textarea = None


def typed(sent: list[tuple[str, str]], name: str, value: str) -> list[tuple[str, str]]:
    """The form after the user typed ``value`` into the input called ``name``."""
    assert any(k == name for k, _ in sent), name
    return [(k, value if k == name else v) for k, v in sent]


def checked(sent: list[tuple[str, str]], name: str, on: bool) -> list[tuple[str, str]]:
    """The form after a checkbox (hidden "false" then the box) was ticked or cleared."""
    out = [(k, v) for k, v in sent if not (k == name and v == "true")]
    if on:
        at = max(i for i, (k, _) in enumerate(out) if k == name)
        out.insert(at + 1, (name, "true"))
    return out


def submit(templates: Templates, schema: dict[str, Any], values: Any) -> list[tuple[str, str]]:
    return Browser(render(templates, schema, values)).sent


# --- round trips ---------------------------------------------------------------------------

def test_every_kind_of_value_survives_render_submit_parse(templates: Templates) -> None:
    data, errors = parse_form(SCHEMA, submit(templates, SCHEMA, FULL))
    assert errors == []
    assert data == FULL
    assert type(data["steps"]) is int and type(data["size"]) is int
    assert validate(SCHEMA, data) == []


def test_a_second_save_changes_nothing(templates: Templates) -> None:
    once, _ = parse_form(SCHEMA, submit(templates, SCHEMA, FULL))
    twice, _ = parse_form(SCHEMA, submit(templates, SCHEMA, once))
    assert twice == once == FULL


def test_an_empty_form_gives_the_defaults_and_leaves_the_rest_out(
        templates: Templates) -> None:
    data, errors = parse_form(SCHEMA, submit(templates, SCHEMA, {}))
    assert errors == []
    # checkboxes always say what they are; empty optional inputs are left out; an
    # optional object with nothing filled in (training: only its unchecked box) stays
    assert data == {"enabled": False, "fast": True, "training": {"resume": False}}
    assert validate(SCHEMA, data) == [{"path": "name", "message": "is required"},
                                      {"path": "training.epochs", "message": "is required"}]


def test_what_the_user_types_is_read_typed(templates: Templates) -> None:
    sent = submit(templates, SCHEMA, {"name": "x"})
    sent = typed(sent, "steps", " 40 ")
    sent = typed(sent, "rate", "2.5e-1")
    sent = typed(sent, "size", "1024")
    sent = typed(sent, "tags[0]", "new tag")
    sent = typed(sent, "weights[0]", "3")
    sent = typed(sent, "training.epochs", "7.0")
    sent = checked(sent, "enabled", True)
    sent = checked(sent, "fast", False)
    sent = [*sent, ("flavours[1]", "b")]
    data, errors = parse_form(SCHEMA, sent)
    assert errors == []
    assert data == {"name": "x", "steps": 40, "rate": 0.25, "size": 1024, "enabled": True,
                    "fast": False, "tags": ["new tag"], "weights": [3], "flavours": ["b"],
                    "training": {"epochs": 7, "resume": False}}


def test_arrays_are_rebuilt_in_order_without_empty_or_removed_items(
        templates: Templates) -> None:
    values = {"name": "x", "tags": ["a", "b", "c"],
              "datasets": [{"path": "/1"}, {"path": "/2"}, {"path": "/3"}]}
    sent = submit(templates, SCHEMA, values)
    # one empty row for a new item, not pre-filled with the items' defaults
    assert ("tags[3]", "") in sent and ("datasets[3].path", "") in sent
    assert ("datasets[3].repeat", "") in sent
    sent = typed(sent, "tags[1]", "")            # cleared: removed
    sent = typed(sent, "tags[3]", "d")           # the new row: added at the end
    sent = [*sent, (REMOVE, "datasets[0]")]      # the remove box
    sent = typed(sent, "datasets[3].path", "/4")
    data, errors = parse_form(SCHEMA, sent)
    assert errors == []
    assert data["tags"] == ["a", "c", "d"]
    assert data["datasets"] == [{"path": "/2", "repeat": 1, "shuffle": False},
                                {"path": "/3", "repeat": 1, "shuffle": False},
                                {"path": "/4", "shuffle": False}]


def test_an_array_emptied_by_the_user_is_empty_when_its_default_is_not() -> None:
    schema = {"type": "object", "properties": {
        "langs": {"type": "array", "items": {"enum": ["en", "de"]}, "default": ["en"]},
        "words": {"type": "array", "items": {"type": "string"}}}}
    # every box cleared: only the hidden markers are sent
    data, errors = parse_form(schema, [("langs", ""), ("words", ""), ("words[0]", "")])
    assert (data, errors) == ({"langs": []}, [])


def test_max_items_reached_offers_no_new_row(templates: Templates) -> None:
    schema = {"type": "object", "properties": {
        "pair": {"type": "array", "maxItems": 2, "items": {"type": "integer"}}}}
    sent = submit(templates, schema, {"pair": [1, 2]})
    assert [k for k, _ in sent] == ["pair", "pair[0]", "pair[1]"]


def test_out_of_order_indices_keep_the_form_order() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "array",
                                                     "items": {"type": "integer"}}}}
    data, _ = parse_form(schema, [("n[10]", "3"), ("n[2]", "1"), ("n[9]", "2")])
    assert data == {"n": [1, 2, 3]}


# --- errors --------------------------------------------------------------------------------

def test_bad_numbers_are_field_errors_shown_again_with_what_was_typed(
        templates: Templates) -> None:
    sent = submit(templates, SCHEMA, {"name": "x", "weights": [1]})
    sent = typed(sent, "steps", "12x")
    sent = typed(sent, "rate", "nan")
    sent = typed(sent, "weights[1]", "1e999")
    sent = typed(sent, "training.epochs", "2.5")
    data, errors = parse_form(SCHEMA, sent)
    assert errors == [{"path": "steps", "message": "must be a whole number"},
                      {"path": "rate", "message": "must be a number"},
                      {"path": "weights[1]", "message": "must be a number"},
                      {"path": "training.epochs", "message": "must be a whole number"}]
    html = render(templates, SCHEMA, data, errors)
    page = Browser(html)
    assert ("steps", "12x") in page.sent and ("weights[1]", "1e999") in page.sent
    assert ('<input type="number" id="cfg-steps" name="steps" value="12x" min="1" '
            'max="10000" step="1" aria-invalid="true" aria-describedby="cfg-steps-error">'
            in html)
    assert '<p class="field-error" id="cfg-steps-error">must be a whole number</p>' in html
    assert 'id="cfg-weights%5B1%5D-error">must be a number</p>' in html


def test_unreadable_choices_and_json_are_field_errors() -> None:
    data, errors = parse_form(SCHEMA, [("mode", "warp"), ("size", "512.0"), ("extra", "[1,"),
                                       ("flavours", ""), ("flavours[0]", "z")])
    assert errors == [{"path": "mode", "message": "must be one of the listed choices"},
                      {"path": "size", "message": "must be one of the listed choices"},
                      {"path": "flavours[0]", "message": "must be one of the listed choices"},
                      {"path": "extra", "message": "is not valid JSON: Expecting value at "
                                                   "line 1 column 4"}]
    assert data["extra"] == "[1,"


def test_missing_required_fields_are_errors_at_their_own_paths(templates: Templates) -> None:
    data = {"training": {}, "datasets": [{"repeat": 2}]}
    errors = validate(SCHEMA, data)
    assert errors == [{"path": "name", "message": "is required"},
                      {"path": "training.epochs", "message": "is required"},
                      {"path": "datasets[0].path", "message": "is required"}]
    html = render(templates, SCHEMA, data, errors)
    assert 'id="cfg-name" name="name" value="" aria-invalid="true" aria-describedby=' \
           '"cfg-name-help cfg-name-error" aria-required="true">' in html
    assert 'id="cfg-datasets%5B0%5D.path-error">is required</p>' in html


def test_validation_messages_name_the_rule() -> None:
    data = {"name": 5, "steps": 0, "rate": 0.3, "mode": "warp", "tags": ["a", 1],
            "notes": "x" * 2001, "training": {"epochs": 1, "optimizer": {"beta": "hi"}}}
    assert validate(SCHEMA, data) == [
        {"path": "name", "message": "must be text"},
        {"path": "notes", "message": "must be at most 2000 characters long"},
        {"path": "steps", "message": "must be at least 1"},
        {"path": "rate", "message": "must be a multiple of 0.25"},
        {"path": "mode", "message": "must be one of: fast, slow, exact"},
        {"path": "tags[1]", "message": "must be text"},
        {"path": "training.optimizer.beta", "message": "must be a number"},
    ]


def test_errors_without_a_field_of_their_own_go_to_the_nearest_one(
        templates: Templates) -> None:
    schema: dict[str, Any] = {"type": "object", "additionalProperties": False,
              "properties": {"extra": SCHEMA["properties"]["extra"],
                             "flavours": SCHEMA["properties"]["flavours"]}}
    data = {"extra": [[1, "x"]], "flavours": ["a", "a"], "stray": 1}
    errors = validate(schema | {"properties": {
        **schema["properties"],
        "flavours": {**schema["properties"]["flavours"], "uniqueItems": True}}}, data)
    fields = form_fields(schema, data, errors)
    by_name = {f.name: f for f in fields}
    assert by_name["extra"].errors == ["extra[0][1]: must be a whole number"]
    assert by_name["flavours"].errors == ["must not repeat an item"]
    assert unplaced_errors(fields, errors) == [
        "Additional properties are not allowed ('stray' was unexpected)"]
    html = render(templates, schema, data, errors)
    assert '<div class="flash warning" role="alert"><ul><li>Additional properties' in html


def test_unknown_keys_are_ignored() -> None:
    data, errors = parse_form(SCHEMA, [("name", "x"), ("bogus", "1"), ("training.bogus", "2"),
                                       ("tags[0].deep", "3"), ("tags[x]", "4"),
                                       ("csrf_token", "t")])
    assert (data, errors) == ({"name": "x"}, [])
    fields = form_fields(SCHEMA, {"name": "x", "bogus": "<b>"})
    assert "bogus" not in {f.name for f in fields}


# --- markup --------------------------------------------------------------------------------

def test_markup_is_accessible(templates: Templates) -> None:
    page = Browser(render(templates, SCHEMA, FULL, validate(SCHEMA, {"training": {}})))
    assert len(page.ids) == len(set(page.ids))
    # every visible input has a label (for= its id, or wrapped by it)
    assert sorted(page.label_for) == sorted(page.controls)
    assert page.wrapped == 3 + 2  # three flavours, two "remove" boxes
    assert set(page.described) <= set(page.ids)
    # fieldsets: training, its optimizer, four arrays, three datasets
    assert page.legends == 9


def test_inputs_follow_the_schema(templates: Templates) -> None:
    html = render(templates, SCHEMA, {})
    assert '<input type="password" id="cfg-api_key" name="api_key" value="">' in html
    assert '<textarea id="cfg-notes" name="notes" maxlength="2000">' in html
    assert 'name="rate" value="" step="0.25">' in html  # exclusive decimal bound: server's
    assert '<option value="">—</option><option value="512">512</option>' in html
    assert ('<input type="hidden" name="fast" value="false">\n  <label class="check" '
            'for="cfg-fast"><input type="checkbox" id="cfg-fast" name="fast" value="true" '
            'checked> fast</label>') in html
    assert '<legend>Training</legend>' in html
    assert '<label for="cfg-training.epochs">epochs <span class="required"' in html
    assert '<p class="hint" id="cfg-name-help">What to call it</p>' in html


def test_whole_number_bounds_become_html_bounds() -> None:
    schema = {"type": "object", "properties": {
        "a": {"type": "integer", "exclusiveMinimum": 3, "exclusiveMaximum": 7.5},
        "b": {"type": "integer", "minimum": 0.5, "maximum": 9.5}}}
    a, b = form_fields(schema)
    assert a.attrs == {"min": "4", "max": "7", "step": "1"}
    assert b.attrs == {"min": "1", "max": "9", "step": "1"}


def test_malicious_text_is_escaped_everywhere(templates: Templates) -> None:
    evil = '"><script>alert(1)</script>'
    schema = {"type": "object", "properties": {
        "s": {"type": "string", "title": evil, "description": evil},
        "long": {"type": "string", "format": "textarea"},
        "e": {"enum": [evil, "ok"]},
        "c": {"type": "array", "items": {"oneOf": [{"const": evil, "title": evil}]}},
        "j": {"type": "object"},
        evil: {"type": "boolean"}}}
    values = {"s": evil, "long": "</textarea>" + evil, "e": evil, "c": [evil],
              "j": {"k": evil}}
    errors = [{"path": "s", "message": evil}, {"path": "", "message": evil}]
    html = render(templates, schema, values, errors)
    assert "<script>" not in html and "</textarea><" not in html
    assert "&lt;script&gt;" in html and "&#34;&gt;" in html
    data, problems = parse_form(schema, Browser(html).sent)
    assert problems == []
    assert data == {**values, evil: False}


def test_select_keeps_numbers_and_strings_apart(templates: Templates) -> None:
    schema = {"type": "object", "properties": {"v": {"enum": [1, "1", None]}}}
    for value in (1, "1", None):
        data, errors = parse_form(schema, submit(templates, schema, {"v": value}))
        assert (data, errors) == ({"v": value}, [])


def test_refs_and_nullable_types_are_drawn_as_their_type(templates: Templates) -> None:
    schema = {"type": "object", "$defs": {"size": {"type": "integer", "minimum": 1}},
              "properties": {"w": {"$ref": "#/$defs/size", "title": "Width"},
                             "h": {"anyOf": [{"$ref": "#/$defs/size"}, {"type": "null"}]},
                             "label": {"type": ["string", "null"]}}}
    w, h, label = form_fields(schema)
    assert (w.kind, w.label, w.attrs["min"]) == ("number", "Width", "1")
    assert (h.kind, label.kind) == ("number", "text")
    data, _ = parse_form(schema, submit(templates, schema, {"w": 2, "h": 3, "label": "x"}))
    assert data == {"w": 2, "h": 3, "label": "x"}


def test_a_recursive_schema_ends_in_json_text(templates: Templates) -> None:
    schema = {"type": "object", "$defs": {"node": {"type": "object", "properties": {
        "name": {"type": "string"}, "child": {"$ref": "#/$defs/node"}}}},
        "properties": {"tree": {"$ref": "#/$defs/node"}}}
    value = {"tree": {"name": "a", "child": {"name": "b"}}}
    data, errors = parse_form(schema, submit(templates, schema, value))
    assert (data, errors) == (value, [])
    deepest = [f for top in form_fields(schema) for f in top.walk()][-1]
    assert deepest.kind == "json"


def test_a_schema_without_properties_draws_nothing() -> None:
    assert form_fields({"type": "object"}) == []
    assert parse_form({"type": "object"}, [("a", "1")]) == ({}, [])


def test_path_names() -> None:
    assert path_name(["items", 0, "name"]) == "items[0].name"
    assert path_name([]) == ""

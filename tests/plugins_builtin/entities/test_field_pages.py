"""The Fields admin page, the entity forms' typed inputs for defined fields and the entity
list's field filter, over HTTP as a signed-in browser sees them."""

from __future__ import annotations

import re
from html import unescape
from html.parser import HTMLParser
from typing import Any

import httpx
import pytest

from tests.ui.browsing import SignedIn, nav_labels, page, post_form, tags

NEW = "/ui/entities/new"


async def define(client: httpx.AsyncClient, key: str, field_type: str, **rules: Any) -> dict:
    r = await client.post("/v1/admin/field-defs",
                          json={"field_key": key, "field_type": field_type, **rules})
    assert r.status_code == 201, r.text
    return r.json()


async def create(client: httpx.AsyncClient, name: str, **body: Any) -> dict:
    r = await client.post("/v1/entities", json={"display_name": name, **body})
    assert r.status_code == 201, r.text
    return r.json()


async def entity(client: httpx.AsyncClient, entity_id: str) -> dict:
    r = await client.get(f"/v1/entities/{entity_id}")
    assert r.status_code == 200, r.text
    return r.json()


def error_of(html: str, id_: str) -> str | None:
    match = re.search(rf'<p class="field-error" id="{re.escape(id_)}-error"[^>]*>([^<]*)</p>',
                      html)
    return unescape(match.group(1)) if match else None


class _Form(HTMLParser):
    """What a browser sends for the first form with ``action``: every control's value."""

    def __init__(self, action: str) -> None:
        super().__init__(convert_charrefs=True)
        self.action, self.inside, self.pairs = action, False, []
        self.textarea: str | None = None
        self.select: str | None = None
        self.chosen: list[tuple[str, str]] = []
        self.first_option: tuple[str, str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.inside = a.get("action") == self.action and not self.pairs
        if not self.inside:
            return
        if tag == "input" and "name" in a:
            if a.get("type") in ("checkbox", "radio") and "checked" not in a:
                return
            self.pairs.append((a["name"], a.get("value", "")))
        elif tag == "textarea":
            self.textarea, self.text = a["name"], ""
        elif tag == "select":
            self.select, self.chosen, self.first_option = a["name"], [], None
        elif tag == "option" and self.select:
            self.first_option = self.first_option or (self.select, a.get("value", ""))
            if "selected" in a:
                self.chosen.append((self.select, a.get("value", "")))

    def handle_data(self, data: str) -> None:
        if self.textarea is not None:
            self.text += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "textarea" and self.textarea is not None:
            # a browser drops the newline after <textarea> and sends CRLF
            text = self.text.removeprefix("\n").replace("\n", "\r\n")
            self.pairs.append((self.textarea, text))
            self.textarea = None
        elif tag == "select" and self.select:
            self.pairs += self.chosen or ([self.first_option] if self.first_option else [])
            self.select = None
        elif tag == "form":
            self.inside = False


def form_data(html: str, action: str, **change: str | list[str] | None) -> dict[str, Any]:
    """The form as a browser would send it, with some controls changed (None: unchecked)."""
    parser = _Form(action)
    parser.feed(html)
    data: dict[str, Any] = {}
    for name, value in parser.pairs:
        data.setdefault(name, []).append(value)
    for name, value in change.items():
        name = name.replace("__", ".")
        if value is None:
            data.pop(name, None)
        else:
            data[name] = value if isinstance(value, list) else [value]
    return data


async def submit(ui: SignedIn, url: str, html: str, status: int = 303,
                 **change: str | list[str] | None) -> httpx.Response:
    r = await ui.client.post(url, data=form_data(html, url, **change))
    assert r.status_code == status, r.text[:2000]
    return r


# -- the Fields admin page -------------------------------------------------------------

async def test_fields_page_is_in_the_nav_and_invites_to_define(ui):
    html = await page(ui, "/ui/admin/fields")
    assert ("/ui/admin/fields", "Fields") in nav_labels(html)
    assert "No fields defined yet" in html
    assert tags(html, "a", href="/ui/admin/fields/new")


async def test_define_a_field_through_the_form(ui, client):
    html = await page(ui, "/ui/admin/fields/new")
    r = await submit(ui, "/ui/admin/fields/new", html, field_key="born", field_type="date",
                     label="Born", help="Day of birth", min="1800-01-01", required="true")
    assert r.headers["location"] == "/ui/admin/fields?notice=created&key=born"
    defn = (await client.get("/v1/admin/field-defs/born")).json()
    assert {k: defn[k] for k in ("field_type", "scope", "label", "help", "required", "min",
                                 "max", "regex", "options")} == {
        "field_type": "date", "scope": "entity", "label": "Born", "help": "Day of birth",
        "required": True, "min": "1800-01-01", "max": None, "regex": None, "options": None}
    html = await page(ui, r.headers["location"])
    assert "Field defined." in html
    (row,) = re.findall(r'<tr data-field="born">(.*?)</tr>', html, re.S)
    assert "Born" in row and "date" in row and "entity" in row
    assert "required; ≥ 1800-01-01" in unescape(row)


async def test_numbers_options_and_lengths_are_read_by_type(ui, client):
    html = await page(ui, "/ui/admin/fields/new")
    await submit(ui, "/ui/admin/fields/new", html, field_key="height", field_type="float",
                 min="0.5", max="3")
    await submit(ui, "/ui/admin/fields/new", html, field_key="code", field_type="string",
                 min="2", max="8", regex="^[A-Z]+$")
    await submit(ui, "/ui/admin/fields/new", html, field_key="eyes", field_type="enum",
                 options="blue\r\n\r\n green \r\nbrown", scope="entity")
    await submit(ui, "/ui/admin/fields/new", html, field_key="mood", field_type="string",
                 scope="descriptor")
    defs = {d["field_key"]: d for d in
            (await client.get("/v1/admin/field-defs")).json()["items"]}
    assert (defs["height"]["min"], defs["height"]["max"]) == (0.5, 3)
    assert (defs["code"]["min"], defs["code"]["max"], defs["code"]["regex"]) == (2, 8,
                                                                                 "^[A-Z]+$")
    assert defs["eyes"]["options"] == ["blue", "green", "brown"]
    assert defs["mood"]["scope"] == "descriptor"
    html = await page(ui, "/ui/admin/fields")
    assert "2–8 characters; matches ^[A-Z]+$" in unescape(html)
    assert "options: blue, green, brown" in html


@pytest.mark.parametrize(("change", "where", "words"), [
    ({"field_key": "1born"}, "field_key", "regex"),
    ({"field_key": ""}, "field_key", ""),
    ({"regex": "(unclosed"}, "regex", "not a valid regular expression"),
    ({"field_type": "int", "regex": "x"}, "regex", "applies to string, text and url"),
    ({"field_type": "int", "min": "10", "max": "5"}, "min", "greater than max"),
    ({"field_type": "int", "min": "1.5"}, "min", "whole number"),
    ({"field_type": "int", "max": "lots"}, "max", "number"),
    ({"field_type": "date", "min": "1990-13-01"}, "min", "not a calendar date"),
    ({"field_type": "bool", "min": "1"}, "min", "has no min or max"),
    ({"field_type": "enum"}, "options", "at least one option"),
    ({"field_type": "enum", "options": "a\r\na"}, "options", "once"),
    ({"field_type": "string", "options": "a"}, "options", "apply to enum"),
    ({"field_type": "money"}, "field_type", ""),
    ({"label": "x" * 201}, "label", ""),
])
async def test_a_bad_definition_is_refused_next_to_its_input(ui, client, change, where,
                                                             words):
    html = await page(ui, "/ui/admin/fields/new")
    body = {"field_key": "born", "field_type": "string", **change}
    r = await submit(ui, "/ui/admin/fields/new", html, 422, **body)
    message = error_of(r.text, where)
    assert message is not None and words in message, r.text
    assert tags(r.text, id=where)[0].attrs.get("aria-invalid") == "true"
    # what was typed is kept
    if where != "field_key":
        assert tags(r.text, "input", name="field_key")[0].attrs["value"] == "born"
    assert (await client.get("/v1/admin/field-defs")).json()["items"] == []


async def test_a_key_defined_twice_is_refused_inline_and_htmx_gets_the_form(ui, client):
    await define(client, "born", "date")
    html = await page(ui, "/ui/admin/fields/new")
    r = await ui.client.post("/ui/admin/fields/new", headers={"HX-Request": "true"},
                             data=form_data(html, "/ui/admin/fields/new", field_key="born"))
    assert r.status_code == 422
    assert "<html" not in r.text
    assert "already defined" in error_of(r.text, "field_key")


async def test_edit_shows_type_and_scope_fixed_and_saves_rules(ui, client):
    await define(client, "eyes", "enum", options=["blue", "green"], label="Eyes")
    url = "/ui/admin/fields/eyes/edit"
    html = await page(ui, url)
    assert not tags(html, "input", name="field_key")
    assert not tags(html, "select", name="field_type")
    assert not tags(html, "input", name="regex")  # not a rule of an enum
    assert re.search(r'<dd id="field_type">enum', html)
    assert tags(html, "textarea", name="options")
    r = await submit(ui, url, html, label="Eye colour", required="true",
                     options="blue\r\ngreen\r\ngrey")
    assert r.headers["location"] == "/ui/admin/fields?notice=saved&key=eyes"
    defn = (await client.get("/v1/admin/field-defs/eyes")).json()
    assert (defn["label"], defn["required"], defn["options"], defn["version"]) == (
        "Eye colour", True, ["blue", "green", "grey"], 2)
    # unchecking required and clearing the label (the key is shown then)
    html = await page(ui, url)
    await submit(ui, url, html, label="", required=None)
    defn = (await client.get("/v1/admin/field-defs/eyes")).json()
    assert (defn["label"], defn["required"]) == ("eyes", False)


async def test_edit_refuses_bad_rules_inline_and_keeps_the_definition(ui, client):
    await define(client, "code", "string", regex="^A")
    url = "/ui/admin/fields/code/edit"
    html = await page(ui, url)
    r = await submit(ui, url, html, 422, regex="(", min="-1")
    assert "not a valid regular expression" in error_of(r.text, "regex")
    assert "whole number >= 0" in error_of(r.text, "min")
    assert tags(r.text, "input", name="regex")[0].attrs["value"] == "("
    assert (await client.get("/v1/admin/field-defs/code")).json()["regex"] == "^A"
    # clearing the pattern removes the rule
    await submit(ui, url, html, regex="")
    assert (await client.get("/v1/admin/field-defs/code")).json()["regex"] is None


async def test_delete_asks_first_then_soft_deletes(ui, client):
    await define(client, "born", "date")
    entity_id = (await create(client, "Ada", fields={"born": "1815-12-10"}))["entity_id"]
    html = await page(ui, "/ui/admin/fields")
    assert tags(html, "a", href="/ui/admin/fields/born/delete")
    html = await page(ui, "/ui/admin/fields/born/delete")
    assert "values stay" in html.replace("Values already stored stay", "values stay")
    assert (await client.get("/v1/admin/field-defs/born")).status_code == 200  # asked only
    r = await submit(ui, "/ui/admin/fields/born/delete", html)
    assert r.headers["location"] == "/ui/admin/fields?notice=deleted&key=born"
    assert (await client.get("/v1/admin/field-defs/born")).status_code == 404
    assert (await entity(client, entity_id))["fields"] == {"born": "1815-12-10"}
    assert "Field deleted" in await page(ui, r.headers["location"])
    # the key can be defined again
    await define(client, "born", "string")


async def test_field_pages_for_an_unknown_key_are_404_pages(ui):
    for url in ("/ui/admin/fields/nope/edit", "/ui/admin/fields/nope/delete"):
        assert "<main" in await page(ui, url, 404)
    r = await post_form(ui, "/ui/admin/fields/nope/delete")
    assert r.status_code == 404


async def test_field_forms_need_the_csrf_token_and_a_session(ui, client):
    r = await ui.client.post("/ui/admin/fields/new",
                             data={"field_key": "born", "field_type": "date"})
    assert r.status_code == 403
    await define(client, "born", "date")
    r = await ui.client.post("/ui/admin/fields/born/delete", data={})
    assert r.status_code == 403
    assert (await client.get("/v1/admin/field-defs/born")).status_code == 200
    async with httpx.AsyncClient(transport=client._transport,
                                 base_url="http://testserver") as stranger:
        r = await stranger.get("/ui/admin/fields")
    assert r.status_code in (302, 303) and "/ui/login" in r.headers["location"]


# -- the entity forms' typed inputs ------------------------------------------------------

@pytest.fixture
async def defined(client: httpx.AsyncClient) -> None:
    """One entity field of each type (and a descriptor one the entity forms ignore)."""
    await define(client, "nick", "string", label="Nickname", regex="^[a-z]+$", max=10,
                 help="Lowercase letters")
    await define(client, "bio", "text")
    await define(client, "height", "int", label="Height", min=50, max=250)
    await define(client, "weight", "float")
    await define(client, "alive", "bool", label="Alive")
    await define(client, "born", "date", label="Born", min="1800-01-01")
    await define(client, "seen", "datetime", label="Last seen")
    await define(client, "site", "url")
    await define(client, "eyes", "enum", label="Eyes", options=["blue", "green", "brown"])
    await define(client, "langs", "multi_enum", options=["en", "fr", "de"])
    await define(client, "meta", "json")
    await define(client, "mood", "string", scope="descriptor")


def field_input(html: str, key: str) -> Any:
    (found,) = tags(html, id=f"f-{key}")
    return found


@pytest.mark.usefixtures("defined")
async def test_the_new_form_has_a_typed_input_per_defined_field(ui):
    html = await page(ui, NEW)
    kinds = {key: (t.name, t.attrs.get("type")) for key in
             ("nick", "bio", "height", "weight", "alive", "born", "seen", "site", "eyes",
              "langs", "meta") for t in [field_input(html, key)]}
    assert kinds == {
        "nick": ("input", "text"), "bio": ("textarea", None), "height": ("input", "number"),
        "weight": ("input", "number"), "alive": ("input", "checkbox"),
        "born": ("input", "date"), "seen": ("input", "datetime-local"),
        "site": ("input", "url"), "eyes": ("select", None), "langs": ("fieldset", None),
        "meta": ("textarea", None)}
    assert not tags(html, id="f-mood")  # a descriptor field
    height = field_input(html, "height").attrs
    assert (height["min"], height["max"], height["step"]) == ("50", "250", "1")
    assert field_input(html, "weight").attrs["step"] == "any"
    assert field_input(html, "born").attrs["min"] == "1800-01-01"
    assert field_input(html, "nick").attrs["maxlength"] == "10"
    assert "Lowercase letters" in html and "In UTC" in html
    eyes = re.search(r'<select id="f-eyes".*?</select>', html, re.S).group(0)
    assert re.findall(r'<option value="([^"]*)"', eyes) == ["", "blue", "green", "brown"]
    assert [t.attrs["value"] for t in tags(html, "input", name="f.langs")] == ["en", "fr",
                                                                               "de"]
    # labels point at their inputs
    assert tags(html, "label", **{"for": "f-born"})
    assert tags(html, "label", **{"for": "fields"})  # the free-form textarea stays


async def test_a_required_field_is_marked_and_its_select_has_no_empty_choice(ui, client):
    await define(client, "eyes", "enum", options=["blue", "green"], required=True)
    ada = await create(client, "Ada", fields={"eyes": "green"})
    html = await page(ui, f"/ui/entities/{ada['entity_id']}/edit")
    assert field_input(html, "eyes").attrs["aria-required"] == "true"
    assert 'class="required"' in html
    eyes = re.search(r'<select id="f-eyes".*?</select>', html, re.S).group(0)
    assert re.findall(r'<option value="([^"]*)"', eyes) == ["blue", "green"]
    # a new entity has no value yet: the user must choose (no silent first option)
    eyes = re.search(r'<select id="f-eyes".*?</select>', await page(ui, NEW), re.S).group(0)
    assert re.findall(r'<option value="([^"]*)"', eyes) == ["", "blue", "green"]


@pytest.mark.usefixtures("defined")
async def test_create_with_typed_inputs_stores_typed_values(ui, client):
    html = await page(ui, NEW)
    r = await submit(ui, NEW, html, display_name="Ada", f__nick="ada", f__bio="one\r\ntwo",
                     f__height="170", f__weight="61.5", f__alive="true",
                     f__born="1815-12-10", f__seen="2024-05-01T14:30", f__site="https://a.org",
                     f__eyes="green", f__langs=["en", "fr"], f__meta='{"a": [1]}',
                     fields="city: London", external_ids="stash: 1234\r\ntpdb: x-9")
    entity_id = r.headers["location"].split("/")[3].split("?")[0]
    saved = await entity(client, entity_id)
    assert saved["fields"] == {
        "city": "London", "nick": "ada", "bio": "one\ntwo", "height": 170, "weight": 61.5,
        "alive": True, "born": "1815-12-10", "seen": "2024-05-01T14:30:00Z",
        "site": "https://a.org", "eyes": "green", "langs": ["en", "fr"], "meta": {"a": [1]}}
    assert saved["external_ids"] == {"stash": "1234", "tpdb": "x-9"}
    overview = await page(ui, f"/ui/entities/{entity_id}")
    assert "stash: 1234" in overview and "tpdb: x-9" in overview


@pytest.mark.usefixtures("defined")
async def test_blank_inputs_store_nothing_and_an_unchecked_box_is_false(ui, client):
    html = await page(ui, NEW)
    r = await submit(ui, NEW, html, display_name="Ada")
    entity_id = r.headers["location"].split("/")[3].split("?")[0]
    assert (await entity(client, entity_id))["fields"] == {"alive": False}


@pytest.mark.usefixtures("defined")
async def test_bad_typed_values_are_shown_next_to_their_inputs(ui, client):
    html = await page(ui, NEW)
    r = await submit(ui, NEW, html, 422, display_name="Ada", f__height="tall",
                     f__weight="1,5", f__meta="{oops", f__born="1815-12-10")
    assert "'tall' is not a whole number" in error_of(r.text, "f-height")
    assert "not a number" in error_of(r.text, "f-weight")
    assert "not valid JSON" in error_of(r.text, "f-meta")
    assert error_of(r.text, "f-born") is None
    assert field_input(r.text, "height").attrs["aria-invalid"] == "true"
    # what was typed is kept
    assert field_input(r.text, "height").attrs["value"] == "tall"
    assert field_input(r.text, "born").attrs["value"] == "1815-12-10"
    # values that break a rule: the store's messages, each at its input
    r = await submit(ui, NEW, html, 422, display_name="Ada", f__height="20",
                     f__born="1700-01-01", f__nick="Ada!", f__site="not a url",
                     f__seen="2024-02-30T10:00")
    assert "at least 50" in error_of(r.text, "f-height")
    assert "1800-01-01 or later" in error_of(r.text, "f-born")
    assert "does not match" in error_of(r.text, "f-nick")
    assert "must be a URL" in error_of(r.text, "f-site")
    assert "not a real date and time" in error_of(r.text, "f-seen")
    assert field_input(r.text, "seen").attrs["value"] == "2024-02-30T10:00"
    assert (await client.get("/v1/entities")).json()["items"] == []


async def test_a_required_field_left_blank_is_an_inline_error(ui, client):
    await define(client, "born", "date", label="Born", required=True)
    html = await page(ui, NEW)
    r = await ui.client.post(NEW, headers={"HX-Request": "true"},
                             data=form_data(html, NEW, display_name="Ada"))
    assert r.status_code == 422 and "<html" not in r.text
    assert error_of(r.text, "f-born") == "Born is required"


async def test_a_defined_key_in_the_textarea_is_refused(ui, client):
    await define(client, "born", "date")
    html = await page(ui, NEW)
    r = await submit(ui, NEW, html, 422, display_name="Ada", fields="born: 1815-12-10")
    assert "has its own input" in error_of(r.text, "fields")


async def test_external_ids_taken_or_malformed_are_inline_errors(ui, client):
    await create(client, "Ada", external_ids={"stash": "1"})
    html = await page(ui, NEW)
    r = await submit(ui, NEW, html, 422, display_name="Grace", external_ids="stash: 1")
    assert "already belongs to entity" in error_of(r.text, "external_ids")
    r = await submit(ui, NEW, html, 422, display_name="Grace", external_ids="no colon")
    assert "line 1" in error_of(r.text, "external_ids")
    r = await submit(ui, NEW, html, 422, display_name="Grace", external_ids="Bad NS: 1")
    assert error_of(r.text, "external_ids")
    assert len((await client.get("/v1/entities")).json()["items"]) == 1


@pytest.mark.usefixtures("defined")
async def test_the_edit_form_shows_stored_values_in_their_inputs(ui, client):
    ada = await create(client, "Ada", fields={
        "height": 170, "alive": True, "born": "1815-12-10", "seen": "2024-05-01T14:30:05Z",
        "eyes": "green", "langs": ["fr"], "meta": {"a": 1}, "city": "London"},
        external_ids={"stash": "1"})
    html = await page(ui, f"/ui/entities/{ada['entity_id']}/edit")
    assert field_input(html, "height").attrs["value"] == "170"
    assert "checked" in field_input(html, "alive").attrs
    assert field_input(html, "born").attrs["value"] == "1815-12-10"
    assert field_input(html, "seen").attrs["value"] == "2024-05-01T14:30:05"
    assert re.search(r'<option value="green" selected>', html)
    assert [t.attrs["value"] for t in tags(html, "input", name="f.langs")
            if "checked" in t.attrs] == ["fr"]
    assert unescape(re.search(r'id="f-meta"[^>]*>([^<]*)<', html).group(1)) == '{"a":1}'
    # the textarea holds only the keys without a definition
    assert re.search(r'id="fields"[^>]*>([^<]*)<', html).group(1) == "city: London"
    assert re.search(r'id="external_ids"[^>]*>([^<]*)<', html).group(1) == "stash: 1"


@pytest.mark.usefixtures("defined")
async def test_saving_an_untouched_edit_form_keeps_every_value(ui, client):
    ada = await create(client, "Ada", fields={
        "nick": "ada", "bio": "one\ntwo", "height": 170, "weight": 61.5, "alive": False,
        "born": "1815-12-10", "seen": "2024-05-01T14:30:00Z", "site": "https://a.org",
        "eyes": "green", "langs": ["fr", "en"], "meta": {"b": 1, "a": [True]},
        "city": "London"}, external_ids={"stash": "1"})
    url = f"/ui/entities/{ada['entity_id']}/edit"
    await submit(ui, url, await page(ui, url))
    assert await entity(client, ada["entity_id"]) == ada  # not even a new version


async def test_an_old_value_that_breaks_a_later_rule_survives_an_untouched_save(ui, client):
    ada = await create(client, "Ada", fields={
        "height": 20, "born": "May 1815", "eyes": "violet", "seen": "2024-05-01T14:30:00Z",
        "langs": ["en", "xx"]})
    await define(client, "height", "int", min=50)  # 20 is below it now
    await define(client, "born", "date")  # "May 1815" is no date
    await define(client, "eyes", "enum", options=["blue"])  # violet is no option
    await define(client, "seen", "datetime", min="2025-01-01T00:00:00Z")
    await define(client, "langs", "multi_enum", options=["en"])
    await define(client, "nick", "string", required=True)  # Ada has none
    url = f"/ui/entities/{ada['entity_id']}/edit"
    html = await page(ui, url)
    # what the typed input cannot show is shown as text, and said so
    assert field_input(html, "born").attrs["type"] == "text"
    assert field_input(html, "born").attrs["value"] == "May 1815"
    assert field_input(html, "eyes").attrs["value"] == "violet"
    assert field_input(html, "langs").attrs["value"] == '["en","xx"]'
    assert "does not fit it" in html
    assert field_input(html, "height").attrs["type"] == "number"
    # a browser drops the zero seconds of a datetime-local value
    await submit(ui, url, html, display_name="Ada King", f__seen="2024-05-01T14:30")
    saved = await entity(client, ada["entity_id"])
    assert saved["display_name"] == "Ada King"
    assert saved["fields"] == ada["fields"]
    # touching the old value checks it: an inline error; fixing it saves
    html = await page(ui, url)
    r = await submit(ui, url, html, 422, f__height="21")
    assert "at least 50" in error_of(r.text, "f-height")
    r = await submit(ui, url, html, 422, f__born="June 1815")
    assert "YYYY-MM-DD" in error_of(r.text, "f-born")
    assert field_input(r.text, "born").attrs["value"] == "June 1815"  # still text
    await submit(ui, url, html, f__born="1815-12-10", f__height="60")
    fields = (await entity(client, ada["entity_id"]))["fields"]
    assert (fields["born"], fields["height"], fields["eyes"]) == ("1815-12-10", 60, "violet")


@pytest.mark.usefixtures("defined")
async def test_edit_changes_clears_and_unchecks_only_what_was_touched(ui, client):
    ada = await create(client, "Ada", fields={"height": 170, "alive": True, "eyes": "blue",
                                              "langs": ["en"], "city": "London"},
                       external_ids={"stash": "1", "tpdb": "2"})
    url = f"/ui/entities/{ada['entity_id']}/edit"
    html = await page(ui, url)
    await submit(ui, url, html, f__height="", f__alive=None, f__eyes="green",
                 f__langs=["de", "en"], fields="city: Paris\r\nnote: hi",
                 external_ids="stash: 1")
    saved = await entity(client, ada["entity_id"])
    assert saved["fields"] == {"alive": False, "eyes": "green", "langs": ["de", "en"],
                               "city": "Paris", "note": "hi"}
    assert saved["external_ids"] == {"stash": "1"}
    # an unchecked box for a value never stored stays unstored
    grace = await create(client, "Grace")
    url = f"/ui/entities/{grace['entity_id']}/edit"
    await submit(ui, url, await page(ui, url), tags="navy")
    assert (await entity(client, grace["entity_id"]))["fields"] == {}


async def test_a_field_defined_while_the_form_was_open_is_not_cleared(ui, client):
    ada = await create(client, "Ada", fields={"born": "1815-12-10"})
    url = f"/ui/entities/{ada['entity_id']}/edit"
    html = await page(ui, url)  # born is in the textarea
    await define(client, "born", "date")
    await submit(ui, url, html, display_name="Ada King")
    saved = await entity(client, ada["entity_id"])
    assert (saved["display_name"], saved["fields"]) == ("Ada King", {"born": "1815-12-10"})


async def test_clearing_a_required_field_is_an_inline_error(ui, client):
    await define(client, "born", "date", label="Born", required=True)
    ada = await create(client, "Ada", fields={"born": "1815-12-10"})
    url = f"/ui/entities/{ada['entity_id']}/edit"
    r = await submit(ui, url, await page(ui, url), 422, f__born="")
    assert error_of(r.text, "f-born") == "Born is required"
    assert (await entity(client, ada["entity_id"]))["fields"] == {"born": "1815-12-10"}


# -- the entity list's field filter ------------------------------------------------------

def names(html: str) -> list[str]:
    return sorted(re.findall(r'<td><a href="/ui/entities/[0-9a-f]{64}">([^<]*)</a></td>',
                             html))


@pytest.fixture
async def people(client: httpx.AsyncClient) -> None:
    await define(client, "born", "date", label="Born")
    await define(client, "height", "int")
    await define(client, "seen", "datetime")
    await define(client, "eyes", "enum", options=["blue", "green"])
    for name, born, height, seen, eyes in [
            ("Ada", "1815-12-10", 160, "2024-05-01T10:00:00Z", "green"),
            ("Grace", "1906-12-09", 170, "2024-05-01T12:00:00Z", "blue"),
            ("Alan", "1912-06-23", 180, "2024-05-02T10:00:00Z", "blue")]:
        await create(client, name, tags=["people"], fields={
            "born": born, "height": height, "seen": seen, "eyes": eyes})


@pytest.mark.usefixtures("people")
async def test_field_parameters_filter_the_list(ui):
    assert names(await page(ui, "/ui/entities?field.eyes=blue")) == ["Alan", "Grace"]
    html = await page(ui, "/ui/entities?field.born.gte=1900-01-01&field.born.lte=1910-01-01")
    assert names(html) == ["Grace"]
    assert "1 entity" in html
    html = await page(ui, "/ui/entities?field.height.gt=160&field.eyes=blue&tag=people")
    assert names(html) == ["Alan", "Grace"]


@pytest.mark.usefixtures("people")
async def test_the_filter_row_without_javascript(ui):
    html = await page(ui, "/ui/entities")
    options = re.search(r'<select id="filter_field".*?</select>', html, re.S).group(0)
    assert re.findall(r'<option value="([^"]*)"', options) == ["", "born", "eyes", "height",
                                                                "seen"]
    # the form's own names, as sent without JavaScript
    html = await page(ui, "/ui/entities?filter_field=born&filter_from=1900-01-01"
                          "&filter_to=&filter_value=")
    assert names(html) == ["Alan", "Grace"]
    # the row shows the filter with the field's input type; links carry field.* names
    assert tags(html, "input", name="filter_from")[0].attrs == {
        "id": "filter_from", "name": "filter_from", "type": "date", "value": "1900-01-01"}
    assert re.search(r'<option value="born"[^>]* selected>', html)
    gallery = tags(html, "a", hx_get="/ui/entities?sort=created_at%3Adesc&view=gallery"
                                     "&state=active&field.born.gte=1900-01-01")
    assert gallery and gallery[0].attrs["href"] == gallery[0].attrs["hx-get"]
    # a datetime-local value has no zone: it is UTC
    html = await page(ui, "/ui/entities?filter_field=seen&filter_to=2024-05-01T11:00")
    assert names(html) == ["Ada"]
    assert "seen ≤ 2024-05-01T11:00Z" in unescape(html)


@pytest.mark.usefixtures("people")
async def test_htmx_gets_the_field_parameters_in_the_address_bar(ui):
    r = await ui.client.get("/ui/entities", params={"q": "", "filter_field": "eyes",
                                                    "filter_value": "green"},
                            headers={"HX-Request": "true"})
    assert r.status_code == 200 and "<html" not in r.text
    assert names(r.text) == ["Ada"]
    assert r.headers["HX-Replace-Url"] == ("/ui/entities?sort=created_at%3Adesc&view=list"
                                           "&state=active&field.eyes=green")


@pytest.mark.usefixtures("people")
async def test_each_filter_has_a_remove_link_and_other_filters_are_kept(ui):
    html = await page(ui, "/ui/entities?q=grace&field.eyes=blue&field.height.lt=175")
    assert names(html) == ["Grace"]
    chips = dict((unescape(label), unescape(href)) for href, label in re.findall(
        r'<a href="([^"]+)" aria-label="Remove filter ([^"]+)"', html))
    assert chips == {
        "eyes = blue": "/ui/entities?q=grace&sort=created_at:desc&view=list&state=active"
                       "&field.height.lt=175".replace(":", "%3A"),
        "height < 175": "/ui/entities?q=grace&sort=created_at:desc&view=list&state=active"
                        "&field.eyes=blue".replace(":", "%3A")}
    # the row shows eyes; the height range is a hidden input the form keeps sending
    assert tags(html, "input", name="filter_value")[0].attrs["value"] == "blue"
    assert tags(html, "input", type="hidden", name="field.height.lt")[0].attrs[
        "value"] == "175"


@pytest.mark.usefixtures("people")
async def test_paging_keeps_the_field_filter(ui, client):
    for i in range(50):
        await create(client, f"Blue {i:02}", fields={"eyes": "blue"})
    html = await page(ui, "/ui/entities?field.eyes=blue")
    (next_link,) = tags(html, "a", rel="next")
    assert "field.eyes=blue" in next_link.attrs["href"]
    rest = await page(ui, unescape(next_link.attrs["href"]))
    assert len(names(html)) + len(names(rest)) == 52


@pytest.mark.parametrize(("query", "words"), [
    ("field.born.gte=yesterday", "must be a date"),
    ("field.height=tall", "not a whole number"),
    ("field.nope=1", "no entity field is defined as 'nope'"),
    ("field.eyes.gte=blue", "ranges apply to"),
    ("field.born.between=1", "write field.<key>=value"),
    ("filter_field=height&filter_from=abc", "not a whole number"),
])
@pytest.mark.usefixtures("people")
async def test_a_bad_field_filter_is_a_message_not_a_500(ui, query, words):
    html = await page(ui, "/ui/entities?" + query, 422)
    (alert,) = re.findall(r'<p class="flash warning" role="alert" id="filter-error">(.*?)</p>',
                          html, re.S)
    assert words in unescape(alert)
    assert "<main" in html and names(html) == []


async def test_a_stale_edit_keeps_what_was_typed_in_the_typed_inputs(ui, client):
    await define(client, "height", "int", label="Height")
    ada = await create(client, "Ada", fields={"height": 160})
    url = f"/ui/entities/{ada['entity_id']}/edit"
    html = await page(ui, url)
    r = await client.patch(f"/v1/entities/{ada['entity_id']}", json={"fields": {"height": 165}})
    assert r.status_code == 200
    r = await submit(ui, url, html, 409, f__height="170")
    typed = dict(re.findall(r"<dt>([^<]*)</dt><dd><pre>(.*?)</pre></dd>", r.text, re.S))
    assert typed["Height"] == "170"
    assert field_input(r.text, "height").attrs["value"] == "165"  # theirs, to start over
    assert (await entity(client, ada["entity_id"]))["fields"] == {"height": 165}


@pytest.mark.usefixtures("people")
async def test_choosing_a_field_without_a_value_filters_nothing(ui):
    r = await ui.client.get("/ui/entities", params={"filter_field": "born", "filter_value": "",
                                                    "filter_from": "", "filter_to": ""},
                            headers={"HX-Request": "true"})
    assert r.status_code == 200
    assert names(r.text) == ["Ada", "Alan", "Grace"]
    assert r.headers["HX-Replace-Url"] == ("/ui/entities?sort=created_at%3Adesc&view=list"
                                           "&state=active")

"""Descriptor values checked by descriptor-scope field definitions: through the entities
plugin's admin API (``/v1/admin/field-defs``) and, for how this plugin uses the
``entities.fields`` service, a stand-in for it."""

from __future__ import annotations

import re
from typing import Any

from ff_plugin_sdk import ValidationFailed, hookimpl
from tests.conftest import running
from tests.plugins_builtin.descriptors.conftest import add, define, listed, new_entity
from tests.plugins_builtin.entities.test_api import error_of


def url(entity_id: str) -> str:
    return f"/v1/entities/{entity_id}/descriptors"


# -- the entities plugin's field definitions ---------------------------------------------

async def test_a_string_definition_with_a_regex_checks_values(client, entity_id):
    await define(client, "phone", "string", regex=r"^\+?[0-9 ]+$")
    assert (await add(client, entity_id, "phone", "+44 20 7946 0000"))["value"] == (
        "+44 20 7946 0000")
    r = await client.post(url(entity_id), json={"key": "phone", "value": "call me"})
    err = error_of(r, 422)
    assert err["code"] == "validation_error"
    assert err["details"][0]["path"] == "$.value"
    r = await client.post(url(entity_id), json={"key": "phone", "value": 44})
    assert error_of(r, 422)["details"][0]["path"] == "$.value"
    assert [d["value"] for d in await listed(client, entity_id)] == ["+44 20 7946 0000"]


async def test_an_int_definition_refuses_other_types(client, entity_id):
    await define(client, "height_cm", "int", min=30, max=300)
    assert (await add(client, entity_id, "height_cm", 170))["value"] == 170
    for bad in ("170", 1.5, 500, True):
        r = await client.post(url(entity_id), json={"key": "height_cm", "value": bad})
        assert error_of(r, 422)["details"][0]["path"] == "$.value", bad


async def test_a_date_definition_takes_dates_only(client, entity_id):
    await define(client, "born", "date")
    assert (await add(client, entity_id, "born", "1815-12-10"))["value"] == "1815-12-10"
    r = await client.post(url(entity_id), json={"key": "born", "value": "last winter"})
    assert error_of(r, 422)["details"][0]["path"] == "$.value"


async def test_keys_without_a_definition_take_any_value(client, entity_id):
    await define(client, "phone", "string", regex=r"^[0-9]+$")
    assert (await add(client, entity_id, "nickname", {"any": ["thing"]}))["value"] == {
        "any": ["thing"]}


async def test_a_patched_value_is_checked_again_but_an_old_one_is_not(client, entity_id):
    # recorded before the definition existed: its notes can still be edited
    d = await add(client, entity_id, "phone", "ask the office")
    await define(client, "phone", "string", regex=r"^\+?[0-9 ]+$")
    one = f"/v1/descriptors/{d['descriptor_id']}"
    r = await client.patch(one, json={"notes": "old habit"})
    assert r.status_code == 200, r.text
    err = error_of(await client.patch(one, json={"value": "still no number"}), 422)
    assert err["details"][0]["path"] == "$.value"
    r = await client.patch(one, json={"value": "+1 555"})
    assert r.status_code == 200 and r.json()["value"] == "+1 555"


# -- how the service is used (a stand-in for entities.fields) ----------------------------

class StandInFields:
    """``entities.fields`` as the entities plugin publishes it, for the ``born`` key:
    normalizes ``DD/MM/YYYY`` to ``YYYY-MM-DD``; async, as the real one may be."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, Any, str]] = []

    async def check_value(self, scope: str, key: str, value: Any, *, path: str) -> Any:
        self.calls.append((scope, key, value, path))
        if scope != "descriptor" or key != "born":
            return value
        match = re.fullmatch(r"(\d\d)/(\d\d)/(\d{4})", str(value))
        if match:
            return f"{match[3]}-{match[2]}-{match[1]}"
        if re.fullmatch(r"\d{4}-\d\d-\d\d", str(value)):
            return value
        raise ValidationFailed(f"{path}: expected a date",
                               details=[{"path": path, "message": "expected a date",
                                         "rule": "field_type"}])

    def definition(self, scope: str, key: str) -> dict[str, Any] | None:
        return next((d for d in self.definitions(scope) if d["field_key"] == key), None)

    def definitions(self, scope: str) -> list[dict[str, Any]]:
        return [{"field_key": "born", "scope": "descriptor", "field_type": "date",
                 "label": "Date of birth", "help": "", "required": False, "regex": None,
                 "min": None, "max": None, "options": None}]


class StandInPlugin:
    def __init__(self) -> None:
        self.fields = StandInFields()

    @hookimpl
    def faceforge_ready(self, kernel: Any) -> None:
        # after every plugin started: this one replaces the real service, if it is there
        kernel.services["entities.fields"] = self.fields


async def test_values_are_checked_and_normalized_by_the_service(make_app, settings):
    plugin = StandInPlugin()
    async with running(make_app(extra_plugins=[("standin", plugin)]),
                       settings.install_token) as client:
        entity_id = await new_entity(client)
        d = await add(client, entity_id, "born", "10/12/1815")
        assert d["value"] == "1815-12-10"
        assert plugin.fields.calls == [("descriptor", "born", "10/12/1815", "$.value")]
        r = await client.post(url(entity_id), json={"key": "born", "value": "soon"})
        err = error_of(r, 422)
        assert err["details"] == [{"path": "$.value", "message": "expected a date",
                                   "rule": "field_type"}]
        one = f"/v1/descriptors/{d['descriptor_id']}"
        r = await client.patch(one, json={"value": "01/01/1816"})
        assert r.json()["value"] == "1816-01-01"
        calls = len(plugin.fields.calls)
        await client.patch(one, json={"notes": "from the parish register"})
        assert len(plugin.fields.calls) == calls  # an unchanged value is not checked again
        assert (await add(client, entity_id, "motto", "Hic sunt"))["value"] == "Hic sunt"
        assert [d["value"] for d in await listed(client, entity_id)] == [
            "1816-01-01", "Hic sunt"]

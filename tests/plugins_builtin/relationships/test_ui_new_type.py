"""A new relation type with its inverse (or symmetric), given in the add form over HTTP:
the form says when the typed type is new, registers it before the relationship, ignores the
inputs for an existing type, and refuses a bad inverse inline."""

from __future__ import annotations

import pytest

from tests.plugins_builtin.relationships.conftest import entity, seen_from, type_names
from tests.plugins_builtin.relationships.test_ui_pages import HTMX, add, error, tab
from tests.ui.browsing import page, tags


@pytest.fixture
async def pair(client) -> tuple[str, str]:
    return await entity(client, "Ada Lovelace"), await entity(client, "Mary Somerville")


async def kind(client, name: str) -> dict | None:
    r = await client.get("/v1/relation-types", params={"query": name})
    return next((t for t in r.json()["items"] if t["name"] == name), None)


async def test_the_form_says_when_the_typed_type_is_new(ui, pair):
    html = await page(ui, tab(pair[0]))
    assert tags(html, "input", name="inverse") and tags(html, "input", name="symmetric")
    assert 'id="new-type-hint"' not in html  # nothing typed yet: the inputs are hidden
    hint = await page(ui, "/ui/relationships/types?type=Patron+of", headers=HTMX)
    assert "“patron of” is a new type" in hint
    for existing in ("parent of", "spouse_of", "patron"):  # known, or not a whole name yet
        html = await page(ui, f"/ui/relationships/types?type={existing}", headers=HTMX)
        assert ('id="new-type-hint"' in html) == (existing == "patron")


@pytest.mark.parametrize("data, registered, labels", [
    # new, with the inverse typed for it: each side reads its own name
    ({"direction": "to", "type": "Patron of", "inverse": "Protege of"},
     ("patron_of", "protege_of", False), ("protege_of", "patron_of")),
    ({"type": "collaborator_of", "symmetric": "on"},
     ("collaborator_of", "collaborator_of", True), ("collaborator_of", "collaborator_of")),
    # an existing type keeps its own inverse
    ({"type": "parent_of", "inverse": "offspring_of", "symmetric": "on"},
     ("parent_of", "child_of", False), ("parent_of", "child_of")),
])
async def test_the_type_is_registered_with_the_inverse_only_when_new(ui, client, pair, data,
                                                                     registered, labels):
    ada, mary = pair
    r = await add(ui, ada, other_entity_id=mary, **data)
    assert r.status_code == 303, r.text
    name, inverse, symmetric = registered
    assert await kind(client, name) == {"name": name, "inverse": inverse,
                                        "symmetric": symmetric, "uses": 1}
    assert [label for _, label, _ in await seen_from(client, ada) + await seen_from(
        client, mary)] == list(labels)
    assert await type_names(client, "offspring") == []


@pytest.mark.parametrize("data, status, message", [
    ({"inverse": "child of"}, 409, "“child_of” is already a relation type"),
    ({"inverse": "protege of", "symmetric": "on"}, 422, "A symmetric type is its own"),
    ({"inverse": "Schüler von!"}, 422, "An inverse is a lowercase name"),
])
async def test_a_bad_inverse_is_refused_inline_and_nothing_is_created(ui, client, pair, data,
                                                                      status, message):
    ada, mary = pair
    form = {"type": "patron_of", "other_entity_id": mary} | data
    for headers in (None, HTMX):
        r = await add(ui, ada, headers=headers, **form)
        assert r.status_code == status, r.text
        assert error(r.text, "inverse").startswith(message)
        assert (tags(r.text, "input", name="inverse")[0].attrs["aria-invalid"]) == "true"
        # what was typed is kept, and the inputs are shown: the type is still new
        assert tags(r.text, "input", name="inverse")[0].attrs["value"] == data["inverse"]
        assert bool(tags(r.text, "input", name="symmetric", checked="")) == (
            "symmetric" in data)
        assert 'id="new-type-hint"' in r.text
    assert await kind(client, "patron_of") is None
    assert await seen_from(client, ada) == []

"""Linking assets to entities: both path forms, the optional role body, an entity's assets
(kind filter, cursor), deleted entities, and the events every change writes."""

from __future__ import annotations

import pytest

from tests.plugins_builtin.assets.conftest import (
    PNG,
    UNKNOWN_ID,
    error_of,
    events,
    last_event_id,
    make_entity,
    uploaded,
)

#: (link, unlink) as (method, path suffix): the spec's form and the earlier one
FORMS = {
    "spec": (("POST", "/link"), ("POST", "/unlink")),
    "older": (("POST", ""), ("DELETE", "")),
}


async def call(client, method: str, url: str, **kw):
    return await client.request(method, url, **kw)


async def entity_assets(client, entity_id: str, **params) -> list[tuple[str, str | None]]:
    r = await client.get(f"/v1/entities/{entity_id}/assets", params=params)
    assert r.status_code == 200, r.text
    return [(a["asset_id"], a["role"]) for a in r.json()["items"]]


@pytest.mark.parametrize("form", FORMS)
async def test_link_and_unlink(client, form):
    (link_method, link), (unlink_method, unlink) = FORMS[form]
    ada = await make_entity(client)
    asset = await uploaded(client, PNG, "p.png")
    pair = f"/v1/entities/{ada}/assets/{asset['asset_id']}"
    after = await last_event_id(client)
    r = await call(client, link_method, pair + link, json={"role": "reference"})
    assert r.status_code == 200, r.text
    assert r.json()["linked_entity_ids"] == [ada]
    assert r.json()["asset_id"] == asset["asset_id"]
    assert r.headers["etag"] == f'"{r.json()["version"]}"'
    assert await entity_assets(client, ada) == [(asset["asset_id"], "reference")]
    got = await client.get(f"/v1/assets/{asset['asset_id']}")
    assert got.json()["linked_entity_ids"] == [ada]

    r = await call(client, unlink_method, pair + unlink)
    assert r.status_code == 200, r.text
    assert r.json()["linked_entity_ids"] == []
    assert await entity_assets(client, ada) == []
    assert (await client.get(f"/v1/assets/{asset['asset_id']}")).status_code == 200
    error_of(await call(client, unlink_method, pair + unlink), 404, "link_not_found")
    assert [(e["type"], e["data"]) for e in await events(client, after=after)] == [
        ("asset.linked", {"asset_id": asset["asset_id"], "entity_id": ada,
                          "role": "reference"}),
        ("asset.unlinked", {"asset_id": asset["asset_id"], "entity_id": ada}),
    ]


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize(("body", "headers"), [
    (None, {}),
    (b"", {"Content-Type": "application/json"}),
    (b"  \n", {"Content-Type": "application/json"}),
    (b"{}", {"Content-Type": "application/json"}),
    (b'{"role": null}', {"Content-Type": "application/json"}),
], ids=["no-body", "empty", "blank", "empty-object", "null-role"])
async def test_a_link_needs_no_body(client, form, body, headers):
    (method, link), _ = FORMS[form]
    ada = await make_entity(client)
    asset = await uploaded(client, PNG, "p.png")
    r = await call(client, method, f"/v1/entities/{ada}/assets/{asset['asset_id']}{link}",
                   content=body, headers=headers)
    assert r.status_code == 200, r.text
    assert await entity_assets(client, ada) == [(asset["asset_id"], None)]


async def test_linking_again_changes_the_role_and_only_a_change_is_an_event(client):
    ada = await make_entity(client)
    asset = await uploaded(client, PNG, "p.png")
    url = f"/v1/entities/{ada}/assets/{asset['asset_id']}/link"
    await client.post(url, json={"role": "draft"})
    after = await last_event_id(client)
    assert (await client.post(url, json={"role": "final"})).status_code == 200
    assert await entity_assets(client, ada) == [(asset["asset_id"], "final")]
    assert (await client.post(url, json={"role": "final"})).status_code == 200
    assert (await client.post(url)).status_code == 200  # no role: the role stays
    assert await entity_assets(client, ada) == [(asset["asset_id"], "final")]
    assert [(e["type"], e["data"]["role"]) for e in await events(client, after=after)] == [
        ("asset.linked", "final")]


@pytest.mark.parametrize("form", FORMS)
async def test_unknown_or_deleted_entities_and_assets_are_404(client, form):
    (link_method, link), (unlink_method, unlink) = FORMS[form]
    ada = await make_entity(client)
    gone_entity = await make_entity(client, "Gone")
    await client.delete(f"/v1/entities/{gone_entity}")
    asset = await uploaded(client, PNG, "p.png")
    gone_asset = await uploaded(client, b"gone", "gone.bin")
    await client.delete(f"/v1/assets/{gone_asset['asset_id']}")
    cases = [
        (UNKNOWN_ID, asset["asset_id"], "entity_not_found"),
        (gone_entity, asset["asset_id"], "entity_not_found"),
        ("not-an-id", asset["asset_id"], "entity_not_found"),
        (ada, UNKNOWN_ID, "asset_not_found"),
        (ada, gone_asset["asset_id"], "asset_not_found"),
        (ada, "not-an-id", "asset_not_found"),
    ]
    for entity_id, asset_id, code in cases:
        r = await call(client, link_method, f"/v1/entities/{entity_id}/assets/{asset_id}{link}",
                       json={"role": "x"})
        error_of(r, 404, code)
    for entity_id, asset_id, code in cases:
        r = await call(client, unlink_method,
                       f"/v1/entities/{entity_id}/assets/{asset_id}{unlink}")
        # nothing is linked: either the id is unknown or there is no such link
        error = error_of(r, 404)
        assert error["code"] in {code, "link_not_found"}, (entity_id, asset_id, error)
    assert await entity_assets(client, ada) == []


@pytest.mark.parametrize(("body", "status", "code"), [
    (b'{"role": ""}', 422, "validation_error"),
    (b'{"role": 5}', 422, "validation_error"),
    (b'{"role": "' + b"r" * 101 + b'"}', 422, "validation_error"),
    (b'{"role": "x", "extra": 1}', 422, "validation_error"),
    (b"[]", 422, "validation_error"),
    (b'{"role": ', 400, "invalid_json"),
    (b"\xff", 400, "invalid_json"),
], ids=["empty-role", "number", "long", "unknown-field", "array", "cut-short", "not-utf8"])
async def test_a_bad_link_body_is_refused(client, body, status, code):
    ada = await make_entity(client)
    asset = await uploaded(client, PNG, "p.png")
    r = await client.post(f"/v1/entities/{ada}/assets/{asset['asset_id']}/link", content=body,
                          headers={"Content-Type": "application/json"})
    error_of(r, status, code)
    assert await entity_assets(client, ada) == []


async def test_an_entitys_assets_by_kind_in_pages(client):
    ada = await make_entity(client)
    bob = await make_entity(client, "Bob")
    loras, others = [], []
    for i in range(5):
        loras.append(await uploaded(client, f"lora {i}".encode(), f"l{i}.safetensors"))
        others.append(await uploaded(client, f"other {i}".encode(), f"o{i}.txt"))
    # link order, not upload order
    for asset in [*reversed(loras), *others]:
        r = await client.post(f"/v1/entities/{ada}/assets/{asset['asset_id']}/link",
                              json={"role": asset["filename"]})
        assert r.status_code == 200
    await client.post(f"/v1/entities/{bob}/assets/{loras[0]['asset_id']}/link")
    pages, seen, cursor = 0, [], None
    while True:
        params = {"kind": "model.lora", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        r = await client.get(f"/v1/entities/{ada}/assets", params=params)
        assert r.status_code == 200, r.text
        page = r.json()
        pages += 1
        assert all(a["kind"] == "model.lora" for a in page["items"])
        seen += [(a["asset_id"], a["role"]) for a in page["items"]]
        if not (cursor := page["next_cursor"]):
            break
    assert pages == 3
    assert seen == [(a["asset_id"], a["filename"]) for a in reversed(loras)]
    everything = await entity_assets(client, ada, limit=500)
    assert len(everything) == 10
    # a deleted asset drops out of the entity's list; its links to others are untouched
    await client.delete(f"/v1/assets/{loras[4]['asset_id']}")
    assert loras[4]["asset_id"] not in dict(await entity_assets(client, ada, limit=500))
    assert await entity_assets(client, bob) == [(loras[0]["asset_id"], None)]


@pytest.mark.parametrize(("params", "status", "code"), [
    ({"kind": "Bad Kind"}, 422, "validation_error"),
    ({"limit": 0}, 422, "validation_error"),
    ({"limit": 501}, 422, "validation_error"),
    ({"cursor": "forged"}, 400, "invalid_cursor"),
])
async def test_bad_entity_asset_list_parameters(client, params, status, code):
    ada = await make_entity(client)
    error_of(await client.get(f"/v1/entities/{ada}/assets", params=params), status, code)


async def test_an_entity_asset_list_cursor_is_not_an_asset_list_cursor(client):
    ada = await make_entity(client)
    for i in range(3):
        asset = await uploaded(client, f"a{i}".encode(), f"a{i}.bin")
        await client.post(f"/v1/entities/{ada}/assets/{asset['asset_id']}/link")
    assets_cursor = (await client.get("/v1/assets", params={"limit": 1})).json()["next_cursor"]
    links_cursor = (await client.get(f"/v1/entities/{ada}/assets",
                                     params={"limit": 1})).json()["next_cursor"]
    error_of(await client.get(f"/v1/entities/{ada}/assets", params={"cursor": assets_cursor}),
             400, "invalid_cursor")
    error_of(await client.get("/v1/assets", params={"cursor": links_cursor}), 400,
             "invalid_cursor")


async def test_the_assets_of_an_unknown_or_deleted_entity_are_404(client):
    gone = await make_entity(client)
    await client.delete(f"/v1/entities/{gone}")
    for entity_id in (UNKNOWN_ID, gone, "nope"):
        error_of(await client.get(f"/v1/entities/{entity_id}/assets"), 404, "entity_not_found")


async def test_a_deleted_entitys_links_are_hidden_until_it_is_restored(client):
    ada, bob = await make_entity(client, "Ada"), await make_entity(client, "Bob")
    asset = await uploaded(client, PNG, "p.png", fields={"entity_id": [ada, bob]})
    url = f"/v1/assets/{asset['asset_id']}"
    assert sorted((await client.get(url)).json()["linked_entity_ids"]) == sorted([ada, bob])
    assert (await client.delete(f"/v1/entities/{ada}")).status_code == 204
    assert (await client.get(url)).json()["linked_entity_ids"] == [bob]
    listed = (await client.get("/v1/assets")).json()["items"]
    assert listed[0]["linked_entity_ids"] == [bob]
    assert (await client.post(f"/v1/entities/{ada}/restore")).status_code == 200
    assert sorted((await client.get(url)).json()["linked_entity_ids"]) == sorted([ada, bob])
    assert await entity_assets(client, ada) == [(asset["asset_id"], None)]


async def test_every_change_writes_its_event(client):
    ada = await make_entity(client)
    after = await last_event_id(client)
    asset = await uploaded(client, PNG, "p.png", fields={"entity_id": ada, "role": "face"})
    asset_id = asset["asset_id"]
    await client.patch(f"/v1/assets/{asset_id}", json={"filename": "q.png"})
    await client.post(f"/v1/entities/{ada}/assets/{asset_id}/unlink")
    await client.post(f"/v1/entities/{ada}/assets/{asset_id}")
    await client.delete(f"/v1/assets/{asset_id}")
    seen = await events(client, after=after)
    assert [e["type"] for e in seen] == ["asset.created", "asset.linked", "asset.updated",
                                         "asset.unlinked", "asset.linked", "asset.deleted"]
    assert all(e["data"]["asset_id"] == asset_id for e in seen)
    assert seen[0]["data"] == {"asset_id": asset_id, "kind": "image.original",
                               "size": len(PNG), "filename": "p.png", "provider": "fs",
                               "derived_from_asset_id": None}
    assert seen[1]["data"] == {"asset_id": asset_id, "entity_id": ada, "role": "face"}
    # in the order the changes were made
    assert [e["id"] for e in seen] == sorted(e["id"] for e in seen)

"""Asset records over HTTP: read (ETag, 304), change (merge, If-Match), soft delete,
derived assets, and the list with its filters and paging."""

from __future__ import annotations

import base64
import json

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

# -- GET ---------------------------------------------------------------------------------

async def test_get_has_the_version_as_etag_and_answers_304_when_unchanged(client):
    asset = await uploaded(client, PNG, "p.png")
    url = f"/v1/assets/{asset['asset_id']}"
    r = await client.get(url)
    assert r.status_code == 200 and r.headers["etag"] == '"1"'
    for tag in ('"1"', 'W/"1"', '"7", "1"', "*"):
        cached = await client.get(url, headers={"If-None-Match": tag})
        assert cached.status_code == 304, tag
        assert cached.content == b"" and cached.headers["etag"] == '"1"'
    assert (await client.patch(url, json={"filename": "q.png"})).status_code == 200
    changed = await client.get(url, headers={"If-None-Match": '"1"'})
    assert changed.status_code == 200 and changed.headers["etag"] == '"2"'
    assert changed.json()["filename"] == "q.png"


@pytest.mark.parametrize("asset_id", [UNKNOWN_ID, "xyz", "A" * 64, "a" * 63, "a" * 65,
                                      "é" * 64])
async def test_get_an_unknown_or_malformed_id_is_404(client, asset_id):
    for path in ("", "/download", "/derived"):
        error_of(await client.get(f"/v1/assets/{asset_id}{path}"), 404, "asset_not_found")
    error_of(await client.patch(f"/v1/assets/{asset_id}", json={"filename": "x"}), 404,
             "asset_not_found")
    error_of(await client.delete(f"/v1/assets/{asset_id}"), 404, "asset_not_found")


# -- PATCH -------------------------------------------------------------------------------

async def test_patch_changes_kind_and_filename_and_merges_metadata(client):
    asset = await uploaded(client, PNG, "p.png", fields={
        "meta": json.dumps({"keep": 1, "drop": 2, "change": 3})})
    url = f"/v1/assets/{asset['asset_id']}"
    after = await last_event_id(client)
    r = await client.patch(url, json={
        "kind": "image.thumbnail", "filename": "  portrait.png ",
        "user_metadata": {"drop": None, "change": "new", "add": [1, 2]},
        "plugin_data": {"lora.trainer": {"steps": 10}, "other": {"x": 1}}})
    assert r.status_code == 200, r.text
    patched = r.json()
    assert r.headers["etag"] == '"2"' and patched["version"] == 2
    assert patched["kind"] == "image.thumbnail"
    assert patched["filename"] == "portrait.png"
    assert patched["user_metadata"] == {"keep": 1, "change": "new", "add": [1, 2]}
    assert patched["plugin_data"] == {"lora.trainer": {"steps": 10}, "other": {"x": 1}}
    assert patched["created_at"] == asset["created_at"]
    assert patched["updated_at"] > asset["updated_at"]
    # each plugin's section is replaced whole; null removes it
    r = await client.patch(url, json={"plugin_data": {"other": None,
                                                      "lora.trainer": {"rank": 8}}})
    assert r.json()["plugin_data"] == {"lora.trainer": {"rank": 8}}
    assert (await client.get(url)).json() == r.json()
    [first, second] = await events(client, after=after)
    assert first["type"] == "asset.updated"
    assert first["data"] == {"asset_id": asset["asset_id"], "changed": [
        "filename", "kind", "plugin_data", "user_metadata"]}
    assert second["data"]["changed"] == ["plugin_data"]


async def test_patch_with_if_match(client):
    asset = await uploaded(client, PNG, "p.png")
    url = f"/v1/assets/{asset['asset_id']}"
    ok = await client.patch(url, json={"filename": "a.png"}, headers={"If-Match": '"1"'})
    assert ok.status_code == 200 and ok.headers["etag"] == '"2"'
    stale = await client.patch(url, json={"filename": "b.png"}, headers={"If-Match": '"1"'})
    error_of(stale, 412, "precondition_failed")
    for tag in ('W/"2"', '"02"'):  # weak tags and other spellings match nothing
        error_of(await client.patch(url, json={"filename": "b.png"},
                                    headers={"If-Match": tag}), 412, "precondition_failed")
    assert (await client.get(url)).json()["filename"] == "a.png"
    any_version = await client.patch(url, json={"filename": "c.png"}, headers={"If-Match": "*"})
    assert any_version.status_code == 200
    listed = await client.patch(url, json={"filename": "d.png"},
                                headers={"If-Match": '"1", "3"'})
    assert listed.status_code == 200 and listed.json()["filename"] == "d.png"
    for bad in ("2", "'4'", '"4', "abc"):
        error_of(await client.patch(url, json={"filename": "e.png"}, headers={"If-Match": bad}),
                 400, "invalid_if_match")
    assert (await client.get(url)).json()["filename"] == "d.png"


@pytest.mark.parametrize("body", [
    {"size": 3},
    {"kind": "Not A Kind"},
    {"kind": ""},
    {"filename": ""},
    {"filename": "   "},
    {"filename": "a\nb.txt"},
    {"filename": "x" * 256},
    {"filename": 7},
    {"filename": "../escape.txt"},
    {"filename": "dir\\file.txt"},
    {"filename": ".."},
    {"user_metadata": [1]},
    {"user_metadata": "text"},
    {"plugin_data": {"x": 1}},
    {"plugin_data": {"bad key!": {}}},
    {"plugin_data": []},
], ids=lambda b: json.dumps(b)[:40])
async def test_patch_refuses_a_bad_body_with_422(client, body):
    asset = await uploaded(client, PNG, "p.png")
    url = f"/v1/assets/{asset['asset_id']}"
    error_of(await client.patch(url, json=body), 422, "validation_error")
    assert (await client.get(url)).json() == {
        k: v for k, v in asset.items() if k != "deduplicated"}


async def test_patch_refuses_what_is_not_json(client):
    asset = await uploaded(client, PNG, "p.png")
    url = f"/v1/assets/{asset['asset_id']}"
    error_of(await client.patch(url, content=b'{"filename": '), 400, "invalid_json")
    error_of(await client.patch(url, content=b"\xff"), 400, "invalid_json")
    error_of(await client.patch(url, content=b""), 400, "invalid_json")
    error_of(await client.patch(url, content=b"filename=x",
                                headers={"Content-Type": "application/x-www-form-urlencoded"}),
             415, "unsupported_media_type")


# -- DELETE ------------------------------------------------------------------------------

async def test_delete_is_soft(client):
    asset = await uploaded(client, PNG, "p.png")
    url = f"/v1/assets/{asset['asset_id']}"
    after = await last_event_id(client)
    r = await client.delete(url)
    assert r.status_code == 204 and r.content == b""
    error_of(await client.get(url), 404, "asset_not_found")
    error_of(await client.get(url + "/download"), 404, "asset_not_found")
    kept = await client.get(url, params={"include_deleted": "true"})
    assert kept.status_code == 200
    assert kept.json()["deleted_at"] is not None and kept.json()["version"] == 2
    assert (await client.get("/v1/assets")).json()["items"] == []
    deleted = await client.get("/v1/assets", params={"only_deleted": "true"})
    assert [a["asset_id"] for a in deleted.json()["items"]] == [asset["asset_id"]]
    error_of(await client.delete(url), 404, "asset_not_found")
    error_of(await client.patch(url, json={"filename": "x"}), 404, "asset_not_found")
    assert [(e["type"], e["data"]) for e in await events(client, after=after)] == [
        ("asset.deleted", {"asset_id": asset["asset_id"]})]


async def test_delete_with_if_match(client):
    asset = await uploaded(client, PNG, "p.png")
    url = f"/v1/assets/{asset['asset_id']}"
    await client.patch(url, json={"filename": "changed.png"})
    error_of(await client.delete(url, headers={"If-Match": '"1"'}), 412, "precondition_failed")
    error_of(await client.delete(url, headers={"If-Match": "1"}), 400, "invalid_if_match")
    assert (await client.get(url)).status_code == 200
    assert (await client.delete(url, headers={"If-Match": '"2"'})).status_code == 204
    error_of(await client.get(url), 404, "asset_not_found")


# -- derived assets ----------------------------------------------------------------------

async def test_derived_lists_the_assets_made_from_one(client):
    source = await uploaded(client, PNG, "source.png")
    other = await uploaded(client, b"other source", "other.bin")
    made = []
    for i in range(5):
        made.append(await uploaded(client, f"thumb {i}".encode(), f"t{i}.webp", fields={
            "derived_from_asset_id": source["asset_id"],
            "kind": "image.thumbnail" if i % 2 else "doc.text"}))
    await uploaded(client, b"not from source", "n.bin",
                   fields={"derived_from_asset_id": other["asset_id"]})
    url = f"/v1/assets/{source['asset_id']}/derived"
    seen, cursor = [], None
    while True:
        r = await client.get(url, params={"limit": 2, **({"cursor": cursor} if cursor else {})})
        assert r.status_code == 200, r.text
        page = r.json()
        assert len(page["items"]) <= 2
        seen += [a["asset_id"] for a in page["items"]]
        if not (cursor := page["next_cursor"]):
            break
    assert seen == [a["asset_id"] for a in reversed(made)]
    thumbs = await client.get(url, params={"kind": "image.thumbnail"})
    assert [a["asset_id"] for a in thumbs.json()["items"]] == [made[3]["asset_id"],
                                                               made[1]["asset_id"]]
    # a derived asset that was deleted is not listed
    await client.delete(f"/v1/assets/{made[0]['asset_id']}")
    r = await client.get(url)
    assert made[0]["asset_id"] not in [a["asset_id"] for a in r.json()["items"]]
    await client.delete(f"/v1/assets/{source['asset_id']}")
    error_of(await client.get(url), 404, "asset_not_found")
    error_of(await client.get(url, params={"kind": "Bad"}), 422, "validation_error")


# -- the list ----------------------------------------------------------------------------

@pytest.fixture
async def library(client) -> dict[str, dict]:
    """Seven assets of several kinds, types, names and links, oldest first."""
    ada = await make_entity(client, "Ada")
    made: dict[str, dict] = {}
    made["photo"] = await uploaded(client, PNG, "Holiday Photo.PNG",
                                   fields={"entity_id": ada})
    made["notes"] = await uploaded(client, b"notes", "notes.txt", content_type="text/plain")
    made["csv"] = await uploaded(client, b"a,b\n1,2\n", "table.csv")
    made["lora"] = await uploaded(client, b"\x00lora", "style.safetensors",
                                  fields={"entity_id": ada})
    made["thumb"] = await uploaded(client, b"RIFF\x00\x00\x00\x00WEBPVP8 ", "thumb.webp",
                                   fields={"kind": "image.thumbnail",
                                           "derived_from_asset_id": made["photo"]["asset_id"]})
    made["cjk"] = await uploaded(client, b"cjk", "写真アルバム.zip")
    made["gone"] = await uploaded(client, b"gone", "deleted photo.bin")
    assert (await client.delete(f"/v1/assets/{made['gone']['asset_id']}")).status_code == 204
    made["ada"] = {"entity_id": ada}
    return made


async def listed(client, **params) -> list[str]:
    r = await client.get("/v1/assets", params=params)
    assert r.status_code == 200, r.text
    return [a["filename"] for a in r.json()["items"]]


async def test_the_list_is_newest_first_without_deleted_assets(client, library):
    assert await listed(client) == ["写真アルバム.zip", "thumb.webp", "style.safetensors",
                                     "table.csv", "notes.txt", "Holiday Photo.PNG"]
    assert await listed(client, order="asc") == ["Holiday Photo.PNG", "notes.txt", "table.csv",
                                                 "style.safetensors", "thumb.webp",
                                                 "写真アルバム.zip"]
    assert await listed(client, include_deleted="true") == [
        "deleted photo.bin", "写真アルバム.zip", "thumb.webp", "style.safetensors",
        "table.csv", "notes.txt", "Holiday Photo.PNG"]
    assert await listed(client, only_deleted="true") == ["deleted photo.bin"]
    assert await listed(client, only_deleted="true", include_deleted="true") == [
        "deleted photo.bin"]


async def test_list_filters(client, library):
    photo = library["photo"]["asset_id"]
    ada = library["ada"]["entity_id"]
    assert await listed(client, kind="model.lora") == ["style.safetensors"]
    assert await listed(client, kind="image.original") == ["Holiday Photo.PNG"]
    assert await listed(client, kind="no.such.kind") == []
    assert await listed(client, mime="image/") == ["thumb.webp", "Holiday Photo.PNG"]
    assert await listed(client, mime="text/") == ["table.csv", "notes.txt"]
    assert await listed(client, mime="text/plain") == ["notes.txt"]
    assert await listed(client, entity_id=ada) == ["style.safetensors", "Holiday Photo.PNG"]
    assert await listed(client, entity_id=UNKNOWN_ID) == []
    assert await listed(client, derived_from=photo) == ["thumb.webp"]
    assert await listed(client, q="PHOTO") == ["Holiday Photo.PNG"]
    assert await listed(client, q="photo", include_deleted="true") == [
        "deleted photo.bin", "Holiday Photo.PNG"]
    assert await listed(client, q="アルバム") == ["写真アルバム.zip"]
    assert await listed(client, q="%") == []
    assert await listed(client, q="_") == []
    assert await listed(client, kind="image.original", entity_id=ada, mime="image/png",
                        q="holiday") == ["Holiday Photo.PNG"]


async def test_cursor_paging_visits_every_asset_once(client, library):
    everything = await listed(client, limit=500)
    for order in ("desc", "asc"):
        for limit in (1, 2, 3, 6, 7):
            seen, cursor, pages = [], None, 0
            while True:
                params = {"limit": limit, "order": order}
                if cursor:
                    params["cursor"] = cursor
                r = await client.get("/v1/assets", params=params)
                assert r.status_code == 200, r.text
                page = r.json()
                pages += 1
                assert 0 < len(page["items"]) <= limit
                seen += [a["filename"] for a in page["items"]]
                if not (cursor := page["next_cursor"]):
                    break
            expected = everything if order == "desc" else everything[::-1]
            assert seen == expected, (order, limit)
            assert pages == -(-len(expected) // limit)


async def test_an_upload_between_pages_neither_shifts_nor_repeats_them(client, library):
    everything = await listed(client)
    r = await client.get("/v1/assets", params={"limit": 3})
    first = r.json()
    assert first["next_cursor"]
    await uploaded(client, b"GIF89a new image", "new.gif")
    await client.delete(f"/v1/assets/{library['photo']['asset_id']}")
    r = await client.get("/v1/assets", params={"limit": 3, "cursor": first["next_cursor"]})
    second = r.json()
    names = [a["filename"] for a in first["items"] + second["items"]]
    assert names == [n for n in everything if n != "Holiday Photo.PNG"]
    assert second["next_cursor"] is None


async def test_offset_is_still_accepted(client, library):
    everything = await listed(client)
    assert await listed(client, offset=2, limit=3) == everything[2:5]
    assert await listed(client, offset=100) == []


@pytest.mark.parametrize("params", [
    {"limit": 0}, {"limit": 501}, {"limit": "ten"}, {"offset": -1},
    {"order": "sideways"}, {"kind": "Not A Kind"}, {"entity_id": "xyz"},
    {"derived_from": "xyz"}, {"mime": "x" * 201}, {"q": "q" * 501},
    {"include_deleted": "perhaps"},
], ids=lambda p: next(iter(p)) + "=" + str(next(iter(p.values())))[:10])
async def test_bad_list_parameters_are_422(client, params):
    error_of(await client.get("/v1/assets", params=params), 422, "validation_error")


def forged(payload: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


@pytest.mark.parametrize("cursor", [
    "not a cursor", "!!!!", "é", forged(["desc", "1"]), forged(["desc", 2**63]),
    forged(["desc"]), forged({"a": 1, "b": 2}), forged("ab"), forged(3), forged(["asc", 1]),
    forged(["link", 1]),
])
async def test_a_cursor_this_server_did_not_issue_is_400(client, library, cursor):
    error_of(await client.get("/v1/assets", params={"cursor": cursor}), 400, "invalid_cursor")


async def test_a_cursor_from_one_order_is_refused_in_the_other(client, library):
    r = await client.get("/v1/assets", params={"limit": 1})
    cursor = r.json()["next_cursor"]
    assert cursor
    error_of(await client.get("/v1/assets", params={"limit": 1, "order": "asc",
                                                    "cursor": cursor}), 400, "invalid_cursor")


# -- who may do what ---------------------------------------------------------------------

async def test_reading_needs_assets_read_and_changing_needs_assets_write(client, kernel):
    ada = await make_entity(client)
    asset = await uploaded(client, PNG, "p.png")
    one = f"/v1/assets/{asset['asset_id']}"
    pair = f"/v1/entities/{ada}/assets/{asset['asset_id']}"
    reads = [("GET", "/v1/assets"), ("GET", one), ("GET", one + "/derived"),
             ("GET", one + "/download"), ("HEAD", one + "/download"),
             ("GET", f"/v1/entities/{ada}/assets")]
    writes = [("POST", "/v1/assets/upload"), ("PATCH", one), ("DELETE", one),
              ("POST", pair + "/link"), ("POST", pair + "/unlink"), ("POST", pair),
              ("DELETE", pair)]
    reader = await kernel.scoped_tokens.issue("asset-reader", ["assets:read",
                                                               "entities:read"])
    headers = {"Authorization": f"Bearer {reader}"}
    for method, url in reads:
        r = await client.request(method, url, headers=headers)
        assert r.status_code == 200, (method, url, r.text)
    for method, url in writes:
        r = await client.request(method, url, headers=headers, json={})
        assert r.status_code == 403, (method, url, r.text)
        error_of(r, 403)
    for method, url in reads + writes:
        r = await client.request(method, url, headers={"Authorization": "Bearer wrong"})
        assert r.status_code == 401, (method, url)
    assert (await client.get(one)).json()["version"] == asset["version"]

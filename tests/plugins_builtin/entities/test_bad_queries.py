"""Hostile list queries get a 4xx envelope: nothing reaches SQLite that it would refuse."""

import base64

import msgspec
import pytest

from plugins_builtin.entities.store import MAX_TAG_FILTERS


def forged(sort_by: str, key, entity_id="0" * 64, order="desc") -> str:
    raw = msgspec.json.encode([sort_by, order, key, entity_id])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(("sort_by", "key", "entity_id"), [
    ("created_at", [1], "0" * 64),
    ("created_at", {"a": 1}, "0" * 64),
    ("created_at", "not a number", "0" * 64),
    ("created_at", True, "0" * 64),
    ("created_at", 2**64, "0" * 64),
    ("created_at", 1.5, "0" * 64),
    ("display_name", [1], "0" * 64),
    ("updated_at", None, "0" * 64),
    ("display_name", "Ada", ["not", "an", "id"]),
])
async def test_a_forged_cursor_is_400(client, sort_by, key, entity_id):
    await client.post("/v1/entities", json={"display_name": "Ada"})
    r = await client.get("/v1/entities", params={
        "sort_by": sort_by, "cursor": forged(sort_by, key, entity_id)})
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "invalid_cursor"


async def test_an_offset_beyond_64_bits_is_422(client):
    r = await client.get("/v1/entities", params={"offset": 2**63})
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["path"] == "query.offset"


async def test_too_many_tags_is_422_and_the_limit_still_works(client):
    too_many = [f"t{i}" for i in range(MAX_TAG_FILTERS + 1)]
    r = await client.get("/v1/entities", params={"tag": too_many})
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["path"] == "query.tag"
    await client.post("/v1/entities", json={"display_name": "Ada", "tags": too_many[:-1]})
    r = await client.get("/v1/entities", params={"tag": too_many[:-1]})
    assert [e["display_name"] for e in r.json()["items"]] == ["Ada"]


async def test_the_ui_shows_the_first_page_for_a_forged_cursor(client, ui):
    await client.post("/v1/entities", json={"display_name": "Ada"})
    browser = ui.client
    r = await browser.get("/ui/entities", params={"cursor": forged("created_at", [1])})
    assert r.status_code == 200 and "Ada" in r.text


async def test_the_ui_refuses_too_many_tags_with_a_page(ui):
    browser = ui.client
    tags = ",".join(f"t{i}" for i in range(MAX_TAG_FILTERS + 1))
    r = await browser.get("/ui/entities", params={"tag": tags})
    assert r.status_code == 422
    assert "<main" in r.text and f"at most {MAX_TAG_FILTERS} tags" in r.text

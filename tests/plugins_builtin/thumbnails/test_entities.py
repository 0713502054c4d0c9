"""An entity without a primary thumbnail gets its first image's 256 px thumbnail, whether the
image was uploaded to it or linked to it later; one it already has is never replaced."""

from __future__ import annotations

from typing import Any

import httpx

from tests.plugins_builtin.thumbnails.conftest import (
    encode,
    jpeg,
    photo,
    settle,
    thumbnails_of,
    upload,
)


async def make_entity(client: httpx.AsyncClient, **fields: Any) -> str:
    r = await client.post("/v1/entities", json={"display_name": "Ada", **fields})
    assert r.status_code == 201, r.text
    return r.json()["entity_id"]


async def primary(client: httpx.AsyncClient, entity_id: str) -> str | None:
    r = await client.get(f"/v1/entities/{entity_id}")
    assert r.status_code == 200, r.text
    return r.json()["primary_thumbnail_asset_id"]


async def test_an_image_uploaded_to_an_entity_without_one_becomes_its_thumbnail(
        client, kernel) -> None:
    ada = await make_entity(client)
    first = await upload(client, jpeg(800, 600), "first.jpg", entity_id=ada)
    await settle(kernel)
    thumb = (await thumbnails_of(client, first["asset_id"]))["256"]
    assert await primary(client, ada) == thumb
    # a second image does not replace it
    await upload(client, jpeg(600, 800), "second.jpg", entity_id=ada)
    await settle(kernel)
    assert await primary(client, ada) == thumb


async def test_a_primary_thumbnail_already_chosen_is_kept(client, kernel) -> None:
    chosen = await upload(client, encode(photo(64, 64), "PNG"), "chosen.png")
    ada = await make_entity(client, primary_thumbnail_asset_id=chosen["asset_id"])
    await upload(client, jpeg(800, 600), "photo.jpg", entity_id=ada)
    await settle(kernel)
    assert await primary(client, ada) == chosen["asset_id"]
    r = await client.get(f"/v1/entities/{ada}")
    assert r.json()["version"] == 1  # not even touched


async def test_an_image_linked_later_gives_its_thumbnail(client, kernel) -> None:
    image = await upload(client, jpeg(800, 600), "photo.jpg")
    await settle(kernel)
    thumb = (await thumbnails_of(client, image["asset_id"]))["256"]
    ada = await make_entity(client)
    r = await client.post(f"/v1/entities/{ada}/assets/{image['asset_id']}/link")
    assert r.status_code == 200, r.text
    await settle(kernel)
    assert await primary(client, ada) == thumb


async def test_an_image_without_thumbnails_gives_none(client, kernel) -> None:
    broken = await upload(client, b"\x89PNG\r\n\x1a\n" + bytes(300), "broken.png")
    text = await upload(client, b"notes\n", "notes.txt")
    ada = await make_entity(client)
    for asset in (broken, text):
        r = await client.post(f"/v1/entities/{ada}/assets/{asset['asset_id']}/link")
        assert r.status_code == 200, r.text
    await settle(kernel)
    assert "error" in await thumbnails_of(client, broken["asset_id"])
    assert await primary(client, ada) is None


async def test_deleting_the_image_leaves_no_broken_thumbnail(client, kernel) -> None:
    ada = await make_entity(client)
    image = await upload(client, jpeg(800, 600), "photo.jpg", entity_id=ada)
    await settle(kernel)
    assert await primary(client, ada) is not None
    chosen = await upload(client, encode(photo(64, 64), "PNG"), "chosen.png")
    bob = await make_entity(client, primary_thumbnail_asset_id=chosen["asset_id"])
    for asset in (image, chosen):
        assert (await client.delete(f"/v1/assets/{asset['asset_id']}")).status_code == 204
    await settle(kernel)
    # the image's thumbnails went with it, and with them Ada's; Bob's own pick went too
    assert await primary(client, ada) is None
    assert await primary(client, bob) is None

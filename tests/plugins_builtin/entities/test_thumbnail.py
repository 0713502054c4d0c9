"""``primary_thumbnail_asset_id`` must name a live image asset."""

from __future__ import annotations

import pytest

from tests.kernel.conftest import assert_envelope
from tests.media import upload_image


async def test_an_uploaded_image_can_be_the_thumbnail(client) -> None:
    image = await upload_image(client)
    r = await client.post("/v1/entities", json={"display_name": "Ada",
                                                "primary_thumbnail_asset_id": image})
    assert r.status_code == 201 and r.json()["primary_thumbnail_asset_id"] == image
    r = await client.patch(f"/v1/entities/{r.json()['entity_id']}",
                           json={"primary_thumbnail_asset_id": None})
    assert r.status_code == 200 and r.json()["primary_thumbnail_asset_id"] is None


@pytest.mark.parametrize("what", ["unknown", "not_image", "deleted"])
async def test_anything_else_is_refused(client, what: str) -> None:
    entity = (await client.post("/v1/entities", json={"display_name": "Ada"})).json()
    if what == "unknown":
        asset_id = "b" * 64
    elif what == "not_image":
        r = await client.post("/v1/assets/upload", files={"file": ("notes.txt", b"hello")})
        asset_id = r.json()["asset_id"]
    else:
        asset_id = await upload_image(client)
        assert (await client.delete(f"/v1/assets/{asset_id}")).status_code == 204
    for r in (await client.post("/v1/entities", json={"display_name": "Grace",
                                                      "primary_thumbnail_asset_id": asset_id}),
              await client.patch(f"/v1/entities/{entity['entity_id']}",
                                 json={"primary_thumbnail_asset_id": asset_id})):
        body = assert_envelope(r, 422, "validation_error")
        assert body["details"][0]["path"] == "$.primary_thumbnail_asset_id"
    # nothing changed
    r = await client.get(f"/v1/entities/{entity['entity_id']}")
    assert r.json()["primary_thumbnail_asset_id"] is None and r.headers["etag"] == '"1"'

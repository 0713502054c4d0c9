"""``GET /v1/assets/{asset_id}/thumbnail?size=256|1024``: a 307 to the thumbnail's download,
or 404 ``thumbnail_not_found`` in the error envelope while there is none."""

from __future__ import annotations

import pytest

from tests.kernel.conftest import assert_envelope
from tests.plugins_builtin.thumbnails.conftest import (
    encode,
    jpeg,
    opened,
    photo,
    settle,
    thumbnails_of,
    upload,
)


def thumbnail_url(asset_id: str, **params: str) -> str:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return f"/v1/assets/{asset_id}/thumbnail" + (f"?{query}" if query else "")


@pytest.mark.parametrize(("size", "expected"), [(None, (256, 192)), ("256", (256, 192)),
                                                 ("1024", (1024, 768))])
async def test_redirects_to_the_thumbnail(client, kernel, size, expected) -> None:
    source = await upload(client, jpeg(1600, 1200), "photo.jpg")
    await settle(kernel)
    thumbs = await thumbnails_of(client, source["asset_id"])
    r = await client.get(thumbnail_url(source["asset_id"], **({"size": size} if size else {})))
    assert r.status_code == 307
    assert r.headers["location"] == f"/v1/assets/{thumbs[size or '256']}/download"
    followed = await client.get(r.headers["location"])
    assert followed.status_code == 200
    assert opened(followed.content).size == expected


async def test_a_thumbnail_is_its_own_thumbnail(client, kernel) -> None:
    source = await upload(client, jpeg(800, 600), "photo.jpg")
    await settle(kernel)
    small = (await thumbnails_of(client, source["asset_id"]))["256"]
    for size in ("256", "1024"):
        r = await client.get(thumbnail_url(small, size=size))
        assert r.status_code == 307
        assert r.headers["location"] == f"/v1/assets/{small}/download"


async def test_while_there_is_none_yet_a_small_image_is_its_own(client, kernel) -> None:
    # the worker stopped: nothing gets thumbnails, as when an upload has just arrived
    await kernel.services["thumbnails.worker"].stop(0)
    small = await upload(client, encode(photo(200, 100), "PNG"), "small.png")
    large = await upload(client, jpeg(800, 600), "large.jpg")
    store = kernel.services["assets.store"]
    for asset, size in ((small, (200, 100)), (large, (800, 600))):  # as extraction does
        await store.set_extracted(asset["asset_id"], {}, width=size[0], height=size[1])
    r = await client.get(thumbnail_url(small["asset_id"]))
    assert r.status_code == 307
    assert r.headers["location"] == f"/v1/assets/{small['asset_id']}/download"
    error = assert_envelope(await client.get(thumbnail_url(large["asset_id"])), 404,
                            "thumbnail_not_found")
    assert error["message"].endswith("has no 256 px thumbnail yet")
    r = await client.get(thumbnail_url(large["asset_id"], size="1024"))
    assert r.status_code == 307  # 800 px: already small enough for 1024


async def test_no_thumbnail_is_a_404_saying_why(client, kernel) -> None:
    broken = await upload(client, b"\x89PNG\r\n\x1a\n" + bytes(300), "broken.png")
    text = await upload(client, b"notes\n", "notes.txt")
    await settle(kernel)
    error = assert_envelope(await client.get(thumbnail_url(broken["asset_id"])), 404,
                            "thumbnail_not_found")
    assert "not an image" in error["message"]
    error = assert_envelope(await client.get(thumbnail_url(text["asset_id"])), 404,
                            "thumbnail_not_found")
    assert "text/plain" in error["message"]


async def test_a_deleted_thumbnail_is_not_offered(client, kernel) -> None:
    source = await upload(client, jpeg(800, 600), "photo.jpg")
    await settle(kernel)
    thumb = (await thumbnails_of(client, source["asset_id"]))["256"]
    assert (await client.delete(f"/v1/assets/{thumb}")).status_code == 204
    assert_envelope(await client.get(thumbnail_url(source["asset_id"])), 404,
                    "thumbnail_not_found")


@pytest.mark.parametrize(("asset_id", "params", "status", "code"), [
    ("0" * 64, {}, 404, "asset_not_found"),
    ("not-an-id", {}, 404, "asset_not_found"),
    (None, {"size": "512"}, 422, "validation_error"),
    (None, {"size": "big"}, 422, "validation_error"),
])
async def test_bad_requests(client, kernel, asset_id, params, status, code) -> None:
    if asset_id is None:
        asset_id = (await upload(client, jpeg(300, 200), "photo.jpg"))["asset_id"]
    assert_envelope(await client.get(thumbnail_url(asset_id, **params)), status, code)


async def test_a_deleted_image_has_none(client, kernel) -> None:
    source = await upload(client, jpeg(300, 200), "photo.jpg")
    await settle(kernel)
    assert (await client.delete(f"/v1/assets/{source['asset_id']}")).status_code == 204
    assert_envelope(await client.get(thumbnail_url(source["asset_id"])), 404,
                    "asset_not_found")


async def test_needs_a_token(client, anon) -> None:
    assert_envelope(await anon.get(thumbnail_url("0" * 64)), 401)

"""Uploading images through the API: the thumbnails appear as derived assets, recorded on
the image; what cannot be thumbnailed is logged and recorded, and never fails the upload."""

from __future__ import annotations

import pytest

from tests.plugins_builtin.thumbnails.conftest import (
    BLUE,
    RED,
    asset,
    configured,
    core,
    derived,
    download,
    encode,
    halves,
    jpeg,
    log_lines,
    near,
    opened,
    photo,
    png_header,
    settle,
    thumbnails_of,
    upload,
)

IMAGES = {
    "jpeg": ("holiday.JPG", lambda: jpeg(1600, 1200), (1600, 1200)),
    "png": ("logo.png", lambda: encode(photo(1280, 640).convert("RGBA"), "PNG"), (1280, 640)),
    "webp": ("still.webp", lambda: encode(photo(700, 1400), "WEBP"), (700, 1400)),
}


def fit(size: tuple[int, int], box: int) -> tuple[int, int]:
    scale = min(1.0, box / max(size))
    return round(size[0] * scale), round(size[1] * scale)


@pytest.mark.parametrize("kind", IMAGES)
async def test_an_uploaded_image_gets_two_thumbnails(client, kernel, kind: str) -> None:
    filename, make, size = IMAGES[kind]
    source = await upload(client, make(), filename)
    await settle(kernel)
    stem = filename.rsplit(".", 1)[0]
    thumbs = await thumbnails_of(client, source["asset_id"])
    assert set(thumbs) == {"256", "1024"}
    items = {a["asset_id"]: a for a in await derived(client, source["asset_id"])}
    assert set(items) == set(thumbs.values())
    for box, (fmt, mime, suffix) in {"1024": ("JPEG", "image/jpeg", "jpg"),
                                     "256": ("WEBP", "image/webp", "webp")}.items():
        thumb = items[thumbs[box]]
        assert thumb["kind"] == "image.thumbnail"
        assert thumb["mime_type"] == mime
        assert thumb["filename"] == f"{stem}.thumb{box}.{suffix}"
        assert thumb["derived_from_asset_id"] == source["asset_id"]
        image = opened(await download(client, thumb["asset_id"]))
        assert (image.format, image.size) == (fmt, fit(size, int(box)))
        # a thumbnail is not thumbnailed in turn
        assert "thumbnails" not in thumb["plugin_data"]
        assert await derived(client, thumb["asset_id"]) == []


async def test_an_exif_rotated_photo_is_shown_upright(client, kernel) -> None:
    # stored 1600x1200 with red left, blue right; EXIF orientation 6: turn 90 degrees
    # clockwise to show, so upright it is 1200x1600 with red on top
    source = await upload(client, jpeg(orientation=6, image=halves(1600, 1200)), "turned.jpg")
    await settle(kernel)
    thumbs = await thumbnails_of(client, source["asset_id"])
    for box, size in (("1024", (768, 1024)), ("256", (192, 256))):
        image = opened(await download(client, thumbs[box])).convert("RGB")
        assert image.size == size
        assert near(image.getpixel((size[0] // 2, size[1] // 4)), RED)
        assert near(image.getpixel((size[0] // 2, 3 * size[1] // 4)), BLUE)


async def test_a_tiny_image_is_not_enlarged(client, kernel) -> None:
    source = await upload(client, encode(photo(40, 30), "PNG"), "icon.png")
    await settle(kernel)
    thumbs = await thumbnails_of(client, source["asset_id"])
    for box in ("256", "1024"):
        assert opened(await download(client, thumbs[box])).size == (40, 30)


@pytest.mark.parametrize(("what", "data", "reason"), [
    ("corrupt", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8, "not an image"),
    ("truncated", jpeg(1600, 1200)[:20_000], "truncated"),
    ("bomb", png_header(100_000, 100_000), "decompression bomb"),
])
async def test_an_image_that_cannot_be_read_is_logged_and_recorded(
        client, kernel, home, what: str, data: bytes, reason: str) -> None:
    r = await client.post("/v1/assets/upload", files={"file": (f"{what}.png", data)})
    assert r.status_code == 201, r.text  # the upload never waits for, or fails with, this
    asset_id = r.json()["asset_id"]
    await settle(kernel)
    recorded = await thumbnails_of(client, asset_id)
    assert set(recorded) == {"error"} and reason in recorded["error"]
    assert await derived(client, asset_id) == []
    lines = [line for line in log_lines(home)
             if line["logger"] == "faceforge.plugins.thumbnails" and asset_id in line["message"]]
    assert len(lines) == 1  # one line: no traceback, no retry
    assert lines[0]["level"] == "WARNING" and reason in lines[0]["message"]
    # the next image is thumbnailed as usual
    fine = await upload(client, jpeg(300, 200), "fine.jpg")
    await settle(kernel)
    assert set(await thumbnails_of(client, fine["asset_id"])) == {"256", "1024"}


async def test_more_pixels_than_configured_is_refused(make_app, home) -> None:
    settings = configured(home, max_pixels=10_000)
    async with core(make_app, settings) as (client, kernel):
        big = await upload(client, encode(photo(101, 100), "PNG"), "big.png")
        small = await upload(client, encode(photo(100, 100), "PNG"), "small.png")
        await settle(kernel)
        assert (await thumbnails_of(client, big["asset_id"]))["error"].startswith(
            "decompression bomb: 101x100 is 10100 pixels")
        assert set(await thumbnails_of(client, small["asset_id"])) == {"256", "1024"}


async def test_a_source_over_the_byte_limit_is_skipped(make_app, home) -> None:
    settings = configured(home, max_source_bytes=5000)
    async with core(make_app, settings) as (client, kernel):
        data = jpeg(400, 300)
        assert len(data) > 5000
        source = await upload(client, data, "large.jpg")
        await settle(kernel)
        recorded = await thumbnails_of(client, source["asset_id"])
        assert recorded == {"error": f"the image is {len(data)} bytes, over the limit of "
                                     f"5000 (plugins.thumbnails.max_source_bytes)"}


async def test_what_is_not_an_image_gets_no_thumbnails(client, kernel) -> None:
    text = await upload(client, b"just some notes\n", "notes.txt")
    await settle(kernel)
    assert "thumbnails" not in (await asset(client, text["asset_id"]))["plugin_data"]
    assert await derived(client, text["asset_id"]) == []


async def test_thumbnails_and_derived_images_are_not_thumbnailed(client, kernel) -> None:
    as_thumbnail = await upload(client, jpeg(800, 600), "mine.jpg", kind="image.thumbnail")
    source = await upload(client, jpeg(800, 600), "source.jpg")
    crop = await upload(client, jpeg(500, 500), "crop.jpg",
                        derived_from_asset_id=source["asset_id"])
    await settle(kernel)
    for skipped in (as_thumbnail, crop):
        assert "thumbnails" not in (await asset(client, skipped["asset_id"]))["plugin_data"]
        assert await derived(client, skipped["asset_id"]) == []
    # the source's derived assets: the crop and its own two thumbnails
    kinds = sorted(a["kind"] for a in await derived(client, source["asset_id"]))
    assert kinds == ["image.original", "image.thumbnail", "image.thumbnail"]


async def test_the_same_image_again_is_not_thumbnailed_twice(client, kernel) -> None:
    data = jpeg(800, 600)
    first = await upload(client, data, "a.jpg")
    await settle(kernel)
    thumbs = await thumbnails_of(client, first["asset_id"])
    again = await upload(client, data, "b.jpg", status=200)
    assert again["deduplicated"] is True
    await settle(kernel)
    assert await thumbnails_of(client, first["asset_id"]) == thumbs
    assert len(await derived(client, first["asset_id"])) == 2


async def test_an_image_deleted_and_uploaded_again_keeps_working_thumbnails(
        client, kernel) -> None:
    data = jpeg(800, 600)
    source = await upload(client, data, "a.jpg")
    await settle(kernel)
    old = await thumbnails_of(client, source["asset_id"])
    for asset_id in (source["asset_id"], *old.values()):
        assert (await client.delete(f"/v1/assets/{asset_id}")).status_code == 204
    await upload(client, data, "a.jpg")  # revived: its old thumbnails are deleted
    await settle(kernel)
    thumbs = await thumbnails_of(client, source["asset_id"])
    for asset_id in thumbs.values():
        assert (await asset(client, asset_id))["deleted_at"] is None


async def test_deleting_an_image_deletes_its_thumbnails(client, kernel) -> None:
    kept = await upload(client, jpeg(640, 480), "kept.jpg")
    gone = await upload(client, jpeg(480, 640), "gone.jpg")
    await settle(kernel)
    gone_thumbs = set((await thumbnails_of(client, gone["asset_id"])).values())
    kept_thumbs = set((await thumbnails_of(client, kept["asset_id"])).values())
    r = await client.delete(f"/v1/assets/{gone['asset_id']}")
    assert r.status_code == 204
    await settle(kernel)
    for thumb_id in gone_thumbs:
        assert (await client.get(f"/v1/assets/{thumb_id}")).status_code == 404
    listed = {a["asset_id"] for a in (await client.get(
        "/v1/assets", params={"kind": "image.thumbnail"})).json()["items"]}
    assert listed == kept_thumbs

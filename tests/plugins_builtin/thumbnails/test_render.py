"""The pure rendering step: sizes, formats, orientation, colour modes, and what is refused."""

from __future__ import annotations

import pytest
from PIL import Image

from plugins_builtin.thumbnails.render import Refused, render
from tests.plugins_builtin.thumbnails.conftest import (
    BLUE,
    RED,
    encode,
    halves,
    jpeg,
    near,
    opened,
    photo,
    png_header,
)


def shapes(data: bytes) -> list[tuple[int, str, tuple[int, int]]]:
    return [(t.size, opened(t.data).format, opened(t.data).size) for t in render(data)]


def test_a_12_megapixel_jpeg_gives_1024_jpeg_and_256_webp() -> None:
    assert shapes(jpeg(4000, 3000)) == [(1024, "JPEG", (1024, 768)),
                                         (256, "WEBP", (256, 192))]


def test_a_portrait_keeps_its_proportions() -> None:
    assert shapes(jpeg(900, 1800)) == [(1024, "JPEG", (512, 1024)), (256, "WEBP", (128, 256))]


@pytest.mark.parametrize("size", [(1, 1), (100, 40), (256, 256)])
def test_a_small_image_is_never_enlarged(size: tuple[int, int]) -> None:
    data = encode(photo(*size), "PNG")
    assert shapes(data) == [(1024, "JPEG", size), (256, "WEBP", size)]


def test_between_the_sizes_only_the_small_one_shrinks() -> None:
    assert shapes(jpeg(600, 300)) == [(1024, "JPEG", (600, 300)), (256, "WEBP", (256, 128))]


def test_exif_orientation_6_turns_the_picture_upright() -> None:
    # stored 1600x1200, red left and blue right; orientation 6 means "turn 90 degrees
    # clockwise to show": upright it is 1200x1600, red on top, blue below
    big, small = render(jpeg(orientation=6, image=halves(1600, 1200)))
    for thumb, size in ((big, (768, 1024)), (small, (192, 256))):
        image = opened(thumb.data).convert("RGB")
        assert image.size == size
        w, h = image.size
        assert near(image.getpixel((w // 2, h // 4)), RED)
        assert near(image.getpixel((w // 2, 3 * h // 4)), BLUE)
        # no orientation left to apply, or viewers would turn it a second time
        assert opened(thumb.data).getexif().get(0x0112) in (None, 1)


def test_transparency_is_white_in_the_jpeg_and_kept_in_the_webp() -> None:
    data = encode(halves(400, 200, (0, 0, 0, 0), (0, 0, 255, 255), mode="RGBA"), "PNG")
    big, small = render(data)
    jpg = opened(big.data)
    assert jpg.mode == "RGB"
    assert near(jpg.getpixel((50, 100)), (255, 255, 255))  # transparent: white
    assert near(jpg.getpixel((350, 100)), BLUE)
    webp = opened(small.data)
    assert webp.mode == "RGBA"
    assert webp.getpixel((10, 64))[3] == 0
    assert near(webp.getpixel((246, 64)), (*BLUE, 255))


@pytest.mark.parametrize("mode", ["P", "LA", "CMYK", "I;16", "L", "1"])
def test_every_colour_mode_gives_a_web_image(mode: str) -> None:
    source = halves(300, 200, (0, 0, 0), (255, 255, 255))
    if mode == "I;16":  # 16-bit greyscale: white is 65535, which must not clip to black
        image = source.convert("L").convert("I").point(lambda v: v * 257).convert("I;16")
        data = encode(image, "PNG")
    else:
        data = encode(source.convert(mode), "TIFF" if mode == "CMYK" else "PNG")
    for thumb in render(data):
        image = opened(thumb.data).convert("RGB")
        w, h = image.size
        assert near(image.getpixel((w // 4, h // 2)), (0, 0, 0)), mode
        assert near(image.getpixel((3 * w // 4, h // 2)), (255, 255, 255)), mode


@pytest.mark.parametrize("fmt", ["GIF", "WEBP"])
def test_an_animation_gives_its_first_frame(fmt: str) -> None:
    frames = [Image.new("RGB", (300, 200), colour) for colour in (RED, BLUE, BLUE)]
    data = encode(frames[0], fmt, save_all=True, append_images=frames[1:])
    for thumb in render(data):
        image = opened(thumb.data).convert("RGB")
        assert getattr(image, "n_frames", 1) == 1
        assert near(image.getpixel((150, 100)), RED)


@pytest.mark.parametrize(("data", "reason"), [
    (b"", "not an image"),
    (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, "not an image"),
    (b"%PDF-1.7 not a picture", "not an image"),
    (jpeg(800, 600)[:6000], "truncated"),
    (png_header(100_000, 100_000), "decompression bomb"),
])
def test_what_is_not_a_decodable_image_is_refused(data: bytes, reason: str) -> None:
    with pytest.raises(Refused) as caught:
        render(data)
    assert reason in caught.value.reason


def test_more_pixels_than_allowed_is_refused_before_decoding() -> None:
    data = encode(photo(200, 200), "PNG")
    with pytest.raises(Refused, match="decompression bomb: 200x200 is 40000 pixels"):
        render(data, max_pixels=39_999)
    assert len(render(data, max_pixels=40_000)) == 2

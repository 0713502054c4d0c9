"""Thumbnails from image bytes with Pillow: pure, synchronous, run in a worker thread.

One decode serves both sizes: a JPEG is decoded at a reduced size (libjpeg scales by 1/2,
1/4 or 1/8 while decoding, several times faster than a full decode), EXIF orientation is
applied, the 1024 px JPEG is made from it and the 256 px WebP from the 1024 px image.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from PIL import Image, ImageOps

#: the long side of each thumbnail, largest first: each is made from the one before
SIZES = (1024, 256)
#: how each size is written: (Pillow format, file suffix, save options)
ENCODINGS: dict[int, tuple[str, str, dict[str, Any]]] = {
    1024: ("JPEG", "jpg", {"quality": 85}),
    256: ("WEBP", "webp", {"quality": 85, "method": 4}),
}
#: more pixels than this is a decompression bomb (``plugins.thumbnails.max_pixels``)
DEFAULT_MAX_PIXELS = 200_000_000
#: the filter for each size.  Shrinking a photo decoded at half size to 1024 px is the
#: biggest cost after the decode: an area average (box) over those ~2x2 pixels takes half
#: the time of Pillow's antialiased bilinear and stays at 47 dB PSNR against a full decode
#: shrunk with Lanczos (bilinear 51 dB; both far past what an eye tells apart).  The 256 px
#: step is cheap: bicubic.
_RESAMPLE = {1024: Image.Resampling.BOX, 256: Image.Resampling.BICUBIC}
#: greyscale deeper than 8 bits (16-bit PNG and TIFF, 32-bit TIFF)
_DEEP_GREY = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")


class Refused(Exception):
    """The bytes make no thumbnail: not an image, truncated, or too many pixels."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, kw_only=True)
class Thumbnail:
    #: the long side asked for (256 or 1024): the key in ``plugin_data.thumbnails``
    size: int
    data: bytes
    width: int
    height: int
    suffix: str


def render(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> list[Thumbnail]:
    """Both thumbnails of an image (first frame of an animation), largest first.

    Never upscales: an image smaller than a size gets a thumbnail of its own size.  Raises
    :class:`Refused` for anything that is not a decodable image of at most ``max_pixels``
    pixels; Pillow's own bomb check (``Image.MAX_IMAGE_PIXELS``) is refused the same way.
    """
    try:
        image = _decode(data, max_pixels, SIZES[0])
        thumbnails = []
        for size in SIZES:
            image = _shrink(image, size)
            thumbnails.append(_encode(image, size))
        return thumbnails
    except Refused:
        raise
    except Image.DecompressionBombError as exc:
        raise Refused(f"decompression bomb: {exc}") from exc
    except Image.DecompressionBombWarning as exc:  # when warnings are errors
        raise Refused(f"decompression bomb: {exc}") from exc
    except Image.UnidentifiedImageError as exc:
        raise Refused("not an image Pillow can read") from exc
    except MemoryError as exc:
        raise Refused("not enough memory to decode the image") from exc
    # Pillow's decoders report broken files as any of these (truncated data, bad chunks)
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError,
            ZeroDivisionError) as exc:
        raise Refused(f"cannot decode the image: {exc or type(exc).__name__}") from exc


def _decode(data: bytes, max_pixels: int, box: int) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    width, height = image.size
    if width * height > max_pixels:
        raise Refused(f"decompression bomb: {width}x{height} is {width * height} pixels, "
                      f"over the limit of {max_pixels}")
    if width < 1 or height < 1:
        raise Refused(f"the image is {width}x{height} pixels")
    if image.format == "JPEG":
        # the largest reduction that still leaves the long side >= box (draft never goes
        # below the size asked for)
        image.draft("RGB", _fit((width, height), box))
    image.load()  # the first frame only: an animation's other frames are never decoded
    icc = image.info.get("icc_profile")
    ImageOps.exif_transpose(image, in_place=True)
    image = _web_mode(image)
    if icc and image.mode in ("RGB", "RGBA"):
        image.info["icc_profile"] = icc
    return image


def _fit(size: tuple[int, int], box: int) -> tuple[int, int]:
    """``size`` scaled so its long side is ``box`` (never larger than it was)."""
    width, height = size
    scale = min(1.0, box / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def _web_mode(image: Image.Image) -> Image.Image:
    """RGB or RGBA (L for greyscale without alpha): what JPEG and WebP take."""
    mode = image.mode
    if mode in ("RGB", "RGBA", "L"):
        return image
    if mode == "P" or mode == "PA":
        return image.convert("RGBA" if _has_alpha(image) else "RGB")
    if mode in ("LA", "La"):
        return image.convert("RGBA")
    if mode == "1":
        return image.convert("L")
    if mode in _DEEP_GREY:  # 16- and 32-bit greyscale: stretch to 8 bits, not clip at 255
        if mode != "F":
            image = image.convert("I")
        low, high = image.getextrema()
        scale = 255 / ((high - low) or 1)
        return image.point(lambda v: v * scale - low * scale).convert("L")
    if mode in ("RGBa",):
        return image.convert("RGBA")
    return image.convert("RGB")  # CMYK, YCbCr, LAB, HSV, RGBX


def _has_alpha(image: Image.Image) -> bool:
    return image.mode == "PA" or "transparency" in image.info


def _shrink(image: Image.Image, size: int) -> Image.Image:
    target = _fit(image.size, size)
    if target == image.size:
        return image
    icc = image.info.get("icc_profile")
    # reducing_gap: a fast box reduction first when shrinking a lot (a photo to 256 px),
    # then the resampling filter over the last factor of 2 (as Pillow's thumbnail() does)
    resample = _RESAMPLE[size]
    smaller = image.resize(target, resample,
                           reducing_gap=None if resample == Image.Resampling.BOX else 2.0)
    if icc:
        smaller.info["icc_profile"] = icc
    return smaller


def _encode(image: Image.Image, size: int) -> Thumbnail:
    fmt, suffix, options = ENCODINGS[size]
    icc = image.info.get("icc_profile")
    if fmt == "JPEG" and image.mode == "RGBA":
        image = _on_white(image)
    out = io.BytesIO()
    image.save(out, fmt, **options, **({"icc_profile": icc} if icc else {}))
    return Thumbnail(size=size, data=out.getvalue(), width=image.width, height=image.height,
                     suffix=suffix)


def _on_white(image: Image.Image) -> Image.Image:
    """Transparent pixels shown as on a white page (JPEG has no alpha)."""
    background = Image.new("RGB", image.size, (255, 255, 255))
    background.paste(image, mask=image.getchannel("A"))
    return background

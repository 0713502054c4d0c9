"""Content sniffing skips the matchers that search the whole head unless the head carries
their signature; the answers must be exactly filetype's own, with every matcher."""

from __future__ import annotations

import io
import random
import struct
import zipfile
import zlib

import filetype
import pytest

from plugins_builtin.assets.kinds import sniff_mime

EBML = b"\x1a\x45\xdf\xa3"


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data)))


def _png(animated: bool) -> bytes:
    head = _png_chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 6, 0, 0, 0))
    actl = _png_chunk(b"acTL", struct.pack(">II", 1, 0)) if animated else b""
    return (b"\x89PNG\r\n\x1a\n" + head + actl
            + _png_chunk(b"IDAT", zlib.compress(b"\x00\x00\x00\x00\x00")))


def _docx() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("word/document.xml", "<w:document/>")
    return out.getvalue()


def _random(seed: int, size: int = 8192) -> bytes:
    return random.Random(seed).randbytes(size)


HEADS = {
    "webm": EBML + b"\x01" * 20 + b"\x42\x82\x84webm" + b"\x00" * 100,
    "matroska": EBML + b"\x01" * 20 + b"\x42\x82\x88matroska" + b"\x00" * 100,
    "ebml without a doctype": EBML + b"\x00" * 200,
    "a webm doctype without the EBML signature": b"\x00" * 40 + b"\x42\x82\x84webm",
    "png": _png(animated=False),
    "apng": _png(animated=True),
    "docx": _docx(),
    "plain zip": b"PK\x03\x04" + b"\x00" * 60,
    "jpeg": b"\xff\xd8\xff\xe0" + b"\x00" * 100,
    "random": _random(1),
    "random with a zip signature inside": _random(2)[:300] + b"PK\x03\x04" + _random(3),
}


@pytest.mark.parametrize("name", HEADS)
def test_the_answer_is_filetypes_own_with_every_matcher(name):
    head = HEADS[name]
    found = filetype.match(head)
    expected = found.mime if found else "application/octet-stream"
    assert sniff_mime(head, "unnamed") == expected


@pytest.mark.parametrize(("name", "mime"), [("webm", "video/webm"),
                                            ("matroska", "video/x-matroska"),
                                            ("apng", "image/apng"),
                                            ("png", "image/png")])
def test_the_searched_types_are_still_found(name, mime):
    assert sniff_mime(HEADS[name], "unnamed") == mime


def test_a_file_with_no_known_content_is_named_by_its_extension():
    assert sniff_mime(_random(4), "notes.txt") == "text/plain"
    assert sniff_mime(_random(4), "unnamed") == "application/octet-stream"

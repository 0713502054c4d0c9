"""Generation parameters read in pure Python: PNG text chunks of every kind, damaged and
oversized ones, AUTOMATIC1111's text, and safetensors headers read without the weights."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import pytest

from plugins_builtin.metadata_extract.generation import (
    MAX_SAFETENSORS_HEADER,
    MAX_TEXT_BYTES,
    NotSafetensors,
    parse_a1111,
    png_text,
    safetensors_generation,
)
from tests.plugins_builtin.metadata_extract import files


def chunk(kind: bytes, data: bytes, *, crc: int | None = None) -> bytes:
    crc = zlib.crc32(kind + data) if crc is None else crc
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def split_png(data: bytes) -> tuple[bytes, bytes]:
    """A PNG cut before its IEND chunk: (everything before, IEND)."""
    return data[:-12], data[-12:]


def write(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "blob"
    path.write_bytes(data)
    return path


def test_every_kind_of_text_chunk_is_read_even_after_the_image_data(tmp_path: Path) -> None:
    body, end = split_png(files.png(3, 2))
    data = (body + chunk(b"zTXt", b"workflow\0\0" + zlib.compress(b'{"nodes": []}'))
            + chunk(b"iTXt", b"parameters\0\x01\0en\0\0" + zlib.compress("Ада".encode()))
            + chunk(b"tEXt", "prompt\0caf\xe9".encode("latin-1")) + end)
    texts, size = png_text(write(tmp_path, data))
    assert texts == {"workflow": '{"nodes": []}', "parameters": "Ада", "prompt": "café"}
    assert size == (3, 2)


def test_a_damaged_chunk_ends_the_walk_and_keeps_what_came_before(tmp_path: Path) -> None:
    body, end = split_png(files.png(3, 2, texts={"parameters": "kept"}))
    data = body + chunk(b"tEXt", b"prompt\0lost", crc=1234) + end
    assert png_text(write(tmp_path, data)) == ({"parameters": "kept"}, (3, 2))
    # cut short in the middle of a chunk
    assert png_text(write(tmp_path, body + chunk(b"tEXt", b"prompt\0x")[:-6]))[0] == {
        "parameters": "kept"}


def test_a_compressed_text_bomb_is_not_inflated(tmp_path: Path) -> None:
    body, end = split_png(files.png(1, 1))
    bomb = zlib.compress(b"\0" * (MAX_TEXT_BYTES + 1), 9)
    data = body + chunk(b"zTXt", b"prompt\0\0" + bomb) + chunk(b"tEXt", b"workflow\0ok") + end
    assert png_text(write(tmp_path, data))[0] == {"workflow": "ok"}


def test_not_a_png(tmp_path: Path) -> None:
    assert png_text(write(tmp_path, files.jpeg())) == ({}, None)


def test_a1111_text_without_negative_prompt_or_settings() -> None:
    assert parse_a1111("a cat\non a mat") == {"prompt": "a cat\non a mat",
                                              "negative_prompt": "", "settings": {}}
    assert parse_a1111("a cat\nSteps: 20, Sampler: Euler a, Seed: 7") == {
        "prompt": "a cat", "negative_prompt": "",
        "settings": {"Steps": "20", "Sampler": "Euler a", "Seed": "7"}}


class Blob:
    """A provider's ``open_range`` over bytes in memory, recording what was asked for."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.ranges: list[tuple[int, int]] = []

    async def read_range(self, start: int, end: int):
        self.ranges.append((start, end))
        for at in range(start, end + 1, 1000):  # in pieces, as providers yield them
            yield self.data[at:min(at + 1000, end + 1)]


async def test_only_the_header_of_a_safetensors_file_is_read() -> None:
    data = files.safetensors(files.LORA_METADATA, tensors=4, data_bytes=2_000_000)
    blob = Blob(data)
    generation = await safetensors_generation(blob.read_range, len(data))
    assert generation["tensor_count"] == 4
    assert generation["metadata"]["ss_tag_frequency"] == {"img": {"ada": 12, "portrait": 7}}
    (length,) = struct.unpack("<Q", data[:8])
    assert blob.ranges == [(0, 7), (8, 8 + length - 1)]  # never the two megabytes after


@pytest.mark.parametrize(("data", "reason"), [
    (b"\x01\x02", "too short for a safetensors header"),
    (files.safetensors({}, header_length=10**9), "header length 1000000000 does not fit"),
    (struct.pack("<Q", MAX_SAFETENSORS_HEADER + 1) + b"{}" * 10,
     f"header length {MAX_SAFETENSORS_HEADER + 1} does not fit"),
    (struct.pack("<Q", 5) + b"{oops", "the header is not JSON"),
    (struct.pack("<Q", 2) + b"[]", "the header is not a JSON object"),
])
async def test_headers_that_are_not_safetensors(data: bytes, reason: str) -> None:
    blob = Blob(data)
    with pytest.raises(NotSafetensors) as caught:
        await safetensors_generation(blob.read_range, len(data))
    assert str(caught.value).startswith(reason)
    assert all(end - start < 1024 for start, end in blob.ranges)


async def test_metadata_values_that_are_not_json_stay_text() -> None:
    data = files.safetensors({"ss_tag_frequency": "{not json", "note": "[1, 2]",
                              "name": "plain"})
    generation = await safetensors_generation(Blob(data).read_range, len(data))
    assert generation["metadata"] == {"ss_tag_frequency": "{not json", "note": [1, 2],
                                      "name": "plain"}
    assert json.dumps(generation)

"""Generation parameters embedded in files, read in pure Python (no ExifTool needed).

- PNG text chunks (``tEXt``/``zTXt``/``iTXt``): ``parameters`` (AUTOMATIC1111 / Forge) and
  ``prompt`` / ``workflow`` (ComfyUI, JSON text kept as objects).  The chunks are walked
  without reading the image data.
- The safetensors header (8 bytes little-endian length, then JSON): ``__metadata__`` (values
  that hold JSON text, such as ``ss_tag_frequency``, parsed) and the tensor count.  Only the
  header is read, never the weights.
"""

from __future__ import annotations

import contextlib
import re
import struct
import zlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from ff_plugin_sdk.jsontext import NotJson, parse_json

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: text chunks whose key is one of these hold generation parameters
PNG_KEYS = ("parameters", "prompt", "workflow")
#: a text chunk (or its decompressed text) larger than this is not metadata
MAX_TEXT_BYTES = 32 * 1024 * 1024
#: the largest safetensors header read (real ones are KB to a few MB)
MAX_SAFETENSORS_HEADER = 100 * 1024 * 1024
#: AUTOMATIC1111's own pattern for ``Steps: 20, Sampler: Euler a, Size: 512x512``
_A1111_SETTING = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')


class NotSafetensors(ValueError):
    """The header cannot be a safetensors header; the message says why."""


# -- PNG ---------------------------------------------------------------------------------

def png_text(path: Path) -> tuple[dict[str, str], tuple[int, int] | None]:
    """The PNG's text chunks (first of each key) and its size from ``IHDR``.

    Not a PNG, or cut short: what was read so far.  Blocking: run it in a thread.
    """
    texts: dict[str, str] = {}
    size: tuple[int, int] | None = None
    with open(path, "rb") as fh:
        if fh.read(8) != PNG_SIGNATURE:
            return texts, None
        while True:
            head = fh.read(8)
            if len(head) < 8:
                break
            length, kind = struct.unpack(">I4s", head)
            if kind == b"IEND":
                break
            if kind == b"IHDR" and length >= 8:
                width, height = struct.unpack(">II", fh.read(8))
                size = (width, height)
                fh.seek(length - 8 + 4, 1)
                continue
            if kind in (b"tEXt", b"zTXt", b"iTXt") and length <= MAX_TEXT_BYTES:
                data = fh.read(length)
                crc = fh.read(4)
                if len(crc) < 4 or zlib.crc32(kind + data) != int.from_bytes(crc, "big"):
                    break  # cut short or damaged: keep what was read before
                decoded = _decode_text(kind, data)
                if decoded is not None and decoded[0] not in texts:
                    texts[decoded[0]] = decoded[1]
                continue
            fh.seek(length + 4, 1)  # skip image data and its CRC without reading it
    return texts, size


def _inflate(data: bytes) -> bytes | None:
    inflater = zlib.decompressobj()
    try:
        text = inflater.decompress(data, MAX_TEXT_BYTES)
    except zlib.error:
        return None
    return None if inflater.unconsumed_tail else text  # past the cap: a zip bomb, not text


def _latin1_or_utf8(raw: bytes) -> str:
    # tEXt is Latin-1 by the standard, but several generators write UTF-8 into it
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _decode_text(kind: bytes, data: bytes) -> tuple[str, str] | None:
    key, sep, rest = data.partition(b"\0")
    if not sep or not key:
        return None
    name = key.decode("latin-1")
    if kind == b"tEXt":
        return name, _latin1_or_utf8(rest)
    if kind == b"zTXt":
        text = _inflate(rest[1:])
        return None if text is None else (name, _latin1_or_utf8(text))
    # iTXt: compression flag, method, language\0, translated keyword\0, UTF-8 text
    if len(rest) < 2:
        return None
    compressed, body = rest[0], rest[2:]
    parts = body.split(b"\0", 2)
    if len(parts) < 3:
        return None
    raw: bytes | None = _inflate(parts[2]) if compressed else parts[2]
    return None if raw is None else (name, raw.decode("utf-8", "replace"))


def png_generation(texts: dict[str, str]) -> dict[str, Any] | None:
    """``extracted_metadata["generation"]`` from a PNG's text chunks, or None."""
    found = {key: texts[key] for key in PNG_KEYS if key in texts}
    if not found:
        return None
    generation: dict[str, Any] = {
        "source": "png:parameters" if "parameters" in found else "png:comfyui"}
    for key, text in found.items():
        if key == "parameters":
            generation["parameters"] = text
            generation["parsed"] = parse_a1111(text)
        else:
            generation[key] = _json_or_text(text)
    return generation


def parse_a1111(text: str) -> dict[str, Any]:
    """AUTOMATIC1111's ``parameters``: prompt, negative prompt, and the settings line."""
    lines = text.strip().split("\n")
    settings: dict[str, str] = {}
    if lines and len(_A1111_SETTING.findall(lines[-1])) >= 3:
        settings = {k.strip(): _unquote(v.strip())
                    for k, v in _A1111_SETTING.findall(lines.pop())}
    prompt: list[str] = []
    negative: list[str] = []
    target = prompt
    for line in lines:
        if line.startswith("Negative prompt:"):
            target = negative
            line = line[len("Negative prompt:"):].lstrip()
        target.append(line)
    return {"prompt": "\n".join(prompt).strip(), "negative_prompt": "\n".join(negative).strip(),
            "settings": settings}


def _unquote(value: str) -> str:
    """A1111 quotes a value holding commas as a JSON string."""
    if len(value) >= 2 and value[0] == value[-1] == '"':
        with contextlib.suppress(NotJson):
            unquoted = parse_json(value)
            if isinstance(unquoted, str):
                return unquoted
    return value


def _json_or_text(text: str) -> Any:
    """JSON text as the object it holds; anything else as it is."""
    stripped = text.strip()
    if stripped[:1] in ("{", "["):
        try:
            return parse_json(stripped)
        except NotJson:
            pass
    return text


# -- safetensors -------------------------------------------------------------------------

ReadRange = Callable[[int, int], AsyncIterator[bytes]]


async def _read(read_range: ReadRange, start: int, end: int) -> bytes:
    data = bytearray()
    async for chunk in read_range(start, end):
        data += chunk
    return bytes(data)


async def safetensors_generation(read_range: ReadRange, size: int) -> dict[str, Any]:
    """``extracted_metadata["generation"]`` from a safetensors header.

    ``read_range(start, end)`` yields bytes ``start..end`` inclusive (a provider's
    ``open_range`` for the blob).  :class:`NotSafetensors` when the header is not one.
    """
    if size < 8:
        raise NotSafetensors("too short for a safetensors header")
    (length,) = struct.unpack("<Q", await _read(read_range, 0, 7))
    if length < 2 or length > MAX_SAFETENSORS_HEADER or 8 + length > size:
        raise NotSafetensors(f"header length {length} does not fit a {size}-byte file "
                             f"(at most {MAX_SAFETENSORS_HEADER})")
    try:
        header = parse_json(await _read(read_range, 8, 8 + length - 1))
    except NotJson as exc:
        raise NotSafetensors("the header is not JSON") from exc
    if not isinstance(header, dict):
        raise NotSafetensors("the header is not a JSON object")
    raw = header.get("__metadata__")
    metadata = ({k: _json_or_text(v) if isinstance(v, str) else v for k, v in raw.items()}
                if isinstance(raw, dict) else {})
    return {"source": "safetensors", "metadata": metadata,
            "tensor_count": sum(1 for k in header if k != "__metadata__")}

"""What a file is: its MIME type (content first, then name) and the asset kind it gets when
the uploader names none."""

from __future__ import annotations

import mimetypes
import re

import filetype
from filetype.types import TYPES
from filetype.types.document import ZippedDocumentBase
from filetype.types.image import Apng
from filetype.types.video import Mkv, Webm

from ff_plugin_sdk import AssetKind

GENERIC = "application/octet-stream"
#: ``image.original``, ``model.lora``: dotted lowercase words
KIND_PATTERN = r"^[a-z0-9][a-z0-9_\-]*(\.[a-z0-9][a-z0-9_\-]*){0,7}$"
_KIND = re.compile(KIND_PATTERN)
#: model files are recognised by name: their content has no magic number
_MODEL_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".pth", ".gguf", ".onnx")

KINDS = [
    AssetKind(name="image.original", description="a photo or picture as uploaded"),
    AssetKind(name="image.thumbnail", description="a smaller image derived from another"),
    AssetKind(name="model.lora", description="a LoRA or other model weights"),
    AssetKind(name="doc.pdf", description="a PDF document"),
    AssetKind(name="doc.text", description="a text document"),
    AssetKind(name="audio.clip", description="a voice or sound clip"),
    AssetKind(name="video.clip", description="a video"),
    AssetKind(name="file", description="anything else"),
]


#: the matchers that cannot match a head without a ZIP, PNG or EBML (Matroska) signature
#: (they search the whole head, and cost most of sniffing an unknown file): skipped for
#: other heads
_SIGNED = (b"PK\x03\x04", b"\x89PNG\r\n\x1a\n", b"\x1a\x45\xdf\xa3")
_UNSIGNED_TYPES = [t for t in TYPES if not isinstance(t, ZippedDocumentBase | Apng | Mkv | Webm)]


def valid_kind(kind: str) -> bool:
    return len(kind) <= 100 and bool(_KIND.match(kind))


def sniff_mime(head: bytes, filename: str, declared: str | None = None) -> str:
    """Content sniffing, then the extension, then what the client said, then generic."""
    if head:
        found = filetype.match(head, matchers=TYPES if head.startswith(_SIGNED)
                               else _UNSIGNED_TYPES)
        if found:
            return str(found.mime)
    by_name, _ = mimetypes.guess_type(filename, strict=False)
    if by_name:
        return by_name
    if declared and "/" in declared and declared.split(";")[0].strip() != GENERIC:
        return declared.split(";")[0].strip().lower()
    return GENERIC


def default_kind(mime: str, filename: str) -> str:
    if filename.lower().endswith(_MODEL_SUFFIXES):
        return "model.lora"
    family = mime.split("/", 1)[0]
    if family == "image":
        return "image.original"
    if family == "audio":
        return "audio.clip"
    if family == "video":
        return "video.clip"
    if mime == "application/pdf":
        return "doc.pdf"
    if family == "text":
        return "doc.text"
    return "file"

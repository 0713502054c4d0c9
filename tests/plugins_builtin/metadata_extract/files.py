"""Real media files built in the test: what cameras, generators and recorders write."""

from __future__ import annotations

import io
import json
import struct
import wave
from typing import Any

from PIL import Image
from PIL.PngImagePlugin import PngInfo

A1111 = ("a portrait of Ada Lovelace, oil painting\n"
         "Negative prompt: blurry, lowres\n"
         'Steps: 28, Sampler: DPM++ 2M Karras, CFG scale: 6.5, Seed: 1234, Size: 512x768, '
         'Lora hashes: "ada: 0123abcd, style: 4567ef01"')
COMFY_PROMPT = {"3": {"class_type": "KSampler", "inputs": {"seed": 42, "steps": 20}}}
COMFY_WORKFLOW = {"last_node_id": 9, "nodes": [{"id": 3, "type": "KSampler"}]}


def jpeg(width: int = 640, height: int = 480, *, make: str = "Canon",
         model: str = "EOS R5", color: str = "red") -> bytes:
    """A JPEG with EXIF camera make and model."""
    exif = Image.Exif()
    exif[0x010F] = make
    exif[0x0110] = model
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, "JPEG", exif=exif)
    return out.getvalue()


def png(width: int = 320, height: int = 200, *, texts: dict[str, str] | None = None,
        itxt: dict[str, str] | None = None, zip_itxt: bool = False, color: int = 0) -> bytes:
    """A PNG with text chunks (``tEXt`` for ``texts``, ``iTXt`` for ``itxt``)."""
    info = PngInfo()
    for key, value in (texts or {}).items():
        info.add_text(key, value)
    for key, value in (itxt or {}).items():
        info.add_itxt(key, value, zip=zip_itxt)
    out = io.BytesIO()
    Image.new("RGB", (width, height), (color % 256, 0, 0)).save(out, "PNG", pnginfo=info)
    return out.getvalue()


def generated_png() -> bytes:
    """An AUTOMATIC1111 image that was also run through ComfyUI: both kinds of parameters."""
    return png(512, 768, texts={"parameters": A1111, "prompt": json.dumps(COMFY_PROMPT),
                                "workflow": json.dumps(COMFY_WORKFLOW)})


def wav(seconds: float, rate: int = 8000) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"\0\0" * int(rate * seconds))
    return out.getvalue()


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def _full_box(kind: bytes, flags: int, payload: bytes) -> bytes:
    return _box(kind, bytes([0]) + flags.to_bytes(3, "big") + payload)


def mp4(width: int, height: int, seconds: float) -> bytes:
    """An MP4 with one video track and no samples: what ExifTool reads of a video is the
    ``moov`` box (movie and track headers), so no encoder is needed."""
    scale, length = 1000, int(seconds * 1000)
    matrix = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
    mvhd = _full_box(b"mvhd", 0, struct.pack(">IIII", 0, 0, scale, length)
                     + struct.pack(">IH", 0x10000, 0x100) + b"\0" * 10 + matrix + b"\0" * 24
                     + struct.pack(">I", 2))
    tkhd = _full_box(b"tkhd", 7, struct.pack(">IIIII", 0, 0, 1, 0, length) + b"\0" * 8
                     + struct.pack(">hhH", 0, 0, 0) + b"\0\0" + matrix
                     + struct.pack(">II", width << 16, height << 16))
    mdhd = _full_box(b"mdhd", 0, struct.pack(">IIII", 0, 0, scale, length)
                     + struct.pack(">HH", 0x55C4, 0))
    hdlr = _full_box(b"hdlr", 0, struct.pack(">I4s12s", 0, b"vide", b"") + b"Video\0")
    moov = _box(b"moov", mvhd + _box(b"trak", tkhd + _box(b"mdia", mdhd + hdlr)))
    ftyp = _box(b"ftyp", b"isom" + struct.pack(">I", 512) + b"isomiso2mp41")
    return ftyp + _box(b"mdat", b"") + moov


def mp3(frames: int) -> bytes:
    """MPEG-1 layer III, 128 kbit/s, 44.1 kHz, silent frames (1152 samples each)."""
    return (bytes.fromhex("fffb9064") + b"\0" * (417 - 4)) * frames


def safetensors(metadata: dict[str, str], tensors: int = 3, *, data_bytes: int = 4096,
                header_length: int | None = None) -> bytes:
    """A safetensors file: ``__metadata__`` plus ``tensors`` float32 tensors."""
    header: dict[str, Any] = {"__metadata__": metadata}
    per = data_bytes // tensors // 4 * 4
    for i in range(tensors):
        header[f"lora_unet_block_{i}.weight"] = {
            "dtype": "F32", "shape": [per // 4], "data_offsets": [i * per, (i + 1) * per]}
    raw = json.dumps(header).encode()
    length = len(raw) if header_length is None else header_length
    return struct.pack("<Q", length) + raw + b"\0" * (per * tensors)


LORA_METADATA = {"ss_output_name": "ada_lovelace", "ss_network_dim": "32",
                 "ss_tag_frequency": json.dumps({"img": {"ada": 12, "portrait": 7}}),
                 "modelspec.title": "Ada"}

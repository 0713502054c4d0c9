"""Writing a small, valid ``.safetensors`` LoRA file with the standard library.

The format: an 8-byte little-endian header length, a JSON header naming each tensor's
dtype, shape and byte range (plus ``__metadata__``, string to string), padded with spaces
to 8 bytes, then the tensors' bytes.  Weights are deterministic placeholders: a SHA-256
stream seeded by what the model was "trained" on, so the same inputs give the same file.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

#: a few kohya-style LoRA modules (SD UNet attention projections); enough for a real layout
MODULES = (
    "lora_unet_down_blocks_0_attentions_0_proj_in",
    "lora_unet_mid_block_attentions_0_proj_out",
    "lora_unet_up_blocks_1_attentions_0_transformer_blocks_0_attn1_to_q",
)
#: the width of each placeholder module (a real SDXL projection is 320-1280)
FEATURES = 64


def _floats(seed: bytes, count: int) -> Iterator[float]:
    """``count`` floats in [-0.01, 0.01) from a SHA-256 counter stream."""
    block = 0
    made = 0
    while made < count:
        digest = hashlib.sha256(seed + block.to_bytes(8, "little")).digest()
        for (word,) in struct.iter_unpack("<I", digest):
            if made == count:
                return
            yield (word / 2**32 - 0.5) * 0.02
            made += 1
        block += 1


def _tensor(values: Sequence[float], fp16: bool) -> bytes:
    return struct.pack(f"<{len(values)}{'e' if fp16 else 'f'}", *values)


def write_lora(path: Path, *, seed: bytes, rank: int, alpha: float, fp16: bool,
               metadata: Mapping[str, str]) -> dict[str, object]:
    """Write the file; returns its header (what a loader will read)."""
    dtype = "F16" if fp16 else "F32"
    tensors: list[tuple[str, list[int], bytes]] = []
    for module in MODULES:
        down = list(_floats(seed + module.encode() + b".down", rank * FEATURES))
        up = list(_floats(seed + module.encode() + b".up", FEATURES * rank))
        tensors += [(f"{module}.lora_down.weight", [rank, FEATURES], _tensor(down, fp16)),
                    (f"{module}.lora_up.weight", [FEATURES, rank], _tensor(up, fp16)),
                    (f"{module}.alpha", [], _tensor([alpha], fp16))]
    header: dict[str, object] = {"__metadata__": dict(metadata)}
    offset = 0
    for name, shape, data in tensors:
        header[name] = {"dtype": dtype, "shape": shape,
                        "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)
    with path.open("wb") as out:
        out.write(struct.pack("<Q", len(encoded)))
        out.write(encoded)
        for _, _, data in tensors:
            out.write(data)
    return header


def read_header(path: Path) -> dict[str, object]:
    """The JSON header of a ``.safetensors`` file (checks the byte ranges add up)."""
    with path.open("rb") as f:
        (size,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(size))
        body = len(f.read())
    ends = [entry["data_offsets"][1] for name, entry in header.items()
            if name != "__metadata__"]
    if max(ends, default=0) != body:
        raise ValueError(f"tensor data is {body} bytes; the header says {max(ends)}")
    return header

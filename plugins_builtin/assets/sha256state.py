"""A SHA-256 whose state can be saved and restored, so a resumable upload's hash carries on
where it stopped — across PATCH requests and across restarts — without re-reading the bytes
already written.

``hashlib`` cannot export its state, so this uses OpenSSL's ``SHA256_Init/Update/Final`` (the
same library and assembly ``hashlib`` runs) on a context buffer we own; the state is that
buffer's bytes.  ctypes releases the GIL during each call, as hashlib does.  Where libcrypto
cannot be loaded, :class:`Sha256` falls back to ``hashlib`` and :meth:`Sha256.state` says
None: the caller then re-reads the file once after a restart.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
from typing import Any

#: sizeof(SHA256_CTX) is 112 on every platform OpenSSL supports; room to spare, and the size
#: is part of the saved state so a state from a different layout is refused, not misread
_CTX_BYTES = 128
_MAGIC = b"ffsha256/1:"


def _load() -> Any:
    name = ctypes.util.find_library("crypto")
    if name is None:
        return None
    try:
        lib = ctypes.CDLL(name)
        for fn, args in (("SHA256_Init", [ctypes.c_void_p]),
                         ("SHA256_Update", [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t]),
                         ("SHA256_Final", [ctypes.c_char_p, ctypes.c_void_p])):
            getattr(lib, fn).argtypes = args
            getattr(lib, fn).restype = ctypes.c_int
    except (OSError, AttributeError):
        return None
    return lib


_LIB = _load()


class Sha256:
    """``update`` / ``hexdigest`` like hashlib, plus ``state()`` and ``Sha256(state)``."""

    def __init__(self, state: bytes | None = None) -> None:
        self._ctx: ctypes.Array[ctypes.c_char] | None = None
        self._fallback: Any = None
        if _LIB is None:
            if state is not None:
                raise ValueError("this Python has no libcrypto: a saved SHA-256 state cannot "
                                 "be restored")
            self._fallback = hashlib.sha256()
            return
        self._ctx = ctypes.create_string_buffer(_CTX_BYTES)
        if state is None:
            _LIB.SHA256_Init(self._ctx)
        elif state.startswith(_MAGIC) and len(state) == len(_MAGIC) + _CTX_BYTES:
            ctypes.memmove(self._ctx, state[len(_MAGIC):], _CTX_BYTES)
        else:
            raise ValueError("not a saved SHA-256 state")

    def update(self, data: bytes | bytearray) -> None:
        if self._ctx is None:
            self._fallback.update(data)
            return
        if not data:
            return
        pointer = (ctypes.c_char * len(data)).from_buffer(data) if isinstance(
            data, bytearray) else ctypes.c_char_p(data)
        _LIB.SHA256_Update(self._ctx, pointer, len(data))

    def state(self) -> bytes | None:
        """The state to save (None: this hash cannot be saved; see the module doc)."""
        return None if self._ctx is None else _MAGIC + self._ctx.raw

    def hexdigest(self) -> str:
        if self._ctx is None:
            return str(self._fallback.hexdigest())
        ctx = ctypes.create_string_buffer(self._ctx.raw, _CTX_BYTES)  # Final ends a context
        out = ctypes.create_string_buffer(32)
        _LIB.SHA256_Final(out, ctx)
        return out.raw.hex()


def _works() -> bool:
    """The library's answer matches hashlib's, before and after a save and restore."""
    probe = Sha256()
    probe.update(b"faceforge" * 100)
    state = probe.state()
    resumed = Sha256(state) if state is not None else probe
    resumed.update(bytearray(b"!" * 70))
    return resumed.hexdigest() == hashlib.sha256(b"faceforge" * 100 + b"!" * 70).hexdigest()


if _LIB is not None and not _works():  # an unexpected context layout: never guess
    _LIB = None

#: whether hash states can be saved here
RESUMABLE = _LIB is not None

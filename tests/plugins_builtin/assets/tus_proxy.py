"""A TCP proxy in front of a real Core that follows the HTTP requests going through it,
counts the bytes of PATCH bodies, and can cut the connection in the middle of one — the
network dropping under a tus client, as the client and the server each see it."""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import threading
from collections.abc import Callable
from typing import Any

#: ``SO_LINGER`` on, timeout 0: closing sends a reset, not an orderly end
_RESET = struct.pack("ii", 1, 0)
_POLL_SECONDS = 0.2  # how often idle relay threads look whether the proxy is closing


class _Requests:
    """Where the requests on one HTTP/1.1 connection begin and end: which bytes are a
    PATCH's body (requests with a ``Content-Length``, as tus clients send them)."""

    def __init__(self) -> None:
        self.head = b""
        self.method = b""
        self.body_left = 0

    def split(self, data: bytes) -> list[tuple[bytes, bool]]:
        """``data`` in pieces, each marked whether it is PATCH body."""
        pieces: list[tuple[bytes, bool]] = []
        while data:
            if self.body_left:
                body, data = data[:self.body_left], data[self.body_left:]
                self.body_left -= len(body)
                pieces.append((body, self.method == b"PATCH"))
                continue
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                pieces.append((data, False))
                break
            rest = self.head[end + 4:]
            pieces.append((data[:len(data) - len(rest)], False))
            lines = self.head[:end].split(b"\r\n")
            self.method = lines[0].split(b" ", 1)[0]
            self.body_left = 0
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    self.body_left = int(value.strip())
            self.head, data = b"", rest
        return pieces


class CuttingProxy:
    """Forwards 127.0.0.1:``port`` (read it from :attr:`port`) to Core on ``target``.

    Once ``cut_at`` bytes of PATCH bodies in all have gone through (counted from the proxy's
    start), it forwards no more of that body, runs ``on_cut`` (if given) and resets both
    sides of the connection.  It cuts once; afterwards it only forwards and counts, so a
    resume through it shows how many bytes were sent again (:attr:`patch_bytes`).
    """

    def __init__(self, target: int, *, cut_at: int | None = None,
                 on_cut: Callable[[], Any] | None = None) -> None:
        self.target = target
        self.cut_at = cut_at
        self.on_cut = on_cut
        self.patch_bytes = 0
        self.cut = threading.Event()
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(_POLL_SECONDS)
        self.port: int = self._listener.getsockname()[1]
        self._threads: list[threading.Thread] = []

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> CuttingProxy:
        self._spawn(self._accept)
        return self

    def __exit__(self, *exc: object) -> None:
        self._closing.set()
        for thread in list(self._threads):
            thread.join(timeout=10)
        self._listener.close()

    def _spawn(self, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                downstream, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            downstream.settimeout(None)
            self._spawn(self._relay, downstream)

    def _relay(self, downstream: socket.socket) -> None:
        try:
            upstream = socket.create_connection(("127.0.0.1", self.target), timeout=10)
        except OSError:
            _reset(downstream)
            return
        upstream.settimeout(None)
        requests = _Requests()
        try:
            while not self._closing.is_set():
                ready, _, _ = select.select([downstream, upstream], [], [], _POLL_SECONDS)
                for sock in ready:
                    data = sock.recv(256 * 1024)
                    if not data:
                        return
                    if sock is upstream:
                        downstream.sendall(data)
                    elif not self._forward(requests, data, upstream):
                        if self.on_cut is not None:
                            self.on_cut()
                        self.cut.set()  # before the client can see the reset and look
                        _reset(downstream)
                        _reset(upstream)
                        return
        except OSError:
            return
        finally:
            for sock in (downstream, upstream):
                with contextlib.suppress(OSError):
                    sock.close()

    def _forward(self, requests: _Requests, data: bytes, upstream: socket.socket) -> bool:
        """Send ``data`` on; False when the cut point was reached (the rest is dropped)."""
        for piece, patch_body in requests.split(data):
            if patch_body:
                with self._lock:
                    armed = self.cut_at is not None and not self.cut.is_set()
                    room = self.cut_at - self.patch_bytes if armed else len(piece)
                    piece = piece[:max(room, 0)]
                    self.patch_bytes += len(piece)
                upstream.sendall(piece)
                if armed and len(piece) == room:
                    return False
            else:
                upstream.sendall(piece)
        return True


def _reset(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET)
    with contextlib.suppress(OSError):
        sock.close()

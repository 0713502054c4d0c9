"""Reading a server-sent-events stream (the WHATWG event-stream format), chunk by chunk."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Message:
    event: str
    data: str
    #: the stream's last event id when this message was dispatched
    id: str | None


class Parser:
    """Feed it bytes as they arrive; it returns the messages they complete."""

    def __init__(self) -> None:
        self._pending = b""
        self._event = ""
        self._data: list[str] = []
        self.last_id: str | None = None
        #: the reconnection time the server asked for, in milliseconds
        self.retry_ms: int | None = None

    def feed(self, chunk: bytes) -> list[Message]:
        lines = (self._pending + chunk).splitlines(keepends=True)
        # an unfinished line, or a lone CR whose LF may come in the next chunk, waits
        self._pending = lines.pop() if lines and not lines[-1].endswith(b"\n") else b""
        out = []
        for raw in lines:
            message = self._line(raw.rstrip(b"\r\n").decode("utf-8", "replace"))
            if message is not None:
                out.append(message)
        return out

    def _line(self, line: str) -> Message | None:
        if not line:
            data, event = self._data, self._event
            self._data, self._event = [], ""
            return Message(event or "message", "\n".join(data), self.last_id) if data else None
        if line.startswith(":"):
            return None  # a comment: the server's keep-alive
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self.last_id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self.retry_ms = int(value)
        return None

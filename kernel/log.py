"""Logging: JSON lines to ``logs/core.log`` (rotated), readable lines on the console.

Every record carries the correlation id of the work that caused it, and secrets are
redacted before anything is written.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import re
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, BinaryIO

import msgspec

from kernel.correlation import correlation_id
from kernel.home import private_dir

ROOT = "faceforge"
REDACTED = "[REDACTED]"
#: Every secret shape in one pass.  Groups 1-3 are the text kept before the redaction (the
#: ``token=`` of ``token=abc``); the template drops the groups that did not take part.
_SECRET = re.compile(
    r"\b(?:hf_[A-Za-z0-9]{6,}|sk-[A-Za-z0-9_\-]{6,})"
    r"|(?i:(\btoken=|\bpassword=)[^\s&\"']+)"
    r"|(?i:(\bauthorization[\"']?\s*[:=]\s*[\"']?)(?:bearer\s+)?[^\s\"',}]+)"
    r"|(?i:(\bx-faceforge-token[\"']?\s*[:=]\s*[\"']?)[^\s\"',}]+)"
)
_SECRET_TEMPLATE = r"\1\2\3" + REDACTED
#: A mapping key whose string value is a secret header: {"Authorization": "Bearer ..."}.
_SECRET_KEY = re.compile(r"(?i)\b(?:authorization|x-faceforge-token)[\"']?$")
#: LogRecord attributes that are not user context.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message", "asctime"}
_NOT_CONTEXT = _STANDARD | {"correlation_id"}
LOG_FILE_MODE = 0o600


class Redactor:
    """Replaces known secrets and secret-shaped strings.

    ``secrets`` is a plain list: the kernel appends a rotated install token to it.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets = [s for s in secrets if s]

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        # Every shape needs one of these; most lines (an access line) have none.
        if "=" in text or ":" in text or "hf_" in text or "sk-" in text:
            text = _SECRET.sub(_SECRET_TEMPLATE, text)
        return text

    def value(self, value: Any) -> Any:
        """``value`` as JSON-ready data (str, number, bool, None, list, dict), redacted.

        Anything else becomes its ``str()`` first, so no text escapes redaction.
        """
        kind = type(value)
        if kind is str:
            return self(value)
        if value is None or kind is int or kind is float or kind is bool:
            return value
        if isinstance(value, dict):
            return {str(key): self.item(str(key), item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(item) for item in value]
        if isinstance(value, int | float):  # a subclass (an IntEnum, say): the encoder wants
            return (int if isinstance(value, int) else float)(value)  # the plain type
        return self(str(value))

    def item(self, key: str, value: Any) -> Any:
        """A mapping entry's value: a secret header's value is redacted by its key."""
        if isinstance(value, str) and _secret_key(key):
            prefix = f"{key}: "
            joined = self(prefix + value)
            return joined[len(prefix):] if joined.startswith(prefix) else self(value)
        return self.value(value)


@functools.lru_cache(maxsize=512)
def _secret_key(key: str) -> bool:
    return _SECRET_KEY.search(key) is not None


class _ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "correlation_id"):
            record.correlation_id = correlation_id.get()
        return True


class _SecondCache:
    """``time.strftime`` of a record's second, computed once per second, not per line."""

    def __init__(self, fmt: str, convert: Callable[[float], time.struct_time]) -> None:
        self.fmt, self.convert = fmt, convert
        self.last: tuple[int, str] = (-1, "")

    def __call__(self, created: float) -> str:
        second = int(created)
        last = self.last
        if last[0] != second:
            last = self.last = (second, time.strftime(self.fmt, self.convert(second)))
        return last[1]


def _exception_text(formatter: logging.Formatter, record: logging.LogRecord) -> str | None:
    if record.exc_info and not record.exc_text:
        record.exc_text = formatter.formatException(record.exc_info)  # cached for all handlers
    return record.exc_text or None


class JsonFormatter(logging.Formatter):
    """One JSON object per record: timestamp, level, logger, correlation_id, message,
    context (the record's ``extra=``) and, with a traceback, exception."""

    def __init__(self, redact: Redactor) -> None:
        super().__init__()
        self.redact = redact
        self._encode = msgspec.json.Encoder().encode
        self._second = _SecondCache("%Y-%m-%dT%H:%M:%S", time.gmtime)

    def format(self, record: logging.LogRecord) -> str:
        return self.encode(record).decode("utf-8")

    def encode(self, record: logging.LogRecord) -> bytes:
        """The line as UTF-8, without its newline."""
        redact = self.redact
        # Redact the values, not the encoded line: a pattern must neither eat the backslash
        # of a JSON escape (breaking the line) nor miss a secret right after one ("\nhf_...").
        entry: dict[str, Any] = {
            # the one timestamp format (kernel.clock): microseconds, UTC, "Z"
            "timestamp": f"{self._second(record.created)}."
                         f"{int(record.created * 1_000_000) % 1_000_000:06d}Z",
            "level": record.levelname,
            "logger": redact(record.name),
            "correlation_id": redact.value(getattr(record, "correlation_id", None)),
            "message": redact(record.getMessage()),
            "context": {key: redact.item(key, value) for key, value in vars(record).items()
                        if key not in _NOT_CONTEXT},
        }
        exception = _exception_text(self, record)
        if exception:
            entry["exception"] = redact(exception)
        try:
            return self._encode(entry)
        except UnicodeEncodeError:  # a lone surrogate (a file name that is not UTF-8): escape it
            return json.dumps(entry).encode("ascii")


class ConsoleFormatter(logging.Formatter):
    """``12:34:56 INFO    faceforge.http [cid] message``, redacted, in local time."""

    def __init__(self, redact: Redactor) -> None:
        super().__init__()
        self.redact = redact
        self._second = _SecondCache("%H:%M:%S", time.localtime)

    def format(self, record: logging.LogRecord) -> str:
        # Built by hand: the record is shared with the JSON handler, whose context must stay
        # clean, and copying it to use the stdlib's %-style template costs more than the rest.
        cid = getattr(record, "correlation_id", None) or "-"
        text = f"{record.name} [{cid}] {record.getMessage()}"
        exception = _exception_text(self, record)
        if exception:
            text = f"{text}\n{exception}"
        if record.stack_info:
            text = f"{text}\n{self.formatStack(record.stack_info)}"
        # The clock and the level are ours; left out of the redaction, the clock's colons no
        # longer send every line through the secret patterns.
        return f"{self._second(record.created)} {record.levelname:<7} {self.redact(text)}"


class _LogFile(logging.Handler):
    """JSON lines appended to ``path``, rotated by size, created (and kept) mode 0600.

    Each line is formatted once, encoded straight to bytes and written with one ``write``;
    the size is counted here instead of asking the file (the stdlib's rotating handler
    formats every record twice and stats the file on every line).
    """

    def __init__(self, path: Path, formatter: JsonFormatter, *, max_bytes: int,
                 backup_count: int) -> None:
        super().__init__()
        self.path, self.max_bytes, self.backup_count = path, max_bytes, backup_count
        self.setFormatter(formatter)
        self._json = formatter
        self._stream: BinaryIO | None = None
        self._size = 0
        for n in range(1, backup_count + 1):  # backups an older Core left world-readable
            _tighten(path.with_name(f"{path.name}.{n}"))
        self._stream = self._open()

    def _open(self) -> BinaryIO:
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_BINARY", 0)
        fd = os.open(self.path, flags, LOG_FILE_MODE)
        try:
            info = os.fstat(fd)
            if os.name == "posix" and info.st_mode & 0o777 != LOG_FILE_MODE:
                os.fchmod(fd, LOG_FILE_MODE)  # whatever the umask, or an older Core, made it
            stream = os.fdopen(fd, "ab")
        except BaseException:
            os.close(fd)
            raise
        self._size = info.st_size
        return stream

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self._json.encode(record) + b"\n"
            if (self.max_bytes > 0 and self.backup_count > 0 and self._size
                    and self._size + len(line) > self.max_bytes):
                self._rotate()
            if self._stream is None:
                self._stream = self._open()
            self._stream.write(line)
            self._stream.flush()
            self._size += len(line)
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)

    def _rotate(self) -> None:
        """core.log -> core.log.1 -> ... -> core.log.N; the oldest is dropped."""
        self._close_stream()
        name = self.path.name
        for n in range(self.backup_count - 1, 0, -1):
            older = self.path.with_name(f"{name}.{n}")
            if older.exists():
                os.replace(older, self.path.with_name(f"{name}.{n + 1}"))
        if self.path.exists():
            os.replace(self.path, self.path.with_name(f"{name}.1"))
        self._stream = self._open()

    def _close_stream(self) -> None:
        if self._stream is not None:
            stream, self._stream = self._stream, None
            stream.close()

    def flush(self) -> None:
        with self.lock or contextlib.nullcontext():
            if self._stream is not None:
                self._stream.flush()

    def close(self) -> None:
        with self.lock or contextlib.nullcontext():
            try:
                self._close_stream()
            finally:
                super().close()


def _tighten(path: Path) -> None:
    if os.name == "posix" and path.is_file() and path.stat().st_mode & 0o077:
        os.chmod(path, LOG_FILE_MODE)


def configure_logging(
    logs_dir: Path,
    *,
    level: str = "INFO",
    max_bytes: int = 10 * 1024 * 1024,
    backup_count: int = 5,
    secrets: Iterable[str] = (),
    console: bool = True,
) -> Redactor:
    """(Re)install the handlers of the ``faceforge`` logger; returns the redactor in use."""
    redact = Redactor(secrets)
    logger = logging.getLogger(ROOT)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    logger.setLevel(level.upper())
    logger.propagate = False
    context = _ContextFilter()

    private_dir(logs_dir, tighten=False)  # Paths.create has already tightened Core's own
    file_handler = _LogFile(logs_dir / "core.log", JsonFormatter(redact), max_bytes=max_bytes,
                            backup_count=backup_count)
    file_handler.addFilter(context)
    logger.addHandler(file_handler)
    if console:
        stream = logging.StreamHandler(sys.stderr)
        stream.setFormatter(ConsoleFormatter(redact))
        stream.addFilter(context)
        logger.addHandler(stream)
    return redact

"""Requests as values: what the client's methods build, and the retry rules they follow.

Every method of the client is written once, as a *plan*: a generator that yields operations
(:class:`Exchange` a request, :class:`Read` the next chunk of a streamed answer,
:class:`Sleep`, :class:`Emit` an item to the caller) and is sent their results.  The two
drivers in :mod:`ff_plugin_sdk.client._http` run plans with httpx, one for asyncio and one
for blocking code, so retries, resumable uploads, resumed downloads and the event stream's
reconnects exist once for both clients.  Nothing here does I/O.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar
from urllib.parse import quote

import httpx
import msgspec

from ff_plugin_sdk.errors import FaceForgeError, error_from_envelope

if TYPE_CHECKING:
    from ff_plugin_sdk.client._body import Body

T = TypeVar("T")
#: methods a second arrival of which changes nothing
IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
#: the request never left this machine: safe to send again whatever it does
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


class Unreachable(FaceForgeError):
    """Core could not be reached or stopped answering (after the retries allowed)."""

    status = 503
    code = "core_unreachable"


@dataclass(frozen=True, slots=True)
class Call:
    """One HTTP request to Core, described."""

    method: str
    path: str
    #: query parameters; None values are left out, lists repeat the key
    params: Mapping[str, Any] | None = None
    #: a JSON body (encoded with msgspec); None for none
    json: Any = None
    #: a raw body instead of JSON
    content: bytes | Body | None = None
    headers: Mapping[str, str] | None = None
    #: seconds to wait for the answer, when not the client's own (a long-poll)
    read_timeout: float | None = None
    #: may be sent again after a failure that may have reached Core: the methods that are
    #: idempotent by definition, and POSTs whose second arrival changes nothing
    idempotent: bool | None = None

    @property
    def replayable(self) -> bool:
        content = self.content
        return content is None or isinstance(content, bytes) or content.replayable

    @property
    def safe_to_repeat(self) -> bool:
        return (self.method in IDEMPOTENT if self.idempotent is None
                else self.idempotent) and self.replayable

    def query(self) -> list[tuple[str, str | int | float | bool | None]]:
        pairs: list[tuple[str, str | int | float | bool | None]] = []
        for key, value in (self.params or {}).items():
            for item in value if isinstance(value, list | tuple) else [value]:
                if item is not None:
                    pairs.append((key, _text(item)))
        return pairs


def seg(value: str) -> str:
    """``value`` as one path segment (an id with a ``/`` or ``?`` cannot change the path)."""
    return quote(str(value), safe="")


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# -- operations a plan yields -------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Exchange:
    """Send ``call`` once; the answer comes back (an ``httpx.Response``, its body read
    unless ``stream``), a transport failure is thrown in.  A streamed answer stays open
    for :class:`Read` until the next exchange or the plan's end."""

    call: Call
    stream: bool = False


@dataclass(frozen=True, slots=True)
class Read:
    """The next chunk of the open streamed answer; ``b""`` at its end."""


@dataclass(frozen=True, slots=True)
class Sleep:
    seconds: float


@dataclass(frozen=True, slots=True)
class Emit(Generic[T]):
    """Hand ``item`` to whoever iterates the plan (streaming methods only)."""

    item: T


READ = Read()
Op = Exchange | Read | Sleep
#: a method's plan: yields operations, returns the method's result
Plan = Generator[Op, Any, T]
#: a streaming method's plan: also emits items to the caller
Feed = Generator[Op | Emit[T], Any, None]


# -- retries -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Retry:
    """When a failed request is sent again: transport failures and ``statuses`` answers,
    up to ``retries`` more times, waiting ``backoff * 2**n`` seconds (with jitter, at most
    ``max_backoff``; a ``Retry-After`` is honoured up to that bound).

    A request that may have reached Core is repeated only if repeating it is harmless
    (GET, PUT, DELETE; POSTs the client knows to be safe); one that never left this
    machine (the connection was refused) always may be.
    """

    retries: int = 3
    backoff: float = 0.2
    max_backoff: float = 5.0
    statuses: frozenset[int] = field(default_factory=lambda: frozenset({502, 503, 504}))

    def delay(self, attempt: int, retry_after: str | None = None) -> float:
        wait = min(self.max_backoff, self.backoff * 2 ** min(attempt, 30))
        wait *= 0.5 + random.random() / 2
        if retry_after and retry_after.strip().isdigit():
            wait = max(wait, min(float(retry_after), self.max_backoff))
        return wait

    def after_error(self, call: Call, attempt: int, error: httpx.TransportError) -> float | None:
        """Seconds to wait before sending again, or None to give up."""
        if attempt >= self.retries or not call.replayable:
            return None
        if not (isinstance(error, _NOT_SENT) or call.safe_to_repeat):
            return None
        return self.delay(attempt)

    def after_status(self, call: Call, attempt: int, response: httpx.Response) -> float | None:
        if (attempt >= self.retries or response.status_code not in self.statuses
                or not call.safe_to_repeat):
            return None
        return self.delay(attempt, response.headers.get("retry-after"))


def as_retry(retries: int | Retry) -> Retry:
    return retries if isinstance(retries, Retry) else Retry(retries=retries)


# -- building blocks of plans --------------------------------------------------------------
def error_of(response: httpx.Response, content: bytes | None = None) -> FaceForgeError:
    """The typed error for an answer of 400 or more; ``content``: its body, when it was
    streamed (else the body read with it)."""
    content = response.content if content is None else content
    try:
        body: Any = msgspec.json.decode(content)
    except msgspec.DecodeError:
        body = content.decode("utf-8", "replace")
    return error_from_envelope(response.status_code, body, dict(response.headers))


def unreachable(call: Call, error: httpx.TransportError) -> Unreachable:
    return Unreachable(f"{call.method} {call.path}: {type(error).__name__}: {error}".rstrip(": "),
                       details=[{"transport_error": type(error).__name__}])


def request(call: Call, retry: Retry) -> Plan[httpx.Response]:
    """Send ``call`` (again, as ``retry`` allows); an answer under 400, else the typed error
    (:class:`Unreachable` when Core could not be reached)."""
    attempt = 0
    while True:
        try:
            response = yield Exchange(call)
        except httpx.TransportError as exc:
            wait = retry.after_error(call, attempt, exc)
            if wait is None:
                raise unreachable(call, exc) from exc
        else:
            if response.status_code < 400:
                return response
            wait = retry.after_status(call, attempt, response)
            if wait is None:
                raise error_of(response)
        yield Sleep(wait)
        attempt += 1


_decoders: dict[Any, msgspec.json.Decoder[Any]] = {}


def decode(response: httpx.Response, into: type[T], call: Call) -> T:
    """The answer's JSON as ``into``; an answer of another shape is Core's fault: 502."""
    decoder = _decoders.get(into)
    if decoder is None:
        decoder = _decoders[into] = msgspec.json.Decoder(into)
    try:
        return decoder.decode(response.content)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise FaceForgeError(f"{call.method} {call.path}: Core's answer is not what this "
                             f"client expects: {exc}", code="unexpected_response",
                             status=502) from exc


def fetch(call: Call, retry: Retry, into: type[T]) -> Plan[T]:
    response = yield from request(call, retry)
    return decode(response, into, call)


def read_rest() -> Plan[bytes]:
    """The rest of the open streamed answer (an error's body: small)."""
    parts = []
    while chunk := (yield READ):
        parts.append(chunk)
    return b"".join(parts)


def consume(feed: Feed[T], handle: Callable[[T], None]) -> Plan[None]:
    """Run a streaming plan inside another plan, each item it emits going to ``handle``."""
    value: Any = None
    error: BaseException | None = None
    try:
        while True:
            try:
                op = feed.throw(error) if error is not None else feed.send(value)
            except StopIteration:
                return
            value = error = None
            if isinstance(op, Emit):
                handle(op.item)
                continue
            try:
                value = yield op
            except Exception as exc:
                error = exc
    finally:
        feed.close()

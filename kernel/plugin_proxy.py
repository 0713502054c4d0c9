"""Forwarding requests to the HTTP server of a plugin's runner (a local port): the plugin's
API routes, streamed both ways, and its UI pages, which the caller wraps in Core's shell.

Core has already checked the caller's access.  The caller's credentials never reach the
plugin (it has its own token); the runner learns who is calling from
``X-FaceForge-Principal`` (``kind:name``, e.g. ``session:ui``), where it is mounted from
``X-Forwarded-Prefix``, and the request's ``X-Correlation-ID``.  An unreachable runner is a
502 ``plugin_unavailable``, one that does not answer in time a 504 ``plugin_timeout``: both
raised as :class:`FaceForgeError`, so the kernel's handler renders the JSON envelope for the
API and the error page for the UI.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterable, AsyncIterator
from typing import NamedTuple
from urllib.parse import quote, urlsplit

from starlette.background import BackgroundTask
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Message

from kernel.auth import check_form_csrf
from kernel.correlation import correlation_id
from kernel.errors import FaceForgeError, PayloadTooLarge
from kernel.upstream import Headers, Upstream, UpstreamError, UpstreamResponse, UpstreamTimeout

log = logging.getLogger("faceforge.plugins.proxy")

_HOP_BY_HOP = frozenset({
    b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization",
    b"proxy-connection", b"te", b"trailer", b"transfer-encoding", b"upgrade"})
#: never forwarded to a runner: hop-by-hop headers, framing (set again for the upstream),
#: the caller's credentials, and what the proxy sets itself (a caller must not spoof it)
_DROP_REQUEST = _HOP_BY_HOP | {
    b"host", b"content-length", b"expect",
    b"authorization", b"x-faceforge-token", b"cookie", b"x-csrf-token",
    b"forwarded", b"x-forwarded-for", b"x-forwarded-host", b"x-forwarded-proto",
    b"x-forwarded-prefix", b"x-real-ip", b"x-correlation-id", b"x-faceforge-principal"}
#: never passed back: hop-by-hop headers, cookies (Core strips them from what it forwards,
#: so a plugin cannot use them; nor may it set Core's), and what Core's server adds itself
_DROP_RESPONSE = _HOP_BY_HOP | {b"set-cookie", b"x-correlation-id", b"date", b"server"}
#: characters left as they are in a path given to the proxy (``%`` too: already encoded)
_PATH_SAFE = "/:@!$&'()*+,;=-._~%"
_QUERY_SAFE = _PATH_SAFE + "?\"<>[\\]^`{|}"
#: a body without declared length, in an HTTP/2 request of these methods, is taken as empty
_BODILESS = frozenset({"GET", "HEAD"})
MAX_PAGE_BYTES = 5 * 1024 * 1024
MAX_FORM_BYTES = 1024 * 1024
#: an answer of declared length up to this is read whole before Core answers
SMALL_BODY_BYTES = 64 * 1024


class PluginUnavailable(FaceForgeError):
    """The runner cannot be reached or broke off its answer."""

    status = 502
    code = "plugin_unavailable"


class PluginTimeout(FaceForgeError):
    """The runner did not answer within the proxy's read timeout."""

    status = 504
    code = "plugin_timeout"


class ProxiedPage(NamedTuple):
    """A runner's answer read whole (:meth:`RunnerProxy.fetch_html`).

    ``headers``: the runner's, minus hop-by-hop ones and cookies, names in lower case
    (repeated ones joined with ", ").  ``text``: the body decoded when it is HTML
    (``text/html``), else None (pass ``body`` on as it is: a redirect, an image).
    """

    status: int
    headers: dict[str, str]
    text: str | None
    body: bytes


class RunnerProxy:
    """Forwards requests to runners' local HTTP servers over pooled keep-alive
    connections; one per Core, closed with :meth:`aclose` at shutdown."""

    def __init__(self, *, connect_timeout: float = 5.0, read_timeout: float = 60.0,
                 max_page_bytes: int = MAX_PAGE_BYTES) -> None:
        self.upstream = Upstream(connect_timeout=connect_timeout, read_timeout=read_timeout)
        self.max_page_bytes = max_page_bytes

    async def aclose(self) -> None:
        await self.upstream.aclose()

    async def forward(self, request: Request, base_url: str, path: str, *,
                      body: bytes | None = None, prefix: str | None = None) -> Response:
        """Send ``request`` to ``base_url`` + ``path`` and stream the answer back.

        ``path`` is the path on the runner; a ``?query`` in it replaces the request's own
        query string, which is otherwise passed on.  ``body``: the request body when it
        was read already (:func:`check_proxied_form_csrf`); else the request's is streamed.
        ``prefix``: the public path the runner is mounted at (``X-Forwarded-Prefix``;
        default: the request's path minus ``path``).  Raises :class:`PluginUnavailable`,
        :class:`PluginTimeout`.
        """
        try:
            answer = await self._exchange(request, base_url, path, body, prefix)
        except ClientDisconnect:
            return Response(status_code=499)  # the caller went away mid-upload: nobody hears
        headers = [(k, v) for k, v in answer.headers if k not in _DROP_RESPONSE]
        if answer.length is not None and answer.length <= SMALL_BODY_BYTES:
            # small: read whole, answered without the streaming machinery (its task group
            # and disconnect listener cost more than waiting for a few KiB)
            body = await self._read(answer, SMALL_BODY_BYTES)
            response = Response(body, status_code=answer.status)
            if _has_body(request.method, answer.status) and not any(
                    k == b"content-length" for k, _ in headers):
                headers.append((b"content-length", b"%d" % len(body)))
        else:
            response = StreamingResponse(_relay(answer, base_url), status_code=answer.status,
                                         background=BackgroundTask(answer.aclose))
        response.raw_headers = headers
        return response

    async def fetch_html(self, request: Request, base_url: str, path: str, *,
                         body: bytes | None = None, prefix: str | None = None) -> ProxiedPage:
        """Send ``request`` like :meth:`forward` and read the whole answer (a UI page for
        Core to wrap in its shell).  Larger than ``max_page_bytes``: 502."""
        answer = await self._exchange(request, base_url, path, body, prefix, identity=True)
        data = await self._read(answer, self.max_page_bytes)
        headers: dict[str, str] = {}
        for key, value in answer.headers:
            if key not in _DROP_RESPONSE:
                name, text = key.decode("latin-1"), value.decode("latin-1")
                headers[name] = f"{headers[name]}, {text}" if name in headers else text
        content_type = headers.get("content-type", "")
        html = None
        if content_type.split(";")[0].strip().lower() == "text/html":
            html = data.decode(_charset(content_type), "replace")
        return ProxiedPage(answer.status, headers, html, data)

    @staticmethod
    async def _read(answer: UpstreamResponse, limit: int) -> bytes:
        try:
            return await answer.read(limit)
        except OverflowError:
            raise PluginUnavailable(f"the plugin's answer is larger than {limit} bytes",
                                    code="plugin_response_too_large") from None
        except UpstreamTimeout as exc:
            raise PluginTimeout(f"the plugin's runner stopped answering: {exc}") from None
        except UpstreamError as exc:
            raise PluginUnavailable(f"the plugin's runner broke off: {exc}") from None

    async def _exchange(self, request: Request, base_url: str, path: str,
                        body: bytes | None, prefix: str | None,
                        identity: bool = False) -> UpstreamResponse:
        host, port, netloc = _origin(base_url)
        scope = request.scope
        method: str = scope["method"]
        headers, declared, chunked = _request_headers(request, netloc, path, prefix)
        if identity:  # the text is read here: no compression to undo
            headers = [(k, v) for k, v in headers if k != b"accept-encoding"]
            headers.append((b"accept-encoding", b"identity"))
        content: bytes | AsyncIterable[bytes] | None = body
        if body is None and (declared not in (None, b"0") or chunked or (
                declared is None and scope.get("http_version") == "2"
                and method not in _BODILESS)):
            content = request.stream()
            if declared is not None:
                headers.append((b"content-length", declared))
        try:
            return await self.upstream.request(method, host, port,
                                               _target(path, scope["query_string"]),
                                               headers, content)
        except UpstreamTimeout as exc:
            raise PluginTimeout(f"the plugin's runner did not answer in time: {exc}") from None
        except UpstreamError as exc:
            raise PluginUnavailable(f"the plugin's runner is not answering: {exc}") from None


async def check_proxied_form_csrf(request: Request, *,
                                  max_bytes: int = MAX_FORM_BYTES) -> bytes | None:
    """For a UI form posted to a plugin page with a session cookie: check its
    ``csrf_token`` field as :func:`kernel.auth.check_form_csrf` does (403 ``csrf_failed``)
    and return the raw body, to be passed on unchanged (``forward(..., body=...)``).

    None when no check is pending (the body is then still unread: the proxy streams it).
    The body is read whole, up to ``max_bytes`` (413 beyond); a plugin form sending more
    sends the session's token in the ``X-CSRF-Token`` header instead.
    """
    if not request.scope.get("ff.csrf_pending"):
        return None
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise PayloadTooLarge(f"a form posted to a plugin page may hold {max_bytes} bytes; "
                              f"this one has {declared}")
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > max_bytes:
            raise PayloadTooLarge(f"a form posted to a plugin page may hold {max_bytes} bytes")
    body = bytes(data)
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if replayed:
            return {"type": "http.disconnect"}
        replayed = True
        return {"type": "http.request", "body": body, "more_body": False}

    again = Request(request.scope, replay)
    try:
        await check_form_csrf(again)
    finally:
        await again.close()
    return body


def _request_headers(request: Request, netloc: bytes, path: str, prefix: str | None,
                     ) -> tuple[Headers, bytes | None, bool]:
    """What the runner gets, the declared body length, and whether the body is chunked."""
    scope = request.scope
    raw: Headers = scope["headers"]
    drop = _DROP_REQUEST
    declared, chunked, host = None, False, None
    for key, value in raw:
        if key == b"content-length":
            declared = value
        elif key == b"transfer-encoding":
            chunked = True
        elif key == b"host":
            host = value
        elif key == b"connection":  # the headers it names are hop-by-hop too
            drop = drop | {t.strip().lower() for t in value.split(b",")}
    headers = [(b"host", netloc), *((k, v) for k, v in raw if k not in drop)]
    client = scope.get("client")
    if client:
        headers.append((b"x-forwarded-for", client[0].encode("latin-1")))
    if host:
        headers.append((b"x-forwarded-host", host))
    headers.append((b"x-forwarded-proto", scope.get("scheme", "http").encode("latin-1")))
    if prefix is None:
        own = scope["path"]
        prefix = own[:-len(path)] if path and own.endswith(path) else ""
    if prefix:
        headers.append((b"x-forwarded-prefix", quote(prefix, safe=_PATH_SAFE).encode()))
    cid = correlation_id.get()
    if cid:
        headers.append((b"x-correlation-id", cid.encode("latin-1")))
    principal = scope.get("ff.principal")
    if principal is not None:
        who = f"{principal.kind}:{principal.name}"
        headers.append((b"x-faceforge-principal", quote(who, safe=":@!$&'()*+,;=-._~")
                        .encode()))
    return headers, declared, chunked


@functools.lru_cache(maxsize=256)
def _origin(base_url: str) -> tuple[str, int, bytes]:
    """``http://127.0.0.1:8123`` -> (host, port, the Host header)."""
    parts = urlsplit(base_url)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"a runner's base URL is http://host:port, not {base_url!r}")
    port = parts.port or 80
    return parts.hostname, port, parts.netloc.encode("idna")


def _target(path: str, query: bytes) -> bytes:
    """The request target: ``path`` quoted where it must be, and its own query or the
    request's."""
    path, has_query, own_query = path.partition("?")
    target = quote(path if path.startswith("/") else "/" + path, safe=_PATH_SAFE).encode()
    # a query may arrive with raw non-ASCII bytes (servers let them through): encoded here
    query = quote(own_query if has_query else query, safe=_QUERY_SAFE).encode()
    return target + b"?" + query if query else target


def _has_body(method: str, status: int) -> bool:
    return method != "HEAD" and status >= 200 and status not in (204, 304)


def _charset(content_type: str) -> str:
    for param in content_type.split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip('"')
            try:
                "".encode(charset)
                return charset
            except LookupError:
                break
    return "utf-8"


async def _relay(answer: UpstreamResponse, base_url: str) -> AsyncIterator[bytes]:
    """The answer's body as it arrives; a runner breaking off mid-way ends the response
    with an error (the client sees it cut, never a complete-looking body)."""
    try:
        async for chunk in answer.stream():
            yield chunk
    except UpstreamError as exc:
        log.warning("the runner at %s broke off its answer: %s", base_url, exc)
        raise

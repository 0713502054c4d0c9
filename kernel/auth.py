"""Who is calling, and may they call this route.

Credentials: the install token (``Authorization: Bearer`` or ``X-FaceForge-Token``) and a
UI session hold every registered scope; a scoped token holds what it was issued with.  A
session cookie is a random id, never the token; unsafe requests made with it need the
session's CSRF token.

Access comes from one source: every route the kernel mounts declares the scope it needs or
that it is public (:class:`RoutePolicy`, read from ``ApiRoute.scope`` / ``UIPage.public``).
:class:`AuthMiddleware` reads that declaration; the OpenAPI document's ``security`` is built
from the same field.  A path no route matches needs a principal (so probing for routes
without credentials tells nothing).
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ff_plugin_sdk.types import PUBLIC, SCOPE_PATTERN, Principal
from kernel.envelope import error_response
from kernel.errors import Forbidden, PluginError

if TYPE_CHECKING:
    from kernel.sessions import SessionStore
    from kernel.tokens import InstallToken, ScopedTokens

SESSION_COOKIE = "ff_session"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: the access of a UI page: any signed-in principal
SIGNED_IN = "signed-in"
_SCOPE = re.compile(SCOPE_PATTERN)

#: the kernel's own scopes; plugins add theirs through ``faceforge_scopes``
KERNEL_SCOPES = {
    "system:read": "read the system information and check a token",
    "events:read": "read the event log and follow its stream",
    "plugins:admin": "install, enable, disable and configure plugins",
    "plugins:use": "call the API routes that out-of-process plugins serve",
}


class ScopeRegistry:
    """Every scope a route may require: the kernel's and those plugins contribute."""

    def __init__(self) -> None:
        self.scopes: dict[str, tuple[str, str]] = {  # name -> (owner, description)
            name: ("kernel", text) for name, text in KERNEL_SCOPES.items()}
        self._names = frozenset(self.scopes)

    def add(self, owner: str, name: str, description: str) -> None:
        if not _SCOPE.match(name):
            raise PluginError(f"plugin {owner!r} declares scope {name!r}; a scope is named "
                              f"'<area>:<verb>' in lower case")
        if name in self.scopes and self.scopes[name][0] != owner:
            raise PluginError(f"plugin {owner!r} declares scope {name!r}, which "
                              f"{self.scopes[name][0]!r} already declares")
        self.scopes[name] = (owner, description)
        self._names = frozenset(self.scopes)

    def names(self) -> frozenset[str]:
        """Every registered scope: what the install token and a session hold."""
        return self._names

    def check(self, owner: str, what: str, scope: str) -> None:
        """A route's declared scope must be registered (or public): a load error if not.
        The kernel's own routes may also ask only for a credential (:data:`SIGNED_IN`) and
        decide in the endpoint."""
        if scope == PUBLIC or scope in self.scopes or (owner == "kernel" and scope == SIGNED_IN):
            return
        raise PluginError(
            f"plugin {owner!r}: {what} requires unknown scope {scope!r}; declare it with "
            f"faceforge_scopes or use one of: {', '.join(sorted(self.scopes))}, or "
            f"{PUBLIC!r}")


class Authenticator:
    """Turns request headers into a :class:`Principal`, and tells whether one still holds."""

    def __init__(self, install: InstallToken, sessions: SessionStore, scoped: ScopedTokens,
                 all_scopes: Callable[[], frozenset[str]]) -> None:
        self.install = install
        self.sessions = sessions
        self.scoped = scoped
        self.all_scopes = all_scopes

    def authenticate(self, headers: dict[bytes, bytes]) -> Principal | None:
        given = None
        auth = headers.get(b"authorization")
        if auth and auth[:7].lower() == b"bearer ":
            given = auth[7:].strip().decode("latin-1")
        elif b"x-faceforge-token" in headers:
            given = headers[b"x-faceforge-token"].strip().decode("latin-1")
        if given is not None:
            return self.token_principal(given)
        session_id = _cookie(headers, SESSION_COOKIE)
        if session_id:
            session = self.sessions.lookup(session_id)
            if session is not None:
                return Principal(kind="session", scopes=self.all_scopes(), name="ui",
                                 csrf_token=session.csrf_token, session_id=session_id)
        return None

    def token_principal(self, given: str) -> Principal | None:
        found = self.scoped.lookup(given)
        if found is not None:
            digest, held = found
            return Principal(kind="token", scopes=held.scopes, name=held.name,
                             credential=digest)
        if self.install.matches(given):
            return Principal(kind="install_token", scopes=self.all_scopes(), name="install",
                             credential=self.install.current_fingerprint())
        return None

    def still_valid(self, principal: Principal) -> bool:
        """False once the credential stopped working (rotated, signed out, expired,
        revoked): long-lived responses (event streams) end then."""
        if principal.kind == "session":
            return (principal.session_id is not None
                    and self.sessions.lookup(principal.session_id, touch=False) is not None)
        if principal.kind == "token":
            return self.scoped.holds(principal.credential)
        return principal.credential == self.install.current_fingerprint()


def _cookie(headers: dict[bytes, bytes], name: str) -> str | None:
    raw = headers.get(b"cookie")
    if not raw:
        return None
    for part in raw.decode("latin-1").split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


@dataclass(frozen=True)
class RoutePolicy:
    """What a mounted route declares: the scope it requires (or :data:`SIGNED_IN`,
    :data:`PUBLIC`) and, if it takes large bodies, its own body limit."""

    scope: str
    max_body_bytes: int | None = None
    #: headers on every answer of the route, the kernel's refusals included
    headers: tuple[tuple[bytes, bytes], ...] = ()


def declare(route: BaseRoute, scope: str, max_body_bytes: int | None = None,
            headers: Mapping[str, str] | None = None) -> BaseRoute:
    """Attach a route's policy (read by :class:`AuthMiddleware` and the body limit)."""
    encoded = tuple((k.lower().encode("latin-1"), v.encode("latin-1"))
                    for k, v in (headers or {}).items())
    route.faceforge_policy = RoutePolicy(  # type: ignore[attr-defined]
        scope, max_body_bytes, encoded)
    return route


class RouteTable:
    """Finds the declared policy of the route a request will reach.

    Paths without parameters are a dict lookup; the rest are matched like Starlette does.
    """

    def __init__(self, routes: Iterable[BaseRoute]) -> None:
        Entry = tuple[frozenset[str] | None, RoutePolicy]
        self.exact: dict[str, list[Entry]] = {}
        self.patterns: list[tuple[re.Pattern[str], frozenset[str] | None, RoutePolicy]] = []
        for route in routes:
            policy = getattr(route, "faceforge_policy", None)
            if policy is None:
                raise RuntimeError(f"route {route!r} declares no policy")
            methods = frozenset(route.methods) if isinstance(route, Route) and route.methods \
                else None
            if isinstance(route, Route) and not route.param_convertors:
                self.exact.setdefault(route.path, []).append((methods, policy))
            elif isinstance(route, Route | Mount):
                self.patterns.append((route.path_regex, methods, policy))

    def policy_for(self, method: str, path: str) -> RoutePolicy | None:
        """The policy of the route serving ``method path``; None when none serves it."""
        for methods, policy in self.exact.get(path, ()):
            if methods is None or method in methods:
                return policy
        for regex, methods, policy in self.patterns:
            if regex.match(path) and (methods is None or method in methods):
                return policy
        return None


class AuthMiddleware:
    """Authenticates every HTTP request and enforces the declared access of its route."""

    def __init__(self, app: ASGIApp, authenticator: Authenticator, table: RouteTable) -> None:
        self.app = app
        self.authenticator = authenticator
        self.table = table

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        path, method = scope["path"], scope["method"]
        principal = self.authenticator.authenticate(headers)
        scope["ff.principal"] = principal
        policy = self.table.policy_for(method, path)
        scope["ff.route_policy"] = policy
        if policy is not None and policy.headers:
            send = _adding(send, policy.headers)
        required = policy.scope if policy is not None else None
        response: Response | None = None
        if required == PUBLIC:
            pass
        elif principal is None:
            response = self._refuse(path, scope.get("query_string", b""), headers)
        elif required not in (None, SIGNED_IN) and required not in principal.scopes:
            response = error_response(
                403, "missing_scope", f"this route needs the {required!r} scope, which this "
                f"credential does not hold", details=[{"missing_scope": required}])
        elif principal.kind == "session" and method not in SAFE_METHODS:
            given = headers.get(CSRF_HEADER.encode(), b"").decode("latin-1")
            if not (given and hmac.compare_digest(given, principal.csrf_token or "")):
                ctype = headers.get(b"content-type", b"")
                if path.startswith("/ui") and ctype.startswith(
                        (b"application/x-www-form-urlencoded", b"multipart/form-data")):
                    scope["ff.csrf_pending"] = True  # the form field is checked by the page
                else:
                    response = error_response(403, "csrf_failed",
                                              "missing or wrong CSRF token for this session")
        if response is not None:
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    @staticmethod
    def _refuse(path: str, query: bytes, headers: dict[bytes, bytes]) -> Response:
        if path == "/" or path.startswith("/ui"):
            target = path + ("?" + query.decode("latin-1") if query else "")
            login = "/ui/login?next=" + quote(target, safe="")
            if headers.get(b"hx-request"):
                return Response(status_code=401, headers={"HX-Redirect": login})
            return RedirectResponse(login, status_code=303)
        return error_response(401, "unauthorized",
                              "missing or invalid install token; send 'Authorization: Bearer"
                              " <token>' (see 'faceforge token')",
                              headers={"WWW-Authenticate": "Bearer"})


def _adding(send: Send, headers: tuple[tuple[bytes, bytes], ...]) -> Send:
    """``send`` that puts ``headers`` on the response (unless the app set them itself)."""

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            have = {key for key, _ in message.get("headers", ())}
            message["headers"] = [*message.get("headers", ()),
                                  *((k, v) for k, v in headers if k not in have)]
        await send(message)

    return sending


def principal_of(request: Request) -> Principal | None:
    return request.scope.get("ff.principal")


async def check_form_csrf(request: Request) -> None:
    """For HTML form posts: the hidden ``csrf_token`` field must match the session's."""
    if not request.scope.get("ff.csrf_pending"):
        return
    form = await request.form()
    principal = principal_of(request)
    given = str(form.get(CSRF_FIELD) or "")
    if not (principal and principal.csrf_token
            and hmac.compare_digest(given, principal.csrf_token)):
        raise Forbidden("missing or wrong CSRF token for this session", code="csrf_failed")

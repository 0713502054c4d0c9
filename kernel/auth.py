"""Who is calling: the install token, UI sessions, scopes and CSRF.

The install token (``Authorization: Bearer`` or ``X-FaceForge-Token``) and a UI session
hold every scope.  A session cookie is a random id, never the token; unsafe requests made
with it need the session's CSRF token.  Rotating the token ends every session.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from ff_plugin_sdk.types import SCOPES
from kernel.envelope import error_response
from kernel.errors import Forbidden, Unauthorized

if TYPE_CHECKING:
    from kernel.db import Database

SESSION_COOKIE = "ff_session"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
PUBLIC_PATHS = frozenset({"/healthz", "/docs", "/redoc", "/openapi.json", "/ui/login",
                          "/favicon.ico"})
PUBLIC_PREFIXES = ("/static/",)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _fingerprint(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Principal:
    kind: str  # "token" | "session"
    scopes: frozenset[str]
    csrf_token: str | None = None
    session_id: str | None = None


class TokenStore:
    """The install token, re-read when core.json changes so ``faceforge token --rotate``
    takes effect without a restart."""

    def __init__(self, config_file: Path, token: str) -> None:
        self.config_file = config_file
        self._token = token
        self._checked = time.monotonic()
        self._stamp = self._stat()
        self.listeners: list[Any] = []

    def _stat(self) -> tuple[int, int, int]:
        # os.replace gives a new inode, so a rotation within one coarse mtime tick is seen too
        try:
            st = self.config_file.stat()
        except OSError:
            return (0, 0, 0)
        return (st.st_mtime_ns, st.st_ino, st.st_size)

    def current(self) -> str:
        now = time.monotonic()
        if now - self._checked > 1.0:
            self._checked = now
            stamp = self._stat()
            if stamp != self._stamp:
                self._stamp = stamp
                try:
                    token = json.loads(self.config_file.read_text("utf-8"))["auth"]["install_token"]
                except (OSError, ValueError, KeyError, TypeError):
                    token = None  # a half-written or broken file keeps the old token
                if isinstance(token, str) and token and token != self._token:
                    self._token = token
                    for listener in self.listeners:
                        listener(token)
        return self._token

    def matches(self, given: str) -> bool:
        return hmac.compare_digest(given.encode(), self.current().encode())


@dataclass
class Session:
    csrf_token: str
    token_fingerprint: str
    expires_at: str


class SessionStore:
    """UI sessions; rows in ``ui_sessions`` keyed by the hash of the cookie value."""

    def __init__(self, db: Database, tokens: TokenStore, ttl_hours: int) -> None:
        self.db = db
        self.tokens = tokens
        self.ttl = timedelta(hours=ttl_hours)
        self._cache: dict[str, Session] = {}

    @staticmethod
    def _hash(session_id: str) -> str:
        return hashlib.sha256(session_id.encode()).hexdigest()

    async def load(self) -> None:
        now = datetime.now(UTC).isoformat()
        async with self.db.transaction() as tx:
            await tx.execute("DELETE FROM ui_sessions WHERE expires_at < ?", (now,))
        rows = await self.db.fetchall("SELECT * FROM ui_sessions")
        self._cache = {r["id_hash"]: Session(r["csrf_token"], r["token_fingerprint"],
                                             r["expires_at"]) for r in rows}

    async def create(self) -> tuple[str, str]:
        """A new session; returns (cookie value, csrf token)."""
        session_id, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        session = Session(csrf, _fingerprint(self.tokens.current()),
                          (now + self.ttl).isoformat())
        async with self.db.transaction() as tx:
            await tx.execute(
                "INSERT INTO ui_sessions (id_hash, csrf_token, token_fingerprint, created_at,"
                " expires_at) VALUES (?, ?, ?, ?, ?)",
                (self._hash(session_id), csrf, session.token_fingerprint, now.isoformat(),
                 session.expires_at),
            )
        self._cache[self._hash(session_id)] = session
        return session_id, csrf

    def lookup(self, session_id: str) -> Session | None:
        session = self._cache.get(self._hash(session_id))
        if session is None:
            return None
        if session.expires_at < datetime.now(UTC).isoformat():
            return None
        if session.token_fingerprint != _fingerprint(self.tokens.current()):
            return None
        return session

    async def delete(self, session_id: str) -> None:
        key = self._hash(session_id)
        self._cache.pop(key, None)
        async with self.db.transaction() as tx:
            await tx.execute("DELETE FROM ui_sessions WHERE id_hash = ?", (key,))


def _cookie(headers: dict[bytes, bytes], name: str) -> str | None:
    raw = headers.get(b"cookie")
    if not raw:
        return None
    for part in raw.decode("latin-1").split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


def is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


class AuthMiddleware:
    """Authenticates every HTTP request; non-public paths without a principal are refused.

    Scope checks happen per route (:func:`require_scope`), where the route's scope is known.
    """

    def __init__(self, app: ASGIApp, tokens: TokenStore, sessions: SessionStore) -> None:
        self.app = app
        self.tokens = tokens
        self.sessions = sessions

    def authenticate(self, headers: dict[bytes, bytes]) -> Principal | None:
        given = None
        auth = headers.get(b"authorization")
        if auth and auth[:7].lower() == b"bearer ":
            given = auth[7:].strip().decode("latin-1")
        elif b"x-faceforge-token" in headers:
            given = headers[b"x-faceforge-token"].strip().decode("latin-1")
        if given is not None:
            return Principal("token", frozenset(SCOPES)) if self.tokens.matches(given) else None
        session_id = _cookie(headers, SESSION_COOKIE)
        if session_id:
            session = self.sessions.lookup(session_id)
            if session is not None:
                return Principal("session", frozenset(SCOPES), session.csrf_token, session_id)
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        path = scope["path"]
        principal = self.authenticate(headers)
        scope["ff.principal"] = principal
        response: Response | None = None
        if principal is None and not is_public(path):
            response = self._refuse(path, scope.get("query_string", b""), headers)
        elif (principal is not None and principal.kind == "session"
              and scope["method"] not in SAFE_METHODS and not is_public(path)):
            # public paths need no credentials, so a CSRF token there protects nothing;
            # it would only turn a second sign-in (a stale login tab) into a 403
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


def principal_of(request: Request) -> Principal | None:
    return request.scope.get("ff.principal")


#: the scope of routes anyone may call (``/healthz``)
PUBLIC = "public"


def require_scope(request: Request, scope: str) -> Principal | None:
    principal = principal_of(request)
    if scope == PUBLIC:
        return principal
    if principal is None:
        raise Unauthorized("missing or invalid install token")
    if scope not in principal.scopes:
        raise Forbidden(f"this route needs the {scope!r} scope", code="missing_scope")
    return principal


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

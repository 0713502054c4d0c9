"""Credentials that are not sessions: the install token and scoped tokens.

The install token lives in ``config/core.json`` and holds every scope; it is re-read when the
file changes, so ``faceforge token --rotate`` takes effect without a restart.  Scoped tokens
(rows in ``api_tokens``, stored as SHA-256 hashes) hold only the scopes they were issued
with: the mechanism per-plugin tokens are built on.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from kernel.clock import utc_now
from kernel.errors import Conflict, ValidationFailed

if TYPE_CHECKING:
    from kernel.db import Database, WriteTx

SCOPED_PREFIX = "ffs_"
_NAME = re.compile(r"^[A-Za-z0-9_.:\-]{1,100}$")


class InstallToken:
    """The install token, re-read (at most once a second) when core.json changes."""

    def __init__(self, config_file: Path, token: str) -> None:
        self.config_file = config_file
        self._token = token
        self._checked = time.monotonic()
        self._stamp = self._stat()
        self._fingerprinted = (token, fingerprint(token))
        self.listeners: list[Callable[[str], object]] = []

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

    def current_fingerprint(self) -> str:
        """The current token's fingerprint (sessions keep it: a rotation ends them); hashed
        once per token, not once per request."""
        token = self.current()
        if token != self._fingerprinted[0]:
            self._fingerprinted = (token, fingerprint(token))
        return self._fingerprinted[1]


def token_hash(token: str) -> str:
    """How a secret is stored and looked up: its SHA-256, never the secret itself."""
    return hashlib.sha256(token.encode()).hexdigest()


def fingerprint(token: str) -> str:
    return token_hash(token)[:32]


@dataclass(frozen=True)
class ScopedToken:
    name: str
    scopes: frozenset[str]


class ScopedTokens:
    """Tokens holding only some scopes, looked up by hash (so no timing leak)."""

    def __init__(self, db: Database, known_scopes: Callable[[], frozenset[str]]) -> None:
        self.db = db
        self.known_scopes = known_scopes
        self._by_hash: dict[str, ScopedToken] = {}

    async def load(self) -> None:
        rows = await self.db.fetchall(
            "SELECT name, token_hash, scopes FROM api_tokens WHERE revoked_at IS NULL")
        self._by_hash = {r["token_hash"]: ScopedToken(r["name"], frozenset(
            msgspec.json.decode(r["scopes"]))) for r in rows}

    async def issue(self, name: str, scopes: Iterable[str]) -> str:
        """A new token called ``name`` holding ``scopes``; returns it (shown once)."""
        wanted = sorted(set(scopes))
        if not _NAME.match(name):
            raise ValidationFailed(f"invalid token name {name!r}", details=[
                {"path": "name", "message": "1-100 of A-Z a-z 0-9 _ . : -"}])
        unknown = [s for s in wanted if s not in self.known_scopes()]
        if unknown:
            raise ValidationFailed(
                f"unknown scope {unknown[0]!r}; expected one of: "
                + ", ".join(repr(s) for s in sorted(self.known_scopes())),
                details=[{"path": "scopes", "message": f"unknown scope {s!r}"}
                         for s in unknown])
        token = SCOPED_PREFIX + secrets.token_urlsafe(32)
        digest = token_hash(token)

        def insert(tx: WriteTx) -> None:
            if tx.fetchone("SELECT 1 FROM api_tokens WHERE name = ? AND revoked_at IS NULL",
                           (name,)):
                raise Conflict(f"a token named {name!r} exists; revoke it first",
                               code="token_exists")
            tx.execute("INSERT INTO api_tokens (name, token_hash, scopes, created_at)"
                       " VALUES (?, ?, ?, ?)",
                       (name, digest, msgspec.json.encode(wanted).decode(), utc_now()))

        await self.db.write(insert)
        self._by_hash[digest] = ScopedToken(name, frozenset(wanted))
        return token

    async def revoke(self, name: str) -> bool:
        """Revoke the token called ``name``; False if there was none."""
        changed = await self.db.write(lambda tx: tx.changes(
            "UPDATE api_tokens SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL",
            (utc_now(), name)))
        for digest, held in list(self._by_hash.items()):
            if held.name == name:
                del self._by_hash[digest]
        return changed > 0

    def lookup(self, token: str) -> tuple[str, ScopedToken] | None:
        """(hash, token) for a presented token, or None."""
        if not token.startswith(SCOPED_PREFIX):
            return None
        digest = token_hash(token)
        held = self._by_hash.get(digest)
        return (digest, held) if held else None

    def holds(self, digest: str) -> bool:
        """Whether the token with this hash is still valid (not revoked)."""
        return digest in self._by_hash

"""UI sessions: rows in ``ui_sessions`` keyed by the hash of the cookie value.

A session ends at its absolute expiry, after ``idle`` without a request, on sign-out, or
when the install token changes.  Lookups are served from memory; the last-seen time is
written back at most once a minute per session, and ended sessions are purged while Core
runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from kernel.clock import now, stamp
from kernel.tokens import InstallToken, token_hash

if TYPE_CHECKING:
    from kernel.db import Database, WriteTx

log = logging.getLogger("faceforge.sessions")
#: how stale the stored last-seen time may get (it only has to beat the idle timeout)
TOUCH_EVERY = timedelta(minutes=1)
PURGE_EVERY_SECONDS = 60.0


@dataclass
class Session:
    csrf_token: str
    token_fingerprint: str
    expires_at: datetime
    last_seen: datetime
    stored_last_seen: datetime


class SessionStore:
    def __init__(self, db: Database, token: InstallToken, ttl: timedelta, idle: timedelta,
                 clock: Callable[[], datetime] = now) -> None:
        self.db = db
        self.token = token
        self.ttl = ttl
        self.idle = idle
        self.clock = clock
        self._cache: dict[str, Session] = {}
        self._purger: asyncio.Task[None] | None = None
        self._pending: set[asyncio.Task[None]] = set()

    def _ended(self, session: Session, moment: datetime) -> bool:
        return (session.expires_at <= moment or session.last_seen + self.idle <= moment
                or session.token_fingerprint != self.token.current_fingerprint())

    async def load(self) -> None:
        """Drop ended sessions and cache the rest (at start)."""
        await self.purge()
        rows = await self.db.fetchall("SELECT * FROM ui_sessions")
        self._cache = {}
        for r in rows:
            seen = datetime.fromisoformat(r["last_seen_at"] or r["created_at"])
            self._cache[r["id_hash"]] = Session(
                r["csrf_token"], r["token_fingerprint"],
                datetime.fromisoformat(r["expires_at"]), seen, seen)

    async def create(self) -> tuple[str, str]:
        """A new session; returns (cookie value, csrf token)."""
        session_id, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        moment = self.clock()
        session = Session(csrf, self.token.current_fingerprint(), moment + self.ttl,
                          moment, moment)
        key = token_hash(session_id)
        await self.db.write(lambda tx: tx.execute(
            "INSERT INTO ui_sessions (id_hash, csrf_token, token_fingerprint, created_at,"
            " expires_at, last_seen_at) VALUES (?, ?, ?, ?, ?, ?)",
            (key, csrf, session.token_fingerprint, stamp(moment), stamp(session.expires_at),
             stamp(moment))))
        self._cache[key] = session
        return session_id, csrf

    def lookup(self, session_id: str, touch: bool = True) -> Session | None:
        """The live session for a cookie value, or None; ``touch`` marks it used now."""
        key = token_hash(session_id)
        session = self._cache.get(key)
        if session is None:
            return None
        moment = self.clock()
        if self._ended(session, moment):
            return None
        if touch:
            session.last_seen = moment
            if moment - session.stored_last_seen >= TOUCH_EVERY:
                session.stored_last_seen = moment
                self._store_last_seen(key, moment)
        return session

    def _store_last_seen(self, key: str, moment: datetime) -> None:
        async def store() -> None:
            try:
                await self.db.write(lambda tx: tx.execute(
                    "UPDATE ui_sessions SET last_seen_at = ? WHERE id_hash = ?",
                    (stamp(moment), key)))
            except Exception:  # the in-memory time still counts; the next touch retries
                log.exception("could not store a session's last-seen time")

        task = asyncio.get_running_loop().create_task(store())
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def delete(self, session_id: str) -> None:
        key = token_hash(session_id)
        self._cache.pop(key, None)
        await self.db.write(lambda tx: tx.execute(
            "DELETE FROM ui_sessions WHERE id_hash = ?", (key,)))

    async def purge(self) -> int:
        """Delete every ended session (expired, idle or of an old token); returns how many."""
        moment = self.clock()
        idle_since = stamp(moment - self.idle)
        current = self.token.current_fingerprint()
        ended = [k for k, s in self._cache.items() if self._ended(s, moment)]
        for key in ended:
            del self._cache[key]
        # a live session's stored last-seen may lag by up to TOUCH_EVERY: store it first,
        # or its row would look idle below and be deleted while it is still in use
        lagging = [(stamp(s.last_seen), k) for k, s in self._cache.items()
                   if s.stored_last_seen <= moment - self.idle]
        for _, key in lagging:
            self._cache[key].stored_last_seen = self._cache[key].last_seen

        def purge(tx: WriteTx) -> int:
            tx.executemany("UPDATE ui_sessions SET last_seen_at = ? WHERE id_hash = ?",
                           lagging)
            return tx.changes(
                "DELETE FROM ui_sessions WHERE expires_at <= ? OR token_fingerprint != ?"
                " OR coalesce(last_seen_at, created_at) <= ?",
                (stamp(moment), current, idle_since))

        return await self.db.write(purge)

    def start_purging(self, every: float = PURGE_EVERY_SECONDS) -> None:
        """Purge every ``every`` seconds until :meth:`stop` (replaces a running purger)."""
        if self._purger is not None:
            self._purger.cancel()
        async def loop() -> None:
            while True:
                await asyncio.sleep(every)
                try:
                    if removed := await self.purge():
                        log.info("purged %d ended UI session(s)", removed)
                except Exception:
                    log.exception("purging ended sessions failed")

        self._purger = asyncio.get_running_loop().create_task(loop(), name="faceforge-sessions")

    async def stop(self) -> None:
        if self._purger is not None:
            self._purger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._purger
            self._purger = None
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)

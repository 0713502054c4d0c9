"""UI sessions end at their absolute expiry, after the idle time without a request, on
sign-out and on token rotation; ended rows are purged while Core runs; every stored time is
one format.  Time is moved with the store's injectable clock, never slept through."""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

import kernel.migrations as migrations
from kernel.cli import main
from kernel.clock import stamp
from kernel.config import load_settings, rotate_token
from kernel.db import Database
from kernel.errors import ConfigError
from kernel.tokens import fingerprint
from tests.conftest import running
from tests.ui.browsing import SignedIn, sign_in

from .conftest import anonymous, assert_envelope, eventually, kernel_of

#: the defaults of ``auth.session_idle_minutes`` and ``auth.session_ttl_hours``
IDLE = timedelta(minutes=720)
TTL = timedelta(hours=24 * 14)
START = datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
STAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")
SECOND = timedelta(seconds=1)


class FakeClock:
    """What the session store asks for the time; moved by hand."""

    def __init__(self, start: datetime = START) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> datetime:
        self.now += delta
        return self.now

    @classmethod
    def on(cls, app: Starlette, start: datetime = START) -> FakeClock:
        """A fake clock that ``app``'s session store now reads."""
        clock = cls(start)
        kernel_of(app).sessions.clock = clock
        return clock


@pytest.fixture
def clock(app: Starlette) -> FakeClock:
    return FakeClock.on(app)


@pytest.fixture
async def browser(clock: FakeClock, anon: httpx.AsyncClient, settings) -> SignedIn:
    """Signed in through the login form at the fake clock's time."""
    return await sign_in(anon, settings.install_token)


async def signed_in(browser: httpx.AsyncClient) -> bool:
    """Whether the browser's session still works, for the API and for the pages."""
    api = await browser.get("/v1/ping")
    page = await browser.get("/ui/system")
    if api.status_code == 200:
        assert page.status_code == 200, page.text
        return True
    assert_envelope(api, 401, "unauthorized")
    assert page.status_code == 303
    assert page.headers["location"] == "/ui/login?next=%2Fui%2Fsystem"
    return False


async def rows(app: Starlette) -> list[dict]:
    found = await kernel_of(app).db.fetchall("SELECT * FROM ui_sessions ORDER BY created_at")
    return [dict(r) for r in found]


def id_hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


async def row_of(app: Starlette, session_id: str) -> dict | None:
    found = await kernel_of(app).db.fetchone("SELECT * FROM ui_sessions WHERE id_hash = ?",
                                             (id_hash(session_id),))
    return dict(found) if found else None


# --- idle timeout and absolute expiry ---------------------------------------------------


async def test_a_session_ends_after_the_idle_time_without_a_request(browser, clock) -> None:
    assert await signed_in(browser.client)
    clock.advance(IDLE + SECOND)
    assert not await signed_in(browser.client)


async def test_a_session_ends_exactly_at_the_idle_time(browser, clock) -> None:
    clock.advance(IDLE - SECOND)
    assert await signed_in(browser.client)  # this request starts the idle time again
    clock.advance(IDLE)
    assert not await signed_in(browser.client)


async def test_signing_in_again_after_an_idle_end_is_a_new_session(browser, clock,
                                                                   settings) -> None:
    old = browser.client.cookies["ff_session"]
    clock.advance(IDLE + SECOND)
    assert not await signed_in(browser.client)
    again = await sign_in(browser.client, settings.install_token)
    assert again.client.cookies["ff_session"] != old
    assert await signed_in(again.client)


async def test_requests_within_the_idle_time_keep_a_session_alive(browser, clock) -> None:
    step = IDLE * 3 / 4
    for _ in range(4):  # three idle times in all
        clock.advance(step)
        assert await signed_in(browser.client)
    clock.advance(IDLE + SECOND)
    assert not await signed_in(browser.client)


async def test_one_sessions_activity_does_not_keep_another_alive(anon, clock,
                                                                 settings) -> None:
    active = await sign_in(anon, settings.install_token)
    async with anonymous(anon) as other_browser:
        idle = await sign_in(other_browser, settings.install_token)
        for _ in range(3):
            clock.advance(IDLE / 2)
            assert await signed_in(active.client)
        assert not await signed_in(idle.client)


@pytest.fixture
def write_auth(write_core_json):
    def write(**auth) -> None:
        write_core_json({"auth": auth})
    return write


@pytest.fixture
async def short_lived(make_app, home,
                      write_auth) -> AsyncIterator[tuple[Starlette, FakeClock, str]]:
    """A Core whose sessions last an hour, or 20 minutes without a request."""
    write_auth(session_ttl_hours=1, session_idle_minutes=20)
    settings = load_settings(home, env={})
    app = make_app(settings=settings)
    fake = FakeClock.on(app)
    async with running(app, None):
        yield app, fake, settings.install_token


async def test_configured_idle_time_is_used(short_lived) -> None:
    app, clock, token = short_lived
    async with anonymous_on(app) as raw:
        ui = await sign_in(raw, token)
        clock.advance(timedelta(minutes=19))
        assert await signed_in(ui.client)
        clock.advance(timedelta(minutes=20))
        assert not await signed_in(ui.client)


async def test_a_session_ends_at_its_absolute_expiry_however_active(short_lived) -> None:
    app, clock, token = short_lived
    async with anonymous_on(app) as raw:
        response = await raw.post("/ui/login", data={"token": token})
        assert response.status_code == 303
        assert "max-age=3600" in response.headers["set-cookie"].lower()
        for _ in range(5):  # active every 11 minutes: never idle
            clock.advance(timedelta(minutes=11))
            assert await signed_in(raw)
        clock.advance(timedelta(minutes=5) - SECOND)  # 59:59 after sign-in
        assert await signed_in(raw)
        clock.advance(SECOND)
        assert not await signed_in(raw)


def anonymous_on(app: Starlette) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                             base_url="http://testserver")


async def test_sign_out_and_token_rotation_end_a_session(app, browser, clock, settings) -> None:
    async with anonymous(browser.client) as second:
        other = await sign_in(second, settings.install_token)
        response = await browser.client.post("/ui/logout",
                                              data={"csrf_token": browser.csrf})
        assert response.status_code == 303
        assert not await signed_in(browser.client)
        assert await signed_in(other.client)

        rotate_token(settings.paths.config_file)
        kernel_of(app).tokens._checked = float("-inf")
        assert not await signed_in(other.client)


# --- what is stored ---------------------------------------------------------------------


async def test_stored_times_are_one_utc_format(app, browser, clock, settings) -> None:
    clock.advance(timedelta(minutes=2))
    assert await signed_in(browser.client)
    # a clock in another zone still stores UTC
    clock.now = clock.now.astimezone(timezone(timedelta(hours=5, minutes=30)))
    async with anonymous(browser.client) as second:
        await sign_in(second, settings.install_token)
        clock.advance(timedelta(minutes=2))
        assert await signed_in(second)

    async def all_written() -> list[dict]:
        found = await rows(app)
        return found if all(r["last_seen_at"] != r["created_at"] for r in found) else []

    stored = await eventually(all_written, what="both last-seen times to be written")
    assert len(stored) == 2
    for row in stored:
        for column in ("created_at", "expires_at", "last_seen_at"):
            assert STAMP.match(row[column]), (column, row[column])
    first = stored[0]
    assert first["created_at"] == stamp(START) == "2030-01-02T03:04:05.678901Z"
    assert first["expires_at"] == stamp(START + TTL)
    assert first["last_seen_at"] == stamp(START + timedelta(minutes=2))
    assert stored[1]["created_at"] == stamp(START + timedelta(minutes=2))


async def test_the_cookie_is_not_stored_only_its_hash(app, browser) -> None:
    session_id = browser.client.cookies["ff_session"]
    stored = await rows(app)
    assert [r["id_hash"] for r in stored] == [id_hash(session_id)]
    assert session_id not in str(stored)


async def test_last_seen_is_written_back_after_more_than_a_minute(app, browser,
                                                                  clock) -> None:
    session_id = browser.client.cookies["ff_session"]
    assert (await row_of(app, session_id))["last_seen_at"] == stamp(START)

    clock.advance(timedelta(seconds=30))
    assert await signed_in(browser.client)
    clock.advance(timedelta(seconds=20))
    assert await signed_in(browser.client)
    # at most once a minute: these requests changed nothing on disk; a later one does
    await kernel_of(app).db.write(lambda tx: None)  # writes run in order: a barrier
    assert (await row_of(app, session_id))["last_seen_at"] == stamp(START)

    seen = clock.advance(timedelta(seconds=11))
    assert await signed_in(browser.client)

    async def stored() -> bool:
        return (await row_of(app, session_id))["last_seen_at"] == stamp(seen)

    await eventually(stored, what="last_seen_at to be written back")


async def test_stored_last_seen_keeps_a_session_alive_across_a_restart(make_app,
                                                                       settings) -> None:
    first = make_app()
    clock = FakeClock.on(first)
    async with running(first, None) as raw:
        await sign_in(raw, settings.install_token)
        session_id = raw.cookies["ff_session"]
        seen = clock.advance(timedelta(minutes=5))
        assert await signed_in(raw)

        async def stored() -> bool:
            return (await row_of(first, session_id))["last_seen_at"] == stamp(seen)

        await eventually(stored, what="last_seen_at to be written back")

    # past sign-in + idle, within idle of the last request: alive only by the stored time
    later = seen + IDLE - SECOND
    assert later >= START + IDLE
    again = make_app()
    clock = FakeClock.on(again, later)
    async with running(again, None) as raw:
        raw.cookies.set("ff_session", session_id)
        assert await signed_in(raw)
        clock.advance(IDLE)
        assert not await signed_in(raw)


# --- purge ------------------------------------------------------------------------------


async def test_running_core_purges_ended_sessions(app, anon, clock, settings) -> None:
    idle = await sign_in(anon, settings.install_token)
    clock.advance(IDLE / 2)
    async with anonymous(anon) as other, anonymous(anon) as third:
        await sign_in(other, settings.install_token)
        logged_out = await sign_in(third, settings.install_token)
        await third.post("/ui/logout", data={"csrf_token": logged_out.csrf})
        clock.advance(IDLE / 2 + SECOND)  # the first session is now idle past its time
        assert await signed_in(other)

        live_hash = id_hash(other.cookies["ff_session"])
        # sign-out deleted its row; the idle one stays until purged
        assert {r["id_hash"] for r in await rows(app)} == {
            id_hash(anon.cookies["ff_session"]), live_hash}

        kernel_of(app).sessions.start_purging(every=0.01)

        async def purged() -> bool:
            return [r["id_hash"] for r in await rows(app)] == [live_hash]

        await eventually(purged, what="the idle session's row to be purged")
        assert await signed_in(other)
        assert not await signed_in(idle.client)


async def test_purge_removes_expired_and_old_token_sessions(app, anon, clock,
                                                            settings) -> None:
    kernel = kernel_of(app)
    await sign_in(anon, settings.install_token)
    assert await kernel.sessions.purge() == 0
    assert len(await rows(app)) == 1

    rotate_token(settings.paths.config_file)
    kernel.tokens._checked = float("-inf")
    assert await kernel.sessions.purge() == 1
    assert await rows(app) == []

    async with anonymous(anon) as other:
        session_id, _ = await kernel.sessions.create()
        other.cookies.set("ff_session", session_id)
        for _ in range(TTL // (IDLE / 2) - 1):  # active all along, up to TTL
            clock.advance(IDLE / 2)
            assert await signed_in(other)
        clock.advance(IDLE / 2)
        assert await kernel.sessions.purge() == 1
        assert await rows(app) == []


async def test_purge_keeps_a_live_session_whose_stored_last_seen_is_old(
    make_app, settings
) -> None:
    """The stored last-seen time may lag the real one by up to a minute; a session that is
    still live must not lose its row to the purge (it would be gone after a restart)."""
    app = make_app()
    clock = FakeClock.on(app)
    async with running(app, None) as raw:
        await sign_in(raw, settings.install_token)
        session_id = raw.cookies["ff_session"]
        clock.advance(timedelta(seconds=59))  # not written back: under a minute
        assert await signed_in(raw)
        clock.advance(IDLE - timedelta(seconds=29))  # 30 s within idle of that request
        assert await kernel_of(app).sessions.purge() == 0
        assert await row_of(app, session_id) is not None
    again = make_app()
    FakeClock.on(again, clock.now)
    async with running(again, None) as raw:
        raw.cookies.set("ff_session", session_id)
        assert await signed_in(raw)


async def test_purging_stops_with_core(make_app) -> None:
    app = make_app()
    async with running(app, None):
        sessions = kernel_of(app).sessions
        sessions.start_purging(every=0.01)  # replaces the one Core started
        await eventually(lambda: len(purgers()) == 1, what="one purging task")
    await eventually(lambda: purgers() == [], what="the purging task to end with Core")


def purgers() -> list[asyncio.Task]:
    return [t for t in asyncio.all_tasks() if t.get_name() == "faceforge-sessions"
            and not t.done()]


# --- sessions from before the one timestamp format --------------------------------------


async def test_a_session_stored_before_the_upgrade_still_works(make_app, settings,
                                                              monkeypatch) -> None:
    """Kernel migration 2 rewrote '...+00:00' session times as '...Z'."""
    db = Database(settings.paths.db_file)
    await db.open()
    with monkeypatch.context() as patch:
        patch.setattr(migrations, "KERNEL_MIGRATIONS", migrations.KERNEL_MIGRATIONS[:1])
        await migrations.apply_migrations(db, [])
    session_id = "an-old-session-cookie"
    created = START - timedelta(hours=1)
    await db.write(lambda tx: tx.execute(
        "INSERT INTO ui_sessions (id_hash, csrf_token, token_fingerprint, created_at,"
        " expires_at) VALUES (?, ?, ?, ?, ?)",
        (id_hash(session_id), "old-csrf", fingerprint(settings.install_token),
         created.isoformat(), (created + TTL).isoformat())))
    await db.close()
    assert created.isoformat().endswith("+00:00")

    app = make_app()
    clock = FakeClock.on(app)
    async with running(app, None) as raw:
        raw.cookies.set("ff_session", session_id)
        assert await signed_in(raw)
        (row,) = await rows(app)
        for column in ("created_at", "expires_at", "last_seen_at"):
            assert STAMP.match(row[column]), (column, row[column])
        # the old times were kept (to the millisecond)
        expires = datetime.fromisoformat(row["expires_at"])
        assert abs(expires - (created + TTL)) < timedelta(milliseconds=1)
        # and compare as text with new ones: the purge finds it once it has ended
        clock.advance(IDLE + SECOND)
        assert await kernel_of(app).sessions.purge() == 1
        assert await rows(app) == []


# --- configuration ----------------------------------------------------------------------


@pytest.mark.parametrize("key", ["session_idle_minutes", "session_ttl_hours"])
@pytest.mark.parametrize("value", [0, -5, "720", 1.5, True, None])
def test_a_bad_session_time_is_a_config_error_naming_the_key(home: Path, write_auth, key: str,
                                                             value: object) -> None:
    write_auth(**{key: value})
    with pytest.raises(ConfigError) as info:
        load_settings(home, env={})
    message = str(info.value)
    assert f"auth.{key}" in message
    assert str(home / "config" / "core.json") in message
    assert "\n" not in message


def test_serve_refuses_a_zero_idle_time_with_one_line(home: Path, write_auth, capsys) -> None:
    write_auth(session_idle_minutes=0)
    assert main(["serve", "--home", str(home), "--port", "0"]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("faceforge: error: ")
    assert "auth.session_idle_minutes" in lines[0] and ">= 1" in lines[0]


def test_idle_time_defaults_to_twelve_hours(home: Path) -> None:
    config = load_settings(home, env={}).config.auth
    assert (config.session_idle_minutes, config.session_ttl_hours) == (720, 336)

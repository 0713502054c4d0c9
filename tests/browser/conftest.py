"""Real-browser fixtures: a real ``faceforge serve`` process and headless Debian Chromium.

Nothing is downloaded: Chromium comes from ``FACEFORGE_CHROMIUM`` or the PATH and Playwright
drives it through ``executable_path``. Every request to a host other than 127.0.0.1 is aborted
and recorded, so a test can prove the UI loads nothing from outside.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, Page, Playwright, Route, sync_playwright

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "tests-artifacts"
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
DESKTOP = {"width": 1280, "height": 800}
START_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Keep each phase's report on the item so fixture teardown can see whether the test
    failed (``item.rep_call``)."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


def _server_env() -> dict[str, str]:
    """No FACEFORGE_* settings leak in (home, port, bind address, disabled plugins)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("FACEFORGE_")}


def _fail_start(proc: subprocess.Popen[str], why: str, console: Path) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=STOP_TIMEOUT)
    stderr = console.read_text("utf-8", errors="replace")
    pytest.fail(f"faceforge serve {why}; exit code {proc.returncode}; stderr:\n{stderr}")


@contextmanager
def core_server(home: Path) -> Iterator[tuple[str, str]]:
    """A real ``python -m kernel serve --port 0`` on ``home``, stopped on exit; yields
    (base_url, token)."""
    env = _server_env()
    # the console log goes to a file: a pipe nobody reads fills up over a session's worth of
    # requests, and the server then blocks writing its next log line
    console = home.parent / f"{home.name}-console.log"
    with console.open("w", encoding="utf-8") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "kernel", "serve", "--home", str(home), "--port", "0"],
            env=env, cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
            text=True)
    try:
        ports_file = home / "config" / "ports.json"
        base_url = ""
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                _fail_start(proc, "exited during startup", console)
            if not base_url and ports_file.exists():
                try:
                    port = json.loads(ports_file.read_text(encoding="utf-8"))["core"]
                except (ValueError, KeyError):
                    port = None  # written atomically, but be lenient
                if port:
                    base_url = f"http://127.0.0.1:{port}"
            if base_url:
                try:
                    if httpx.get(base_url + "/healthz", timeout=1.0).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
            time.sleep(0.1)  # bounded poll for the process to come up
        else:
            _fail_start(proc, f"was not healthy within {START_TIMEOUT:.0f} s "
                              f"(ports.json {'found' if base_url else 'missing'})", console)
        token = subprocess.run(
            [sys.executable, "-m", "kernel", "token", "--home", str(home)], env=env,
            cwd=REPO_ROOT, capture_output=True, text=True, check=True, timeout=30,
        ).stdout.strip()
        assert token, "faceforge token printed nothing"
        yield base_url, token
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=STOP_TIMEOUT)


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """The browser tests' shared server, on a fresh home; yields (base_url, token)."""
    with core_server(tmp_path_factory.mktemp("browser-home")) as served:
        yield served


@pytest.fixture
def api(live_server: tuple[str, str]) -> Iterator[httpx.Client]:
    """An install-token client of the session's server."""
    base, token = live_server
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}) as client:
        yield client


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """Debian's Chromium (or FACEFORGE_CHROMIUM); a missing browser is a failure, not a skip."""
    explicit = os.environ.get("FACEFORGE_CHROMIUM")
    if explicit:
        if Path(explicit).is_file() and os.access(explicit, os.X_OK):
            return explicit
        pytest.fail(f"FACEFORGE_CHROMIUM={explicit!r} is not an executable file. Point it at "
                    "a Chromium binary or unset it (Debian: 'apt-get install chromium').")
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.fail("No Chromium found for the browser tests. Install it (Debian: "
                "'apt-get install chromium') or point FACEFORGE_CHROMIUM at a Chromium binary. "
                "'playwright install' is not used.")


@pytest.fixture(scope="module")
def playwright_instance() -> Iterator[Playwright]:
    # Module scope: Playwright's sync API runs its own loop, so it is stopped before any
    # asyncio test module runs.
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="module")
def browser(playwright_instance: Playwright, chromium_path: str) -> Iterator[Browser]:
    b = playwright_instance.chromium.launch(executable_path=chromium_path, headless=True,
                                            args=CHROMIUM_FLAGS)
    yield b
    b.close()


@pytest.fixture
def viewport() -> dict[str, int]:
    """Override with ``@pytest.mark.parametrize("viewport", [...])`` for other sizes."""
    return DESKTOP


@pytest.fixture
def external_requests() -> list[str]:
    """URLs the page tried to load from a host other than 127.0.0.1 (all aborted)."""
    return []


@pytest.fixture
def page(browser: Browser, viewport: dict[str, int], external_requests: list[str],
         request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh context per test; off-host requests are blocked and recorded; on failure a
    full-page screenshot goes to tests-artifacts/<test name>.png."""
    context = browser.new_context(viewport=viewport)
    context.set_default_timeout(10_000)

    def guard(route: Route) -> None:
        host = urlsplit(route.request.url).hostname
        if host != "127.0.0.1":
            external_requests.append(route.request.url)
            route.abort("blockedbyclient")
        else:
            route.continue_()

    context.route("**/*", guard)
    pg = context.new_page()
    yield pg
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        name = re.sub(r"[^\w.-]+", "_", request.node.name)
        try:
            pg.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
        except Exception as exc:  # the screenshot must not hide the real failure
            print(f"could not save a screenshot: {exc}", file=sys.stderr)
    context.close()

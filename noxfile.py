"""Developer sessions: ``nox -s tests`` (the full suite), lint, typecheck, e2e, bench."""

from __future__ import annotations

import os
import shutil

import nox

nox.options.sessions = ["tests"]
nox.options.reuse_existing_virtualenvs = True
SAMPLE_PLUGIN = "examples/sample_plugin"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
#: programs the benchmarks run (the assets phase's client and its download baseline), with
#: the Debian package of each; nginx lives in /usr/sbin, often not on a user's PATH
BENCH_TOOLS = {"curl": "curl", "nginx": "nginx-light"}


def install(session: nox.Session, *extras: str) -> None:
    """The project (editable) with the test extras, plus the sample third-party plugin."""
    session.install("-e", f".[{','.join(('test', *extras))}]")
    session.install("-e", SAMPLE_PLUGIN)


def ensure_chromium(session: nox.Session) -> None:
    """Browser tests drive a real Chromium; on Debian as root, install it when missing."""
    if os.environ.get("FACEFORGE_CHROMIUM") or any(shutil.which(n) for n in CHROMIUM_NAMES):
        return
    if shutil.which("apt-get") and hasattr(os, "geteuid") and os.geteuid() == 0:
        session.log("Chromium not found: installing Debian's chromium package")
        session.run("apt-get", "update", "-qq", external=True)
        session.run("apt-get", "install", "-y", "-qq", "chromium", external=True,
                    env={"DEBIAN_FRONTEND": "noninteractive"})
        return
    session.error("the browser tests need Chromium: install it (Debian/Ubuntu: "
                  "'apt-get install chromium') or set FACEFORGE_CHROMIUM=/path/to/chrome")


def ensure_bench_tools(session: nox.Session) -> None:
    """curl and nginx for the assets benchmark; on Debian as root, install what is missing."""
    missing = [package for tool, package in BENCH_TOOLS.items()
               if not (shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/sbin"))]
    if not missing:
        return
    if shutil.which("apt-get") and hasattr(os, "geteuid") and os.geteuid() == 0:
        session.log(f"installing Debian packages for the benchmarks: {' '.join(missing)}")
        session.run("apt-get", "update", "-qq", external=True)
        session.run("apt-get", "install", "-y", "-qq", *missing, external=True,
                    env={"DEBIAN_FRONTEND": "noninteractive"})
        return
    session.error(f"the assets benchmark needs {' and '.join(missing)}: install "
                  f"{'them' if len(missing) > 1 else 'it'} (Debian/Ubuntu: 'apt-get install "
                  f"{' '.join(missing)}')")


@nox.session
def tests(session: nox.Session) -> None:
    """Run the whole test suite: unit, API, end-to-end and browser tests."""
    install(session)
    ensure_chromium(session)
    session.run("pytest", *session.posargs)


@nox.session
def e2e(session: nox.Session) -> None:
    """Run only the tests that start a real server process (socket and browser)."""
    install(session)
    ensure_chromium(session)
    session.run("pytest", "-m", "e2e or browser", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """Lint with ruff."""
    session.install("ruff")
    session.run("ruff", "check", ".", *session.posargs)


@nox.session
def typecheck(session: nox.Session) -> None:
    """Type-check the kernel and the SDK with mypy."""
    session.install("-e", ".", "mypy")
    session.run("mypy", "kernel", "ff_plugin_sdk", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks against a real server; prints JSON (``-- --quick`` for a short run)."""
    install(session)
    ensure_bench_tools(session)
    session.run("python", "-m", "tests.bench.run", *session.posargs)

"""Shared fixtures: a Core on a tmp_path home, with its lifespan really run."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from kernel.app import create_app
from kernel.config import Settings, load_settings


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def settings(home: Path) -> Settings:
    """Settings for a fresh home; the real environment is not consulted."""
    return load_settings(home, env={})


@asynccontextmanager
async def running(app: Starlette, token: str | None) -> AsyncIterator[httpx.AsyncClient]:
    """Run the app's lifespan and yield a client talking to it in-process."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://testserver",
                          headers=headers) as client,
    ):
        yield client


AppFactory = Callable[..., Starlette]


@pytest.fixture
def make_app(settings: Settings) -> AppFactory:
    """Build an app on the test home; ``extra_plugins`` are (name, module) pairs."""

    def factory(extra_plugins: Sequence[tuple[str, Any]] = (), *,
                settings: Settings = settings, console_log: bool = False) -> Starlette:
        return create_app(settings, extra_plugins=extra_plugins, console_log=console_log)

    return factory


@pytest.fixture
async def app(make_app: AppFactory) -> Starlette:
    return make_app()


@pytest.fixture
async def client(app: Starlette, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """An authenticated client (install token) on a running Core."""
    async with running(app, settings.install_token) as c:
        yield c


@pytest.fixture
async def anon(client: httpx.AsyncClient) -> AsyncIterator[httpx.AsyncClient]:
    """The same running Core, without credentials."""
    async with httpx.AsyncClient(transport=client._transport,
                                 base_url="http://testserver") as c:
        yield c

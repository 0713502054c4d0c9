"""The two clients: :class:`AsyncFaceForge` (asyncio) and :class:`FaceForge` (blocking),
the same resource groups on each."""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Generic

import httpx

from ff_plugin_sdk.client._group import Async, M, Sync
from ff_plugin_sdk.client._http import AsyncDriver, SyncDriver
from ff_plugin_sdk.client._plan import Retry, as_retry
from ff_plugin_sdk.client.assets import Assets
from ff_plugin_sdk.client.descriptors import Descriptors
from ff_plugin_sdk.client.entities import Entities
from ff_plugin_sdk.client.events import Events
from ff_plugin_sdk.client.fields import FieldDefs
from ff_plugin_sdk.client.jobs import Jobs
from ff_plugin_sdk.client.plugins import Plugins
from ff_plugin_sdk.client.relationships import Relationships, RelationTypes
from ff_plugin_sdk.client.system import Raw, System

#: where a runner started by Core finds it, and the token Core issued it
URL_ENV = "FACEFORGE_URL"
TOKEN_ENV = "FACEFORGE_TOKEN"
DEFAULT_TIMEOUT = 30.0
#: the address used with a ``transport`` (an in-process app) when none is given
IN_PROCESS_URL = "http://faceforge.invalid"


def _quick_async_detection() -> None:
    """httpcore runs ``import sniffio`` on every async request; without sniffio installed
    (anyio no longer needs it) each failing import searches ``sys.path`` again, 0.05-0.3 ms
    a request here.  A None in ``sys.modules`` makes that import fail at once — the same
    answer (httpcore then assumes asyncio, as it does now), without the search."""
    if "sniffio" not in sys.modules and importlib.util.find_spec("sniffio") is None:
        sys.modules["sniffio"] = None  # type: ignore[assignment]


def _connection(url: str | None, token: str | None, transport: Any,
                headers: Mapping[str, str] | None) -> tuple[str, dict[str, str]]:
    url = url or os.environ.get(URL_ENV) or (IN_PROCESS_URL if transport is not None else None)
    if not url:
        raise ValueError(f"no address for Core: pass url= or set {URL_ENV}")
    token = token if token is not None else os.environ.get(TOKEN_ENV)
    sent = {"User-Agent": "ff-plugin-sdk", **(headers or {})}
    if token:
        sent["Authorization"] = f"Bearer {token}"
    return url.rstrip("/"), sent


class _Groups(Generic[M]):
    """The resource groups, bound to one driver."""

    def _connect(self, http_type: type[Any], driver_type: type[Any], url: str | None,
                 token: str | None, transport: Any, timeout: float, retries: int | Retry,
                 headers: Mapping[str, str] | None) -> Any:
        base, sent = _connection(url, token, transport, headers)
        #: Core's address
        self.url = base
        self.timeout = httpx.Timeout(timeout)
        http = http_type(base_url=base, headers=sent, timeout=self.timeout,
                         transport=transport, trust_env=False)
        driver = driver_type(http, as_retry(retries), self.timeout)
        self.system: System[M] = System(driver)
        self.entities: Entities[M] = Entities(driver)
        self.descriptors: Descriptors[M] = Descriptors(driver)
        self.fields: FieldDefs[M] = FieldDefs(driver)
        self.relationships: Relationships[M] = Relationships(driver)
        self.relation_types: RelationTypes[M] = RelationTypes(driver)
        self.assets: Assets[M] = Assets(driver)
        self.jobs: Jobs[M] = Jobs(driver)
        self.events: Events[M] = Events(driver)
        self.plugins: Plugins[M] = Plugins(driver)
        #: any other call (a plugin's own routes): ``raw.call(method, path, ...)``
        self.raw: Raw[M] = Raw(driver)
        return http


class AsyncFaceForge(_Groups[Async]):
    """A client for Core's ``/v1`` API, for asyncio code.

    ``url`` and ``token`` default to ``FACEFORGE_URL`` and ``FACEFORGE_TOKEN``, which Core
    sets for the runners it starts.  ``transport`` replaces the network (an
    ``httpx.ASGITransport`` around an in-process app, in tests).  ``retries`` (a number or
    a :class:`Retry`) says how transport failures and 502/503/504 answers are retried.
    Use it as ``async with AsyncFaceForge() as ff:``, or call :meth:`aclose`.
    """

    def __init__(self, url: str | None = None, token: str | None = None, *,
                 transport: httpx.AsyncBaseTransport | None = None,
                 timeout: float = DEFAULT_TIMEOUT, retries: int | Retry = 3,
                 headers: Mapping[str, str] | None = None) -> None:
        _quick_async_detection()
        #: the underlying httpx client (its base URL is Core's)
        self.http: httpx.AsyncClient = self._connect(
            httpx.AsyncClient, AsyncDriver, url, token, transport, timeout, retries, headers)

    async def aclose(self) -> None:
        await self.http.aclose()

    async def __aenter__(self) -> AsyncFaceForge:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        trace: TracebackType | None) -> None:
        await self.aclose()


class FaceForge(_Groups[Sync]):
    """A client for Core's ``/v1`` API, for blocking code: the same groups and methods as
    :class:`AsyncFaceForge`, returning results instead of coroutines.  Use it as
    ``with FaceForge() as ff:``, or call :meth:`close`."""

    def __init__(self, url: str | None = None, token: str | None = None, *,
                 transport: httpx.BaseTransport | None = None,
                 timeout: float = DEFAULT_TIMEOUT, retries: int | Retry = 3,
                 headers: Mapping[str, str] | None = None) -> None:
        self.http: httpx.Client = self._connect(
            httpx.Client, SyncDriver, url, token, transport, timeout, retries, headers)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> FaceForge:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()

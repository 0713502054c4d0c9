"""Resource groups (``client.entities``, ``client.assets``, ...) written once for both
clients.

A group's method builds a plan (:mod:`._plan`); the :func:`endpoint` and :func:`streaming`
decorators hand it to the client's driver.  The group is generic in the client's mode, so
type checkers see ``await client.entities.get(id)`` on :class:`AsyncFaceForge` and
``client.entities.get(id)`` on :class:`FaceForge`, both returning an ``Entity``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import Any, Concatenate, Generic, ParamSpec, Self, TypeVar, final, overload

import httpx

from ff_plugin_sdk.client._http import AsyncDriver, SyncDriver
from ff_plugin_sdk.client._plan import Call, Emit, Feed, Plan, fetch, request

P = ParamSpec("P")
T = TypeVar("T")


@final
class Async:
    """The mode of :class:`AsyncFaceForge`: methods return awaitables, streams async
    iterators."""


@final
class Sync:
    """The mode of :class:`FaceForge`: methods block and return the result."""


M = TypeVar("M", Async, Sync)


class Group(Generic[M]):
    """A set of related calls, bound to one client's driver."""

    def __init__(self, driver: AsyncDriver | SyncDriver) -> None:
        self._driver = driver
        self._retry = driver.retry

    def _fetch(self, call: Call, into: type[T]) -> Plan[T]:
        """Send ``call`` with the client's retries and decode the answer as ``into``."""
        return fetch(call, self._retry, into)

    def _send(self, call: Call) -> Plan[httpx.Response]:
        """Send ``call`` with the client's retries; the answer, undecoded."""
        return request(call, self._retry)

    def _none(self, call: Call) -> Plan[None]:
        yield from request(call, self._retry)


class _Method(Generic[P, T]):
    """A group method whose plan the client's driver runs."""

    def __init__(self, build: Callable[Concatenate[Any, P], Any]) -> None:
        self.build = build
        self.__doc__ = build.__doc__
        self.__name__ = build.__name__

    def _bind(self, group: Group[Any] | None, drive: Callable[[Any], Any]) -> Any:
        build = self.build

        def call(*args: Any, **kwargs: Any) -> Any:
            return drive(build(group, *args, **kwargs))

        call.__doc__, call.__name__ = self.__doc__, self.__name__
        return call


class endpoint(_Method[P, T]):
    """Decorates a group method that returns a plan: on the async client the method
    returns a coroutine of the plan's result, on the sync client the result."""

    def __init__(self, build: Callable[Concatenate[Any, P], Plan[T]]) -> None:
        super().__init__(build)

    @overload
    def __get__(self, group: None, owner: Any) -> Self: ...
    @overload
    def __get__(self, group: Group[Async], owner: Any) -> Callable[P, Coroutine[Any, Any, T]]:
        ...
    @overload
    def __get__(self, group: Group[Sync], owner: Any) -> Callable[P, T]: ...

    def __get__(self, group: Group[Any] | None, owner: Any) -> Any:
        return self if group is None else self._bind(group, group._driver.run)


class streaming(_Method[P, T]):
    """Decorates a group method that returns a feed (a plan that emits items): an async
    iterator of them on the async client, an iterator on the sync client.  Requests are
    made as the iteration goes; leaving it early closes any open answer."""

    def __init__(self, build: Callable[Concatenate[Any, P], Feed[T]]) -> None:
        super().__init__(build)

    @overload
    def __get__(self, group: None, owner: Any) -> Self: ...
    @overload
    def __get__(self, group: Group[Async], owner: Any) -> Callable[P, AsyncIterator[T]]: ...
    @overload
    def __get__(self, group: Group[Sync], owner: Any) -> Callable[P, Iterator[T]]: ...

    def __get__(self, group: Group[Any] | None, owner: Any) -> Any:
        return self if group is None else self._bind(group, group._driver.iterate)


def pages(fetch_page: Callable[[str | None], Plan[Any]], cursor: str | None = None) -> Feed[Any]:
    """Every item of a keyset-paged list, page after page (``fetch_page(cursor)``)."""
    while True:
        page = yield from fetch_page(cursor)
        for item in page.items:
            yield Emit(item)
        cursor = page.next_cursor
        if not cursor:
            return

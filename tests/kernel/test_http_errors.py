"""Every error is the JSON envelope with the right status; bad input is never a 500;
correlation ids are echoed, generated or replaced."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import echo_api
import httpx
import pytest

from kernel.config import load_settings
from tests.conftest import running

from .conftest import anonymous, assert_envelope, kernel_of

BODY_LIMIT = 64
VALID_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


@pytest.fixture
async def app(make_app, settings):
    return make_app(extra_plugins=[("echo", echo_api)])


# --- one case per kind of error, checked individually and by the meta-test ---------------

CASES: dict[str, tuple[str, str, dict[str, Any], int, str]] = {
    "unknown route": ("GET", "/v1/no/such/route", {}, 404, "not_found"),
    "wrong method": ("GET", "/v1/echo/greet", {}, 405, "method_not_allowed"),
    "malformed json": ("POST", "/v1/echo/greet", {"content": b'{"name": '}, 400,
                       "invalid_json"),
    "empty body": ("POST", "/v1/echo/greet", {"content": b""}, 400, "invalid_json"),
    "wrong type": ("POST", "/v1/echo/greet", {"json": {"name": 5}}, 422, "validation_error"),
    "missing field": ("POST", "/v1/echo/greet", {"json": {"age": 3}}, 422,
                      "validation_error"),
    "unknown field": ("POST", "/v1/echo/greet", {"json": {"name": "a", "nickname": "b"}}, 422,
                      "validation_error"),
    "not json media type": ("POST", "/v1/echo/greet",
                            {"content": b"name=a", "headers": {"content-type": "text/plain"}},
                            415, "unsupported_media_type"),
    "bad query value": ("GET", "/v1/echo/repeat?times=lots", {}, 422, "validation_error"),
    "body not utf-8": ("POST", "/v1/echo/greet",
                       {"content": b'{"name": "\xff"}',
                        "headers": {"content-type": "application/json"}}, 400, "invalid_json"),
    "no token": ("GET", "/v1/ping", {"anonymous": True}, 401, "unauthorized"),
    "wrong token": ("GET", "/v1/ping", {"headers": {"authorization": "Bearer nope"},
                                        "anonymous": True}, 401, "unauthorized"),
    "endpoint bug": ("GET", "/v1/echo/boom", {}, 500, "internal_error"),
}


async def send(client: httpx.AsyncClient, case: str) -> httpx.Response:
    method, url, kwargs, _, _ = CASES[case]
    kwargs = dict(kwargs)
    if kwargs.pop("anonymous", False):
        async with anonymous(client) as anon:
            return await anon.request(method, url, **kwargs)
    return await client.request(method, url, **kwargs)


async def test_every_error_matches_the_envelope(client) -> None:
    for case, (_, _, _, status, code) in CASES.items():
        response = await send(client, case)
        try:
            assert_envelope(response, status, code)
        except AssertionError as exc:
            raise AssertionError(f"{case}: {exc}") from exc


async def test_unknown_route_is_404(client) -> None:
    error = assert_envelope(await send(client, "unknown route"), 404, "not_found")
    assert "/v1/no/such/route" in error["message"]


async def test_wrong_method_is_405(client) -> None:
    response = await send(client, "wrong method")
    error = assert_envelope(response, 405, "method_not_allowed")
    assert "GET" in error["message"]
    assert "POST" in response.headers["allow"]


async def test_malformed_json_is_400(client) -> None:
    error = assert_envelope(await send(client, "malformed json"), 400, "invalid_json")
    assert "malformed JSON" in error["message"]


async def test_wrong_type_is_422_with_the_path(client) -> None:
    error = assert_envelope(await send(client, "wrong type"), 422, "validation_error")
    assert error["details"][0]["path"] == "$.name"
    assert "str" in error["details"][0]["message"]


async def test_missing_field_is_422_naming_it(client) -> None:
    error = assert_envelope(await send(client, "missing field"), 422, "validation_error")
    assert "name" in error["message"]


async def test_unknown_field_is_422_naming_it(client) -> None:
    error = assert_envelope(await send(client, "unknown field"), 422, "validation_error")
    assert "nickname" in error["message"]
    assert error["details"][0]["path"] == "$"


async def test_bad_query_value_is_422_with_the_parameter(client) -> None:
    error = assert_envelope(await send(client, "bad query value"), 422, "validation_error")
    assert error["details"][0]["path"] == "query.times"


async def test_valid_requests_still_work(client) -> None:
    response = await client.post("/v1/echo/greet", json={"name": "Ada", "age": 36})
    assert response.status_code == 200
    assert response.json() == {"message": "hello Ada (36)"}
    response = await client.get("/v1/echo/repeat?times=3&tags=a&tags=b")
    assert response.json() == {"times": 3, "tags": ["a", "b"]}
    response = await client.delete("/v1/echo/things/42")
    assert response.status_code == 204 and response.content == b""


# --- body size limit ----------------------------------------------------------------------


@pytest.fixture
async def small_limit(make_app, home, write_core_json) -> AsyncIterator[httpx.AsyncClient]:
    write_core_json({"limits": {"max_json_body_bytes": BODY_LIMIT}})
    settings = load_settings(home, env={})
    assert settings.config.limits.max_json_body_bytes == BODY_LIMIT
    app = make_app(extra_plugins=[("echo", echo_api)], settings=settings)
    async with running(app, settings.install_token) as client:
        yield client


def big_body() -> bytes:
    return b'{"name": "' + b"x" * (BODY_LIMIT * 4) + b'"}'


async def test_body_over_the_limit_with_content_length_is_413(small_limit) -> None:
    response = await small_limit.post("/v1/echo/greet", content=big_body(),
                                      headers={"content-type": "application/json"})
    error = assert_envelope(response, 413, "payload_too_large")
    assert str(BODY_LIMIT) in error["message"]


async def test_streamed_body_over_the_limit_is_413(small_limit) -> None:
    async def chunks():
        data = big_body()
        for i in range(0, len(data), 16):
            yield data[i:i + 16]

    request = small_limit.build_request("POST", "/v1/echo/greet", content=chunks(),
                                        headers={"content-type": "application/json"})
    assert "content-length" not in request.headers
    assert request.headers["transfer-encoding"] == "chunked"
    response = await small_limit.send(request)
    error = assert_envelope(response, 413, "payload_too_large")
    assert str(BODY_LIMIT) in error["message"]


async def test_body_under_the_limit_is_accepted(small_limit) -> None:
    response = await small_limit.post("/v1/echo/greet", json={"name": "Ada"})
    assert response.status_code == 200


# --- 500 -----------------------------------------------------------------------------------


async def test_endpoint_bug_is_a_500_without_internals(client) -> None:
    response = await client.get("/v1/echo/boom", headers={"x-correlation-id": "req-500-check"})
    error = assert_envelope(response, 500, "internal_error")
    assert response.headers["x-correlation-id"] == "req-500-check"
    assert "req-500-check" in error["message"]
    for leaked in ("Traceback", "RuntimeError", "hunter2", "/srv/secret/path", "echo_api"):
        assert leaked not in response.text


async def test_endpoint_bug_is_logged_with_its_correlation_id(client, app, home) -> None:
    await client.get("/v1/echo/boom", headers={"x-correlation-id": "req-500-log"})
    log = (home / "logs" / "core.log").read_text(encoding="utf-8")
    line = next(line for line in log.splitlines()
                if '"req-500-log"' in line and "unhandled error" in line)
    assert "RuntimeError" in line  # the operator sees what went wrong
    assert "hunter2" not in line  # ... but not the secret in it
    assert kernel_of(app).startup_error is None


# --- correlation ids ----------------------------------------------------------------------


async def test_correlation_id_is_echoed(client) -> None:
    response = await client.get("/v1/ping", headers={"x-correlation-id": "job-42.retry:1"})
    assert response.headers["x-correlation-id"] == "job-42.retry:1"


async def test_correlation_id_is_echoed_on_errors(client) -> None:
    response = await client.get("/v1/nowhere", headers={"x-correlation-id": "lost-1"})
    assert response.status_code == 404
    assert response.headers["x-correlation-id"] == "lost-1"


async def test_correlation_id_is_generated_when_absent(client) -> None:
    first = (await client.get("/v1/ping")).headers["x-correlation-id"]
    second = (await client.get("/v1/ping")).headers["x-correlation-id"]
    assert VALID_ID.match(first) and VALID_ID.match(second)
    assert first != second


@pytest.mark.parametrize("junk", ["has spaces in it", "x" * 500, "semi;colon", "<script>"])
async def test_junk_correlation_id_is_replaced(client, junk: str) -> None:
    response = await client.get("/v1/ping", headers={"x-correlation-id": junk})
    given = response.headers["x-correlation-id"]
    assert given != junk
    assert VALID_ID.match(given)

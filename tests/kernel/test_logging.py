"""Logs: JSON lines in logs/core.log with correlation ids, secrets redacted everywhere,
rotation by size."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from kernel.config import rotate_token
from kernel.log import REDACTED, configure_logging

from .conftest import kernel_of

KEYS = {"timestamp", "level", "logger", "correlation_id", "message", "context"}
SECRETS = ["hf_abc123456", "sk-abcdef123456", "token=xyz", "password=hunter2",
           "Authorization: Bearer abc.def-ghi"]


def read_log(logs_dir: Path) -> list[dict]:
    text = (logs_dir / "core.log").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines()]


def secret_message(token: str) -> str:
    return (f"install token {token}; hub hf_abc123456; openai sk-abcdef123456; "
            f"url ?token=xyz&page=2; form password=hunter2; "
            f"headers Authorization: Bearer abc.def-ghi")


def assert_no_secrets(text: str, token: str) -> None:
    for secret in [token, "abc123456", "abcdef123456", "xyz", "hunter2", "abc.def-ghi"]:
        assert secret not in text, f"{secret!r} leaked into: {text}"
    assert text.count(REDACTED) >= 6
    assert "page=2" in text  # redaction is surgical


async def test_log_lines_are_json_with_the_fixed_keys(client, home) -> None:
    await client.get("/v1/ping")
    lines = read_log(home / "logs")
    assert lines, "nothing was logged"
    for line in lines:
        assert set(line) >= KEYS, line
        assert set(line) - KEYS <= {"exception"}
        assert isinstance(line["context"], dict)
        assert line["timestamp"].endswith("Z")
    assert any(line["logger"] == "faceforge.app" and "started" in line["message"]
               for line in lines)


async def test_request_log_line_carries_its_correlation_id(client, home) -> None:
    await client.get("/v1/ping", headers={"x-correlation-id": "log-check-1"})
    access = [line for line in read_log(home / "logs")
              if line["correlation_id"] == "log-check-1"]
    assert len(access) == 1
    assert access[0]["logger"] == "faceforge.http"
    assert "GET /v1/ping 200" in access[0]["message"]
    assert access[0]["context"]["status"] == 200
    assert access[0]["context"]["path"] == "/v1/ping"


async def test_log_lines_outside_a_request_have_no_correlation_id(client, home) -> None:
    started = next(line for line in read_log(home / "logs") if "started" in line["message"])
    assert started["correlation_id"] is None


async def test_secrets_are_redacted_in_the_log_file(client, home, settings) -> None:
    token = settings.install_token
    logging.getLogger("faceforge.test").warning(secret_message(token),
                                                extra={"header": f"Bearer {token}"})
    text = (home / "logs" / "core.log").read_text(encoding="utf-8")
    assert "hf_abc123456" not in text
    line = next(line for line in read_log(home / "logs") if line["logger"] == "faceforge.test")
    assert_no_secrets(json.dumps(line), settings.install_token)


def test_secrets_are_redacted_on_the_console(tmp_path, capsys) -> None:
    token = "Zm9vYmFyYmF6cXV4LWluc3RhbGwtdG9rZW4"
    configure_logging(tmp_path / "logs", secrets=[token], console=True)
    logging.getLogger("faceforge.test").warning(secret_message(token))
    err = capsys.readouterr().err
    assert "faceforge.test" in err
    assert_no_secrets(err, token)
    assert_no_secrets((tmp_path / "logs" / "core.log").read_text(encoding="utf-8"), token)


def test_exception_text_is_redacted(tmp_path) -> None:
    configure_logging(tmp_path / "logs", console=False)
    try:
        raise RuntimeError("connect failed: password=hunter2")
    except RuntimeError:
        logging.getLogger("faceforge.test").exception("boom")
    line = read_log(tmp_path / "logs")[-1]
    assert "RuntimeError" in line["exception"]
    assert "hunter2" not in line["exception"]


def test_secret_at_the_start_of_a_line_is_redacted(tmp_path) -> None:
    configure_logging(tmp_path / "logs", console=False)
    logging.getLogger("faceforge.test").info("first line\nhf_abc123456\npassword=hunter2")
    line = read_log(tmp_path / "logs")[-1]
    assert line["message"] == f"first line\n{REDACTED}\npassword={REDACTED}"


def test_secret_headers_in_context_are_redacted(tmp_path) -> None:
    configure_logging(tmp_path / "logs", console=False)
    headers = {"Authorization": "Bearer abc.def-ghi", "X-FaceForge-Token": "t0ken-value",
               "Accept": "text/html"}
    logging.getLogger("faceforge.test").info("request", extra={"headers": headers,
                                                                "keys": ["sk-abcdef123456"]})
    context = read_log(tmp_path / "logs")[-1]["context"]
    assert context == {"headers": {"Authorization": REDACTED, "X-FaceForge-Token": REDACTED,
                                   "Accept": "text/html"},
                       "keys": [REDACTED]}


async def test_a_rotated_token_is_redacted_too(client, app, home, settings) -> None:
    new = rotate_token(settings.paths.config_file)
    kernel_of(app).tokens._checked = float("-inf")
    assert (await client.get("/v1/ping", headers={"authorization": f"Bearer {new}"})
            ).status_code == 200
    logging.getLogger("faceforge.test").info("the new token is %s", new)
    text = (home / "logs" / "core.log").read_text(encoding="utf-8")
    assert new not in text
    assert "the new token is [REDACTED]" in text


def test_log_file_rotates_past_max_bytes(tmp_path) -> None:
    logs = tmp_path / "logs"
    configure_logging(logs, max_bytes=2_000, backup_count=2, console=False)
    log = logging.getLogger("faceforge.test")
    for n in range(200):
        log.info("line %03d %s", n, "x" * 40)

    assert (logs / "core.log.1").is_file()
    assert (logs / "core.log.2").is_file()
    assert not (logs / "core.log.3").exists()  # backup_count is honoured
    for name in ("core.log", "core.log.1", "core.log.2"):
        assert (logs / name).stat().st_size <= 2_000
    assert read_log(logs)[-1]["message"].startswith("line 199")


def test_level_from_config_filters_lines(tmp_path) -> None:
    configure_logging(tmp_path / "logs", level="warning", console=False)
    log = logging.getLogger("faceforge.test")
    log.info("quiet")
    log.warning("loud")
    assert [line["message"] for line in read_log(tmp_path / "logs")] == ["loud"]


@pytest.mark.parametrize("text", ["the token is short", "sketch-of-a-face", "password reset"])
def test_ordinary_words_are_not_redacted(tmp_path, text) -> None:
    configure_logging(tmp_path / "logs", console=False)
    logging.getLogger("faceforge.test").info(text)
    assert read_log(tmp_path / "logs")[-1]["message"] == text

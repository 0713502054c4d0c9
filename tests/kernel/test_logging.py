"""Logs: JSON lines in logs/core.log with correlation ids, secrets redacted everywhere,
rotation by size."""

from __future__ import annotations

import json
import logging
import re
from http import HTTPStatus
from pathlib import Path

import pytest

from kernel.config import rotate_token
from kernel.log import REDACTED, ConsoleFormatter, configure_logging
from tests.conftest import running

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
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", line["timestamp"])
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


# --- secret shapes, one pass ---------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("key hf_abcdefgh1 end", f"key {REDACTED} end"),
    ("key sk-proj_abc-123 end", f"key {REDACTED} end"),
    ("GET /x?TOKEN=abc&page=2", f"GET /x?TOKEN={REDACTED}&page=2"),
    ("Password=hunter2 ok", f"Password={REDACTED} ok"),
    ('{"authorization": "Bearer abc.def"}', f'{{"authorization": "{REDACTED}"}}'),
    ("x-faceforge-token: t0ken-value", f"x-faceforge-token: {REDACTED}"),
    ("token=hf_abcdefgh", f"token={REDACTED}"),
    ("Authorization: Bearer sk-abcdefgh", f"Authorization: {REDACTED}"),
    ("a hf_abcdefgh1 and sk-abcdefgh2", f"a {REDACTED} and {REDACTED}"),
    ("task-1234567 at 12:30:00, a=b", "task-1234567 at 12:30:00, a=b"),  # no secret shape
    ("hf_short", "hf_short"),  # too short to be a Hugging Face token
])
def test_each_secret_shape_is_redacted_and_nothing_around_it(tmp_path, text,
                                                             expected) -> None:
    configure_logging(tmp_path / "logs", console=False)
    logging.getLogger("faceforge.test").info(text)
    assert read_log(tmp_path / "logs")[-1]["message"] == expected


def test_context_values_of_any_type_are_written_and_redacted(tmp_path) -> None:
    class Endpoint:
        def __str__(self) -> str:
            return "https://hub.example/api?token=abc123"

    configure_logging(tmp_path / "logs", console=False)
    logging.getLogger("faceforge.test").info("mixed", extra={
        "url": Endpoint(), "file": Path("/data/hf_abcdefgh9"), "pair": ("sk-abcdefgh", 2),
        "status": HTTPStatus.NOT_FOUND, "by_id": {7: "seven"}, "ratio": 0.5, "none": None,
        "flag": True, "nested": {"Authorization": "Bearer abc.def-ghi", "ok": [1, "x"]}})
    context = read_log(tmp_path / "logs")[-1]["context"]
    assert context == {
        "url": f"https://hub.example/api?token={REDACTED}", "file": f"/data/{REDACTED}",
        "pair": [REDACTED, 2], "status": 404, "by_id": {"7": "seven"}, "ratio": 0.5,
        "none": None, "flag": True, "nested": {"Authorization": REDACTED, "ok": [1, "x"]}}


def test_a_file_name_that_is_not_utf8_is_still_logged(tmp_path) -> None:
    name = "caf\udce9.jpg"  # what os.fsdecode makes of b"caf\xe9.jpg"
    configure_logging(tmp_path / "logs", console=False)
    log = logging.getLogger("faceforge.test")
    log.info("imported %s", name, extra={"file": name})
    log.info("next")
    first, second = read_log(tmp_path / "logs")
    assert first["message"] == f"imported {name}" and first["context"] == {"file": name}
    assert second["message"] == "next"


# --- the console -----------------------------------------------------------------------------


def test_console_line_is_readable_and_leaves_the_json_context_alone(tmp_path, capsys) -> None:
    configure_logging(tmp_path / "logs", console=True)
    log = logging.getLogger("faceforge.http")
    log.info("GET /v1/ping 200 0.4ms", extra={"status": 200, "correlation_id": "cid-1"})
    log.warning("no request here")
    err = capsys.readouterr().err.splitlines()
    assert re.fullmatch(r"\d\d:\d\d:\d\d INFO    faceforge\.http \[cid-1\] GET /v1/ping 200 "
                        r"0\.4ms", err[0]), err
    assert re.fullmatch(r"\d\d:\d\d:\d\d WARNING faceforge\.http \[-\] no request here",
                        err[1]), err
    assert read_log(tmp_path / "logs")[0]["context"] == {"status": 200}


def test_console_shows_the_traceback_redacted(tmp_path, capsys) -> None:
    configure_logging(tmp_path / "logs", console=True)
    try:
        raise ValueError("connect failed: password=hunter2")
    except ValueError:
        logging.getLogger("faceforge.test").exception("boom")
    err = capsys.readouterr().err
    assert "boom\nTraceback (most recent call last)" in err
    assert f"ValueError: connect failed: password={REDACTED}" in err
    assert "hunter2" not in err
    assert "hunter2" not in (tmp_path / "logs" / "core.log").read_text(encoding="utf-8")


def test_no_console_work_at_all_when_the_console_is_off(tmp_path, capsys, monkeypatch) -> None:
    def must_not_run(self, record):
        raise AssertionError("the console formatter ran with the console off")

    monkeypatch.setattr(ConsoleFormatter, "format", must_not_run)
    configure_logging(tmp_path / "logs", console=False)
    logging.getLogger("faceforge.test").warning("file only")
    assert capsys.readouterr().err == ""
    assert read_log(tmp_path / "logs")[-1]["message"] == "file only"


# --- the access line -------------------------------------------------------------------------


async def test_access_line_of_a_path_with_percent_signs(client, home) -> None:
    response = await client.get("/v1/100%25done%25s", headers={"x-correlation-id": "pct-1"})
    [line] = [line for line in read_log(home / "logs") if line["correlation_id"] == "pct-1"]
    assert line["context"] == {"status": response.status_code, "method": "GET",
                               "path": "/v1/100%done%s"}
    assert re.fullmatch(rf"GET /v1/100%done%s {response.status_code} \d+\.\dms",
                        line["message"])


async def test_no_access_line_when_the_level_is_warning(make_app, settings, home) -> None:
    settings.config.logging.level = "WARNING"
    async with running(make_app(settings=settings), settings.install_token) as client:
        assert (await client.get("/v1/ping")).status_code == 200
        assert (await client.get("/v1/nope")).status_code == 404
    text = (home / "logs" / "core.log").read_text(encoding="utf-8")
    assert "/v1/ping" not in text and "/v1/nope" not in text


# --- rotation --------------------------------------------------------------------------------


def test_rotation_never_splits_or_drops_a_line_between_files(tmp_path) -> None:
    logs = tmp_path / "logs"
    configure_logging(logs, max_bytes=1_500, backup_count=3, console=False)
    log = logging.getLogger("faceforge.test")
    for n in range(40):
        log.info("line %03d %s", n, "é" * (n % 7))
    kept = [json.loads(raw)["message"][:8]
            for name in ("core.log.3", "core.log.2", "core.log.1", "core.log")
            for raw in (logs / name).read_text(encoding="utf-8").splitlines()]
    numbers = [int(message.split()[1]) for message in kept]
    assert numbers == list(range(numbers[0], 40))  # consecutive up to the last line
    for name in ("core.log", "core.log.1", "core.log.2", "core.log.3"):
        assert (logs / name).stat().st_size <= 1_500


def test_a_log_file_left_nearly_full_rotates_on_the_first_new_line(tmp_path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    old = json.dumps({"message": "old " + "x" * 1_000}) + "\n"
    (logs / "core.log").write_text(old, encoding="utf-8")
    configure_logging(logs, max_bytes=1_100, backup_count=1, console=False)
    logging.getLogger("faceforge.test").info("new line %s", "y" * 200)
    assert (logs / "core.log.1").read_text(encoding="utf-8") == old
    assert [line["message"][:8] for line in read_log(logs)] == ["new line"]

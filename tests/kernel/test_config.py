"""config/core.json, ports files and env overrides -> Settings; bad files are clear errors."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from kernel.config import DEFAULT_HOST, DEFAULT_PORT, load_settings, rotate_token
from kernel.errors import ConfigError

from .conftest import write_json


def core_json(home: Path) -> dict:
    return json.loads((home / "config" / "core.json").read_text(encoding="utf-8"))


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- core.json --------------------------------------------------------------------------


def test_first_start_writes_core_json_with_a_private_token(home: Path) -> None:
    settings = load_settings(home, env={})
    path = home / "config" / "core.json"
    token = core_json(home)["auth"]["install_token"]
    assert token == settings.install_token
    assert len(token) >= 32
    if os.name == "posix":
        assert mode(path) == 0o600
    # A second start keeps the token.
    assert load_settings(home, env={}).install_token == token


def test_two_homes_get_different_tokens(tmp_path: Path) -> None:
    a = load_settings(tmp_path / "a", env={}).install_token
    b = load_settings(tmp_path / "b", env={}).install_token
    assert a != b


def test_defaults_bind_loopback_on_43210(home: Path) -> None:
    settings = load_settings(home, env={})
    assert (settings.host, settings.port) == (DEFAULT_HOST, DEFAULT_PORT) == ("127.0.0.1", 43210)


def test_hand_written_core_json_gets_a_token_and_keeps_its_keys(home: Path,
                                                               write_core_json) -> None:
    written = {"network": {"core_port": 45000}, "plugins": {"sample": {"colour": "teal"}}}
    write_core_json(written)
    settings = load_settings(home, env={})

    on_disk = core_json(home)
    token = on_disk.pop("auth")["install_token"]
    assert token and token == settings.install_token
    assert on_disk == written  # nothing else added or dropped
    assert settings.port == 45000
    assert settings.config.plugins["sample"] == {"colour": "teal"}
    if os.name == "posix":
        assert mode(home / "config" / "core.json") == 0o600


def test_a_world_readable_core_json_is_made_private(home: Path, write_core_json) -> None:
    path = write_core_json({"auth": {"install_token": "t" * 40}})
    os.chmod(path, 0o644)
    load_settings(home, env={})
    if os.name == "posix":
        assert mode(path) == 0o600


@pytest.mark.parametrize("text", ['{"network": {"core_port": 1,}}', "[" * 100_000])
def test_invalid_json_names_the_file(home: Path, write_core_json, text: str) -> None:
    path = write_core_json({})
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_settings(home, env={})
    message = str(info.value)
    assert str(path) in message
    assert "not valid JSON" in message
    assert "\n" not in message


def test_top_level_must_be_an_object(home: Path, write_core_json) -> None:
    path = write_core_json(["not", "an", "object"])
    with pytest.raises(ConfigError, match="JSON object") as info:
        load_settings(home, env={})
    assert str(path) in str(info.value)


def test_wrong_type_names_file_and_key(home: Path, write_core_json) -> None:
    path = write_core_json({"network": {"core_port": "x"}})
    with pytest.raises(ConfigError) as info:
        load_settings(home, env={})
    message = str(info.value)
    assert str(path) in message
    assert "network.core_port" in message
    assert "int" in message


@pytest.mark.parametrize(("data", "key"), [
    ({"network": {"core_prot": 1}}, "core_prot"),
    ({"netwrok": {}}, "netwrok"),
])
def test_unknown_key_is_named(home: Path, write_core_json, data: dict, key: str) -> None:
    path = write_core_json(data)
    with pytest.raises(ConfigError) as info:
        load_settings(home, env={})
    assert key in str(info.value)
    assert str(path) in str(info.value)


def test_rotate_token_changes_it_and_keeps_the_rest(home: Path, write_core_json) -> None:
    write_core_json({"network": {"core_port": 45123}, "logging": {"level": "DEBUG"}})
    old = load_settings(home, env={}).install_token

    new = rotate_token(home / "config" / "core.json")

    assert new != old
    on_disk = core_json(home)
    assert on_disk["auth"]["install_token"] == new
    assert on_disk["network"] == {"core_port": 45123}
    assert on_disk["logging"] == {"level": "DEBUG"}
    assert load_settings(home, env={}).install_token == new
    if os.name == "posix":
        assert mode(home / "config" / "core.json") == 0o600


# --- ports ------------------------------------------------------------------------------


def test_ports_json_is_read(home: Path) -> None:
    write_json(home / "config" / "ports.json", {"core": 45001, "seaweed_s3": 45002})
    assert load_settings(home, env={}).port == 45001


def test_legacy_runtime_ports_json_is_read(home: Path) -> None:
    write_json(home / "runtime" / "ports.json", {"core": 45003})
    assert load_settings(home, env={}).port == 45003


def test_config_ports_json_beats_the_legacy_file(home: Path) -> None:
    write_json(home / "runtime" / "ports.json", {"core": 45003})
    write_json(home / "config" / "ports.json", {"core": 45004})
    assert load_settings(home, env={}).port == 45004


def test_ports_json_without_core_falls_back_to_core_json(home: Path, write_core_json) -> None:
    write_core_json({"network": {"core_port": 45005}})
    write_json(home / "config" / "ports.json", {"seaweed_s3": 45006})
    assert load_settings(home, env={}).port == 45005


def test_port_precedence(home: Path, write_core_json) -> None:
    write_core_json({"network": {"core_port": 45010}})
    assert load_settings(home, env={}).port == 45010
    write_json(home / "config" / "ports.json", {"core": 45011})
    assert load_settings(home, env={}).port == 45011
    env = {"FACEFORGE_PORT": "45012"}
    assert load_settings(home, env=env).port == 45012
    assert load_settings(home, port=45013, env=env).port == 45013


def test_broken_ports_json_names_the_file(home: Path) -> None:
    path = write_json(home / "config" / "ports.json", {"core": "high"})
    with pytest.raises(ConfigError) as info:
        load_settings(home, env={})
    assert str(path) in str(info.value)
    assert "core" in str(info.value)


@pytest.mark.parametrize("value", ["http", "80a", "70000", "-1"])
def test_bad_faceforge_port_is_named(home: Path, value: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(home, env={"FACEFORGE_PORT": value})
    assert "FACEFORGE_PORT" in str(info.value)
    assert value in str(info.value)


def test_faceforge_bind_and_host_argument(home: Path, write_core_json) -> None:
    write_core_json({"network": {"bind_host": "127.0.0.2"}})
    assert load_settings(home, env={}).host == "127.0.0.2"
    assert load_settings(home, env={"FACEFORGE_BIND": "0.0.0.0"}).host == "0.0.0.0"
    assert load_settings(home, host="::1", env={"FACEFORGE_BIND": "0.0.0.0"}).host == "::1"


# --- plugins ----------------------------------------------------------------------------


def test_disabled_plugins_are_parsed(home: Path) -> None:
    settings = load_settings(home, env={"FACEFORGE_DISABLE_PLUGINS": " sample, ui ,,entities "})
    assert settings.disabled_plugins == frozenset({"sample", "ui", "entities"})
    assert load_settings(home, env={}).disabled_plugins == frozenset()

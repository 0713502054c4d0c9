"""The ``faceforge`` command, run in-process: version, token, token --rotate, migrate, and
one-line errors for bad config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kernel import __version__
from kernel.cli import main


def token_on_disk(home: Path) -> str:
    return json.loads((home / "config" / "core.json").read_text("utf-8"))["auth"]["install_token"]


def test_version(capsys) -> None:
    assert main(["version"]) == 0
    assert capsys.readouterr().out.strip() == f"faceforge {__version__}"


def test_token_prints_the_install_token(home, capsys) -> None:
    assert main(["token", "--home", str(home)]) == 0
    printed = capsys.readouterr().out.strip()
    assert printed == token_on_disk(home)
    # Asking again prints the same token: it is created once.
    assert main(["token", "--home", str(home)]) == 0
    assert capsys.readouterr().out.strip() == printed


def test_token_uses_faceforge_home_from_env(home, capsys, monkeypatch) -> None:
    monkeypatch.setenv("FACEFORGE_HOME", str(home))
    assert main(["token"]) == 0
    assert capsys.readouterr().out.strip() == token_on_disk(home)


def test_token_rotate_replaces_the_token(home, capsys) -> None:
    main(["token", "--home", str(home)])
    old = capsys.readouterr().out.strip()

    assert main(["token", "--rotate", "--home", str(home)]) == 0
    new = capsys.readouterr().out.strip()

    assert new != old
    assert new == token_on_disk(home)
    main(["token", "--home", str(home)])
    assert capsys.readouterr().out.strip() == new


def test_migrate_applies_then_reports_up_to_date(home, capsys) -> None:
    assert main(["migrate", "--home", str(home)]) == 0
    first = capsys.readouterr().out.splitlines()
    assert "applied kernel 1: events and ui sessions" in first
    assert first[-1] == f"{len(first) - 1} migration(s) applied"
    assert (home / "db" / "core.sqlite3").is_file()

    assert main(["migrate", "--home", str(home)]) == 0
    assert capsys.readouterr().out.strip() == "database is up to date"


@pytest.mark.parametrize("command", [["token"], ["migrate"], ["serve"]])
def test_bad_config_is_one_line_naming_the_file(home, capsys, command) -> None:
    core = home / "config" / "core.json"
    core.parent.mkdir(parents=True)
    core.write_text("{not json", encoding="utf-8")

    assert main([*command, "--home", str(home)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("faceforge: error: ")
    assert str(core) in lines[0]


def test_wrong_config_type_names_the_key(home, capsys) -> None:
    core = home / "config" / "core.json"
    core.parent.mkdir(parents=True)
    core.write_text('{"network": {"core_port": "x"}}', encoding="utf-8")
    assert main(["token", "--home", str(home)]) == 2
    assert "network.core_port" in capsys.readouterr().err


def test_unknown_command_is_a_usage_error(capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main(["frobnicate"])
    assert info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err

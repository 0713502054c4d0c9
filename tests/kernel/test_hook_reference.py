"""The README's hook reference and permissions list are generated: they cannot drift."""

from __future__ import annotations

from kernel import hookspecs
from kernel.hook_reference import REPO_README, hooks_table, rewrite, scopes_table


def test_the_readme_says_what_the_hook_specs_and_scopes_say() -> None:
    text = REPO_README.read_text("utf-8")
    assert rewrite(text) == text, ("README.md is out of date: run "
                                   "'python -m kernel.hook_reference README.md'")


def test_every_hook_spec_has_a_row_with_when_it_is_called() -> None:
    table = hooks_table()
    specs = [name for name in dir(hookspecs) if name.startswith("faceforge_")]
    for name in specs:
        row = next(line for line in table.splitlines() if line.startswith(f"| `{name}("))
        cells = [c.strip() for c in row.strip("|").split(" | ")]
        assert all(cells), row  # family, summary, when and async all said


def test_the_permissions_list_holds_the_plugin_scopes() -> None:
    table = scopes_table()
    for scope in ("plugins:admin", "plugins:use", "entities:read", "jobs:run"):
        assert f"| `{scope}` |" in table

"""The README's hook reference and permissions list, generated from the hook specs and the
scope registry so they cannot drift (a test compares them).

``python -m kernel.hook_reference README.md`` rewrites the generated parts in place;
``--check`` only says whether they are current.
"""

from __future__ import annotations

import inspect
import re
import sys
from functools import partial
from pathlib import Path

from kernel import hookspecs
from kernel.auth import KERNEL_SCOPES
from kernel.hooks import Hooks
from kernel.plugins import build_plugin_manager

REPO_README = Path(__file__).resolve().parent.parent / "README.md"
_SECTION = re.compile(r"^# --- (\w+) hooks")


def _families() -> dict[str, str]:
    """Each hook's family, from the section comment above it in hookspecs.py."""
    family, found = "", {}
    for line in inspect.getsource(hookspecs).splitlines():
        if match := _SECTION.match(line):
            family = match.group(1)
        elif line.startswith("def faceforge_"):
            found[line[4:line.index("(")]] = family
    return found


def _cell(text: str) -> str:
    """One Markdown table cell: one line, reST literals as Markdown code."""
    return " ".join(text.split()).replace("``", "`").replace("|", "\\|")


def hooks_table() -> str:
    families = _families()
    rows = ["| hook | family | what it is for | called | async |", "|---|---|---|---|---|"]
    for name, family in families.items():
        spec = getattr(hookspecs, name)
        args = ", ".join(inspect.signature(spec).parameters)
        doc = inspect.getdoc(spec) or ""
        summary, _, rest = doc.partition("\n\n")
        called = re.search(r"Called:\s*(.+?)(?:\s+Async:|$)", rest, re.S)
        sync = re.search(r"Async:\s*(.+?)(?:\n\n|$)", rest, re.S)
        rows.append(f"| `{name}({args})` | {family} | {_cell(summary)} | "
                    f"{_cell(called.group(1)) if called else ''} | "
                    f"{_cell(sync.group(1)) if sync else ''} |")
    return "\n".join(rows)


def scopes_table() -> str:
    """Every permission scope Core and its built-in plugins declare."""
    pm, infos = build_plugin_manager()
    builtin = {info.name for info in infos if info.builtin}
    scopes = {name: ("kernel", text) for name, text in KERNEL_SCOPES.items()}
    scopes |= {scope.name: (plugin, scope.description)
               for plugin, scope in Hooks(pm).scopes() if plugin in builtin}
    rows = ["| scope | declared by | allows |", "|---|---|---|"]
    rows += [f"| `{name}` | {owner} | {_cell(text)} |"
             for name, (owner, text) in sorted(scopes.items())]
    return "\n".join(rows)


GENERATED = {"hooks": hooks_table, "scopes": scopes_table}


def _block(name: str) -> re.Pattern[str]:
    return re.compile(rf"(<!-- generated:{name} -->\n)(?:.*?\n)?(<!-- /generated:{name} -->)",
                      re.S)


def _fill(made: str, match: re.Match[str]) -> str:
    return match.group(1) + made + "\n" + match.group(2)


def rewrite(text: str) -> str:
    for name, make in GENERATED.items():
        pattern = _block(name)
        if not pattern.search(text):
            raise ValueError(f"no <!-- generated:{name} --> block to fill")
        text = pattern.sub(partial(_fill, make()), text)
    return text


def main(argv: list[str]) -> int:
    check = "--check" in argv
    path = Path(next((a for a in argv if not a.startswith("--")), "README.md"))
    text = path.read_text("utf-8")
    current = rewrite(text)
    if check:
        if current != text:
            print(f"{path}: the generated hook reference is out of date; run "
                  f"'python -m kernel.hook_reference {path}'", file=sys.stderr)
            return 1
        return 0
    path.write_text(current, "utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

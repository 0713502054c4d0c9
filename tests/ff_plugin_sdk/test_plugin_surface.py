"""The SDK is the whole plugin surface: built-in plugins and the UI shell import only
``ff_plugin_sdk`` and third-party libraries, and the running kernel has every member of the
SDK's ``Kernel`` protocol with a matching signature."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

from ff_plugin_sdk import kernel as sdk
from tests.conftest import running

REPO = Path(__file__).resolve().parents[2]
FIRST_PARTY = {"kernel", "providers", "plugins_builtin", "ui", "ff_plugin_sdk", "tests"}


def plugin_packages() -> list[Path]:
    return [REPO / "ui", *sorted(p for p in (REPO / "plugins_builtin").iterdir()
                                 if (p / "__init__.py").exists())]


def imported_modules(package: Path) -> dict[str, set[str]]:
    """Module file -> the dotted names it imports (relative imports resolved)."""
    found: dict[str, set[str]] = {}
    for path in package.rglob("*.py"):
        names = set()
        tree = ast.parse(path.read_text("utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    names.add(".".join(path.relative_to(REPO).parent.parts))
                elif node.module:
                    names.add(node.module)
        found[str(path.relative_to(REPO))] = names
    return found


@pytest.mark.parametrize("package", plugin_packages(), ids=lambda p: p.name)
def test_a_builtin_plugin_imports_only_the_sdk_and_itself(package: Path) -> None:
    own = ".".join(package.relative_to(REPO).parts)
    for module, names in imported_modules(package).items():
        for name in names:
            top = name.split(".")[0]
            if top not in FIRST_PARTY or top == "ff_plugin_sdk":
                continue
            assert name == own or name.startswith(own + "."), (
                f"{module} imports {name}: a plugin may use only ff_plugin_sdk (the Kernel "
                f"protocol) and third-party libraries")


def test_the_sdk_imports_no_server_code() -> None:
    for module, names in imported_modules(REPO / "ff_plugin_sdk").items():
        tops = {n.split(".")[0] for n in names}
        assert not tops & {"kernel", "plugins_builtin", "ui", "providers", "starlette",
                           "hypercorn", "aiosqlite"}, module


def protocol_members(protocol: type) -> dict[str, object]:
    members = dict(getattr(protocol, "__annotations__", {}))
    members |= {name: value for name, value in vars(protocol).items()
                if not name.startswith("_") and (callable(value) or isinstance(value, property))}
    return members


def assert_implements(obj: object, protocol: type) -> None:
    for name, spec in protocol_members(protocol).items():
        assert hasattr(obj, name), f"{type(obj).__name__} lacks {protocol.__name__}.{name}"
        if inspect.isfunction(spec):
            wanted = [p for p in inspect.signature(spec).parameters if p != "self"]
            got = list(inspect.signature(getattr(obj, name)).parameters)
            assert got == wanted, f"{type(obj).__name__}.{name}{got} != protocol {wanted}"


async def test_the_running_kernel_implements_the_sdk_protocol(app, settings) -> None:
    async with running(app, settings.install_token):
        kernel = app.state.kernel
        assert isinstance(kernel, sdk.Kernel)
        assert_implements(kernel, sdk.Kernel)
        assert_implements(kernel.db, sdk.Database)
        assert_implements(kernel.events, sdk.EventLog)
        assert_implements(kernel.templates, sdk.Templates)
        assert_implements(kernel.auth, sdk.Auth)

        def tx_members(tx: object) -> None:
            assert_implements(tx, sdk.WriteTx)

        await kernel.db.write(tx_members)

"""Meta-test: every hook spec is documented (docstring and README) and implemented by a
plugin in the test suite, so every hook has a test that calls it through ``Hooks``."""

from __future__ import annotations

import importlib
import inspect
from types import ModuleType

import pytest

from ff_plugin_sdk import PROJECT_NAME
from kernel import hookspecs

from .conftest import PLUGINS_DIR, REPO_ROOT, require_sample_plugin

SPEC_MARK = f"{PROJECT_NAME}_spec"
IMPL_MARK = f"{PROJECT_NAME}_impl"

SPECS = sorted(name for name, obj in vars(hookspecs).items()
               if name.startswith("faceforge_") and inspect.isfunction(obj))


def test_every_faceforge_function_is_a_hook_spec() -> None:
    assert len(SPECS) >= 15
    for name in SPECS:
        assert hasattr(getattr(hookspecs, name), SPEC_MARK), f"{name} is not marked @hookspec"


@pytest.mark.parametrize("name", SPECS)
def test_spec_docstring_says_when_and_whether_async(name: str) -> None:
    doc = inspect.getdoc(getattr(hookspecs, name)) or ""
    assert "Called:" in doc, f"{name}: docstring must say when it is called"
    assert "Async:" in doc, f"{name}: docstring must say whether it may be async"


@pytest.mark.parametrize("name", SPECS)
def test_spec_is_documented_in_the_readme(name: str) -> None:
    readme = REPO_ROOT / "README.md"
    text = readme.read_text(encoding="utf-8") if readme.exists() else ""
    assert name in text, f"{name} is not listed in README.md"


def test_plugin_contract_uses_no_firstresult() -> None:
    # firstresult breaks with async implementations (see kernel/hooks.py)
    for name in SPECS:
        assert not getattr(getattr(hookspecs, name), SPEC_MARK).get("firstresult"), name


def _test_plugin_modules() -> list[ModuleType]:
    modules = [importlib.import_module(path.stem) for path in sorted(PLUGINS_DIR.glob("*.py"))]
    modules.append(require_sample_plugin())
    return modules


def _implemented(module: ModuleType) -> set[str]:
    names = {name for name, obj in vars(module).items() if hasattr(obj, IMPL_MARK)}
    for cls in (obj for obj in vars(module).values() if inspect.isclass(obj)):
        names |= {name for name, obj in vars(cls).items() if hasattr(obj, IMPL_MARK)}
    return names


def test_every_spec_is_implemented_by_a_test_plugin() -> None:
    implemented = set().union(*(_implemented(m) for m in _test_plugin_modules()))
    missing = set(SPECS) - implemented
    assert not missing, f"no plugin in tests/plugins implements: {sorted(missing)}"

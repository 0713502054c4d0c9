"""``ff_plugin_sdk`` alone: in a fresh virtual environment holding only the SDK's own
dependencies, importing it (the client, the runner, the manifest) pulls in no part of the
server, and its client talks to a real Core."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.ff_plugin_sdk.sdk_core import Served

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]
#: what an out-of-process plugin installs to use the SDK
SDK_DEPENDENCIES = ["httpx", "anyio", "msgspec", "pluggy", "packaging", "jsonschema"]
#: top-level packages of the server: none may be imported by the SDK
SERVER = ["kernel", "starlette", "hypercorn", "aiosqlite", "plugins_builtin", "providers",
          "ui", "jinja2", "aiobotocore", "PIL"]

PROBE = """
import json, sys
sys.path.insert(0, sys.argv[1])
import ff_plugin_sdk, ff_plugin_sdk.client, ff_plugin_sdk.runner, ff_plugin_sdk.manifest
from ff_plugin_sdk import AsyncFaceForge, FaceForge
from ff_plugin_sdk.runner import Runner

runner = Runner(AsyncFaceForge(sys.argv[2], sys.argv[3]))
runner.job("x.y")(lambda ctx: None)
with FaceForge(sys.argv[2], sys.argv[3]) as ff:
    made = ff.entities.create("from a clean venv")
    ping = ff.system.ping()
print(json.dumps({"modules": sorted(sys.modules), "ping": ping.ok,
                  "entity": made.display_name, "sdk": ff_plugin_sdk.__file__}))
"""


@pytest.fixture
def served(app: Any) -> Iterator[Served]:
    with Served(app) as server:
        yield server


def test_the_sdk_needs_only_its_own_dependencies(tmp_path: Path, served: Served,
                                                 settings: Any) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    install = subprocess.run([str(python), "-m", "pip", "install", "-q",
                              "--disable-pip-version-check", *SDK_DEPENDENCIES],
                             capture_output=True, text=True, timeout=600, env=env)
    assert install.returncode == 0, install.stderr[-3000:]
    site = tmp_path / "plugin"
    shutil.copytree(REPO / "ff_plugin_sdk", site / "ff_plugin_sdk",
                    ignore=shutil.ignore_patterns("__pycache__"))

    # -I: no PYTHONPATH, no user site, not the working directory: only the venv and the copy
    probe = subprocess.run([str(python), "-I", "-c", textwrap.dedent(PROBE), str(site),
                            served.url, settings.install_token],
                           capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert probe.returncode == 0, probe.stderr[-3000:]
    seen = json.loads(probe.stdout)
    assert seen["sdk"].startswith(str(site))
    assert seen["ping"] and seen["entity"] == "from a clean venv"
    server = sorted({m.split(".")[0] for m in seen["modules"]} & set(SERVER))
    assert server == [], f"importing the SDK imported the server: {server}"

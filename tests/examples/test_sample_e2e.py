"""The in-process example (examples/sample_plugin, pip-installed), end to end: Core as a
real process finds it by its entry point, disabled; enabled through the API it serves its
route, runs its job and shows its entity tab; disabled, all of it goes — no restart."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import httpx
import pytest

from ff_plugin_sdk import NotFound, ValidationFailed
from ff_plugin_sdk.client import FaceForge
from kernel.config import load_settings
from tests.kernel.conftest import require_sample_plugin
from tests.kernel.test_serve_e2e import (
    clean_env,
    healthy,
    ports_json_port,
    serve_command,
    wait_for,
)

pytestmark = pytest.mark.e2e


def test_the_sample_plugin_is_enabled_used_and_disabled_without_a_restart(home: Path) -> None:
    require_sample_plugin()
    token = load_settings(home, env={}).install_token
    process = subprocess.Popen(serve_command(home, "--port", "0"), env=clean_env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        base = f"http://127.0.0.1:{ports_json_port(process, home)}"
        wait_for(process, healthy(base), "/healthz 200")
        auth = {"Authorization": f"Bearer {token}"}
        with FaceForge(base, token) as ff, httpx.Client(base_url=base, trust_env=False) as http:
            assert http.get("/v1/plugins/sample/hello", headers=auth).json()["error"][
                "code"] == "plugin_disabled"
            info = ff.plugins.get("sample")
            assert (info.kind, info.state) == ("in_process", "disabled")
            ff.plugins.enable("sample", accept_permissions=info.permissions)

            hello = http.get("/v1/plugins/sample/hello", headers=auth)
            assert hello.status_code == 200
            job = ff.jobs.create("sample.greet")
            done = wait_for(process, lambda: (j := ff.jobs.get(job.job_id)).status
                            == "succeeded" and j, "the sample.greet job")
            assert done.result == {"greeting": "hello"}
            ada = ff.entities.create("Ada")
            http.post("/ui/login", data={"token": token, "next": "/ui/"})
            tab = http.get(f"/ui/entities/{ada.entity_id}?tab=sample")
            assert tab.status_code == 200 and "Hello from the sample plugin, Ada!" in tab.text

            ff.plugins.disable("sample")
            assert http.get("/v1/plugins/sample/hello", headers=auth).status_code == 404
            assert http.get(f"/ui/entities/{ada.entity_id}?tab=sample").status_code == 404
            with pytest.raises(ValidationFailed, match="unknown job type"):
                ff.jobs.create("sample.greet")
            with pytest.raises(NotFound):
                ff.plugins.get("no_such_plugin")
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        process.communicate(timeout=10)

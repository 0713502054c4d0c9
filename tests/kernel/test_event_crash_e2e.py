"""A real ``faceforge serve`` killed (SIGKILL) between an event's commit and its delivery:
the next start delivers it.  The subscriber is the sample third-party plugin, found by its
entry point; its ``greeting_delay_seconds`` setting makes it slow enough to be killed
mid-delivery."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import httpx
import pytest

from kernel.config import load_settings

from .conftest import require_sample_plugin
from .test_serve_e2e import clean_env, healthy, ports_json_port, serve_command, wait_for

pytestmark = pytest.mark.e2e


def configure(home: Path, delay: float) -> str:
    """Set the sample plugin's delay in core.json; returns the install token."""
    path = home / "config" / "core.json"
    config = json.loads(path.read_text("utf-8"))
    config["plugins"] = {"sample": {"greeting_delay_seconds": delay}}
    path.write_text(json.dumps(config), "utf-8")
    return config["auth"]["install_token"]


def start(home: Path) -> tuple[subprocess.Popen[str], httpx.Client]:
    (home / "config" / "ports.json").unlink(missing_ok=True)
    process = subprocess.Popen(serve_command(home, "--port", "0"), env=clean_env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{ports_json_port(process, home)}"
    wait_for(process, healthy(base), "/healthz 200")
    return process, httpx.Client(base_url=base, timeout=10, trust_env=False)


def greeted(http: httpx.Client, token: str) -> list[int]:
    body = http.get("/v1/plugins/sample/hello", headers={"Authorization": f"Bearer {token}"})
    body.raise_for_status()
    return [g["event_id"] for g in body.json()["greetings"]
            if g["event_type"] == "entity.created"]


def test_events_committed_before_a_crash_are_delivered_after_restart(home: Path) -> None:
    require_sample_plugin()
    load_settings(home, env={})  # writes core.json with a token
    token = configure(home, delay=120)
    auth = {"Authorization": f"Bearer {token}"}

    process, http = start(home)
    try:
        enabled = http.post("/v1/plugins/sample/enable", headers=auth, json={
            "accept_permissions": ["entities:read", "events:read"]})
        assert enabled.json()["state"] == "enabled"  # kept across the crash and restart
        for name in ("Ada", "Grace", "Edsger"):
            http.post("/v1/entities", json={"display_name": name},
                      headers=auth).raise_for_status()
        events = http.get("/v1/events", params={"type": "entity.created"},
                          headers=auth).json()["items"]
        committed = [e["id"] for e in events]
        assert len(committed) == 3
        assert greeted(http, token) == []  # the subscriber is still on the first one
    finally:
        http.close()
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        process.communicate()

    configure(home, delay=0)
    process, http = start(home)
    try:
        wait_for(process, lambda: greeted(http, token) == committed,
                 "every committed event to reach the sample subscriber")
    finally:
        http.close()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
        process.communicate()

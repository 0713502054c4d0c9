"""The out-of-process example, end to end with real processes: Core on a socket, the LoRA
plugin installed as a folder, enabled with consent, its runner started by Core; a
``lora.train`` job turns an entity's images into a valid ``.safetensors`` asset on the
entity; disabling takes the runner, its token, its pages and its tab away."""

from __future__ import annotations

import io
import itertools
import json
import shutil
import signal
import sqlite3
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from ff_plugin_sdk import ValidationFailed
from ff_plugin_sdk.client import FaceForge
from kernel.config import load_settings
from tests.kernel.test_serve_e2e import (
    clean_env,
    healthy,
    ports_json_port,
    serve_command,
    wait_for,
)

pytestmark = pytest.mark.e2e
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "lora_trainer"


def jpeg(colour: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 64), colour).save(out, "JPEG")
    return out.getvalue()


@pytest.fixture
def core(home: Path) -> Iterator[tuple[subprocess.Popen[str], str, str]]:
    token = load_settings(home, env={}).install_token
    shutil.copytree(EXAMPLE, home / "plugins" / "lora",
                    ignore=shutil.ignore_patterns("__pycache__"))
    process = subprocess.Popen(serve_command(home, "--port", "0"), env=clean_env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{ports_json_port(process, home)}"
    wait_for(process, healthy(base), "/healthz 200")
    yield process, base, token
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    process.communicate(timeout=10)


def test_the_lora_plugin_trains_a_lora_for_an_entity_and_goes_away_when_disabled(
        core, home) -> None:
    process, base, token = core
    with FaceForge(base, token) as ff:
        info = ff.plugins.get("lora")
        assert info.state == "disabled" and info.kind == "out_of_process"
        enabled = ff.plugins.enable("lora", accept_permissions=info.permissions)
        assert enabled.state == "enabled"
        wait_for(process, lambda: ff.plugins.get("lora").runner.state == "running",
                 "the LoRA runner to run")
        ff.plugins.put_config("lora", {"rank": 8, "steps": 10, "base_model": "sd15",
                                       "trigger_word": "adalove", "tags": ["test"]})

        ada = ff.entities.create("Ada Lovelace")
        images = [ff.assets.upload(jpeg(c), filename=f"ada{i}.jpg", entity_ids=[ada.entity_id])
                  for i, c in enumerate([(200, 30, 30), (30, 200, 30), (30, 30, 200)])]
        job = ff.jobs.create("lora.train", {"entity_id": ada.entity_id})
        done = wait_for(process, lambda: (j := ff.jobs.get(job.job_id)).status in (
            "succeeded", "failed") and j, "the lora.train job to finish")
        assert done.status == "succeeded", (done.error, ff.jobs.log(job.job_id).items)
        assert done.runner_id != "core"
        log = [line.message for line in ff.jobs.log(job.job_id, limit=1000).items]
        assert "training a LoRA" in log and "uploaded" in log

        [lora] = ff.assets.list(entity_id=ada.entity_id, kind="model.lora").items
        assert done.output_asset_ids == [lora.asset_id]
        assert lora.filename == "ada-lovelace-sd15-lora.safetensors"
        inputs = sorted(image.asset_id for image in images)
        assert sorted(lora.plugin_data["lora"]["inputs"]) == inputs
        assert lora.asset_id in {a.asset_id for a in ff.assets.derived(
            lora.derived_from_asset_id).items}
        path = ff.assets.download(lora.asset_id, home / "downloaded.safetensors")
        header = read_header(path)
        assert header["__metadata__"]["ss_network_dim"] == "8"
        assert header["__metadata__"]["ss_base_model_version"] == "sd15"
        assert header["lora_unet_mid_block_attentions_0_proj_out.lora_down.weight"][
            "shape"] == [8, 64]

        # its pages and tab are in the UI, through Core
        ui = httpx.Client(base_url=base, trust_env=False, follow_redirects=False)
        ui.post("/ui/login", data={"token": token, "next": "/ui/"})
        tab = ui.get(f"/ui/entities/{ada.entity_id}?tab=plugin-lora")
        assert tab.status_code == 200 and lora.filename in tab.text
        assert ui.get("/ui/ext/lora/").status_code == 200

        assert live_tokens(home) == ["plugin:lora"]
        runner_log = (home / "logs" / "plugins" / "lora.log").read_text("utf-8")
        assert "claims lora.train" in runner_log and token not in runner_log

        disabled = ff.plugins.disable("lora")
        assert disabled.state == "disabled"
        assert ff.plugins.get("lora").runner.state == "stopped"
        assert ui.get("/ui/ext/lora/").status_code == 404
        tab = ui.get(f"/ui/entities/{ada.entity_id}?tab=plugin-lora")
        assert tab.status_code == 404
        assert live_tokens(home) == []  # its token no longer works
        with pytest.raises(ValidationFailed, match="unknown job type"):
            ff.jobs.create("lora.train", {"entity_id": ada.entity_id})
        ui.close()


def live_tokens(home: Path) -> list[str]:
    with sqlite3.connect(f"file:{home / 'db' / 'core.sqlite3'}?mode=ro", uri=True) as db:
        return [name for (name,) in db.execute(
            "SELECT name FROM api_tokens WHERE revoked_at IS NULL")]


def read_header(path: Path) -> dict:
    """An independent reader of the .safetensors layout: 8-byte length, JSON header,
    tensor bytes whose ranges cover the rest exactly."""
    data = path.read_bytes()
    (size,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + size])
    body = len(data) - 8 - size
    ranges = sorted(tuple(t["data_offsets"]) for name, t in header.items()
                    if name != "__metadata__")
    assert ranges[0][0] == 0 and ranges[-1][1] == body
    assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))
    for name, t in header.items():
        if name != "__metadata__":
            width = {"F32": 4, "F16": 2}[t["dtype"]]
            count = 1
            for n in t["shape"]:
                count *= n
            assert t["data_offsets"][1] - t["data_offsets"][0] == count * width, name
    return header

"""The out-of-process example in a real browser: the LoRA trainer folder dropped into a
Core's home is found by a rescan, enabled through its consent screen (Core starts its
runner), configured on its page, and run from an entity's LoRA tab, which shows the new
``.safetensors`` asset when the job is done; disabled, the tab is gone.

It has a Core of its own (the shared server's home is not the test's to change): the
plugin's runner runs as long as the plugin is enabled."""

from __future__ import annotations

import re
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import REPO_ROOT, core_server
from tests.browser.test_entities_browser import create_entity, loaded, sign_in
from tests.examples.test_lora_e2e import jpeg, read_header

pytestmark = pytest.mark.browser
EXAMPLE = REPO_ROOT / "examples" / "lora_trainer"
SCOPES = ["entities:read", "assets:read", "assets:write", "jobs:read", "jobs:write",
          "jobs:run"]
#: starting a Python runner and training: generous, as on a loaded machine
RUNNER_TIMEOUT = 30_000


@pytest.fixture
def lora_core(tmp_path: Path) -> Iterator[tuple[str, str, Path]]:
    """A Core of this test's own; yields (base_url, token, home)."""
    home = tmp_path / "home"
    home.mkdir()
    with core_server(home) as (base, token):
        yield base, token, home


def test_enable_configure_and_train_a_lora_from_the_entity_tab(
        page: Page, lora_core: tuple[str, str, Path], tmp_path: Path,
        external_requests: list[str]) -> None:
    base, token, home = lora_core
    js_errors: list[str] = []
    page.on("pageerror", lambda exc: js_errors.append(str(exc)))
    api = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"},
                       trust_env=False)
    run = secrets.token_hex(3)
    name = f"Ada Lovelace {run}"
    filename = f"ada-lovelace-{run}-sd15-lora.safetensors"

    # the plugin is installed as a folder while Core runs
    shutil.copytree(EXAMPLE, home / "plugins" / "lora",
                    ignore=shutil.ignore_patterns("__pycache__"))
    sign_in(page, base, token)
    entity_id = create_entity(page, name)
    images = []
    for i, colour in enumerate([(200, 30, 30), (30, 200, 30), (30, 30, 200)]):
        r = api.post("/v1/assets/upload", data={"entity_id": entity_id},
                     files={"file": (f"ada-{i}.jpg", jpeg(colour), "image/jpeg")})
        assert r.status_code == 201, r.text
        images.append(r.json()["asset_id"])

    # Plugins: found by a rescan, disabled
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Plugins").click()
    expect(page).to_have_url(re.compile(r"/ui/plugins$"))
    loaded(page)
    page.get_by_role("button", name="Rescan plugins folder").click()
    lora = page.locator('tr[data-plugin="lora"]')
    expect(lora).to_contain_text("LoRA trainer (fast-test)")
    expect(lora.locator(".plugin-state")).to_have_text("disabled")

    # the consent screen lists its scopes; agreeing enables it and Core starts its runner
    lora.get_by_role("link", name="Enable LoRA trainer (fast-test)").click()
    expect(page.get_by_role("heading", name="Enable LoRA trainer (fast-test)?")).to_be_visible()
    expect(page.locator("#consent-out-of-process")).to_contain_text("runs as a separate program")
    scopes = page.locator("#consent-scopes li")
    expect(scopes).to_have_count(len(SCOPES))
    for scope in SCOPES:
        expect(page.locator(f'#consent-scopes li[data-permission="{scope}"]')).to_be_visible()
    loaded(page)
    page.get_by_role("button", name="Agree and enable").click()
    expect(page).to_have_url(re.compile(r"/ui/plugins/lora\?notice=enabled$"))
    expect(page.locator("#plugin-name .plugin-state")).to_have_text("enabled")
    # the runner card refreshes itself while the runner starts
    expect(page.locator("#runner .runner-state")).to_have_text("running",
                                                               timeout=RUNNER_TIMEOUT)

    # its settings: a rank of 0 is refused at its field, then rank 8 and sd15 saved
    loaded(page)
    rank = page.get_by_label("Rank", exact=True)
    expect(rank).to_have_value("4")
    rank.fill("0")
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator("#cfg-rank-error")).to_have_text("must be at least 1")
    expect(page.locator("#settings-failed")).to_be_visible()
    page.get_by_label("Rank", exact=True).fill("8")
    page.get_by_label("Base model").select_option("sd15")
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator("#settings-saved")).to_have_text("Saved.")
    config = api.get("/v1/plugins/lora/config").json()
    assert (config["rank"], config["base_model"]) == (8, "sd15"), config

    # the entity's LoRA tab: Train LoRA, and the LoRA appears when the job is done
    page.goto(f"{base}/ui/entities/{entity_id}")
    loaded(page)
    page.get_by_role("tab", name="LoRA").click()
    expect(page).to_have_url(re.compile(rf"/ui/entities/{entity_id}\?tab=plugin-lora$"))
    expect(page.locator(".lora-tab .empty")).to_have_text("No LoRA yet.")
    loaded(page)
    page.get_by_role("button", name="Train LoRA (sd15, fast-test)").click()
    expect(page).to_have_url(re.compile(rf"/ui/entities/{entity_id}\?tab=plugin-lora$"))
    expect(page.locator(".lora-jobs li")).to_have_count(1)
    expect(page.get_by_role("link", name=filename)).to_be_visible(timeout=RUNNER_TIMEOUT)
    expect(page.locator(".lora-jobs li a")).to_have_text("succeeded")
    # the tab fetched itself again while the job ran, and stops once it is done
    expect(page.locator(".lora-tab[hx-get]")).to_have_count(0)
    page.reload()
    expect(page.get_by_role("link", name=filename)).to_be_visible()

    [job] = api.get("/v1/jobs", params={"type": "lora.train"}).json()["items"]
    assert job["status"] == "succeeded" and job["input"] == {"entity_id": entity_id}
    assets = api.get("/v1/assets", params={"entity_id": entity_id,
                                           "kind": "model.lora"}).json()["items"]
    [asset] = assets
    assert asset["filename"] == filename and job["output_asset_ids"] == [asset["asset_id"]]
    assert asset["linked_entity_ids"] == [entity_id]
    assert asset["derived_from_asset_id"] in images
    assert sorted(asset["plugin_data"]["lora"]["inputs"]) == sorted(images)
    download = api.get(f"/v1/assets/{asset['asset_id']}/download")
    assert download.status_code == 200
    saved = tmp_path / filename
    saved.write_bytes(download.content)
    metadata = read_header(saved)["__metadata__"]
    assert (metadata["ss_network_dim"], metadata["ss_base_model_version"]) == ("8", "sd15")

    # disabled on the Plugins page: its runner stops and the tab is gone
    page.goto(f"{base}/ui/plugins")
    loaded(page)
    lora = page.locator('tr[data-plugin="lora"]')
    lora.get_by_role("button", name="Disable LoRA trainer (fast-test)").click()
    expect(lora.locator(".plugin-state")).to_have_text("disabled")
    expect(lora.locator(".runner-state")).to_have_text("stopped")
    page.goto(f"{base}/ui/entities/{entity_id}")
    expect(page.locator("#entity-name")).to_have_text(name)
    expect(page.get_by_role("tab", name="Overview")).to_be_visible()
    expect(page.get_by_role("tab", name="LoRA")).to_have_count(0)
    assert page.goto(f"{base}/ui/entities/{entity_id}?tab=plugin-lora").status == 404
    api.close()
    assert js_errors == []
    assert external_requests == []

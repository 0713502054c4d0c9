"""Jobs in a real headless Chromium against a real ``faceforge serve``: import a folder from
the form and watch the job finish live (server-sent events), read its log; start a big import,
watch its progress, log and the shell's indicator move, and cancel it; the same form without
JavaScript."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from tests.browser.test_entities_browser import loaded, sign_in
from tests.plugins_builtin.assets.folders import sidecar_folder

pytestmark = pytest.mark.browser

JOB_URL = re.compile(r"/ui/jobs/([0-9a-f]{64})$")
#: the bound on an import of a few hundred files on a busy machine
IMPORT_MS = 60_000
BATCH = re.compile(r"batch (\d+):")


def make_folder(root: Path, files: int) -> Path:
    """A folder with sidecars, new to the session's shared server (random salt)."""
    return sidecar_folder(root, files, salt=os.urandom(8).hex())


def start_import(page: Page, folder: Path) -> str:
    """Fill the form (already open) with ``folder``, submit; returns the job's id."""
    loaded(page)
    page.get_by_label("Folder", exact=True).fill(str(folder))
    page.get_by_role("button", name="Start import").click()
    expect(page).to_have_url(JOB_URL)
    match = JOB_URL.search(page.url)
    assert match
    loaded(page)
    return match.group(1)


def wait_for_status(api: httpx.Client, job_id: str, status: str) -> None:
    """Poll the API (a bounded poll) until the job has ``status``."""
    deadline = time.monotonic() + IMPORT_MS / 1000
    while (now := api.get(f"/v1/jobs/{job_id}").json()["status"]) != status:
        if time.monotonic() > deadline:
            pytest.fail(f"job {job_id[:8]} is still {now}, not {status}")
        time.sleep(0.1)


def status_of(page: Page) -> Locator:
    return page.locator("#job-status [data-status]")


def test_import_a_folder_follow_it_live_then_cancel_another(
        page: Page, live_server: tuple[str, str], api: httpx.Client, tmp_path: Path,
        external_requests: list[str]) -> None:
    base, token = live_server
    js_errors: list[str] = []
    page.on("pageerror", lambda exc: js_errors.append(str(exc)))
    small = make_folder(tmp_path / "small", 300)
    sign_in(page, base, token)

    # The Assets page leads to the form; the import leads to its job, which ends live.
    page.goto(base + "/ui/assets")
    loaded(page)
    page.get_by_role("link", name="Import a folder").click()
    expect(page.get_by_role("heading", name="Import a folder")).to_be_visible()
    job_id = start_import(page, small)
    expect(status_of(page)).to_have_attribute("data-status", "succeeded", timeout=IMPORT_MS)
    expect(page.locator("#job-state .job-percent")).to_have_text("100%")
    expect(page.locator("#job-result")).to_contain_text('"imported": 300')
    expect(page.get_by_role("button", name="Retry")).to_have_count(0)
    job = api.get(f"/v1/jobs/{job_id}").json()
    assert job["status"] == "succeeded"
    assert (job["result"]["files"], job["result"]["imported"]) == (300, 300)

    # Its whole log has one summary line per batch.
    page.get_by_role("link", name="Full log").click()
    expect(page.get_by_role("heading", name="Log of assets.bulk_import")).to_be_visible()
    expect(page.locator("#log-lines")).to_contain_text("batch 1:")
    expect(page.locator("#log-lines")).to_contain_text("succeeded")

    # A second tab on the Jobs list, opened before the next import exists.
    jobs_tab = page.context.new_page()
    jobs_tab.on("pageerror", lambda exc: js_errors.append(str(exc)))
    jobs_tab.goto(base + "/ui/jobs")
    loaded(jobs_tab)
    expect(jobs_tab.locator(f'tr[data-job-id="{job_id}"] [data-status]')).to_have_attribute(
        "data-status", "succeeded")

    # A big import: its progress, log and the shell's indicator move while the page is open.
    big = make_folder(tmp_path / "big", 20_000)
    page.goto(base + "/ui/assets/import")
    big_id = start_import(page, big)
    expect(status_of(page)).to_have_attribute("data-status", "running", timeout=IMPORT_MS)
    shown = page.locator("#job-log li").all_text_contents()
    done = max([int(m.group(1)) for line in shown if (m := BATCH.search(line))], default=0)
    assert done < 20, "the import was almost over before its page was shown"
    expect(page.locator("#job-log")).to_contain_text(f"batch {done + 2}:", timeout=IMPORT_MS)
    expect(page.locator("#job-counters")).to_contain_text("files total 20,000")
    expect(page.locator("#widget-jobs")).to_contain_text("running")

    # The list tab learnt of the new job and follows its row.
    row = jobs_tab.locator(f'tr[data-job-id="{big_id}"]')
    expect(row.locator("[data-status]")).to_have_attribute("data-status", "running")
    expect(row.locator("progress")).to_have_count(1)

    # Cancel it: it ends cancelled, here and in the list, and can be retried.
    page.get_by_role("button", name="Cancel", exact=True).click()
    expect(page.locator("#job-notice")).to_have_text("Cancel requested.")
    expect(status_of(page)).to_have_attribute("data-status", "cancelled", timeout=IMPORT_MS)
    expect(page.get_by_role("button", name="Retry")).to_be_visible()
    expect(row.locator("[data-status]")).to_have_attribute("data-status", "cancelled")
    job = api.get(f"/v1/jobs/{big_id}").json()
    assert job["status"] == "cancelled"
    assert job["progress"]["counters"].get("files", 0) < 20_000
    # nothing runs any more: the indicator empties at its next refresh
    expect(page.locator("#widget-jobs")).to_have_text("", timeout=10_000)

    assert js_errors == []
    assert external_requests == []


def test_import_without_javascript(browser: Browser, live_server: tuple[str, str],
                                   api: httpx.Client, tmp_path: Path) -> None:
    base, token = live_server
    folder = make_folder(tmp_path / "plain", 5)
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        sign_in(page, base, token)
        page.goto(base + "/ui/assets/import")
        # a relative path is refused next to the field, keeping what was typed
        page.get_by_label("Folder", exact=True).fill("photos/2024")
        page.get_by_label("Skip files matching").fill("*.tmp")
        page.get_by_role("button", name="Start import").click()
        expect(page.locator("#path-error")).to_contain_text("must be absolute")
        expect(page.get_by_label("Folder", exact=True)).to_have_value("photos/2024")
        expect(page.get_by_label("Skip files matching")).to_have_value("*.tmp")
        page.get_by_label("Folder", exact=True).fill(str(folder))
        page.get_by_role("button", name="Start import").click()
        expect(page).to_have_url(JOB_URL)
        match = JOB_URL.search(page.url)
        assert match
        job_id = match.group(1)
        # no live updates without JavaScript: a reload shows the outcome
        wait_for_status(api, job_id, "succeeded")
        page.reload()
        expect(status_of(page)).to_have_attribute("data-status", "succeeded")
        expect(page.locator("#job-log")).to_contain_text("batch 1:")
    finally:
        context.close()

"""The drag-and-drop uploader (Uppy Dashboard + tus, templates/assets/_uploader.html) in a real
headless Chromium against a real ``faceforge serve``: a dropped file becomes an asset of the
chosen kind linked to the entity, with identical bytes; an upload survives Core being killed
(SIGKILL) and started again mid-transfer, resuming where it stopped; the Dashboard's pause and
resume buttons pause and resume; a server error is shown with its message."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, Request, Response, expect

from tests.browser.test_entities_browser import loaded, sign_in
from tests.kernel.test_serve_e2e import clean_env, healthy, ports_json_port, serve_command

pytestmark = pytest.mark.browser

MiB = 1024 * 1024
START_SECONDS = 30.0
UPLOAD_TIMEOUT_MS = 120_000
FORM = "#attachment-upload"
FORM_JS = f"document.querySelector('{FORM}')"
FILES = f"{FORM_JS}.ffUppy.getFiles()"


@dataclass
class Core:
    """A ``faceforge serve`` on its own home that a test may kill and start again on the same
    port (the browser's session and the unfinished uploads live in the home)."""

    home: Path
    log: Path
    port: int = 0
    process: subprocess.Popen[str] | None = None
    token: str = ""

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log.open("a", encoding="utf-8") as log:
            self.process = subprocess.Popen(
                serve_command(self.home, "--port", str(self.port)), env=clean_env(),
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, text=True)
        if not self.port:
            self.port = ports_json_port(self.process, self.home)
        deadline = time.monotonic() + START_SECONDS
        while not healthy(self.base)():
            assert self.process.poll() is None, f"serve exited:\n{self.log.read_text('utf-8')}"
            assert time.monotonic() < deadline, f"serve not healthy in {START_SECONDS:.0f} s"
            time.sleep(0.1)  # bounded poll for the process to come up
        config = json.loads((self.home / "config" / "core.json").read_text("utf-8"))
        self.token = config["auth"]["install_token"]

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flushing, the connection cut mid-request."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


@pytest.fixture
def core(tmp_path: Path) -> Iterator[Core]:
    server = Core(home=tmp_path / "home", log=tmp_path / "serve.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def api(base: str, token: str) -> httpx.Client:
    return httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"},
                        timeout=60, trust_env=False)


def create_entity(client: httpx.Client, name: str) -> str:
    r = client.post("/v1/entities", json={"display_name": name})
    assert r.status_code == 201, r.text
    return r.json()["entity_id"]


def sha256_of_download(client: httpx.Client, asset_id: str) -> str:
    digest = hashlib.sha256()
    with client.stream("GET", f"/v1/assets/{asset_id}/download") as r:
        assert r.status_code == 200
        for chunk in r.iter_bytes():
            digest.update(chunk)
    return digest.hexdigest()


def random_file(path: Path, size: int) -> str:
    """``size`` random bytes at ``path``; returns their sha256."""
    digest = hashlib.sha256()
    with path.open("wb") as f:
        for _ in range(0, size, MiB):
            block = os.urandom(min(MiB, size - f.tell()))
            digest.update(block)
            f.write(block)
    return digest.hexdigest()


def open_attachments(page: Page, base: str, token: str | None, entity_id: str) -> None:
    """Sign in (unless ``token`` is None) and open the entity's Attachments tab the way a
    person does (htmx swaps it in), then wait for the Dashboard to be mounted."""
    if token is not None:
        sign_in(page, base, token)
    page.goto(f"{base}/ui/entities/{entity_id}")
    loaded(page)
    page.get_by_role("tab", name="Attachments").click()
    expect(page.locator(FORM)).to_have_attribute("data-uploader-state", "ready")


def throttle(page: Page, bytes_per_second: int) -> None:
    """Chromium's network emulation: the upload goes at most this fast."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions", {
        "offline": False, "latency": 0, "downloadThroughput": -1,
        "uploadThroughput": bytes_per_second})


@dataclass
class TusTraffic:
    """The tus requests the page made: each PATCH's Upload-Offset, and the offsets the
    server acknowledged (a 204's Upload-Offset)."""

    patches: list[int] = field(default_factory=list)
    acked: list[int] = field(default_factory=list)
    heads: int = 0

    def watch(self, page: Page) -> None:
        page.on("request", self._request)
        page.on("response", self._response)

    def _request(self, request: Request) -> None:
        if "/v1/uploads/" not in request.url:
            return
        if request.method == "PATCH":
            self.patches.append(int(request.headers["upload-offset"]))
        elif request.method == "HEAD":
            self.heads += 1

    def _response(self, response: Response) -> None:
        if response.request.method == "PATCH" and response.status == 204:
            self.acked.append(int(response.headers["upload-offset"]))

    def bytes_sent(self, chunk: int, size: int) -> int:
        """What the PATCHes carried (tus-js-client sends a whole chunk but for the last)."""
        return sum(min(chunk, size - offset) for offset in self.patches)


def uppy_file(page: Page) -> dict[str, Any]:
    return page.evaluate(f"""() => {{
        const f = {FILES}[0];
        return {{progress: f.progress, error: f.error || null, paused: !!f.isPaused,
                 assetId: f.assetId || null, uploadURL: f.uploadURL || null}};
    }}""")


def wait_for_progress(page: Page, percent: float) -> None:
    page.wait_for_function(
        f"() => {{ const f = {FILES}[0]; return f && f.progress.bytesTotal &&"
        f" f.progress.bytesUploaded / f.progress.bytesTotal * 100 >= {percent}; }}",
        timeout=UPLOAD_TIMEOUT_MS)


def wait_for_complete(page: Page) -> None:
    page.wait_for_function(
        f"() => {{ const f = {FILES}[0]; return f && (f.progress.uploadComplete || f.error); }}",
        timeout=UPLOAD_TIMEOUT_MS)
    state = uppy_file(page)
    assert state["error"] is None, state
    assert state["progress"]["uploadComplete"], state


def test_a_dropped_file_becomes_an_asset_of_the_chosen_kind(
        page: Page, live_server: tuple[str, str], tmp_path: Path,
        external_requests: list[str]) -> None:
    base, token = live_server
    js_errors: list[str] = []
    page.on("pageerror", lambda exc: js_errors.append(str(exc)))
    unique = os.urandom(4).hex()
    with api(base, token) as client:
        entity_id = create_entity(client, f"Drop {unique}")
    data = os.urandom(3 * MiB + 12345)  # more than one tus chunk would be at 1 MiB
    name = f"weights-{unique}.safetensors"
    open_attachments(page, base, token, entity_id)
    page.evaluate("window.__marker = 1")
    # the no-JavaScript form's own parts are hidden; kind and role are the form's
    expect(page.locator("#upload-files")).to_be_hidden()
    expect(page.locator(f"{FORM} button[type=submit]")).to_be_hidden()
    page.locator("#upload-kind").select_option("model.lora")
    page.locator("#upload-role").fill("weights")

    # drop it onto the Dashboard, as a file dragged from the desktop arrives
    transfer = page.evaluate_handle("""([name, b64]) => {
        const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
        const dt = new DataTransfer();
        dt.items.add(new File([bytes], name, {type: "application/octet-stream"}));
        return dt;
    }""", [name, base64.b64encode(data).decode()])
    drop_zone = page.locator(".uppy-Dashboard-inner")
    drop_zone.dispatch_event("dragover", {"dataTransfer": transfer})
    drop_zone.dispatch_event("drop", {"dataTransfer": transfer})
    expect(page.locator(".uppy-Dashboard-Item-name")).to_have_text(name)
    page.get_by_role("button", name=re.compile(r"^Upload 1 file")).click()
    wait_for_complete(page)

    # the attachment list is refreshed in place with the new asset
    asset_id = uppy_file(page)["assetId"]
    assert asset_id == hashlib.sha256(data).hexdigest()
    row = page.locator(f'#attachment-list tr[data-asset-id="{asset_id}"]')
    expect(row).to_contain_text(name)
    expect(row).to_contain_text("model.lora")
    expect(row).to_contain_text("weights")
    assert page.evaluate("window.__marker") == 1, "the upload reloaded the page"
    # the Dashboard links the finished file to its asset page
    expect(page.locator(f'.uppy-Dashboard-Item a[href="/ui/assets/{asset_id}"]')).to_have_count(1)

    with api(base, token) as client:
        (linked,) = client.get(f"/v1/entities/{entity_id}/assets").json()["items"]
        assert (linked["asset_id"], linked["filename"], linked["kind"], linked["role"],
                linked["size"]) == (asset_id, name, "model.lora", "weights", len(data))
        assert sha256_of_download(client, asset_id) == hashlib.sha256(data).hexdigest()
    assert js_errors == []
    assert external_requests == [], f"the UI tried to load from outside: {external_requests}"


def test_an_upload_resumes_after_core_is_killed_and_restarted(
        page: Page, core: Core, tmp_path: Path) -> None:
    size, chunk = 64 * MiB, MiB
    path = tmp_path / "big.bin"
    digest = random_file(path, size)
    with api(core.base, core.token) as client:
        entity_id = create_entity(client, "Resume")
    # many small PATCHes, slow enough to be cut mid-transfer
    page.add_init_script(f"window.ffUploaderOptions = {{chunkSize: {chunk}}}")
    traffic = TusTraffic()
    traffic.watch(page)
    open_attachments(page, core.base, core.token, entity_id)
    throttle(page, 8 * MiB)
    page.locator("#upload-kind").select_option("file")
    page.locator(f"{FORM}-dashboard input[type=file]").first.set_input_files(path)
    page.get_by_role("button", name=re.compile(r"^Upload 1 file")).click()

    wait_for_progress(page, 10)
    core.kill()
    acked_before = max(traffic.acked)
    patches_before = len(traffic.patches)
    assert acked_before >= chunk, "no PATCH had finished before the kill"
    core.start()  # same home, same port
    wait_for_complete(page)

    resumed = traffic.patches[patches_before:]
    assert resumed, "no PATCH after the restart"
    # tus-js-client asked the server where to go on and went on from there, not from zero
    assert resumed[0] >= acked_before > 0, (acked_before, resumed[:3])
    assert traffic.heads >= 1
    assert traffic.bytes_sent(chunk, size) < size + 2 * chunk < 2 * size
    with api(core.base, core.token) as client:
        (linked,) = client.get(f"/v1/entities/{entity_id}/assets").json()["items"]
        assert (linked["asset_id"], linked["size"], linked["kind"]) == (digest, size, "file")
        assert sha256_of_download(client, digest) == digest


def test_pause_and_resume_with_the_dashboard_buttons(
        page: Page, live_server: tuple[str, str], tmp_path: Path) -> None:
    base, token = live_server
    size, chunk = 24 * MiB, MiB
    path = tmp_path / "paused.bin"
    digest = random_file(path, size)
    with api(base, token) as client:
        entity_id = create_entity(client, f"Pause {os.urandom(4).hex()}")
    page.add_init_script(f"window.ffUploaderOptions = {{chunkSize: {chunk}}}")
    traffic = TusTraffic()
    traffic.watch(page)
    open_attachments(page, base, token, entity_id)
    throttle(page, 4 * MiB)
    page.locator(f"{FORM}-dashboard input[type=file]").first.set_input_files(path)
    page.get_by_role("button", name=re.compile(r"^Upload 1 file")).click()
    wait_for_progress(page, 10)

    page.get_by_role("button", name="Pause upload").click()
    page.wait_for_function(f"() => {FILES}[0].isPaused === true")
    expect(page.get_by_role("button", name="Resume upload")).to_be_visible()
    # paused: no PATCH goes out; the server holds what it had received
    sent = len(traffic.patches)
    with api(base, token) as client:
        upload_url = page.evaluate(f"() => {FILES}[0].tus.uploadUrl")
        assert re.fullmatch(r".*/v1/uploads/[0-9a-f]{32}", upload_url), upload_url
        held = client.get(upload_url).json()
        assert 0 < held["offset"] < size and held["asset_id"] is None
    assert uppy_file(page)["progress"]["uploadComplete"] is False
    assert len(traffic.patches) == sent

    page.get_by_role("button", name="Resume upload").click()
    wait_for_complete(page)
    resumed = traffic.patches[sent:]
    assert resumed and resumed[0] > 0, "the resumed upload started again from zero"
    with api(base, token) as client:
        (linked,) = client.get(f"/v1/entities/{entity_id}/assets").json()["items"]
        assert (linked["asset_id"], linked["size"]) == (digest, size)
        assert sha256_of_download(client, digest) == digest


def test_a_refused_upload_shows_the_servers_message(
        page: Page, live_server: tuple[str, str], tmp_path: Path) -> None:
    base, token = live_server
    with api(base, token) as client:
        entity_id = create_entity(client, f"Refused {os.urandom(4).hex()}")
    path = tmp_path / "refused.txt"
    path.write_bytes(b"never stored " + os.urandom(8).hex().encode())
    open_attachments(page, base, token, entity_id)
    # the entity is deleted behind the page's back: the tus creation is refused (404)
    with api(base, token) as client:
        assert client.delete(f"/v1/entities/{entity_id}").status_code == 204
    page.locator(f"{FORM}-dashboard input[type=file]").first.set_input_files(path)
    page.get_by_role("button", name=re.compile(r"^Upload 1 file")).click()
    page.wait_for_function(f"() => !!{FILES}[0].error")
    message = uppy_file(page)["error"]
    assert "entity" in message and "tus:" not in message, message
    # said in the page, and as the details of the Dashboard's own error display
    expect(page.locator(f"{FORM}-error")).to_have_text(f"refused.txt: {message}")
    expect(page.locator(f"{FORM}-error")).to_have_attribute("role", "alert")
    assert page.evaluate(f"() => {FORM_JS}.ffUppy.getState().info.map(i => i.details)") \
        == [message]
    expect(page.get_by_role("button", name="Retry upload")).to_be_visible()
    with api(base, token) as client:
        assert client.get("/v1/assets", params={"q": "refused"}).json()["items"] == []


def test_the_tab_swapped_in_again_mounts_one_dashboard(
        page: Page, live_server: tuple[str, str], tmp_path: Path) -> None:
    base, token = live_server
    js_errors: list[str] = []
    page.on("pageerror", lambda exc: js_errors.append(str(exc)))
    with api(base, token) as client:
        entity_id = create_entity(client, f"Tabs {os.urandom(4).hex()}")
    open_attachments(page, base, token, entity_id)
    page.evaluate("window.__marker = 1")
    tabs = page.get_by_role("tablist")
    for _ in range(2):
        tabs.get_by_role("tab", name="Overview").click()
        expect(page.locator(FORM)).to_have_count(0)
        tabs.get_by_role("tab", name="Attachments").click()
        expect(page.locator(FORM)).to_have_attribute("data-uploader-state", "ready")
    assert page.evaluate("window.__marker") == 1, "a tab switch reloaded the page"
    expect(page.locator(".uppy-Dashboard")).to_have_count(1)
    # the bundle was fetched once; the tab's script only mounts the new form
    assert page.evaluate("document.querySelectorAll('script[src*=\"uppy.min.js\"]').length") == 1
    path = tmp_path / f"again-{os.urandom(4).hex()}.txt"
    path.write_bytes(b"after three swaps " + os.urandom(16).hex().encode())
    page.locator(f"{FORM}-dashboard input[type=file]").first.set_input_files(path)
    page.get_by_role("button", name=re.compile(r"^Upload 1 file")).click()
    wait_for_complete(page)
    expect(page.locator("#attachment-list tr[data-asset-id]")).to_have_count(1)
    with api(base, token) as client:
        items = client.get(f"/v1/entities/{entity_id}/assets").json()["items"]
        assert [a["filename"] for a in items] == [path.name]  # sent once, not once per swap
    assert js_errors == []


def test_the_assets_page_uploads_to_the_entity_typed_in(
        page: Page, live_server: tuple[str, str], tmp_path: Path) -> None:
    base, token = live_server
    unique = os.urandom(4).hex()
    with api(base, token) as client:
        entity_id = create_entity(client, f"Typed {unique}")
    path = tmp_path / f"typed-{unique}.txt"
    data = f"uploaded from the Assets page {unique}".encode()
    path.write_bytes(data)
    sign_in(page, base, token)
    page.goto(f"{base}/ui/assets?q={unique}")
    loaded(page)
    form = "#asset-upload"
    expect(page.locator(form)).to_have_attribute("data-uploader-state", "ready")
    expect(page.locator(form)).to_be_visible()
    page.locator(f"{form}-dashboard input[type=file]").first.set_input_files(path)
    upload = page.get_by_role("button", name=re.compile(r"^Upload 1 file"))

    # a role without an entity, then a malformed id: said at once, nothing is sent
    page.locator("#upload-role").fill("notes")
    upload.click()
    problem = page.locator(f"{form}-error")
    expect(problem).to_have_text(
        "A role is the role of a link: give an entity to link the files to.")
    page.locator(f"{form}-entity").fill("not-an-id")
    upload.click()
    expect(problem).to_have_text("An entity id is 64 hexadecimal characters.")
    with api(base, token) as client:
        assert client.get("/v1/assets", params={"q": unique}).json()["items"] == []

    page.locator(f"{form}-entity").fill(entity_id.upper())
    upload.click()
    page.wait_for_function(
        f"() => {{ const f = document.querySelector('{form}').ffUppy.getFiles()[0];"
        " return f.progress.uploadComplete || f.error; }", timeout=UPLOAD_TIMEOUT_MS)
    expect(problem).to_be_hidden()
    # the results (filtered on this file's name) are refreshed in place
    asset_id = hashlib.sha256(data).hexdigest()
    expect(page.locator(f'#results [data-asset-id="{asset_id}"]').first).to_be_visible()
    with api(base, token) as client:
        (linked,) = client.get(f"/v1/entities/{entity_id}/assets").json()["items"]
        assert (linked["asset_id"], linked["role"], linked["kind"]) == (asset_id, "notes",
                                                                        "doc.text")


def test_a_file_dropped_again_resumes_only_into_the_same_entity(
        page: Page, live_server: tuple[str, str], tmp_path: Path) -> None:
    """tus-js-client remembers unfinished uploads (localStorage) by file: dropped on another
    entity, the same file is a new upload, not the end of the first one (linked elsewhere)."""
    base, token = live_server
    size, chunk = 12 * MiB, MiB
    path = tmp_path / "twice.bin"
    digest = random_file(path, size)
    with api(base, token) as client:
        first = create_entity(client, f"First {os.urandom(4).hex()}")
        second = create_entity(client, f"Second {os.urandom(4).hex()}")
    page.add_init_script(f"window.ffUploaderOptions = {{chunkSize: {chunk}}}")
    traffic = TusTraffic()
    traffic.watch(page)
    throttle(page, 4 * MiB)

    def upload(entity_id: str, sign: bool) -> int:
        """Open the entity's tab, upload the file; the index of its first PATCH."""
        open_attachments(page, base, token if sign else None, entity_id)
        page.locator(f"{FORM}-dashboard input[type=file]").first.set_input_files(path)
        start = len(traffic.patches)
        page.get_by_role("button", name=re.compile(r"^Upload 1 file")).click()
        return start

    # to the first entity: left a quarter done (paused, then the page is left)
    upload(first, sign=True)
    wait_for_progress(page, 25)
    page.get_by_role("button", name="Pause upload").click()
    page.wait_for_function(f"() => {FILES}[0].isPaused === true")
    assert page.evaluate("Object.keys(localStorage).filter(k => k.startsWith('ffUploads::'))")

    # the same file on the second entity starts from zero and is linked there only
    start = upload(second, sign=False)
    wait_for_complete(page)
    assert traffic.patches[start] == 0
    # back on the first entity, it goes on from where it was left
    start = upload(first, sign=False)
    wait_for_complete(page)
    assert traffic.patches[start] >= size // 4, traffic.patches[start:]
    with api(base, token) as client:
        for entity_id in (first, second):
            (linked,) = client.get(f"/v1/entities/{entity_id}/assets").json()["items"]
            assert (linked["asset_id"], linked["size"]) == (digest, size)
    # finished uploads are forgotten
    assert page.evaluate(
        "Object.keys(localStorage).filter(k => k.startsWith('ffUploads::'))") == []

"""The Jobs pages over HTTP (in process): the list and its filters and pages, a job's page
(input, result, error, log), the whole log page by page, cancel / retry / priority through
the UI's forms, the live event streams, the shell's indicator, and the "Import a folder"
form of the assets plugin."""

from __future__ import annotations

import asyncio
import json
import re
import sys
from collections.abc import Awaitable, Callable
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
import pytest
from starlette.applications import Starlette

from kernel.config import Settings, load_settings
from tests.kernel.conftest import eventually as eventually_within
from tests.plugins_builtin.assets.folders import sidecar_folder
from tests.ui.browsing import SignedIn, csrf_of, htmx_links_without_href, page, post_form, tags

PLUGINS_DIR = Path(__file__).resolve().parents[1] / "plugins"
# tests/plugins is not collected (norecursedirs); its modules are imported by name.
if str(PLUGINS_DIR) not in sys.path:
    sys.path.insert(0, str(PLUGINS_DIR))

import ui_job_types  # noqa: E402
from ui_job_types import ECHO, FAIL, HOLD, REMOTE  # noqa: E402

UNKNOWN_ID = "0" * 64
WAIT = 10.0
POLL = 0.02


@pytest.fixture
def settings(home: Path) -> Settings:
    """Thumbnails and metadata extraction off: their background work is not the subject."""
    return load_settings(home, env={"FACEFORGE_DISABLE_PLUGINS": "thumbnails,metadata_extract"})


@pytest.fixture
def app(make_app: Callable[..., Starlette]) -> Starlette:
    return make_app(extra_plugins=[("ui_job_types", ui_job_types)])


@pytest.fixture(autouse=True)
def gates() -> Any:
    ui_job_types.control.reset()
    yield ui_job_types.control
    for gate in ui_job_types.control.gates.values():  # let held jobs end before shutdown
        gate.set()


# -- helpers ---------------------------------------------------------------------------------

async def submit(client: httpx.AsyncClient, type: str, input: dict | None = None,
                 **fields: Any) -> dict:
    r = await client.post("/v1/jobs", json={"type": type, "input": input or {}, **fields})
    assert r.status_code == 202, r.text
    return r.json()


async def eventually(check: Callable[[], Awaitable[Any]], what: str) -> Any:
    """Poll ``check`` until it answers something truthy; fail after WAIT seconds."""
    return await eventually_within(check, what=what, timeout=WAIT, interval=POLL)


async def wait_status(client: httpx.AsyncClient, job_id: str, *statuses: str) -> dict:
    wanted = statuses or ("succeeded", "failed", "cancelled")

    async def reached() -> dict | None:
        job = (await client.get(f"/v1/jobs/{job_id}")).json()
        return job if job["status"] in wanted else None

    return await eventually(reached, f"job {job_id[:8]} to be {'/'.join(wanted)}")


async def held(client: httpx.AsyncClient, label: str) -> dict:
    """A ``uitest.hold`` job, once it runs (and its progress was saved)."""
    job = await submit(client, HOLD, {"label": label})
    with_timeout = asyncio.timeout(WAIT)
    async with with_timeout:
        await ui_job_types.control.entry(label).wait()
    return await wait_status(client, job["job_id"], "running")


def job_rows(html: str) -> list[str]:
    """Jobs in the list's table, in page order."""
    return [t.attrs["data-job-id"] for t in tags(html, "tr") if "data-job-id" in t.attrs]


def row_of(html: str, job_id: str) -> str:
    return html.split(f'data-job-id="{job_id}"', 1)[1].split("</tr>", 1)[0]


def events_of(text: str) -> list[tuple[str, str | None, str]]:
    """(event, id, data) of each server-sent event in ``text``."""
    found = []
    for block in text.split("\n\n"):
        fields: dict[str, list[str]] = {}
        for line in block.split("\n"):
            name, _, value = line.partition(": ")
            fields.setdefault(name, []).append(value)
        if "event" in fields:
            found.append((fields["event"][0], (fields.get("id") or [None])[0],
                          "\n".join(fields.get("data", []))))
    return found


async def read_stream(app: Starlette, ui: SignedIn, url: str,
                      until: Callable[[str], bool]) -> tuple[int, str]:
    """GET a never-ending event stream straight through the ASGI app (httpx's in-process
    transport waits for the whole body) until ``until(text so far)``, then leave."""
    parts = urlsplit(url)
    cookies = "; ".join(f"{k}={v}" for k, v in ui.client.cookies.items())
    left = asyncio.Event()
    received = bytearray()
    status = []
    asked = False

    async def receive() -> dict:
        nonlocal asked
        if not asked:
            asked = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await left.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])
        elif message["type"] == "http.response.body":
            received.extend(message.get("body", b""))
            if until(received.decode()):
                left.set()

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "GET", "scheme": "http", "path": parts.path,
             "raw_path": parts.path.encode(), "query_string": parts.query.encode(),
             "root_path": "", "client": ("127.0.0.1", 50000), "server": ("testserver", 80),
             "headers": [(b"host", b"testserver"), (b"cookie", cookies.encode()),
                         (b"accept", b"text/event-stream")]}
    try:
        async with asyncio.timeout(WAIT):
            await app(scope, receive, send)
    except TimeoutError:
        pytest.fail(f"{url} did not send what was expected; got:\n{received.decode()}")
    return status[0], received.decode()


# -- the list --------------------------------------------------------------------------------

async def test_list_shows_each_job_with_status_type_priority_and_progress(ui, client):
    done = await submit(client, ECHO, {"text": "hi", "lines": 2}, priority=3)
    failed = await submit(client, FAIL, {"message": "the disk is full"})
    await wait_status(client, done["job_id"])
    await wait_status(client, failed["job_id"])
    running = await held(client, "list")
    queued = await submit(client, REMOTE, priority=-5)

    html = await page(ui, "/ui/jobs")
    assert job_rows(html) == [queued["job_id"], running["job_id"], failed["job_id"],
                              done["job_id"]]  # newest first
    row = row_of(html, done["job_id"])
    assert 'data-status="succeeded"' in row and ECHO in row
    assert '<td class="num hide-sm">3</td>' in row
    assert 'value="100.0"' in row and "100%" in row and "echoed" in row
    assert f'href="/ui/jobs/{done["job_id"]}"' in row
    assert 'data-status="failed"' in row_of(html, failed["job_id"])
    row = row_of(html, running["job_id"])
    assert 'data-status="running"' in row and "40%" in row and "holding" in row
    row = row_of(html, queued["job_id"])
    assert 'data-status="queued"' in row and "-5" in row and "waiting" in row
    # each row follows its own event; the table follows the live stream
    assert tags(html, "tr", sse_swap=f"job-{done['job_id']}")
    (live,) = tags(html, "div", id="jobs-live")
    assert live.attrs["hx-ext"] == "sse"
    live_url = urlsplit(unescape(live.attrs["sse-connect"]))
    assert live_url.path == "/ui/jobs/live"
    assert re.fullmatch(r"since=[0-9T:.\-]+Z", unquote(live_url.query))
    assert tags(html, "script", src="/static/jobs/vendor/htmx-ext-sse-2.2.4/sse.min.js")
    assert tags(html, "a", href="/ui/assets/import")
    assert htmx_links_without_href(html.split('<main id="main">', 1)[1]) == []
    # the static files are served
    for url in ("/static/jobs/vendor/htmx-ext-sse-2.2.4/sse.min.js", "/static/jobs/jobs.css"):
        assert (await ui.client.get(url)).status_code == 200


async def test_no_jobs_says_so(ui):
    html = await page(ui, "/ui/jobs")
    assert job_rows(html) == [] and 'id="no-jobs"' in html and "No jobs yet" in html


async def test_filters_by_status_and_type_and_answer_htmx_with_the_results(ui, client):
    echo = await submit(client, ECHO, {"text": "a"})
    await wait_status(client, echo["job_id"])
    failed = await submit(client, FAIL, {"message": "no"})
    await wait_status(client, failed["job_id"])
    remote = await submit(client, REMOTE)

    assert job_rows(await page(ui, "/ui/jobs?status=failed")) == [failed["job_id"]]
    assert job_rows(await page(ui, f"/ui/jobs?type={ECHO}")) == [echo["job_id"]]
    assert job_rows(await page(ui, f"/ui/jobs?type={REMOTE}&status=queued")) == [
        remote["job_id"]]
    html = await page(ui, f"/ui/jobs?type={REMOTE}&status=failed")
    assert job_rows(html) == [] and "No jobs match these filters." in html

    # htmx: the results only, and the live stream keeps the filters
    html = await page(ui, "/ui/jobs?status=failed", headers={"HX-Request": "true"})
    assert "<html" not in html and 'id="job-filters"' not in html
    assert job_rows(html) == [failed["job_id"]]
    (live,) = tags(html, "div", id="jobs-live")
    assert "status=failed" in live.attrs["sse-connect"]

    full = await page(ui, "/ui/jobs?status=failed")
    (form,) = tags(full, "form", id="job-filters")
    assert form.attrs["hx-sync"] == "this:replace" and form.attrs["hx-get"] == "/ui/jobs"
    assert tags(full, "option", value="failed", selected="")
    assert {t.attrs["value"] for t in tags(full.split('id="type"', 1)[1], "option")} >= {
        ECHO, FAIL, HOLD, REMOTE, "assets.bulk_import"}

    # a status that is not one is named and ignored
    html = await page(ui, "/ui/jobs?status=done")
    assert "&#39;done&#39; is not a job status" in html
    assert len(job_rows(html)) == 3


async def test_pages_of_fifty_with_next_and_first_links(ui, client):
    ids = [(await submit(client, REMOTE, {"n": n}))["job_id"] for n in range(53)]
    html = await page(ui, "/ui/jobs")
    assert job_rows(html) == ids[::-1][:50]
    (nxt,) = tags(html, "a", rel="next")
    second = await page(ui, unescape(nxt.attrs["href"]))
    assert job_rows(second) == ids[::-1][50:]
    assert not tags(second, "a", rel="next")
    assert tags(second, "a", href="/ui/jobs")  # First page
    # only the first page reloads itself when a new job appears
    assert "sse:jobs-changed" in tags(html, "a", id="jobs-refresh")[0].attrs["hx-trigger"]
    assert "sse:" not in tags(second, "a", id="jobs-refresh")[0].attrs["hx-trigger"]
    # a cursor this server did not issue starts over
    assert job_rows(await page(ui, "/ui/jobs?cursor=bogus")) == ids[::-1][:50]


# -- one job -----------------------------------------------------------------------------

async def test_detail_shows_input_result_log_and_no_live_stream_once_finished(ui, client):
    job = await submit(client, ECHO, {"text": "<b>bold</b> & more", "lines": 2}, priority=4)
    await wait_status(client, job["job_id"])
    html = await page(ui, f"/ui/jobs/{job['job_id']}")
    assert 'data-status="succeeded"' in html
    state = html.split('id="job-state"', 1)[1].split("</section>", 1)[0]
    assert "Core (in process)" in state and "1 of 3" in state
    assert job["job_id"] in state and job["correlation_id"] in state
    result = json.loads(unescape(html.split('id="job-result">', 1)[1].split("</pre>", 1)[0]))
    assert result == {"echo": "<b>bold</b> & more"}
    shown_input = unescape(html.split('id="job-input">', 1)[1].split("</pre>", 1)[0])
    assert json.loads(shown_input) == {"text": "<b>bold</b> & more", "lines": 2}
    assert "<b>bold</b>" not in html  # escaped, never markup
    log = html.split('id="job-log"', 1)[1].split("</ol>", 1)[0]
    assert [t.attrs["data-line-id"] for t in tags(log, "li")] == ["1", "2", "3", "4", "5"]
    assert "line 1" in log and "n=1" in log and "succeeded" in log
    assert tags(html, "a", href=f"/ui/jobs/{job['job_id']}/log")
    # finished: nothing to follow, no buttons but none needed
    assert "sse-connect" not in html
    assert not tags(html, "form", action=f"/ui/jobs/{job['job_id']}/cancel")
    assert not tags(html, "form", action=f"/ui/jobs/{job['job_id']}/retry")


async def test_a_failed_job_shows_its_error_and_a_retry_button(ui, client):
    job = await submit(client, FAIL, {"message": "the disk is <full>"})
    await wait_status(client, job["job_id"])
    html = await page(ui, f"/ui/jobs/{job['job_id']}")
    error = unescape(html.split('id="job-error">', 1)[1].split("</pre>", 1)[0])
    assert error.endswith("the disk is <full>")
    assert tags(html, "form", action=f"/ui/jobs/{job['job_id']}/retry", method="post")
    assert 'id="job-result"' not in html


async def test_a_running_job_follows_itself_and_offers_cancel(ui, client):
    job = await held(client, "detail")
    html = await page(ui, f"/ui/jobs/{job['job_id']}")
    (live,) = tags(html, "div", id="job-live")
    last = tags(html.split('id="job-log"', 1)[1], "li")[-1].attrs["data-line-id"]
    assert live.attrs["sse-connect"] == f"/ui/jobs/{job['job_id']}/live?after_id={last}"
    assert live.attrs["sse-close"] == "end" and live.attrs["hx-ext"] == "sse"
    assert tags(html, "div", id="job-state")[0].attrs["sse-swap"] == "job,end"
    assert tags(html, "div", id="job-actions")[0].attrs["sse-swap"] == "actions"
    assert tags(html, "ol", id="job-log")[0].attrs["hx-swap"] == "beforeend"
    (cancel,) = tags(html, "form", action=f"/ui/jobs/{job['job_id']}/cancel")
    assert cancel.attrs["method"] == "post"
    assert "40%" in html and "holding" in html
    assert "files" in html.split('id="job-counters"', 1)[1].split("</ul>", 1)[0]
    assert not tags(html, "form", action=f"/ui/jobs/{job['job_id']}/priority")


async def test_unknown_jobs_are_a_404_page(ui):
    for url in (f"/ui/jobs/{UNKNOWN_ID}", "/ui/jobs/not-an-id", f"/ui/jobs/{UNKNOWN_ID}/log",
                f"/ui/jobs/{UNKNOWN_ID}/live"):
        html = await page(ui, url, status=404)
        assert "Not found" in html and "no job with id" in html
    r = await post_form(ui, f"/ui/jobs/{UNKNOWN_ID}/cancel")
    assert r.status_code == 404 and "text/html" in r.headers["content-type"]


async def test_the_whole_log_page_by_page(ui, client):
    job = await submit(client, ECHO, {"text": "many", "lines": 450})
    await wait_status(client, job["job_id"])
    url = f"/ui/jobs/{job['job_id']}/log"
    ids: list[int] = []
    pages_seen = 0
    while url:
        html = await page(ui, url)
        pages_seen += 1
        shown = [int(t.attrs["data-line-id"]) for t in tags(html, "tr") if "data-line-id" in
                 t.attrs]
        assert len(shown) == (200 if pages_seen < 3 else 53)
        ids += shown
        nxt = tags(html, "a", rel="next")
        url = unescape(nxt[0].attrs["href"]) if nxt else ""
        if nxt:
            assert url == f"/ui/jobs/{job['job_id']}/log?after_id={shown[-1]}"
    assert ids == list(range(1, 454))  # queued, started, 450 lines, succeeded
    assert pages_seen == 3
    html = await page(ui, f"/ui/jobs/{job['job_id']}/log?after_id=200")
    assert "line 198" in html and 'data-line-id="201"' in html
    assert tags(html, "a", href=f"/ui/jobs/{job['job_id']}/log")  # First page
    # an after_id that is not a line number shows the first page
    for bad in ("-5", "abc", "²", "9" * 30):
        html = await page(ui, f"/ui/jobs/{job['job_id']}/log?after_id={bad}")
        assert 'data-line-id="1"' in html, bad
    r = await ui.client.get(f"/ui/jobs/{job['job_id']}/live?after_id=²")
    assert r.status_code == 200 and "event: end" in r.text
    # htmx asks for the lines only; past the end there are none
    html = await page(ui, f"/ui/jobs/{job['job_id']}/log?after_id=453",
                      headers={"HX-Request": "true"})
    assert "<html" not in html and "No more lines." in html


# -- steering: cancel, retry, priority ------------------------------------------------------

async def test_cancel_and_retry_through_the_forms_and_refusals_shown_on_the_page(ui, client):
    job = await submit(client, REMOTE)
    job_id = job["job_id"]
    r = await post_form(ui, f"/ui/jobs/{job_id}/cancel")
    assert (r.status_code, r.headers["location"]) == (303, f"/ui/jobs/{job_id}?notice=cancelled")
    assert (await client.get(f"/v1/jobs/{job_id}")).json()["status"] == "cancelled"
    html = await page(ui, r.headers["location"])
    assert 'id="job-notice"' in html and 'data-status="cancelled"' in html
    assert tags(html, "form", action=f"/ui/jobs/{job_id}/retry")

    # cancelling it again: the 409 is a message on the job's page, not an error page
    r = await post_form(ui, f"/ui/jobs/{job_id}/cancel")
    assert r.status_code == 409 and "text/html" in r.headers["content-type"]
    problem = r.text.split('id="job-problem"', 1)[1].split("</p>", 1)[0]
    assert "has already" in problem and "cancelled" in problem
    assert 'id="job-state"' in r.text

    r = await post_form(ui, f"/ui/jobs/{job_id}/retry")
    assert (r.status_code, r.headers["location"]) == (303, f"/ui/jobs/{job_id}?notice=retried")
    assert (await client.get(f"/v1/jobs/{job_id}")).json()["status"] == "queued"
    r = await post_form(ui, f"/ui/jobs/{job_id}/retry")
    assert r.status_code == 409
    assert "only a failed or cancelled job can be retried" in r.text

    # with htmx the answer is a redirect header (no double render)
    r = await post_form(ui, f"/ui/jobs/{job_id}/cancel", headers={"HX-Request": "true"})
    assert (r.status_code, r.headers["hx-redirect"]) == (
        200, f"/ui/jobs/{job_id}?notice=cancelled")


async def test_the_forms_need_the_csrf_token(ui, client):
    job = await submit(client, REMOTE)
    for action in ("cancel", "retry", "priority"):
        r = await ui.client.post(f"/ui/jobs/{job['job_id']}/{action}", data={"priority": "1"})
        assert r.status_code == 403, action
        r = await ui.client.post(f"/ui/jobs/{job['job_id']}/{action}",
                                 data={"csrf_token": "wrong", "priority": "1"})
        assert r.status_code == 403, action
    assert (await client.get(f"/v1/jobs/{job['job_id']}")).json()["status"] == "queued"


async def test_cancel_a_running_in_process_job(ui, client):
    job = await held(client, "cancel-me")
    r = await post_form(ui, f"/ui/jobs/{job['job_id']}/cancel")
    assert r.status_code == 303
    done = await wait_status(client, job["job_id"])
    assert done["status"] == "cancelled"
    html = await page(ui, f"/ui/jobs/{job['job_id']}")
    assert 'data-status="cancelled"' in html and "sse-connect" not in html


async def test_a_job_held_by_a_runner_shows_cancelling_until_the_runner_stops(ui, client):
    job = await submit(client, REMOTE)
    r = await client.post("/v1/jobs/claim", json={"types": [REMOTE], "runner_id": "gpu-1"})
    assert r.status_code == 200 and r.json()["job_id"] == job["job_id"]
    r = await post_form(ui, f"/ui/jobs/{job['job_id']}/cancel")
    assert r.status_code == 303
    html = await page(ui, f"/ui/jobs/{job['job_id']}")
    assert 'data-status="running"' in html and "cancelling…" in html
    assert "<code>gpu-1</code>" in html and "Lease until" in html
    (button,) = tags(html.split(f'action="/ui/jobs/{job["job_id"]}/cancel"', 1)[1], "button")
    assert "disabled" in button.attrs


async def test_priority_changes_while_queued_only(ui, client):
    job = await submit(client, REMOTE, priority=1)
    job_id = job["job_id"]
    html = await page(ui, f"/ui/jobs/{job_id}")
    (field,) = tags(html, "input", name="priority")
    assert field.attrs["value"] == "1"
    r = await post_form(ui, f"/ui/jobs/{job_id}/priority", {"priority": "7"})
    assert (r.status_code, r.headers["location"]) == (303, f"/ui/jobs/{job_id}?notice=priority")
    assert (await client.get(f"/v1/jobs/{job_id}")).json()["priority"] == 7
    for bad in ("high", "", "1.5", "2000000"):
        r = await post_form(ui, f"/ui/jobs/{job_id}/priority", {"priority": bad})
        assert r.status_code == 422, bad
        assert "A priority is a whole number" in r.text
    assert (await client.get(f"/v1/jobs/{job_id}")).json()["priority"] == 7
    await client.post(f"/v1/jobs/{job_id}/cancel")
    r = await post_form(ui, f"/ui/jobs/{job_id}/priority", {"priority": "9"})
    assert r.status_code == 409
    assert "the priority can only change while a job is queued" in r.text


# -- live ----------------------------------------------------------------------------------

async def test_a_jobs_stream_sends_its_state_its_log_and_the_end(ui, client):
    job = await submit(client, ECHO, {"text": "x", "lines": 3})
    job_id = job["job_id"]
    await wait_status(client, job_id)
    r = await ui.client.get(f"/ui/jobs/{job_id}/live?after_id=0")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = events_of(r.text)
    assert [e[0] for e in events] == ["actions", "job"] + ["log"] * 6 + ["end"]
    # a job that succeeded has no buttons (Retry is for failed or cancelled ones)
    assert "<form" not in events[0][2]
    assert 'data-status="succeeded"' in events[1][2] and 'id="job-result"' in events[1][2]
    lines = events[2:8]
    assert [e[1] for e in lines] == ["1", "2", "3", "4", "5", "6"]
    assert all(e[2].startswith('<li class="log-line') for e in lines)
    assert "line 2" in lines[4][2]
    assert 'data-status="succeeded"' in events[-1][2]
    # resuming: after a line given in the URL, or the browser's Last-Event-ID
    r = await ui.client.get(f"/ui/jobs/{job_id}/live?after_id=4")
    assert [e[1] for e in events_of(r.text) if e[0] == "log"] == ["5", "6"]
    r = await ui.client.get(f"/ui/jobs/{job_id}/live?after_id=1",
                            headers={"Last-Event-ID": "5"})
    assert [e[1] for e in events_of(r.text) if e[0] == "log"] == ["6"]


async def test_a_running_jobs_stream_sends_changes_as_they_happen(app, ui, client, gates):
    job = await held(client, "stream")
    job_id = job["job_id"]

    def follow(text: str) -> bool:
        if "event: job" in text:  # it was seen running: now let it finish
            gates.gate("stream").set()
        return "event: end" in text

    status, text = await read_stream(app, ui, f"/ui/jobs/{job_id}/live?after_id=0", follow)
    assert status == 200
    events = events_of(text)
    assert [e[0] for e in events[:2]] == ["actions", "job"] and events[-1][0] == "end"
    assert 'data-status="running"' in events[1][2]
    assert f'action="/ui/jobs/{job_id}/cancel"' in events[0][2]
    assert 'data-status="succeeded"' in events[-1][2]
    assert any("holding stream" in e[2] for e in events if e[0] == "log")
    # the buttons were sent again once, when they changed: none once it succeeded
    buttons = [data for name, _, data in events if name == "actions"]
    assert len(buttons) == 2 and "<form" not in buttons[1]


async def test_the_list_stream_sends_rows_and_says_when_a_new_job_belongs(app, ui, client):
    old = await submit(client, REMOTE)
    html = await page(ui, "/ui/jobs")
    live_url = unescape(tags(html, "div", id="jobs-live")[0].attrs["sse-connect"])

    async def start_jobs() -> dict:
        await client.post(f"/v1/jobs/{old['job_id']}/cancel")  # a change to a shown job
        return await submit(client, ECHO, {"text": "new"})

    starter = asyncio.create_task(start_jobs())
    status, text = await read_stream(
        app, ui, live_url, lambda t: "event: jobs-changed" in t and 'data-status="succeeded"'
        in t)
    new = await starter
    assert status == 200
    events = events_of(text)
    rows = {name[4:]: data for name, _, data in events if name.startswith("job-")}
    assert 'data-status="cancelled"' in rows[old["job_id"]]
    assert rows[old["job_id"]].startswith("<td")  # the row's cells, for its <tr>
    assert 'data-status="succeeded"' in rows[new["job_id"]]
    # the new job is announced once; the cancelled one was already in the table
    assert [data for name, _, data in events if name == "jobs-changed"] == [new["job_id"]]

    # filtered on a type: the others' rows are not sent
    async def start_two() -> dict:
        await submit(client, ECHO, {"text": "not shown"})
        return await submit(client, FAIL, {"message": "shown"})

    starter = asyncio.create_task(start_two())
    status, text = await read_stream(app, ui, f"/ui/jobs/live?type={FAIL}",
                                     lambda t: "event: jobs-changed" in t)
    failing = await starter
    events = events_of(text)
    assert {name for name, _, _ in events if name.startswith("job-")} == {
        f"job-{failing['job_id']}"}
    assert [data for name, _, data in events if name == "jobs-changed"] == [failing["job_id"]]


# -- the shell's indicator -----------------------------------------------------------------

async def test_the_indicator_counts_running_and_queued_jobs(ui, client):
    assert (await page(ui, "/ui/jobs/indicator")).strip() == ""
    queued = [await submit(client, REMOTE) for _ in range(2)]
    html = await page(ui, "/ui/jobs/indicator")
    (link,) = tags(html, "a", id="jobs-indicator")
    assert link.attrs["href"] == "/ui/jobs?status=queued"
    assert re.sub(r"\s+", " ", html).strip().endswith(">2 queued</a>")
    await held(client, "indicator")
    html = await page(ui, "/ui/jobs/indicator")
    (link,) = tags(html, "a", id="jobs-indicator")
    assert link.attrs["href"] == "/ui/jobs?status=running"
    assert "1 running · 2 queued" in html
    for job in queued:
        await client.post(f"/v1/jobs/{job['job_id']}/cancel")
    assert ">1 running</a>" in await page(ui, "/ui/jobs/indicator")
    # it is in the top bar of every page, refreshed every few seconds
    for url in ("/ui/jobs", "/ui/system", "/ui/assets"):
        (widget,) = tags(await page(ui, url), "div", id="widget-jobs")
        assert widget.attrs["hx-get"] == "/ui/jobs/indicator"
        assert widget.attrs["hx-trigger"] == "load, every 3s"


# -- "Import a folder" -----------------------------------------------------------------------

async def import_form(ui: SignedIn, headers: dict[str, str] | None = None,
                      **values: str) -> httpx.Response:
    """The form as a browser posts it (its defaults, then ``values``), with Start import."""
    data = {"path": "", "recursive": "1", "kind": "", "entity_q": "", "include": "",
            "exclude": "", "action": "import", **values}
    return await post_form(ui, "/ui/assets/import", data, headers=headers)


async def test_the_assets_and_jobs_pages_link_to_the_import_form(ui):
    for url in ("/ui/assets", "/ui/jobs"):
        assert tags(await page(ui, url), "a", href="/ui/assets/import"), url
    html = await page(ui, "/ui/assets/import")
    (form,) = tags(html, "form", id="import-form")
    assert (form.attrs["method"], form.attrs["action"]) == ("post", "/ui/assets/import")
    assert csrf_of(html) == ui.csrf
    assert tags(html, "input", name="recursive", checked="")  # on by default
    assert not tags(html, "input", name="follow_symlinks", checked="")
    assert tags(html, "option", value="image.original")
    assert tags(html, "input", name="entity_q")


async def test_an_import_from_the_form_leads_to_its_job(ui, client, tmp_path):
    folder = sidecar_folder(tmp_path / "photos", 12)
    (folder / "skip.tmp").write_text("no", "utf-8")
    r = await import_form(ui, path=str(folder), exclude="*.tmp\n*.bak", kind="doc.text")
    assert r.status_code == 303
    match = re.fullmatch(r"/ui/jobs/([0-9a-f]{64})", r.headers["location"])
    assert match, r.headers["location"]
    job = await wait_status(client, match.group(1))
    assert job["status"] == "succeeded", job
    assert job["type"] == "assets.bulk_import"
    assert job["input"]["exclude"] == ["*.tmp", "*.bak"] and job["input"]["recursive"] is True
    assert job["result"]["imported"] == 12
    html = await page(ui, r.headers["location"])
    assert 'data-status="succeeded"' in html and "batch 1" in html
    # with htmx: a redirect header
    r = await import_form(ui, path=str(folder), headers={"HX-Request": "true"})
    assert r.status_code == 200 and r.headers["hx-redirect"].startswith("/ui/jobs/")


async def test_a_bad_folder_is_shown_on_the_form_with_what_was_typed(ui, client, tmp_path):
    cases = {"photos/2024": "must be absolute", str(tmp_path / "missing"): "no such folder",
             "": "Type the folder"}
    for path, message in cases.items():
        r = await import_form(ui, path=path, include="*.png, *.jpg", exclude="*.tmp",
                              follow_symlinks="1", kind="image.original", recursive="")
        assert r.status_code == 422, path
        assert "text/html" in r.headers["content-type"]
        error = r.text.split('id="path-error"', 1)[1].split("</p>", 1)[0]
        assert message in error, (path, error)
        (field,) = tags(r.text, "input", name="path")
        assert field.attrs["value"] == path
        assert "*.png, *.jpg</textarea>" in r.text and "*.tmp</textarea>" in r.text
        assert tags(r.text, "input", name="follow_symlinks", checked="")
        assert not tags(r.text, "input", name="recursive", checked="")
        assert tags(r.text, "option", value="image.original", selected="")
    a_file = tmp_path / "a.txt"
    a_file.write_text("x", "utf-8")
    r = await import_form(ui, path=str(a_file))
    assert r.status_code == 422 and "not a folder" in r.text
    # a pattern the request refuses is named next to its field
    r = await import_form(ui, path=str(tmp_path), include="x" * 501)
    assert r.status_code == 422 and 'id="include-error"' in r.text
    r = await client.get("/v1/jobs")
    assert r.json()["items"] == []  # nothing was started


async def test_the_entity_search_picks_the_entity_to_link(ui, client, tmp_path):
    ada = (await client.post("/v1/entities", json={"display_name": "Ada Lovelace"})).json()
    await client.post("/v1/entities", json={"display_name": "Ada Byron"})
    # live search (htmx): the candidates only
    r = await post_form(ui, "/ui/assets/import", {"entity_q": "lovelace"},
                        headers={"HX-Request": "true"})
    assert r.status_code == 200 and "<html" not in r.text
    assert [t.attrs["value"] for t in tags(r.text, "input", name="entity_id")] == [
        ada["entity_id"]]
    # without JavaScript: "Find" shows the whole form again with them
    r = await post_form(ui, "/ui/assets/import", {"entity_q": "ada", "action": "find",
                                                  "path": "/somewhere"})
    assert r.status_code == 200 and 'id="import-form"' in r.text
    assert len(tags(r.text, "input", name="entity_id")) == 2
    assert tags(r.text, "input", name="path", value="/somewhere")
    # several matches and none chosen: choose one; no match: said so
    folder = sidecar_folder(tmp_path / "linked", 2)
    r = await import_form(ui, path=str(folder), entity_q="ada")
    assert r.status_code == 422 and "Several entities match" in r.text
    r = await import_form(ui, path=str(folder), entity_q="nobody")
    assert r.status_code == 422 and "No entity matches" in r.text
    # a single match (or the one chosen) is linked to every file
    r = await import_form(ui, path=str(folder), entity_q="lovelace")
    assert r.status_code == 303
    job = await wait_status(client, r.headers["location"].rsplit("/", 1)[1])
    assert job["status"] == "succeeded" and job["input"]["entity_id"] == ada["entity_id"]
    linked = await client.get("/v1/assets", params={"entity_id": ada["entity_id"]})
    assert len(linked.json()["items"]) == 2

"""The pages Core shows for this plugin, served on the port Core passed (standard library
HTTP server; Core proxies ``/ui/ext/lora/...`` here and wraps the HTML in its UI).

Core sends the public prefix in ``X-Forwarded-Prefix`` (links and form actions use it)
and adds its CSRF token to POST forms itself.
"""

from __future__ import annotations

import html
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from ff_plugin_sdk import FaceForgeError
from ff_plugin_sdk.client import FaceForge

PLUGIN_ID = "lora"
_client: FaceForge | None = None


def client() -> FaceForge:
    global _client
    if _client is None:
        _client = FaceForge()  # FACEFORGE_URL / FACEFORGE_TOKEN
    return _client


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def _loras(**filters: Any) -> str:
    assets = client().assets.list(kind="model.lora", limit=100, **filters).items
    if not assets:
        return "<p class='empty'>No LoRA yet.</p>"
    rows = "".join(
        f"<tr><td><a href='/ui/assets/{a.asset_id}'>{html.escape(a.filename)}</a></td>"
        f"<td>{_size(a.size)}</td><td>{html.escape(a.created_at)}</td></tr>" for a in assets)
    return (f"<table class='lora-list'><thead><tr><th>File</th><th>Size</th><th>Made</th>"
            f"</tr></thead><tbody>{rows}</tbody></table>")


def _jobs(entity_id: str) -> list[Any]:
    """The entity's latest ``lora.train`` jobs, newest first."""
    return [j for j in client().jobs.list(types=["lora.train"], limit=100).items
            if isinstance(j.input, dict) and j.input.get("entity_id") == entity_id][:10]


def _job_list(jobs: list[Any]) -> str:
    if not jobs:
        return ""
    rows = "".join(
        f"<li><a href='/ui/jobs/{j.job_id}'>{html.escape(j.status)}</a>"
        f" {html.escape(j.progress.step or '')}"
        f"{' — ' + html.escape(j.error) if j.error else ''}</li>" for j in jobs)
    return f"<h3>Training jobs</h3><ul class='lora-jobs'>{rows}</ul>"


def entity_tab(prefix: str, entity_id: str) -> str:
    settings = client().plugins.get_config(PLUGIN_ID)
    base = html.escape(str(settings.get("base_model", "sdxl")))
    jobs = _jobs(entity_id)
    # while a job is under way the tab fetches itself again (Core's entity page answers an
    # htmx request with the tab alone), so its LoRA shows up without a reload
    refresh = ""
    if any(j.status in ("queued", "running") for j in jobs):
        url = html.escape(f"/ui/entities/{quote(entity_id)}?tab=plugin-{PLUGIN_ID}")
        refresh = f" hx-get='{url}' hx-trigger='load delay:1s' hx-swap='outerHTML'"
    return (f"<div class='lora-tab'{refresh}><h2>LoRA</h2>{_loras(entity_id=entity_id)}"
            f"<form method='post' action='{html.escape(prefix)}/train'>"
            f"<input type='hidden' name='entity_id' value='{html.escape(entity_id)}'>"
            f"<button type='submit'>Train LoRA ({base}, fast-test)</button></form>"
            f"{_job_list(jobs)}</div>")


def home() -> str:
    return f"<h1>LoRAs</h1>{_loras()}"


class Handler(BaseHTTPRequestHandler):
    def _send(self, status: int, body: str, headers: dict[str, str] | None = None) -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _fail(self, exc: FaceForgeError) -> None:
        self._send(exc.status if 400 <= exc.status < 600 else 502,
                   f"<p class='error'>{html.escape(exc.message)}</p>")

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        prefix = self.headers.get("X-Forwarded-Prefix", f"/ui/ext/{PLUGIN_ID}")
        try:
            if url.path == "/entity-tab" and query.get("entity_id"):
                self._send(200, entity_tab(prefix, query["entity_id"][0]))
            elif url.path == "/":
                self._send(200, home())
            else:
                self._send(404, "<p>No such page.</p>")
        except FaceForgeError as exc:
            self._fail(exc)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        form = parse_qs(self.rfile.read(length).decode("utf-8", "replace"))
        if urlsplit(self.path).path != "/train" or not form.get("entity_id"):
            self._send(404, "<p>No such form.</p>")
            return
        entity_id = form["entity_id"][0]
        try:
            client().jobs.create("lora.train", {"entity_id": entity_id})
        except FaceForgeError as exc:
            self._fail(exc)
            return
        self._send(303, "", {"Location": f"/ui/entities/{quote(entity_id)}?tab=plugin-lora"})

    def log_message(self, format: str, *args: Any) -> None:
        pass  # Core's access log has the request


def serve(host: str, port: int) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server

"""An out-of-process plugin whose runner serves HTTP: Core proxies its API routes (caller's
scope checked first), shows its pages and entity tab inside the UI, and takes them all away
when the plugin is disabled."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import running
from tests.ui.browsing import sign_in

from .conftest import anonymous, assert_envelope, eventually, kernel_of
from .test_registry import install, manifest

#: a runner serving a tiny site on the port Core gave it (stdlib only)
WEB_RUNNER = """\
import json, os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Handler(BaseHTTPRequestHandler):
    def _send(self, status, body, ctype):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path.startswith("/v1/plugins/web/hello"):
            seen = {k: self.headers.get(k) for k in ("Authorization", "Cookie",
                    "X-FaceForge-Principal", "X-Forwarded-Prefix")}
            self._send(200, json.dumps({"path": self.path, "seen": seen}), "application/json")
        elif self.path.startswith("/tab"):
            prefix = self.headers.get("X-Forwarded-Prefix", "")
            self._send(200, f'<p id="web-tab">tab for {self.path}</p>'
                            f'<form method="post" action="{prefix}/echo">'
                            f'<button>Go</button></form>', "text/html")
        elif self.path == "/":
            self._send(200, '<h2 id="web-home">Web plugin home</h2>', "text/html")
        else:
            self._send(404, "nope", "text/plain")

    def do_POST(self):
        length = int(self.headers.get("Content-Length", 0))
        body = self.rfile.read(length).decode()
        self._send(200, f'<p id="echoed">{body}</p>', "text/html")

    def log_message(self, *args):
        pass

ThreadingHTTPServer(("127.0.0.1", int(os.environ["FACEFORGE_PLUGIN_PORT"])),
                    Handler).serve_forever()
"""

WEB = manifest("web", permissions=["entities:read"], job_types=[],
               routes_prefix="/v1/plugins/web",
               entrypoints={"runner": {"argv": ["python", "runner.py"], "serves_http": True},
                            "ui": {"pages": [{"path": "/", "label": "Web"}],
                                   "entity_tab": {"path": "/tab", "label": "Web tab"}}})


@pytest.fixture
def web_home(home: Path) -> Path:
    install(home, "web", WEB, runner=WEB_RUNNER)
    return home


async def test_runner_routes_pages_and_tab_come_and_go_with_the_plugin(
        make_app, settings, web_home) -> None:
    app = make_app()
    kernel = kernel_of(app)
    async with running(app, settings.install_token) as client:
        assert_envelope(await client.get("/v1/plugins/web/hello"), 404, "plugin_disabled")
        await client.post("/v1/plugins/web/enable",
                          json={"accept_permissions": ["entities:read"]})

        async def answered():
            response = await client.get("/v1/plugins/web/hello?x=1")
            return response if response.status_code == 200 else None

        response = await eventually(answered, timeout=15, what="the runner to serve")
        body = response.json()
        assert body["path"] == "/v1/plugins/web/hello?x=1"
        # the caller's credentials never reach the plugin; who called does
        assert body["seen"]["Authorization"] is None and body["seen"]["Cookie"] is None
        assert body["seen"]["X-FaceForge-Principal"] == "install_token:install"

        # a token without plugins:use cannot call it
        token = await kernel.scoped_tokens.issue("reader", ["entities:read"])
        reader = anonymous(client)
        reader.headers["Authorization"] = f"Bearer {token}"
        assert_envelope(await reader.get("/v1/plugins/web/hello"), 403, "missing_scope")
        await reader.aclose()

        ui = await sign_in(anonymous(client), settings.install_token)
        assert ("Web", "/ui/ext/web/") in [(e.label, e.href) for e in kernel.nav]
        page = await ui.client.get("/ui/ext/web/")
        assert page.status_code == 200 and 'id="web-home"' in page.text
        assert "<nav" in page.text  # inside the Core UI shell

        entity = (await client.post("/v1/entities", json={"display_name": "Ada"})).json()
        tab = await ui.client.get(f"/ui/entities/{entity['entity_id']}?tab=plugin-web")
        assert tab.status_code == 200
        assert f"tab for /tab?entity_id={entity['entity_id']}" in tab.text
        # the runner's form got the session's CSRF token; posting it reaches the runner
        assert 'action="/ui/ext/web/echo"' in tab.text
        assert f'name="csrf_token" value="{ui.csrf}"' in tab.text
        echoed = await ui.client.post("/ui/ext/web/echo", data={
            "csrf_token": ui.csrf, "steps": "5"})
        assert echoed.status_code == 200 and "steps=5" in echoed.text
        forged = await ui.client.post("/ui/ext/web/echo", data={"csrf_token": "x"})
        assert forged.status_code == 403

        await client.post("/v1/plugins/web/disable")
        assert_envelope(await client.get("/v1/plugins/web/hello"), 404, "plugin_disabled")
        assert "Web" not in [e.label for e in kernel.nav]
        assert "plugin-web" not in [t.id for t in kernel.entity_tabs]
        assert (await ui.client.get("/ui/ext/web/")).status_code == 404
        await ui.client.aclose()


async def test_an_in_process_plugin_has_no_runner_routes(client) -> None:
    assert_envelope(await client.get("/v1/plugins/jobs/anything"), 404, "not_found")
    assert_envelope(await client.get("/v1/plugins/nope/anything"), 404, "plugin_not_found")

# TEMPORARY until kernel/plugin_proxy.py lands (helper); not committed
from typing import Any


class RunnerProxy:
    async def forward(self, request: Any, base_url: Any, path: str, prefix: str = "", body: Any = None) -> Any: raise NotImplementedError
    async def fetch_html(self, request: Any, base_url: Any, path: str, body: Any = None) -> Any: raise NotImplementedError
    async def aclose(self) -> None: pass
async def check_proxied_form_csrf(request: Any) -> bytes: return b""

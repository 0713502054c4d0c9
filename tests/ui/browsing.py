"""What a browser does with the server-rendered UI: sign in, read forms, links and ids from
the HTML.  Shared by the UI shell tests and every plugin's page tests."""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any

import httpx

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass(frozen=True)
class Tag:
    name: str
    attrs: dict[str, str]


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[Tag] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(Tag(tag, {k: v or "" for k, v in attrs}))


def tags(html: str, element: str | None = None, /, **attrs: str) -> list[Tag]:
    """Every start tag (optionally of one element, with these attribute values)."""
    collector = _Collector()
    collector.feed(html)
    return [t for t in collector.tags if (element is None or t.name == element)
            and all(t.attrs.get(k.replace("_", "-")) == v for k, v in attrs.items())]


def csrf_of(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "the page has no csrf_token field"
    return match.group(1)


def entity_ids(html: str) -> list[str]:
    """Entities shown in a list or gallery, in page order."""
    return [t.attrs["data-entity-id"] for t in tags(html) if "data-entity-id" in t.attrs]


def nav_labels(html: str) -> list[tuple[str, str]]:
    """(href, label) of the main navigation links, in order."""
    block = html.split('class="mainnav"', 1)[1].split("</nav>", 1)[0]
    return re.findall(r'<a href="([^"]+)"[^>]*>([^<]+)</a>', block)


def htmx_links_without_href(html: str) -> list[Tag]:
    """Elements with ``hx-get`` that a browser without JavaScript could not follow."""
    broken = []
    for tag in tags(html):
        target = tag.attrs.get("hx-get")
        if target is None:
            continue
        if tag.name == "a" and tag.attrs.get("href") == target:
            continue
        if (tag.name == "form" and tag.attrs.get("action") == target
                and tag.attrs.get("method", "get").lower() == "get"):
            continue
        if "shell-widget" in (tag.attrs.get("class") or "").split():
            continue  # a top-bar widget fills itself in place: not a link to follow
        broken.append(tag)
    return broken


@dataclass
class SignedIn:
    client: httpx.AsyncClient
    csrf: str


async def sign_in(client: httpx.AsyncClient, token: str) -> SignedIn:
    """Log in through the login form; the client's cookie jar keeps the session."""
    r = await client.post("/ui/login", data={"token": token, "next": "/ui/logout"})
    assert r.status_code == 303, r.text
    page = await client.get("/ui/logout")
    assert page.status_code == 200, page.text
    return SignedIn(client, csrf_of(page.text))


async def page(ui: SignedIn, url: str, status: int = 200, **kwargs: Any) -> str:
    """A UI page's HTML, checking its status and that it is HTML."""
    r = await ui.client.get(url, **kwargs)
    assert r.status_code == status, (url, r.status_code, r.text[:500])
    assert "text/html" in r.headers["content-type"]
    return r.text


async def post_form(ui: SignedIn, url: str, data: dict[str, str] | None = None,
                    **kwargs: Any) -> httpx.Response:
    """A form post carrying the session's CSRF token."""
    return await ui.client.post(url, data={"csrf_token": ui.csrf, **(data or {})}, **kwargs)

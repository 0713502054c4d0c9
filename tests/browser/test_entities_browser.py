"""The entities UI in a real headless Chromium against a real ``faceforge serve`` process."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
ENTITY_URL = re.compile(r"/ui/entities/([^/?#]+)")


def loaded(page: Page) -> None:
    """Wait for the document's load event: a deferred htmx has then wired the page up, so an
    input or click right after a navigation is not lost (or taken as a plain link)."""
    page.wait_for_load_state("load")


def sign_in(page: Page, base_url: str, token: str) -> None:
    page.goto(base_url + "/ui/login")
    page.get_by_label("Install token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/ui/entities$"))


def create_entity(page: Page, name: str, aliases: str = "", tags: str = "",
                  fields: str = "") -> str:
    """Fill and submit the New entity form; returns the new entity's id."""
    page.get_by_role("link", name="New entity").click()
    expect(page.get_by_role("heading", name="New entity")).to_be_visible()
    page.get_by_label("Name").fill(name)
    page.get_by_label("Aliases").fill(aliases)
    page.get_by_label("Tags").fill(tags)
    page.get_by_label("Fields").fill(fields)
    page.get_by_role("button", name="Create").click()
    expect(page).to_have_url(re.compile(r"/ui/entities/[^/?]+\?notice=created$"))
    expect(page.locator("#entity-name")).to_have_text(name)
    match = ENTITY_URL.search(page.url)
    assert match
    return match.group(1)


def assert_no_horizontal_scroll(page: Page) -> None:
    # The text a test waited for is in the DOM before the stylesheet has loaded: measure
    # only once the page (CSS included) has loaded and fonts are ready.
    page.wait_for_load_state("load")
    widths = page.evaluate("document.fonts.ready.then(() => "
                           "[document.documentElement.scrollWidth, window.innerWidth])")
    assert widths[0] <= widths[1], f"page is wider than the screen: {widths}"


def test_entity_journey(page: Page, live_server: tuple[str, str],
                        external_requests: list[str]) -> None:
    base, token = live_server
    js_errors: list[str] = []
    page.on("pageerror", lambda exc: js_errors.append(str(exc)))

    # Signed out, / ends on the login page.
    page.goto(base + "/")
    expect(page).to_have_url(re.compile(r"/ui/login\?next="))
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()

    # A wrong token is refused with a message, and the user stays on the login page.
    page.get_by_label("Install token").fill("not-the-token")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#token-error")).to_contain_text("not this install's token")
    expect(page).to_have_url(re.compile(r"/ui/login"))

    # The right token lands on the Entities page.
    page.get_by_label("Install token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/ui/entities$"))
    expect(page.get_by_role("heading", name="Entities", exact=True)).to_be_visible()
    expect(page.get_by_role("navigation", name="Main").get_by_role("link", name="Entities")
           ).to_have_attribute("aria-current", "page")

    # Create an entity; its detail page shows what was entered.
    entity_id = create_entity(page, "Ada Lovelace", aliases="Countess of Lovelace",
                              tags="math, poet", fields="born: 1815")
    expect(page.get_by_role("status")).to_have_text("Entity created.")
    panel = page.locator("#tab-panel")
    expect(panel).to_contain_text("Countess of Lovelace")
    expect(panel.locator("a.tag")).to_have_text(["math", "poet"])
    expect(panel.locator("#entity-fields dt")).to_have_text(["born"])
    expect(panel.locator("#entity-fields dd")).to_have_text(["1815"])
    expect(panel).to_contain_text(entity_id)

    # A blank name is refused inline; the form stays.
    page.goto(base + "/ui/entities/new")
    page.get_by_label("Tags").fill("draft")
    page.get_by_role("button", name="Create").click()
    expect(page.locator("#display_name-error")).to_have_text("A name is required.")
    expect(page.get_by_label("Name")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Tags")).to_have_value("draft")
    expect(page).to_have_url(re.compile(r"/ui/entities/new$"))
    expect(page.get_by_role("heading", name="New entity")).to_be_visible()

    # Live search: results swap in place, the URL follows, the page is never reloaded.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Entities").click()
    expect(page).to_have_url(re.compile(r"/ui/entities$"))
    loaded(page)
    page.evaluate("window.__marker = 1")
    page.get_by_label("Search").fill("lovel")
    expect(page).to_have_url(re.compile(r"[?&]q=lovel(&|$)"))
    expect(page.locator("#result-count")).to_have_text(re.compile(r"^\s*1 entity\s*$"))
    row = page.locator(f'tr[data-entity-id="{entity_id}"]')
    expect(row).to_contain_text("Ada Lovelace")
    expect(row).to_contain_text("Countess of Lovelace")
    assert page.evaluate("window.__marker") == 1, "the search reloaded the page"

    page.get_by_label("Search").fill("no-such-entity-xyz")
    expect(page).to_have_url(re.compile(r"[?&]q=no-such-entity-xyz(&|$)"))
    expect(page.locator("#results")).to_contain_text("Nothing matches this search.")
    expect(page.locator("tr[data-entity-id]")).to_have_count(0)
    assert page.evaluate("window.__marker") == 1, "the search reloaded the page"

    # Open the entity; the Overview tab swaps the panel in place.
    page.get_by_label("Search").fill("lovel")
    row.get_by_role("link", name="Ada Lovelace").click()
    expect(page).to_have_url(re.compile(rf"/ui/entities/{entity_id}$"))
    loaded(page)
    page.evaluate("window.__marker = 2")
    overview = page.get_by_role("tab", name="Overview")
    expect(overview).to_have_attribute("aria-selected", "true")
    overview.click()
    expect(page).to_have_url(re.compile(rf"/ui/entities/{entity_id}\?tab=overview$"))
    expect(overview).to_have_attribute("aria-selected", "true")
    expect(page.locator("#tab-panel")).to_contain_text("Countess of Lovelace")
    expect(page.locator("#tab-panel .tabs")).to_have_count(0)  # a fragment, not a page
    assert page.evaluate("window.__marker") == 2, "the tab reloaded the page"

    # Edit: rename.
    page.get_by_role("link", name="Edit").click()
    expect(page.get_by_role("heading", name="Edit entity")).to_be_visible()
    expect(page.get_by_label("Aliases")).to_have_value("Countess of Lovelace")
    expect(page.get_by_label("Tags")).to_have_value("math, poet")
    expect(page.get_by_label("Fields")).to_have_value("born: 1815")
    page.get_by_label("Name").fill("Ada King")
    page.get_by_role("button", name="Save").click()
    expect(page).to_have_url(re.compile(rf"/ui/entities/{entity_id}\?notice=saved$"))
    expect(page.locator("#entity-name")).to_have_text("Ada King")
    expect(page.get_by_role("status")).to_have_text("Changes saved.")

    # Delete through the confirmation page; it leaves the active list.
    page.locator("main").get_by_role("link", name="Delete").click()
    expect(page.get_by_role("heading", name="Delete “Ada King”?")).to_be_visible()
    page.get_by_role("button", name="Delete").click()
    expect(page).to_have_url(re.compile(r"/ui/entities\?notice=deleted$"))
    expect(page.get_by_role("status")).to_contain_text("Entity deleted.")
    expect(page.locator(f'[data-entity-id="{entity_id}"]')).to_have_count(0)

    # Show: Deleted lists it; open it and restore.
    loaded(page)
    page.get_by_label("Show").select_option("deleted")
    expect(page).to_have_url(re.compile(r"[?&]state=deleted(&|$)"))
    deleted_row = page.locator(f'tr[data-entity-id="{entity_id}"]')
    expect(deleted_row).to_contain_text("Ada King")
    deleted_row.get_by_role("link", name="Ada King").click()
    expect(page.locator(".deleted-banner")).to_contain_text("This entity was deleted")
    page.get_by_role("button", name="Restore").click()
    expect(page).to_have_url(re.compile(rf"/ui/entities/{entity_id}\?notice=restored$"))
    expect(page.get_by_role("status")).to_have_text("Entity restored.")
    expect(page.locator(".deleted-banner")).to_have_count(0)
    expect(page.get_by_role("link", name="Edit")).to_be_visible()

    # Back in the active list.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Entities").click()
    expect(page).to_have_url(re.compile(r"/ui/entities$"))
    expect(page.locator(f'tr[data-entity-id="{entity_id}"]')).to_contain_text("Ada King")

    # Gallery view: a card with the initial as placeholder (no thumbnail yet).
    loaded(page)
    page.evaluate("window.__marker = 3")
    page.get_by_role("group", name="View").get_by_role("link", name="Gallery").click()
    expect(page).to_have_url(re.compile(r"[?&]view=gallery(&|$)"))
    card = page.locator(f'.gallery a.item[data-entity-id="{entity_id}"]')
    expect(card.locator(".name")).to_have_text("Ada King")
    expect(card.locator(".thumb span")).to_have_text("A")
    expect(card.locator(".thumb img")).to_have_count(0)
    expect(card.locator(".tag")).to_have_text(["math", "poet"])
    assert page.evaluate("window.__marker") == 3, "switching view reloaded the page"

    # Sign out; the UI asks to sign in again.
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/ui/login$"))
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.goto(base + "/ui/entities")
    expect(page).to_have_url(re.compile(r"/ui/login\?next=%2Fui%2Fentities$"))
    expect(page.get_by_label("Install token")).to_be_visible()

    assert js_errors == []
    assert external_requests == [], f"the UI tried to load from outside: {external_requests}"


@pytest.mark.parametrize("viewport", [PHONE], ids=["phone"])
def test_phone_width_has_no_horizontal_scroll(page: Page, live_server: tuple[str, str],
                                              external_requests: list[str]) -> None:
    base, token = live_server
    sign_in(page, base, token)
    expect(page.get_by_role("heading", name="Entities", exact=True)).to_be_visible()

    entity_id = create_entity(
        page, "Grace Brewster Murray Hopper", aliases="Amazing Grace, Grandma COBOL",
        tags="navy, compilers, cobol, computing-pioneer",
        fields='born: 1906\nnote: "a long value that should wrap rather than widen the page"')
    expect(page.locator("#tab-panel")).to_contain_text("Grandma COBOL")
    assert_no_horizontal_scroll(page)

    nav = page.get_by_role("navigation", name="Main")
    entities_link = nav.get_by_role("link", name="Entities")
    expect(entities_link).to_be_in_viewport()
    expect(page.get_by_role("button", name="Sign out")).to_be_in_viewport()
    entities_link.click()
    expect(page).to_have_url(re.compile(r"/ui/entities$"))
    expect(page.locator(f'tr[data-entity-id="{entity_id}"]')).to_be_visible()
    expect(page.get_by_label("Search")).to_be_in_viewport()
    assert_no_horizontal_scroll(page)  # waits for load: htmx is wired up for the next click

    page.get_by_role("group", name="View").get_by_role("link", name="Gallery").click()
    expect(page.locator(f'.gallery a.item[data-entity-id="{entity_id}"]')).to_be_visible()
    assert_no_horizontal_scroll(page)

    # The nav still works at this width: to System and back.
    nav.get_by_role("link", name="System").click()
    expect(page.get_by_role("heading", name="System", exact=True)).to_be_visible()
    nav.get_by_role("link", name="Entities").click()
    expect(page.get_by_role("heading", name="Entities", exact=True)).to_be_visible()

    assert external_requests == [], f"the UI tried to load from outside: {external_requests}"

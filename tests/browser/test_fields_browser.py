"""Field definitions in a real browser: define them on the Fields page, create an entity with
the typed inputs (an inline error first), filter the entity list by a range, delete one."""

from __future__ import annotations

import re
import secrets

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.browser.test_entities_browser import loaded, sign_in

pytestmark = pytest.mark.browser


def define_on_page(page: Page, key: str, field_type: str, label: str, **inputs: str) -> None:
    """Fill the New field form (label -> text) and submit it."""
    page.get_by_role("link", name="New field").click()
    expect(page.get_by_role("heading", name="New field")).to_be_visible()
    loaded(page)
    page.get_by_label("Key", exact=True).fill(key)
    page.get_by_label("Type", exact=True).select_option(field_type)
    page.get_by_label("Label", exact=True).fill(label)
    for name, text in inputs.items():
        page.get_by_label(name, exact=True).fill(text)
    page.get_by_role("button", name="Define field").click()


def test_define_fields_create_with_typed_inputs_and_filter_by_range(
        page: Page, live_server: tuple[str, str], api: httpx.Client,
        external_requests: list[str]) -> None:
    base, token = live_server
    js_errors: list[str] = []
    page.on("pageerror", lambda exc: js_errors.append(str(exc)))
    # the server is shared by the browser tests: keys of this run only, deleted at the end
    run = secrets.token_hex(3)
    born, eyes, height = f"bt_born_{run}", f"bt_eyes_{run}", f"bt_height_{run}"
    try:
        sign_in(page, base, token)
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Fields").click()
        expect(page).to_have_url(re.compile(r"/ui/admin/fields$"))
        expect(page.get_by_role("heading", name="Fields", exact=True)).to_be_visible()

        define_on_page(page, born, "date", f"Born {run}", Min="1800-01-01")
        expect(page.locator("p.flash")).to_contain_text("Field defined.")
        expect(page.locator(f'tr[data-field="{born}"]')).to_contain_text("≥ 1800-01-01")
        define_on_page(page, eyes, "enum", f"Eyes {run}", Options="blue\ngreen")
        expect(page.locator(f'tr[data-field="{eyes}"]')).to_contain_text(
            "options: blue, green")

        # a bound that is no number is refused next to its input, what was typed kept
        define_on_page(page, height, "int", f"Height {run}", Min="fifty")
        expect(page.locator("#min-error")).to_contain_text("for int fields this is a number")
        expect(page.get_by_label("Key", exact=True)).to_have_value(height)
        page.get_by_label("Min", exact=True).fill("50")
        page.get_by_role("button", name="Define field").click()
        expect(page.locator(f'tr[data-field="{height}"]')).to_contain_text("≥ 50")

        # a new entity gets a typed input per field
        page.get_by_role("navigation", name="Main").get_by_role("link",
                                                                name="Entities").click()
        page.get_by_role("link", name="New entity").click()
        expect(page.get_by_role("heading", name="New entity")).to_be_visible()
        loaded(page)
        expect(page.get_by_label(f"Born {run}")).to_have_attribute("type", "date")
        expect(page.get_by_label(f"Height {run}")).to_have_attribute("type", "number")
        page.get_by_label("Name").fill(f"Ada {run}")
        page.get_by_label(f"Born {run}").fill("1815-12-10")
        page.get_by_label(f"Eyes {run}").select_option("green")
        page.get_by_label(f"Height {run}").fill("20")
        page.get_by_role("button", name="Create").click()
        # below the minimum: an inline error at the input, the rest as typed
        expect(page.locator(f"#f-{height}-error")).to_contain_text("must be at least 50")
        expect(page.get_by_label(f"Height {run}")).to_have_attribute("aria-invalid", "true")
        expect(page.get_by_label(f"Born {run}")).to_have_value("1815-12-10")
        expect(page).to_have_url(re.compile(r"/ui/entities/new$"))
        page.get_by_label(f"Height {run}").fill("170")
        page.get_by_role("button", name="Create").click()
        expect(page).to_have_url(re.compile(r"/ui/entities/[0-9a-f]{64}\?notice=created$"))
        fields = page.locator("#entity-fields")
        expect(fields).to_contain_text("1815-12-10")
        expect(fields).to_contain_text("green")
        expect(fields).to_contain_text("170")
        entity_id = re.search(r"/ui/entities/([0-9a-f]{64})", page.url).group(1)
        stored = api.get(f"/v1/entities/{entity_id}").json()["fields"]
        assert stored == {born: "1815-12-10", eyes: "green", height: 170}

        for name, day in ((f"Grace {run}", "1906-12-09"), (f"Alan {run}", "1950-06-23")):
            r = api.post("/v1/entities", json={"display_name": name, "fields": {born: day}})
            assert r.status_code == 201, r.text

        # filter the list by a date range: the inputs become date pickers for the field
        page.goto(base + "/ui/entities")
        loaded(page)
        page.evaluate("window.__marker = 1")
        page.get_by_label("Field", exact=True).select_option(born)
        expect(page.get_by_label("From", exact=True)).to_have_attribute("type", "date")
        page.get_by_label("From", exact=True).fill("1800-01-01")
        page.get_by_label("To", exact=True).fill("1920-01-01")
        page.get_by_label("To", exact=True).press("Tab")
        expect(page).to_have_url(re.compile(
            rf"field\.{born}\.gte=1800-01-01&field\.{born}\.lte=1920-01-01$"))
        rows = page.locator("tr[data-entity-id] td:first-child")
        expect(rows).to_have_count(2)
        assert sorted(rows.all_inner_texts()) == [f"Ada {run}", f"Grace {run}"]
        expect(page.locator("#field-filters")).to_contain_text(f"Born {run} ≤ 1920-01-01")
        assert page.evaluate("window.__marker") == 1, "filtering reloaded the page"

        # removing the upper bound lets the third one in
        page.get_by_role("link", name=f"Remove filter Born {run} ≤ 1920-01-01").click()
        expect(rows).to_have_count(3)
        expect(page.get_by_label("From", exact=True)).to_have_value("1800-01-01")
        expect(page.get_by_label("To", exact=True)).to_have_value("")

        # delete a field on the Fields page, after confirming
        page.goto(base + "/ui/admin/fields")
        page.get_by_role("link", name=f"Delete {eyes}").click()
        expect(page.get_by_role("heading", name=re.compile(r"Delete the field"))).to_be_visible()
        page.get_by_role("button", name="Delete").click()
        expect(page.locator("p.flash")).to_contain_text("Field deleted")
        expect(page.locator(f'tr[data-field="{eyes}"]')).to_have_count(0)
        assert api.get(f"/v1/admin/field-defs/{eyes}").status_code == 404
        assert js_errors == []
    finally:
        for key in (born, eyes, height):
            api.delete(f"/v1/admin/field-defs/{key}")

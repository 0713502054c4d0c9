"""The Events page: the event log in the UI, newest first, filtered, paged, live."""

import re

from ui.pages import EVENTS_PAGE


async def ui_session(anon, settings):
    r = await anon.post("/ui/login", data={"token": settings.install_token, "next": "/ui/"})
    assert r.status_code == 303
    return anon


def event_ids(html):
    return [int(i) for i in re.findall(r'data-event-id="(\d+)"', html)]


async def test_events_page_lists_the_log_newest_first_and_filters_by_type(client, anon,
                                                                         settings):
    ada = (await client.post("/v1/entities", json={"display_name": "Ada"})).json()
    await client.patch(f"/v1/entities/{ada['entity_id']}", json={"tags": ["x"]})
    await client.delete(f"/v1/entities/{ada['entity_id']}")
    ui = await ui_session(anon, settings)

    page = (await ui.get("/ui/events")).text
    log = (await client.get("/v1/events")).json()["items"]
    assert event_ids(page) == [e["id"] for e in reversed(log)]
    assert "entity.deleted" in page and f"/ui/entities/{ada['entity_id']}" in page
    assert 'href="/ui/events"' in page  # in the navigation

    only = (await ui.get("/ui/events", params={"type": "entity.updated"})).text
    assert event_ids(only) == [e["id"] for e in log if e["type"] == "entity.updated"]
    none = (await ui.get("/ui/events", params={"type": "job."})).text
    assert event_ids(none) == [] and "No events of this type yet" in none


async def test_the_poller_brings_only_newer_events_and_moves_on(client, anon, settings):
    ui = await ui_session(anon, settings)
    await client.post("/v1/entities", json={"display_name": "First"})
    page = (await ui.get("/ui/events")).text
    newest = max(event_ids(page))
    poll = re.search(r'hx-get="(/ui/events/newer\?after=\d+[^"]*)"', page).group(1)
    assert f"after={newest}" in poll

    nothing = (await ui.get(poll.replace("&amp;", "&"), headers={"HX-Request": "true"})).text
    assert event_ids(nothing) == [] and "<html" not in nothing
    assert f"after={newest}" in nothing  # the next poller waits at the same place

    second = (await client.post("/v1/entities", json={"display_name": "Second"})).json()
    fresh = (await ui.get(poll.replace("&amp;", "&"), headers={"HX-Request": "true"})).text
    assert event_ids(fresh) == [newest + 1] and second["entity_id"] in fresh
    assert f"after={newest + 1}" in fresh


async def test_older_events_are_paged(client, anon, settings):
    for i in range(EVENTS_PAGE + 5):
        await client.post("/v1/entities", json={"display_name": f"E{i}"})
    ui = await ui_session(anon, settings)
    first = (await ui.get("/ui/events")).text
    ids = event_ids(first)
    assert len(ids) == EVENTS_PAGE
    older = re.search(r'href="(/ui/events\?type=(?:&amp;|&)before=\d+)"', first).group(1)
    rest = event_ids((await ui.get(older.replace("&amp;", "&"))).text)
    assert rest == list(range(min(ids) - 1, 0, -1))


async def test_events_page_needs_a_session(anon):
    r = await anon.get("/ui/events")
    assert r.status_code == 303 and r.headers["location"].startswith("/ui/login")


async def test_ids_that_are_no_event_ids_show_the_newest_events(client, anon, settings):
    await client.post("/v1/entities", json={"display_name": "Ada"})
    ui = await ui_session(anon, settings)
    newest = event_ids((await ui.get("/ui/events")).text)
    for junk in (str(2**64), "9" * 40, "-1", "x"):
        assert event_ids((await ui.get("/ui/events", params={"before": junk})).text) == newest
        poll = await ui.get("/ui/events/newer", params={"after": junk},
                            headers={"HX-Request": "true"})
        assert poll.status_code == 200 and event_ids(poll.text) == []

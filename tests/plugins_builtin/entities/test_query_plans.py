"""The store picks a query shape by data size: every shape must give the same answers."""

import pytest

from plugins_builtin.entities import SERVICE, field_filters


async def create(client, name, tags=()):
    r = await client.post("/v1/entities", json={"display_name": name, "tags": list(tags)})
    assert r.status_code == 201, r.text
    return r.json()


async def walk(client, params):
    """Every item of every page, following next_cursor."""
    seen, cursor = [], None
    while True:
        query = {**params, "limit": 50} | ({"cursor": cursor} if cursor else {})
        page = (await client.get("/v1/entities", params=query)).json()
        seen += [e["entity_id"] for e in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            return seen


@pytest.mark.parametrize("order", ["asc", "desc"])
@pytest.mark.parametrize("sort_by", ["created_at", "updated_at", "display_name"])
async def test_a_common_tag_filter_pages_through_exactly_its_entities(client, sort_by, order):
    # 260 tagged entities exceed the store's "common tag" bound (at least 200), so the
    # filter is checked row by row; 30 carry a second, rare tag that drives its own lookup
    tagged, both = [], []
    for i in range(260):
        extra = ["rare"] if i % 9 == 0 else []
        e = await create(client, f"Person {i % 40}", ["Common", *extra])
        tagged.append(e["entity_id"])
        if extra:
            both.append(e["entity_id"])
    for i in range(40):
        await create(client, f"Other {i}", ["unrelated"])
    params = {"sort_by": sort_by, "sort_order": order}
    everyone = await walk(client, params)
    common = await walk(client, {**params, "tag": "common"})
    assert common == [eid for eid in everyone if eid in set(tagged)]
    combined = await walk(client, {**params, "tag": ["common", "RARE"]})
    assert combined == [eid for eid in everyone if eid in set(both)]


@pytest.mark.parametrize("order", ["asc", "desc"])
async def test_search_in_creation_order_pages_through_every_match(client, order):
    made = [await create(client, f"Match {i}" if i % 3 else f"Nope {i}") for i in range(150)]
    matches = [e["entity_id"] for e in made if e["display_name"].startswith("Match")]
    found = await walk(client, {"q": "mat", "sort_by": "created_at", "sort_order": order})
    assert found == (matches if order == "asc" else matches[::-1])


async def test_search_skips_deleted_entities_without_ending_the_page_early(client):
    made = [await create(client, f"Needle {i}") for i in range(60)]
    for e in made[10:50]:
        assert (await client.delete(f"/v1/entities/{e['entity_id']}")).status_code == 204
    found = await walk(client, {"q": "needle"})
    assert found == [e["entity_id"] for e in (made[:10] + made[50:])][::-1]


async def test_tag_suggestions_count_live_entities(client, app):
    store = app.state.kernel.services[SERVICE]
    a = [await create(client, f"A{i}", ["Alpha", "beta"]) for i in range(3)]
    await create(client, "B", ["Beta"])
    assert dict(await store.all_tags()) == {"alpha": 3, "beta": 4}

    await client.delete(f"/v1/entities/{a[0]['entity_id']}")
    assert dict(await store.all_tags()) == {"alpha": 2, "beta": 3}

    await client.post(f"/v1/entities/{a[0]['entity_id']}/restore")
    await client.patch(f"/v1/entities/{a[1]['entity_id']}", json={"tags": ["gamma"]})
    assert dict(await store.all_tags()) == {"alpha": 2, "beta": 3, "gamma": 1}
    # a deleted entity's tags are not suggested, and a failed edit changes no count
    await client.delete(f"/v1/entities/{a[1]['entity_id']}")
    r = await client.patch(f"/v1/entities/{a[1]['entity_id']}", json={"tags": ["delta"]})
    assert r.status_code == 404
    assert dict(await store.all_tags()) == {"alpha": 2, "beta": 3}


@pytest.mark.parametrize("order", ["asc", "desc"])
@pytest.mark.parametrize("sort_by", ["updated_at", "display_name"])
async def test_a_broad_search_sorted_otherwise_pages_through_every_match(client, sort_by,
                                                                        order):
    # 230 matches exceed the "common" bound (at least 200): the sort index is walked and
    # each row checked against the matches; "zebra" (10 matches) drives its own lookup
    for i in range(250):
        await create(client, f"Match {i % 37}" + (" zebra" if i % 25 == 0 else "")
                     if i % 12 else f"Nope {i}")
    params = {"sort_by": sort_by, "sort_order": order}
    everyone = await walk(client, params)
    names = {e["entity_id"]: e["display_name"] for e in
             (await client.get("/v1/entities", params={"limit": 500})).json()["items"]}
    for q, word in (("mat", "Match"), ("zebr", "zebra")):
        found = await walk(client, {**params, "q": q})
        assert found == [eid for eid in everyone if word in names[eid]]
    assert len(await walk(client, {**params, "q": "mat"})) > 200


@pytest.mark.parametrize("plan", ["lookup", "collect", "walk"])
@pytest.mark.parametrize("order", ["asc", "desc"])
@pytest.mark.parametrize("sort_by", ["created_at", "updated_at", "display_name"])
async def test_a_field_range_pages_through_exactly_its_entities_in_every_plan(
        client, monkeypatch, sort_by, order, plan):
    # the plan follows the library's size (tested below); here each is forced in turn, and
    # must page through the same entities: skipping deleted ones, across names repeated
    monkeypatch.setattr(field_filters, "choose_plan", lambda *args, **kw: plan)
    r = await client.post("/v1/admin/field-defs", json={"field_key": "n", "field_type": "int"})
    assert r.status_code == 201, r.text
    made = []
    for i in range(270):
        r = await client.post("/v1/entities", json={"display_name": f"P {i % 31}",
                                                    "fields": {"n": i}})
        made.append(r.json()["entity_id"])
    for eid in made[40:270:7]:
        assert (await client.delete(f"/v1/entities/{eid}")).status_code == 204
    live = [eid for i, eid in enumerate(made) if not (i >= 40 and (i - 40) % 7 == 0)]
    params = {"sort_by": sort_by, "sort_order": order}
    everyone = await walk(client, params)
    assert sorted(everyone) == sorted(live)
    broad = await walk(client, {**params, "field.n.gte": 30})
    assert broad == [eid for eid in everyone if eid in set(made[30:])]
    narrow = await walk(client, {**params, "field.n.gte": 100, "field.n.lt": 124})
    assert narrow == [eid for eid in everyone if eid in set(made[100:124])]
    assert len(narrow) == 24 - 3
    both = await walk(client, {**params, "field.n.gte": 100, "field.n": 111})
    assert both == [made[111]]


@pytest.mark.parametrize("sort_by", ["created_at", "updated_at", "display_name"])
def test_the_plan_follows_how_many_entities_a_filter_matches(sort_by):
    """At 1M entities: a few matches are looked up, most are walked past, and the name and
    update-time sorts collect the matches in between; a bigger page walks further."""
    million = 1_000_000
    assert field_filters.choose_plan(sort_by, 50, million) == "lookup"
    assert field_filters.choose_plan(sort_by, 100_000, million) == "walk"
    middle = {field_filters.choose_plan(sort_by, m, million) for m in range(1_000, 30_000, 500)}
    assert middle == ({"lookup", "walk"} if sort_by == "created_at"
                      else {"lookup", "collect", "walk"})
    bound = field_filters.walk_bound(sort_by, million)
    assert field_filters.choose_plan(sort_by, bound, million) == "walk"
    assert field_filters.choose_plan(sort_by, bound // 4, million) != "walk"
    assert field_filters.choose_plan(sort_by, bound, million, rows_wanted=501) != "walk"
    assert field_filters.choose_plan(sort_by, 5_000, 0) == "walk"  # an empty library

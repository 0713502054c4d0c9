"""An entity's relationships are read through the per-direction indexes, never by scanning
every relationship (the list must stay fast for an entity with thousands)."""

from __future__ import annotations

from tests.plugins_builtin.relationships.conftest import entity, relate


async def test_listing_an_entity_searches_both_direction_indexes(app, client):
    hub = await entity(client, "Hub")
    for i in range(3):
        await relate(client, hub, "friend_of", await entity(client, f"P{i}"))
    kernel = app.state.kernel
    store = kernel.services["relationships.store"]
    db = kernel.db
    seen: list[tuple[str, list]] = []
    real = db.fetchall

    async def recording(sql, params=()):
        if "FROM relationships" in sql:  # not the event delivery's reads meanwhile
            seen.append((sql, list(params)))
        return await real(sql, params)

    db.fetchall = recording
    try:
        for type_filter in (None, "friend_of"):
            page = await store.list(hub, limit=2, type=type_filter)
            await store.list(hub, limit=2, cursor=page.next_cursor, type=type_filter)
    finally:
        db.fetchall = real
    assert len(seen) == 4
    for sql, params in seen:
        plan = " | ".join(r[3] for r in await db.fetchall("EXPLAIN QUERY PLAN " + sql, params))
        assert "USING INDEX relationships_from (from_entity_id=? AND seq>?)" in plan, plan
        assert "USING INDEX relationships_to (to_entity_id=? AND seq>?)" in plan, plan
        assert "SCAN relationships" not in plan, plan

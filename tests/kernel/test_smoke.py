async def test_ping_needs_token(client, anon):
    assert (await client.get("/v1/ping")).json()["ok"] is True
    r = await anon.get("/v1/ping")
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "unauthorized"

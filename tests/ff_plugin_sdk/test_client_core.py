"""The SDK client against a real Core in process: typed answers, typed errors carrying the
envelope, paging, every resource group, the environment defaults and retries."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from ff_plugin_sdk import (
    Conflict,
    FaceForgeError,
    NotFound,
    PreconditionFailed,
    Unauthorized,
    ValidationFailed,
)
from ff_plugin_sdk.client import AsyncFaceForge, Entity, Job, Page, Retry, Unreachable
from ff_plugin_sdk.errors import error_from_envelope
from tests.ff_plugin_sdk.sdk_core import flaky, in_process
from tests.plugins import job_types


async def test_ping_and_system(ff: AsyncFaceForge) -> None:
    ping = await ff.system.ping()
    assert ping.ok and ping.version
    info = await ff.system.info()
    assert "entities" in {p["name"] for p in info["plugins"]}
    assert all({"plugin", "state", "message"} <= set(s) for s in await ff.system.status())
    assert (await ff.system.health())["status"] == "ok"
    assert (await ff.raw.call("GET", "/v1/ping"))["ok"] is True
    assert "<html" in (await ff.raw.call("GET", "/docs")).lower()  # not JSON: the text


async def test_entities_round_trip_with_versions_and_soft_delete(ff: AsyncFaceForge) -> None:
    ada = await ff.entities.create("Ada Lovelace", aliases=["Ada"], tags=["math"],
                                   fields={"born": 1815}, external_ids={"wiki": "Q7259"})
    assert isinstance(ada, Entity) and ada.version == 1 and ada.tags == ["math"]
    same = await ff.entities.get(ada.entity_id)
    assert same == ada
    renamed = await ff.entities.update(ada.entity_id, display_name="Augusta Ada King",
                                       fields={"born": None, "died": 1852},
                                       if_version=ada.version)
    assert renamed.display_name == "Augusta Ada King"
    assert renamed.fields == {"died": 1852} and renamed.version == 2
    with pytest.raises(PreconditionFailed) as stale:
        await ff.entities.update(ada.entity_id, tags=["x"], if_version=ada.version)
    assert stale.value.status == 412 and "version 2" in stale.value.message

    await ff.entities.delete(ada.entity_id)
    with pytest.raises(NotFound) as gone:
        await ff.entities.get(ada.entity_id)
    assert gone.value.code == "entity_not_found" and gone.value.status == 404
    assert (await ff.entities.get(ada.entity_id, include_deleted=True)).deleted_at
    back = await ff.entities.restore(ada.entity_id)
    assert back.deleted_at is None
    found = await ff.entities.list(external_id="wiki:Q7259")
    assert [e.entity_id for e in found.items] == [ada.entity_id]


async def test_validation_errors_carry_the_envelope(ff: AsyncFaceForge) -> None:
    with pytest.raises(ValidationFailed) as bad:
        await ff.entities.create("   ")
    error = bad.value
    assert error.status == 422 and error.code == "validation_error"
    assert error.details == [{"path": "$.display_name", "message": "must not be blank"}]
    with pytest.raises(ValidationFailed) as typed:
        await ff.raw.call("POST", "/v1/entities", json={"display_name": 5})
    assert typed.value.details[0]["path"] == "$.display_name"


async def test_every_walks_all_pages_and_filters(ff: AsyncFaceForge) -> None:
    made = [await ff.entities.create(f"person {n:02d}", tags=["even" if n % 2 else "odd"])
            for n in range(23)]
    page = await ff.entities.list(limit=5, include_total=True)
    assert isinstance(page, Page) and len(page.items) == 5 and page.next_cursor
    assert page.total == 23
    names = [e.display_name async for e in ff.entities.every(sort_by="display_name",
                                                              sort_order="asc", page_size=4)]
    assert names == sorted(e.display_name for e in made)
    evens = [e async for e in ff.entities.every(tags=["even"], page_size=3)]
    assert len(evens) == 11 and all(e.tags == ["even"] for e in evens)
    assert [e async for e in ff.entities.every(q="nobody")] == []


async def test_bulk_upsert_reports_each_item(ff: AsyncFaceForge) -> None:
    result = await ff.entities.bulk_upsert([
        {"display_name": "One", "external_ids": {"src": "1"}},
        {"display_name": ""},
        {"external_ids": {"src": "1"}, "tags": ["again"]}])
    statuses = [r.status for r in result.results]
    assert statuses == ["created", "error", "updated"]
    assert result.results[1].error is not None and result.results[1].error.code
    again = await ff.entities.bulk_upsert([{"display_name": "One", "external_ids": {"src": "1"},
                                           "tags": ["again"]}])
    assert again.results[0].status == "unchanged"


async def test_descriptors_and_field_definitions(ff: AsyncFaceForge) -> None:
    person = await ff.entities.create("Grace Hopper")
    height = await ff.fields.create("height_cm", "int", scope="descriptor", min=30, max=300,
                                    label="Height")
    assert height.field_type == "int" and height.min == 30
    assert "height_cm" in [d.field_key for d in (await ff.fields.list()).items]
    fact = await ff.descriptors.create(person.entity_id, "height_cm", 170,
                                       valid_from="1930-01-01", source="a book")
    assert fact.value == 170 and fact.valid_from == "1930-01-01"
    with pytest.raises(ValidationFailed):
        await ff.descriptors.create(person.entity_id, "height_cm", 1000)
    changed = await ff.descriptors.update(fact.descriptor_id, value=171, source=None)
    assert changed.value == 171 and changed.source is None
    listed = [d async for d in ff.descriptors.every(person.entity_id)]
    assert [d.descriptor_id for d in listed] == [fact.descriptor_id]
    await ff.descriptors.delete(fact.descriptor_id)
    with pytest.raises(NotFound):
        await ff.descriptors.get(fact.descriptor_id)
    relabelled = await ff.fields.update("height_cm", label="Height (cm)")
    assert relabelled.label == "Height (cm)"
    await ff.fields.delete("height_cm")
    with pytest.raises(NotFound):
        await ff.fields.get("height_cm")


async def test_relationships_and_their_types(ff: AsyncFaceForge) -> None:
    parent = await ff.entities.create("Coach")
    child = await ff.entities.create("Player")
    kind = await ff.relation_types.create("coach_of", inverse="coached_by")
    assert kind.inverse == "coached_by"
    assert (await ff.relation_types.create("coach_of", inverse="coached_by")).name == "coach_of"
    link = await ff.relationships.create(parent.entity_id, child.entity_id, "coach_of",
                                         fields={"since": 2001})
    seen = [r async for r in ff.relationships.every(child.entity_id)]
    assert len(seen) == 1 and seen[0].direction == "incoming"
    assert seen[0].label == "coached_by" and seen[0].other_display_name == "Coach"
    moved = await ff.relationships.update(link.relationship_id, valid_from="2001-05-01")
    assert moved.valid_from == "2001-05-01" and moved.fields == {"since": 2001}
    assert (await ff.relationships.get(link.relationship_id)).type == "coach_of"
    await ff.relationships.delete(link.relationship_id)
    assert (await ff.relationships.list(child.entity_id)).items == []
    names = [t.name for t in (await ff.relation_types.list("coach")).items]
    assert names == ["coach_of", "coached_by"]


async def test_jobs_queue_list_cancel_retry(ff: AsyncFaceForge) -> None:
    job = await ff.jobs.create(job_types.REMOTE, {"n": 1}, priority=5)
    assert isinstance(job, Job) and job.status == "queued" and job.priority == 5
    assert (await ff.jobs.set_priority(job.job_id, 7)).priority == 7
    listed = await ff.jobs.list(status=["queued"], types=[job_types.REMOTE])
    assert [j.job_id for j in listed.items] == [job.job_id]
    cancelled = await ff.jobs.cancel(job.job_id)
    assert cancelled.status == "cancelled"
    with pytest.raises(Conflict) as ended:
        await ff.jobs.cancel(job.job_id)
    assert ended.value.code == "job_finished"
    again = await ff.jobs.retry(job.job_id)
    assert again.status == "queued"
    lines = await ff.jobs.log(job.job_id)
    assert any("cancelled" in line.message for line in lines.items)
    assert [j.job_id async for j in ff.jobs.every(types=[job_types.REMOTE])] == [job.job_id]
    with pytest.raises(ValidationFailed) as unknown:
        await ff.jobs.create("nope.nothing")
    assert "unknown job type" in unknown.value.message


async def test_runner_protocol_by_hand(ff: AsyncFaceForge) -> None:
    job = await ff.jobs.create(job_types.REMOTE)
    assert await ff.jobs.claim([job_types.REMOTE_OTHER], "me") is None
    claimed = await ff.jobs.claim([job_types.REMOTE], "me", lease_seconds=30)
    assert claimed is not None and claimed.job_id == job.job_id
    assert claimed.status == "running" and claimed.runner_id == "me"
    lease = await ff.jobs.heartbeat(job.job_id, "me", lease_seconds=30)
    assert lease.status == "running" and not lease.cancel_requested
    await ff.jobs.progress(job.job_id, "me", percent=40, step="half", counters={"files": 2})
    await ff.jobs.append_log(job.job_id, "me", [{"message": "hello", "fields": {"k": 1}}])
    with pytest.raises(Conflict) as other:
        await ff.jobs.heartbeat(job.job_id, "someone-else")
    assert other.value.code == "job_not_held"
    done = await ff.jobs.complete(job.job_id, "me", {"ok": True})
    assert done.status == "succeeded" and done.result == {"ok": True}
    assert done.progress.step == "half"
    assert "hello" in [line.message for line in (await ff.jobs.log(job.job_id)).items]
    assert (await ff.jobs.wait(job.job_id)).status == "succeeded"


async def test_plugins_enable_configure_disable(make_app: Any, settings: Any) -> None:
    folder = settings.paths.plugins_dir / "painter"
    folder.mkdir(parents=True)
    (folder / "plugin.json").write_text(json.dumps({
        "id": "painter", "name": "Painter", "version": "1.0.0", "core_compat": ">=0.1",
        "permissions": ["entities:read", "network"], "job_types": ["painter.paint"],
        "config_schema": {"type": "object", "properties": {"colour": {"type": "string"}},
                          "additionalProperties": False}}), "utf-8")
    async with in_process(make_app(), settings.install_token) as ff:
        assert "painter" in [p.id for p in await ff.plugins.list()]
        painter = await ff.plugins.get("painter")
        assert painter.state == "disabled" and painter.kind == "out_of_process"
        with pytest.raises(Conflict) as consent:
            await ff.plugins.enable("painter")
        assert consent.value.code == "consent_required"
        enabled = await ff.plugins.enable("painter",
                                          accept_permissions=["entities:read", "network"])
        assert enabled.state == "enabled"
        assert await ff.plugins.put_config("painter", {"colour": "red"}) == {"colour": "red"}
        assert await ff.plugins.get_config("painter") == {"colour": "red"}
        with pytest.raises(ValidationFailed) as refused:
            await ff.plugins.put_config("painter", {"colour": 3})
        assert refused.value.details
        assert (await ff.plugins.disable("painter")).state == "disabled"
        assert "painter" in [p.id for p in await ff.plugins.rescan()]
        with pytest.raises(NotFound):
            await ff.plugins.get("nobody")


async def test_a_bad_token_is_unauthorized(core: Any) -> None:
    async with in_process(core, "not-the-token") as ff:
        with pytest.raises(Unauthorized) as refused:
            await ff.entities.list()
    assert refused.value.status == 401


async def test_url_and_token_come_from_the_environment(core: Any, settings: Any,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACEFORGE_URL", "http://from-env.test/")
    monkeypatch.setenv("FACEFORGE_TOKEN", settings.install_token)
    async with in_process(core, None) as ff:
        assert ff.url == "http://from-env.test"
        assert (await ff.system.ping()).ok
    monkeypatch.delenv("FACEFORGE_URL")
    with pytest.raises(ValueError, match="FACEFORGE_URL"):
        AsyncFaceForge()


def test_answers_from_a_newer_core_still_decode() -> None:
    newer = {"entity_id": "e" * 64, "display_name": "X", "version": 3,
             "shiny_new_field": {"a": 1}}
    entity = msgspec.json.decode(msgspec.json.encode(newer), type=Entity)
    assert entity.display_name == "X" and entity.version == 3 and entity.tags == []


def test_envelopes_map_to_the_typed_errors() -> None:
    error = error_from_envelope(409, {"error": {"code": "job_not_held", "message": "no",
                                                "details": [{"x": 1}]}})
    assert isinstance(error, Conflict)
    assert (error.code, error.message, error.details, error.status) == (
        "job_not_held", "no", [{"x": 1}], 409)
    proxy = error_from_envelope(502, "<html>Bad gateway</html>\nmore")
    assert type(proxy) is FaceForgeError and proxy.status == 502
    assert proxy.code == "http_502" and proxy.message == "<html>Bad gateway</html>"


@pytest.mark.parametrize("fail", ["refused", "dropped", "503"])
async def test_reads_are_retried_after_transient_failures(core: Any, settings: Any,
                                                          fail: str) -> None:
    transport = flaky(core, 2, fail)
    async with in_process(core, settings.install_token, transport=transport,
                          retries=Retry(retries=2, backoff=0.001)) as ff:
        assert (await ff.system.ping()).ok
    assert transport.seen == ["GET /v1/ping"] * 3


async def test_retries_give_up_with_a_typed_error(core: Any, settings: Any) -> None:
    async with in_process(core, settings.install_token, transport=flaky(core, 5, "refused"),
                          retries=Retry(retries=1, backoff=0.001)) as ff:
        with pytest.raises(Unreachable) as down:
            await ff.system.ping()
    assert down.value.status == 503 and down.value.code == "core_unreachable"
    async with in_process(core, settings.install_token, transport=flaky(core, 5, "503"),
                          retries=Retry(retries=1, backoff=0.001)) as ff:
        with pytest.raises(FaceForgeError) as busy:
            await ff.system.ping()
    assert busy.value.status == 503 and busy.value.code == "busy"


async def test_a_post_that_may_have_arrived_is_not_sent_again(core: Any,
                                                              settings: Any) -> None:
    dropped = flaky(core, 1, "dropped")
    async with in_process(core, settings.install_token, transport=dropped,
                          retries=Retry(retries=3, backoff=0.001)) as ff:
        with pytest.raises(Unreachable):
            await ff.entities.create("Only once")
        assert [e.display_name async for e in ff.entities.every()] == ["Only once"]
    assert dropped.seen.count("POST /v1/entities") == 1
    refused = flaky(core, 1, "refused")  # never left: safe to send again
    async with in_process(core, settings.install_token, transport=refused,
                          retries=Retry(retries=3, backoff=0.001)) as ff:
        await ff.entities.create("Sent twice, made once")
    assert refused.seen.count("POST /v1/entities") == 2
    busy = flaky(core, 1, "503")
    async with in_process(core, settings.install_token, transport=busy,
                          retries=Retry(retries=3, backoff=0.001)) as ff:
        with pytest.raises(FaceForgeError) as answered:
            await ff.entities.create("Not retried after a 503")
    assert answered.value.status == 503 and busy.seen.count("POST /v1/entities") == 1

"""A runner's long-poll claim ends when Core begins to stop (no job handed to a runner that
is going away, no shutdown held for the poll's whole wait)."""

from __future__ import annotations

import asyncio

from tests.kernel.conftest import kernel_of


async def test_a_waiting_claim_answers_204_when_core_begins_to_stop(make_app, settings) -> None:
    import job_types  # tests/plugins: an out-of-process type without handler

    from tests.conftest import running

    app = make_app(extra_plugins=[("job_types", job_types)])
    async with running(app, settings.install_token) as client:
        kind = next(name for name, t in kernel_of(app).job_types.items() if not t.in_process)
        hub = kernel_of(app).services["jobs.queue"].hub
        waiting, wait = asyncio.Event(), hub.wait

        async def spied(*args):
            waiting.set()
            return await wait(*args)

        hub.wait = spied
        claim = asyncio.create_task(client.post("/v1/jobs/claim", json={
            "types": [kind], "runner_id": "r1", "wait": 30}))
        await asyncio.wait_for(waiting.wait(), timeout=10)  # no job: the claim waits
        kernel_of(app).stopping.set()
        response = await asyncio.wait_for(claim, timeout=10)
        assert response.status_code == 204

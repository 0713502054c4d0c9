"""The ``lora.train`` job: an entity's images in, a ``model.lora`` asset out."""

from __future__ import annotations

import asyncio
import hashlib
import tempfile
from pathlib import Path
from typing import Any

import msgspec

from ff_plugin_sdk.jobs import JobFailed
from ff_plugin_sdk.runner import JobContext, Runner
from lora_trainer.safetensors_file import write_lora

PLUGIN_ID = "lora"
DEFAULTS = {"base_model": "sdxl", "rank": 4, "steps": 20, "learning_rate": 0.0001,
            "trigger_word": "", "save_fp16": False, "tags": [], "network": {}}


class TrainInput(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    entity_id: str


runner = Runner(concurrency=1)


@runner.job("lora.train", input=TrainInput)
async def train(ctx: JobContext) -> dict[str, Any]:
    client = ctx.client
    entity = await client.entities.get(ctx.input.entity_id)
    settings = {**DEFAULTS, **await client.plugins.get_config(PLUGIN_ID)}
    network = {"alpha": 1.0, "dropout": 0.0, **settings["network"]}
    images = [a async for a in client.assets.every(entity_id=entity.entity_id, mime="image/")]
    if not images:
        raise JobFailed(f"{entity.display_name} has no images to train on")
    await ctx.log("training a LoRA", entity=entity.display_name, images=len(images),
                  base_model=settings["base_model"], rank=settings["rank"])

    with tempfile.TemporaryDirectory(prefix="lora-") as work:
        folder = Path(work)
        seed = hashlib.sha256()
        for number, image in enumerate(images, 1):
            ctx.check_cancelled()
            local = await client.assets.download(image.asset_id, folder / image.asset_id)
            seed.update(bytes.fromhex(image.asset_id))
            await ctx.progress(30 * number / len(images),
                               step=f"downloaded image {number} of {len(images)}")
            await ctx.log("downloaded", asset_id=image.asset_id, bytes=local.stat().st_size)

        steps = int(settings["steps"])
        for step in range(1, steps + 1):
            ctx.check_cancelled()
            await asyncio.sleep(0)  # fast-test: a real trainer runs a training step here
            if step % max(1, steps // 5) == 0 or step == steps:
                await ctx.progress(30 + 60 * step / steps, step=f"step {step} of {steps}")
                await ctx.log("training step", step=step, loss=round(1 / (1 + step), 4))

        name = f"{_slug(entity.display_name)}-{settings['base_model']}-lora.safetensors"
        path = folder / name
        inputs = [image.asset_id for image in images]
        metadata = {"ss_network_module": "networks.lora", "ss_base_model_version":
                    settings["base_model"], "ss_network_dim": str(settings["rank"]),
                    "ss_network_alpha": str(network["alpha"]),
                    "ss_learning_rate": str(settings["learning_rate"]),
                    "ss_max_train_steps": str(steps), "ss_num_train_images": str(len(images)),
                    "ss_tag_frequency": msgspec.json.encode(
                        {settings["trigger_word"] or "subject": len(images)}).decode(),
                    "faceforge_entity_id": entity.entity_id,
                    "faceforge_inputs": ",".join(inputs),
                    "faceforge_tags": ",".join(settings["tags"]),
                    "faceforge_mode": "fast-test"}
        await asyncio.to_thread(write_lora, path, seed=seed.digest(), rank=int(settings["rank"]),
                                alpha=float(network["alpha"]), fp16=bool(settings["save_fp16"]),
                                metadata=metadata)
        ctx.check_cancelled()
        await ctx.progress(95, step="uploading the LoRA")
        asset = await client.assets.upload(
            path, kind="model.lora", entity_ids=[entity.entity_id], role="lora",
            derived_from=inputs[0], meta={"base_model": settings["base_model"],
                                          "trigger_word": settings["trigger_word"]})
    await client.assets.update(asset.asset_id, plugin_data={PLUGIN_ID: {
        "inputs": inputs, "job_id": ctx.job_id, "mode": "fast-test",
        "rank": settings["rank"], "steps": steps}})
    ctx.add_output(asset.asset_id)
    await ctx.log("uploaded", asset_id=asset.asset_id, filename=name)
    return {"asset_id": asset.asset_id, "filename": name, "inputs": inputs}


def _slug(text: str) -> str:
    kept = "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")
    return "-".join(part for part in kept.split("-") if part) or "entity"

"""The thumbnails phase: both thumbnails (1024 px JPEG + 256 px WebP) of 12-megapixel JPEGs.

    python -m tests.bench.thumbnails [--quick]

Runs the plugin's own code in-process: :func:`plugins_builtin.thumbnails.render.render`
(reduced-size decode, EXIF orientation, resize, encode) through the plugin's
:class:`~plugins_builtin.thumbnails.worker.Worker` with its default concurrency (2 tasks,
decoding in threads under a ``CapacityLimiter`` of 2), exactly as uploads are worked
through; reading the source from storage and ingesting the results are not included (they
are the assets phase's business).  Also one image at a time on one core, for the cost of one
image.  Target (issue 8): >= 25 images/s for both sizes.

The JPEGs (4000x3000, gradients under photographic noise, quality 90: ~3 MB each, like a
phone photo) are made once before timing; each is a different crop of one larger picture so
no two files are alike.  Prints one JSON document.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import logging
import os
import statistics
import sys
import time
from typing import Any

import anyio
import anyio.to_thread
from PIL import Image

from plugins_builtin.thumbnails.render import render
from plugins_builtin.thumbnails.settings import Settings
from plugins_builtin.thumbnails.worker import Worker
from tests.bench.load import wait_quiet

WIDTH, HEIGHT = 4000, 3000
TARGET_IMAGES_PER_S = 25.0


def progress(message: str) -> None:
    print(f"[bench thumbnails] {message}", file=sys.stderr, flush=True)


def make_jpegs(n: int) -> list[bytes]:
    """``n`` different 12-megapixel JPEGs at quality 90 (not timed)."""
    margin = 64
    size = (WIDTH + margin * n, HEIGHT + margin)
    channels = [Image.linear_gradient("L").resize(size),
                Image.radial_gradient("L").resize(size),
                Image.linear_gradient("L").rotate(90).resize(size)]
    picture = Image.merge("RGB", [Image.blend(c, Image.effect_noise(size, 30 + 5 * i), 0.2)
                                  for i, c in enumerate(channels)])
    out = []
    for i in range(n):
        crop = picture.crop((i * margin, i % margin, i * margin + WIDTH, i % margin + HEIGHT))
        buffer = io.BytesIO()
        crop.save(buffer, "JPEG", quality=90)
        out.append(buffer.getvalue())
    return out


def check(jpeg: bytes) -> None:
    """The bench measures real work: both thumbnails, the right sizes."""
    sizes = [Image.open(io.BytesIO(t.data)).size for t in render(jpeg)]
    if sizes != [(1024, 768), (256, 192)]:
        raise RuntimeError(f"unexpected thumbnail sizes {sizes}")


def one_core(jpegs: list[bytes]) -> list[float]:
    """Milliseconds per image, one after another on this thread."""
    times = []
    for data in jpegs:
        started = time.perf_counter()
        render(data)
        times.append((time.perf_counter() - started) * 1000)
    return times


async def through_the_worker(jpegs: list[bytes], concurrency: int) -> float:
    """Seconds for the plugin's worker to make every image's thumbnails."""
    limiter = anyio.CapacityLimiter(concurrency)
    made: list[int] = []

    async def job(key: str) -> None:
        thumbnails = await anyio.to_thread.run_sync(render, jpegs[int(key)], limiter=limiter)
        made.append(len(thumbnails))

    worker = Worker(job, concurrency, logging.getLogger("bench.thumbnails"))
    worker.start()
    started = time.perf_counter()
    for i in range(len(jpegs)):
        worker.submit(str(i))
    await worker.join()
    seconds = time.perf_counter() - started
    await worker.stop(0)
    if made != [2] * len(jpegs):
        raise RuntimeError(f"the worker made {made}, expected 2 thumbnails per image")
    return seconds


def run(quick: bool, quiet_wait: float = 30.0) -> dict[str, Any]:
    """Measure; returns the phase's JSON document (figures, target, pass flag)."""
    n, rounds = (16, 2) if quick else (40, 3)
    concurrency = Settings().concurrency
    progress(f"making {n} {WIDTH}x{HEIGHT} JPEGs (not timed)")
    jpegs = make_jpegs(n)
    check(jpegs[0])
    render(jpegs[0])  # warm-up: codecs' first-use set-up

    quiet = wait_quiet(quiet_wait) if quiet_wait > 0 else None
    per_image = one_core(jpegs)
    cpu0, wall = time.process_time(), []
    for _ in range(rounds):
        wall.append(asyncio.run(through_the_worker(jpegs, concurrency)))
    cpu = time.process_time() - cpu0
    best = min(wall)
    images_per_s = n / best
    out = {
        "method": f"plugins_builtin.thumbnails render() through its Worker "
                  f"(concurrency {concurrency}, anyio threads), {n} different JPEGs, "
                  f"best of {rounds} rounds; then one image at a time on one core",
        "image": {"width": WIDTH, "height": HEIGHT, "quality": 90,
                  "mean_bytes": round(statistics.mean(len(j) for j in jpegs))},
        "concurrency": concurrency,
        "cores": os.cpu_count(),
        "images_per_s": round(images_per_s, 1),
        "images_per_s_rounds": [round(n / w, 1) for w in wall],
        "ms_per_image_one_core": {"median": round(statistics.median(per_image), 1),
                                  "min": round(min(per_image), 1),
                                  "max": round(max(per_image), 1)},
        "cpu_cores_used": round(cpu / sum(wall), 2),
        "quiet_before": quiet,
        "targets": {"images_per_s": TARGET_IMAGES_PER_S},
        "pass": {"images_per_s": images_per_s >= TARGET_IMAGES_PER_S},
    }
    progress(f"{out['images_per_s']} images/s (target >= {TARGET_IMAGES_PER_S}); "
             f"{out['ms_per_image_one_core']['median']} ms per image on one core")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.thumbnails",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer images and rounds")
    parser.add_argument("--quiet-wait", type=float, default=30.0, metavar="S",
                        help="wait up to S seconds for other programs to leave the CPU idle")
    args = parser.parse_args(argv)
    print(json.dumps(run(args.quick, args.quiet_wait), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

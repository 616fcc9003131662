"""Benchmark 10 (issue 15): submit -> start latency of no-op tasks while images are resized.

``image-resize`` does its CPU-bound part (decode, Lanczos resize, encode) in the CPU pool
(``adapters/stoppable_pool.py``, ``TASKQ_CPU_WORKERS`` processes), never on the event
loop: a no-op task submitted while images are being resized should start about as soon
as on an idle server. One ``taskq serve`` (memory backend, shipped ``TASKQ_CPU_WORKERS``
unless told); generated JPEG photos are uploaded with ``POST /blobs``; then, in
alternating rounds, no-op tasks are trickled in (one every ``--interval`` s, as in
benchmark 5) with the server otherwise idle, and while ``--inflight`` streams each keep
one ``image-resize`` task running (submit, ``GET /tasks/{id}?wait=``, submit the next).
``--inflight`` stays under ``WORKER_COUNT``: a resize always has a worker slot, so a
no-op never queues behind one and what is measured is the event loop, not the queue.

    python -m benchmarks.resize_latency --tasks 300 --interval 0.02
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import random
import tempfile
import time
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from PIL import Image, ImageDraw

from benchmarks.common import cpu_seconds, serve
from benchmarks.latency import start_latencies, summary, trickle
from benchmarks.loadgen import Connection
from bootstrap.settings import default_cpu_workers

WORKER_COUNT = 10
TARGET_RATIO = 2.0
"""Issue 15: the no-op tasks' p99 with resizes running stays within 2× of without."""


@dataclass(frozen=True)
class ResizeSizes:
    tasks: int
    """No-op tasks per phase (split over the rounds)."""
    interval: float = 0.02
    rounds: int = 2
    image_side: int = 2400
    """Width of the generated photos (4:3); the resize is to 800 × 600."""
    images: int = 3
    inflight: int = 0
    """Resize streams; 0: one more than the CPU pool's processes, so the pool never idles."""
    cpu_workers: int = 0
    """``TASKQ_CPU_WORKERS``; 0: the shipped default (one fewer than the cores)."""


def photo(side: int, seed: int) -> bytes:
    """A JPEG that costs what a photo costs to decode: gradients, shapes and grain."""
    width, height = side, side * 3 // 4
    rng = random.Random(seed)
    image = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    draw = ImageDraw.Draw(image)
    for _ in range(60):
        x, y = rng.randrange(width), rng.randrange(height)
        r = rng.randrange(side // 40, side // 6)
        colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)
    grain = Image.effect_noise((width, height), 40).convert("RGB")
    image = Image.blend(image, grain, 0.25)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def upload(url: str, count: int, side: int) -> list[str]:
    keys = []
    with httpx.Client(base_url=url, timeout=30) as client:
        for n in range(count):
            answer = client.post(
                "/blobs",
                params={"name": f"photo{n}.jpg"},
                content=photo(side, n),
                headers={"Content-Type": "image/jpeg"},
            )
            if answer.status_code != 201:
                raise RuntimeError(f"POST /blobs answered {answer.status_code}: {answer.text}")
            keys.append(answer.json()["key"])
    return keys


def _instant(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


@dataclass
class ResizeStream:
    """Streams each keeping one resize task running until ``stop`` is set."""

    url: str
    keys: list[str]
    streams: int
    done: int = 0
    busy_seconds: float = 0.0
    """Sum of the resizes' ``finished_at - started_at``."""

    async def run(self, stop: asyncio.Event) -> None:
        await asyncio.gather(*(self._one(n, stop) for n in range(self.streams)))

    async def _one(self, n: int, stop: asyncio.Event) -> None:
        conn = await Connection.open(self.url)
        try:
            while not stop.is_set():
                payload = {"image": self.keys[n % len(self.keys)], "width": 800, "height": 600}
                body = {"type": "image-resize", "payload": payload}
                status, answer = await conn.request("POST", "/tasks", body)
                if status != 201:
                    raise RuntimeError(f"POST /tasks answered {status}: {answer}")
                status, task = await conn.request("GET", f"/tasks/{answer['id']}?wait=30")
                if status != 200 or task["status"] != "COMPLETED":
                    raise RuntimeError(f"a resize did not complete: {status} {task}")
                self.done += 1
                self.busy_seconds += _instant(task["finished_at"]) - _instant(task["started_at"])
        finally:
            await conn.close()


async def phase(
    url: str, sizes: ResizeSizes, tasks: int, resizes: ResizeStream | None
) -> list[float]:
    """Latencies of ``tasks`` no-op tasks, with ``resizes`` running beside them if given."""
    if resizes is None:
        return start_latencies(await trickle(url, tasks, sizes.interval))
    stop = asyncio.Event()
    running = asyncio.create_task(resizes.run(stop))
    await asyncio.sleep(0.5)  # the pool busy before the first no-op is measured
    if running.done():
        running.result()  # a stream that failed at once says why
    try:
        return start_latencies(await trickle(url, tasks, sizes.interval))
    finally:
        stop.set()
        await running


def run(sizes: ResizeSizes, log_dir: Path) -> dict[str, Any]:
    cpu_workers = sizes.cpu_workers or default_cpu_workers()
    inflight = sizes.inflight or cpu_workers + 1
    if inflight >= WORKER_COUNT:
        raise ValueError(f"inflight must be under WORKER_COUNT ({WORKER_COUNT})")
    env = {
        "TASKQ_BACKEND": "memory",
        "WORKER_COUNT": str(WORKER_COUNT),
        "TASKQ_CPU_WORKERS": str(cpu_workers),
    }
    latencies: dict[str, list[float]] = {"idle": [], "resizing": []}
    cpu: dict[str, float] = {"idle": 0.0, "resizing": 0.0}
    wall: dict[str, float] = {"idle": 0.0, "resizing": 0.0}
    per_round = max(1, sizes.tasks // sizes.rounds)
    with serve(log_dir, env) as server:
        keys = upload(server.url, sizes.images, sizes.image_side)
        resizes = ResizeStream(server.url, keys, inflight)
        started = time.perf_counter()
        for n in range(sizes.rounds):  # alternated, so the machine's drift falls on both
            for name in ("idle", "resizing")[:: 1 if n % 2 == 0 else -1]:
                cpu_before, wall_before = cpu_seconds(server.pid), time.perf_counter()
                stream = resizes if name == "resizing" else None
                latencies[name] += asyncio.run(phase(server.url, sizes, per_round, stream))
                cpu[name] += cpu_seconds(server.pid) - cpu_before
                wall[name] += time.perf_counter() - wall_before
        elapsed = time.perf_counter() - started
    idle, busy = summary(latencies["idle"]), summary(latencies["resizing"])
    resizing_wall = wall["resizing"]
    return {
        "backend": "memory",
        "tasks_per_phase": len(latencies["idle"]),
        "interval_s": sizes.interval,
        "rounds": sizes.rounds,
        "cpu_workers": cpu_workers,
        "worker_count": WORKER_COUNT,
        "inflight_resizes": inflight,
        "image": f"{sizes.image_side}x{sizes.image_side * 3 // 4} JPEG -> 800x600",
        "resizes_completed": resizes.done,
        "resizes_per_second": round(resizes.done / resizing_wall, 1),
        "resize_mean_ms": round(resizes.busy_seconds / max(1, resizes.done) * 1000, 1),
        "idle": idle,
        "resizing": busy,
        "p50_ratio": round(busy["p50_ms"] / idle["p50_ms"], 2),
        "p99_ratio": round(busy["p99_ms"] / idle["p99_ms"], 2),
        "server_cpu_share_idle": round(cpu["idle"] / wall["idle"], 2),
        "server_cpu_share_resizing": round(cpu["resizing"] / resizing_wall, 2),
        "seconds": round(elapsed, 1),
    }


def run_both(sizes: ResizeSizes, log_dir: Path) -> dict[str, Any]:
    """The shipped ``TASKQ_CPU_WORKERS`` (one fewer than the cores: a core left to the
    event loop), then every core, one after the other on the same machine."""
    cores = os.cpu_count() or 1
    shipped = default_cpu_workers()
    counts = [sizes.cpu_workers] if sizes.cpu_workers else [shipped] + [cores] * (cores != shipped)
    return {"runs": [run(replace(sizes, cpu_workers=n), log_dir) for n in counts]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=300, help="no-op tasks per phase")
    parser.add_argument("--interval", type=float, default=0.02)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--image-side", type=int, default=2400)
    parser.add_argument("--inflight", type=int, default=0, help="0: CPU workers + 1")
    parser.add_argument(
        "--cpu-workers", type=int, default=0, help="0: the core count, then one fewer"
    )
    args = parser.parse_args()
    sizes = ResizeSizes(
        args.tasks, args.interval, args.rounds, args.image_side, 3, args.inflight, args.cpu_workers
    )
    with tempfile.TemporaryDirectory(prefix="taskq-bench-") as directory:
        print(json.dumps(run_both(sizes, Path(directory)), indent=2))


if __name__ == "__main__":
    main()

"""Several real processes share one SQLite queue file: no lease is ever held twice."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from adapters.clock import SystemClock
from adapters.sqlite import SqliteDatabase, SqliteTaskQueue

REPO_ROOT = Path(__file__).resolve().parents[2]
MESSAGES = 200
PROCESSES = 4
LEASE = 600  # seconds: far longer than the test, so any second delivery is a violation

CLAIMER = """
import asyncio, json, random, sys, time

from adapters.clock import SystemClock
from adapters.sqlite import SqliteDatabase, SqliteTaskQueue


async def main(path: str, out: str, start_at: float, lease: int) -> None:
    clock = SystemClock()
    db = SqliteDatabase(path, clock=clock)
    queue = SqliteTaskQueue(db, clock, max_receive_count=5)
    time.sleep(max(0.0, start_at - time.time()))
    got = []
    empty = 0
    batch_no = 0
    while empty < 2:
        batch = await queue.receive(
            max_messages=random.randint(1, 10), visibility_timeout=lease, wait_seconds=0.3
        )
        if not batch:
            empty += 1
            continue
        empty = 0
        batch_no += 1
        got.extend(
            {"message_id": d.message_id, "receipt": d.receipt, "task_id": d.task_id,
             "receive_count": d.receive_count, "at": time.time()}
            for d in batch
        )
        if batch_no % 2 == 0:
            await queue.ack_batch(batch)  # mix deletes into the write traffic
        await asyncio.sleep(random.uniform(0, 0.004))
    db.close()
    with open(out, "w") as f:
        json.dump(got, f)


asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])))
"""


async def test_processes_never_hold_the_same_lease(tmp_path: Path) -> None:
    path = str(tmp_path / "shared" / "queue.db")
    clock = SystemClock()
    db = SqliteDatabase(path, clock=clock)
    queue = SqliteTaskQueue(db, clock, max_receive_count=5)
    task_ids = [f"task-{n:03d}" for n in range(MESSAGES)]
    for start in range(0, MESSAGES, 10):
        await queue.send_batch([(t, 0) for t in task_ids[start : start + 10]])
    assert (await queue.depth()).visible == MESSAGES

    script = tmp_path / "claimer.py"
    script.write_text(CLAIMER)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    start_at = time.time() + 2.0  # every process starts claiming at the same moment
    outputs = [tmp_path / f"claimed-{n}.json" for n in range(PROCESSES)]
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), path, str(out), str(start_at), str(LEASE)],
            env=env,
            cwd=REPO_ROOT,
            stderr=subprocess.PIPE,
            text=True,
        )
        for out in outputs
    ]
    for proc in procs:
        _, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 0, stderr
        assert "database is locked" not in stderr

    per_process = [json.loads(out.read_text()) for out in outputs]
    records = [r for got in per_process for r in got]
    message_ids = [r["message_id"] for r in records]
    duplicates = sorted({m for m in message_ids if message_ids.count(m) > 1})
    assert duplicates == [], f"leased to two receivers at once: {duplicates}"
    assert sorted(r["task_id"] for r in records) == task_ids
    assert all(r["receive_count"] == 1 for r in records)
    assert len({r["receipt"] for r in records}) == MESSAGES
    assert sum(1 for got in per_process if got) >= 2, "the processes did not overlap"

    # What was not acked is still leased, to exactly one receiver each.
    depth = await queue.depth()
    assert depth.visible == 0
    assert depth.delayed == 0
    assert 0 < depth.in_flight < MESSAGES
    db.close()

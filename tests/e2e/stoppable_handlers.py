"""Task types for the stoppable end-to-end test, loaded with ``TASKQ_HANDLERS``: the
same handler, sleeping past its timeout and then writing a file, stoppable or not."""

from __future__ import annotations

import time
from typing import Any

from domain.task_types import task_type


def _sleep_then_write(payload: Any) -> str:
    time.sleep(float(payload["seconds"]))
    with open(payload["path"], "w") as file:
        file.write("written after the sleep")
    return "wrote"


@task_type("late-writer-stoppable", timeout_seconds=0.5, stoppable=True)
def late_writer_stoppable(payload: Any) -> str:
    return _sleep_then_write(payload)


@task_type("late-writer", timeout_seconds=0.5)
def late_writer(payload: Any) -> str:
    return _sleep_then_write(payload)

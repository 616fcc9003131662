"""schemathesis hooks for the CLI fuzz run (``SCHEMATHESIS_HOOKS`` names this file).

``GET /tasks/{id}?wait=N`` holds a valid request up to N seconds (at most 30) when the
task does not finish, and a task of the fuzzed ``taskq api`` never does: a wait the
generator chose is cut to ``SHORT_WAIT`` seconds, still valid, so the run takes minutes,
not hours. Invalid waits (not a number, out of range) are sent as generated.
"""

from __future__ import annotations

from typing import Any

import schemathesis

SHORT_WAIT = 0.05


def _is_valid_wait(value: Any) -> bool:
    try:
        return 0 < float(value) <= 30
    except (TypeError, ValueError):
        return False


@schemathesis.hook
def map_case(context: Any, case: Any) -> Any:
    query = case.query
    if isinstance(query, dict) and _is_valid_wait(query.get("wait")):
        query["wait"] = SHORT_WAIT
    return case

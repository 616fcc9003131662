"""Run inside a private network namespace (``unshare -rn``) by test_docker_command:
start a command as a container would, then ask it over a non-loopback address.

    python -m tests.e2e.container_probe ADDRESS PORT HEALTHCHECK_JSON -- COMMAND...

Prints one JSON object: whether /health answered on ADDRESS, what the compose
healthcheck command returned, the status of an unauthenticated /metrics, the exit
status after SIGTERM (or of an early exit), and the process's output.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import tempfile
import time

import httpx


def probe(address: str, port: int, healthcheck: list[str], command: list[str]) -> dict[str, object]:
    result: dict[str, object] = {"health": None, "healthcheck": None, "unauthenticated": None}
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and process.poll() is None:
                try:
                    result["health"] = httpx.get(f"http://{address}:{port}/health").status_code
                    break
                except httpx.HTTPError:
                    time.sleep(0.1)
            if result["health"] is not None:
                result["healthcheck"] = subprocess.run(healthcheck, timeout=10).returncode
                metrics = httpx.get(f"http://{address}:{port}/metrics")
                result["unauthenticated"] = metrics.status_code
                process.send_signal(signal.SIGTERM)
            result["exit"] = process.wait(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        log.seek(0)
        result["output"] = log.read().decode(errors="replace")
    return result


if __name__ == "__main__":
    split = sys.argv.index("--")
    address, port, healthcheck = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
    print(json.dumps(probe(address, port, healthcheck, sys.argv[split + 1 :])))

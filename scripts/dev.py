"""`make dev`: the AWS path on a machine without Docker.

Starts a local moto endpoint, provisions the queues and table with `taskq init`, and
runs `taskq serve` in aws mode against it until Ctrl-C (or SIGTERM), then stops both.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PORT = int(os.environ.get("TASKQ_DEV_MOTO_PORT", "4566"))


def wait_for(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"the local AWS endpoint did not answer on {url}")


def main() -> int:
    endpoint = f"http://127.0.0.1:{PORT}"
    env = {
        **os.environ,
        "TASKQ_BACKEND": "aws",
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
        "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
        "AWS_REGION": os.environ.get("AWS_REGION", "us-east-1"),
    }
    taskq = [str(Path(sys.executable).with_name("taskq"))]
    moto = subprocess.Popen(
        [sys.executable, "-m", "scripts.local_aws", "--port", str(PORT)], cwd=ROOT
    )
    try:
        wait_for(endpoint + "/moto-api/")
        subprocess.run([*taskq, "init"], env=env, cwd=ROOT, check=True)
        print(f"serving on aws mode against {endpoint}; Ctrl-C to stop", flush=True)
        serve = subprocess.Popen([*taskq, "serve"], env=env, cwd=ROOT)
        signal.signal(signal.SIGTERM, lambda *_: serve.send_signal(signal.SIGTERM))
        try:
            return serve.wait()
        except KeyboardInterrupt:
            serve.send_signal(signal.SIGINT)
            return serve.wait()
    finally:
        moto.terminate()
        moto.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main())

import os
import sys

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))

import socket  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402

import pytest  # noqa: E402
import requests  # noqa: E402

from localcloud import stalls  # noqa: E402

LAUNCHER = os.path.join(os.path.dirname(__file__), "..", "moto_server.py")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def patched_moto():
    """``moto_server.py`` (moto with the local cloud's SQS and DynamoDB patches) on a free
    loopback port, for one test module; yields its endpoint URL."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, LAUNCHER, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = stalls.Deadline(30)
    while True:
        try:
            requests.get(f"{endpoint}/moto-api/data.json", timeout=1)
            break
        except requests.ConnectionError:
            assert proc.poll() is None and not deadline.expired(), "moto_server.py did not start"
            time.sleep(0.1)
    yield endpoint
    proc.kill()
    proc.wait()

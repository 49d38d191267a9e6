"""Run the real server (`twin serve`) in a subprocess for tests that need real workers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from twin.settings import Settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve(settings: Settings, workers: int = 1, **env: str) -> Iterator[str]:
    port = free_port()
    full_env = {
        **os.environ,
        "TWIN_DATABASE_URL": settings.url(),
        "TWIN_DATA_DIR": str(settings.data_dir),
        **env,
    }
    twin = Path(sys.executable).parent / "twin"
    proc = subprocess.Popen(
        [str(twin), "serve", "--port", str(port), "--workers", str(workers)],
        env=full_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            raise RuntimeError(
                "server did not start: " + proc.stderr.read().decode()[-2000:]
                if proc.stderr
                else ""
            )
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()

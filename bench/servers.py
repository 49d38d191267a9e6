"""Start and stop the servers under test (each a uvicorn process, one worker), and
sample their memory."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench import tipg_env

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    name: str
    base: str
    proc: subprocess.Popen  # type: ignore[type-arg]
    log: Path
    peak_rss_mb: float = 0.0
    _sampling: threading.Event = field(default_factory=threading.Event)

    def rss_mb(self) -> float:
        """Resident memory of the server process and its children, in MiB."""
        total = 0
        for pid in [self.proc.pid, *_children(self.proc.pid)]:
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            except OSError:
                pass
        return total / 1024

    @contextmanager
    def sampling(self, every: float = 0.25) -> Iterator[None]:
        """Track the peak RSS while the block runs."""
        stop = threading.Event()

        def loop() -> None:
            while not stop.wait(every):
                self.peak_rss_mb = max(self.peak_rss_mb, self.rss_mb())

        t = threading.Thread(target=loop, daemon=True)
        t.start()
        try:
            yield
        finally:
            stop.set()
            t.join()
            self.peak_rss_mb = max(self.peak_rss_mb, self.rss_mb())


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


@contextmanager
def _run(name: str, cmd: list[str], env: dict[str, str], ready_path: str,
         logdir: Path) -> Iterator[Server]:
    port = int(cmd[cmd.index("--port") + 1])
    log = logdir / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    server = Server(name, base, proc, log)
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited: {log.read_text()[-3000:]}")
            try:
                if httpx.get(base + ready_path, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not start: {log.read_text()[-3000:]}")
            time.sleep(0.3)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def ours(name: str, url: str, logdir: Path, cache_mb: int | None, pool: int) -> Iterator[Server]:
    """Our app (what ``twin serve`` runs), by uvicorn's command line without access log."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWIN_")}
    env.update({"TWIN_DATABASE_URL": url, "TWIN_DB_POOL_SIZE": str(pool)})
    if cache_mb is not None:
        env["TWIN_TILE_CACHE_MB"] = str(cache_mb)
    cmd = [sys.executable, "-m", "uvicorn", "server.app:create_app", "--factory",
           "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
           "--no-access-log", "--log-level", "warning"]
    with _run(name, cmd, env, "/healthz", logdir) as s:
        yield s


@contextmanager
def tipg(libpq_url: str, logdir: Path, tables: list[str], pool: int,
         max_features: int) -> Iterator[Server]:
    port = free_port()
    env = tipg_env.environment(libpq_url, tables, pool, max_features)
    with _run("tipg", tipg_env.command(port), env, "/healthz", logdir) as s:
        yield s

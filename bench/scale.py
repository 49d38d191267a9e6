"""``python -m bench.scale``: one instance against the "past one machine" topology on
the same machine — nginx (Debian's, configured by ``twin deploy nginx``'s template) in
front of two ``twin serve`` instances whose reads go to a streaming replica
(``twin db replica up``) — on the same z14 tiles and bbox items.

Four runs, interleaved A B over rounds, medians:

- cold: every request reaches the database (the app's tile cache off, nginx passing
  through without its cache): 1 instance vs nginx → 2 instances + replica;
- warm: as deployed (the app's tile cache on, nginx caching public answers): 1 instance
  vs nginx (cache) → 2 instances + replica.

On one 2-core machine the cold ratio measures what a second process and a second
PostgreSQL server add when they share the same two cores (little: the work is the
database's); the warm ratio measures the HTTP cache in front. Written to the section
"## Past one machine (bench.scale)" of ``bench/RESULTS.md``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from bench import data, load, servers
from bench.run import OURS_TILE
from server.nginx import write as write_nginx
from twin import localdb
from twin.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "RESULTS.md"
HEADER = "## Past one machine (bench.scale)"
ROUNDS = 3
SECONDS = 8
POOL = 10
METRICS_TOKEN = "bench-scale"
T0 = time.monotonic()


def log(msg: str) -> None:
    print(f"[{time.monotonic() - T0:6.1f}s] {msg}", flush=True)


@contextlib.contextmanager
def ours(name: str, url: str, logdir: Path, cache_mb: int | None,
         replica_url: str | None) -> Iterator[servers.Server]:
    port = servers.free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWIN_")}
    env.update({"TWIN_DATABASE_URL": url, "TWIN_DB_POOL_SIZE": str(POOL)})
    if cache_mb is not None:
        env["TWIN_TILE_CACHE_MB"] = str(cache_mb)
    if replica_url:
        env["TWIN_DATABASE_REPLICA_URLS"] = replica_url
    env["TWIN_METRICS_TOKEN"] = METRICS_TOKEN
    cmd = [sys.executable, "-m", "uvicorn", "server.app:create_app", "--factory",
           "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
           "--no-access-log", "--log-level", "warning"]
    with servers._run(name, cmd, env, "/healthz", logdir) as s:  # noqa: SLF001
        yield s


@contextlib.contextmanager
def nginx(upstreams: list[str], prefix: Path, cache: bool) -> Iterator[str]:
    exe = shutil.which("nginx") or "/usr/sbin/nginx"
    port = servers.free_port()
    conf = write_nginx(upstreams, listen=f"127.0.0.1:{port}", prefix=prefix)
    if not cache:
        text = conf.read_text().replace("proxy_cache twin;", "proxy_cache off;")
        conf.write_text(text)
    proc = subprocess.Popen([exe, "-p", str(prefix), "-c", str(conf), "-g", "daemon off;"],
                            stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            if proc.poll() is not None:
                raise RuntimeError("nginx exited: " + (proc.stderr.read().decode()
                                                        if proc.stderr else ""))
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("nginx did not start")
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def medians(runs: list[load.Stats]) -> dict[str, Any]:
    return {"rps": statistics.median(r.rps for r in runs),
            "p50": statistics.median(r.p50_ms for r in runs),
            "p95": statistics.median(r.p95_ms for r in runs),
            "errors": sum(r.errors for r in runs), "runs": [round(r.rps, 1) for r in runs]}


def interleave(named: dict[str, str], paths: list[str]) -> dict[str, dict[str, Any]]:
    runs: dict[str, list[load.Stats]] = {k: [] for k in named}
    for _ in range(ROUNDS):
        for name, base in named.items():
            runs[name].append(load.run(base, paths, SECONDS))
    return {k: medians(v) for k, v in runs.items()}


def warm(bases: list[str], paths: list[str]) -> None:
    for base in bases:
        with httpx.Client(base_url=base, timeout=60) as c:
            for p in paths:
                c.get(p, headers={"Accept-Encoding": "gzip"})


def main() -> int:  # noqa: PLR0915 - one straight script
    global ROUNDS, SECONDS  # noqa: PLW0603 - --smoke: a quick check of the harness
    smoke = "--smoke" in sys.argv
    if smoke:
        ROUNDS, SECONDS = 1, 2
    started = time.time()
    url, origin = data.choose(log)
    buildings, roads = data.counts(url)
    log(f"database {url.split('@')[-1]}: {buildings} buildings ({origin})")
    data.lowzoom_table(url, log)
    tiles = data.sample_tiles(url, 14, 12)
    boxes = data.sample_bboxes(url, 16)
    paths = [OURS_TILE.format(z=z, x=x, y=y) for z, x, y, _ in tiles]
    paths += [f"/collections/buildings/items?bbox={','.join(f'{v:.5f}' for v in b)}&limit=100"
              for b in boxes]
    base = Settings()
    if not base.managed:
        log("the scale bench makes a replica of the managed cluster; TWIN_DATABASE_URL "
            "points elsewhere")
        return 2
    port = servers.free_port()
    log(f"replica of the managed cluster on port {port} (pg_basebackup)")
    t = time.perf_counter()
    localdb.replica_up(base, port)
    replica_s = time.perf_counter() - t
    from sqlalchemy.engine import make_url

    replica = localdb.replica_url(base, port, make_url(url).database)
    res: dict[str, Any] = {"replica_s": replica_s, "paths": len(paths)}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            tmpd = Path(tmp)
            with ours("one-cold", url, tmpd, 0, None) as one, \
                    ours("a-cold", url, tmpd, 0, replica) as a, \
                    ours("b-cold", url, tmpd, 0, replica) as b, \
                    nginx([a.base[7:], b.base[7:]], tmpd / "nginx-cold", cache=False) as front:
                warm([one.base, front], paths)
                log("cold: 1 instance vs nginx → 2 instances + replica, no caches")
                res["cold"] = interleave({"one": one.base, "scaled": front}, paths)
                res["replica_reads"] = _replica_reads(a.base) + _replica_reads(b.base)
            with ours("one-warm", url, tmpd, None, None) as one, \
                    ours("a-warm", url, tmpd, None, replica) as a, \
                    ours("b-warm", url, tmpd, None, replica) as b, \
                    nginx([a.base[7:], b.base[7:]], tmpd / "nginx-warm", cache=True) as front:
                warm([one.base, front], paths)
                log("warm: 1 instance (tile cache) vs nginx (cache) → 2 instances + replica")
                res["warm"] = interleave({"one": one.base, "scaled": front}, paths)
    finally:
        localdb.replica_down(base, port, remove=True)
    for k in ("cold", "warm"):
        r = res[k]
        log(f"{k}: one {r['one']['rps']:.1f} req/s, scaled {r['scaled']['rps']:.1f} req/s "
            f"(×{r['scaled']['rps'] / r['one']['rps']:.2f})")
    md = render(res, started, buildings, origin)
    if smoke:
        print(md)
    else:
        write_section(md)
        log(f"written to {RESULTS}")
    return 0


def _replica_reads(base: str) -> float:
    """Reads the instance sent to a replica, from its /metrics (0 if not exposed)."""
    try:
        text = httpx.get(base + "/metrics", timeout=10,
                         headers={"Authorization": f"Bearer {METRICS_TOKEN}"}).text
    except httpx.HTTPError:
        return 0.0
    total = 0.0
    for line in text.splitlines():
        if line.startswith("twin_db_reads{") and '"replica-' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def render(res: dict[str, Any], started: float, buildings: int, origin: str) -> str:
    when = dt.datetime.fromtimestamp(started, dt.UTC)
    rows = []
    for k, what in (("cold", "every request reaches PostgreSQL (tile caches off, nginx "
                             "without cache)"),
                    ("warm", "as deployed (app tile cache; nginx proxy_cache)")):
        o, s = res[k]["one"], res[k]["scaled"]
        rows.append(f"| {k} | {what} | {o['rps']:.1f} ({o['p50']:.0f} / {o['p95']:.0f}) | "
                    f"{s['rps']:.1f} ({s['p50']:.0f} / {s['p95']:.0f}) | "
                    f"×{s['rps'] / o['rps']:.2f} |")
    return "\n".join([
        HEADER, "",
        f"- date: {when:%Y-%m-%d %H:%M UTC}; data: {buildings:,} buildings ({origin}); "
        f"load average at the end {os.getloadavg()[0]:.1f} (2 cores, shared)",
        f"- paths: {res['paths']} (12 z14 building tiles, 16 bbox item pages of 100), "
        f"8 connections (wrk), {ROUNDS} rounds × {SECONDS} s interleaved, medians",
        "- one: `twin serve` (uvicorn, 1 worker) on the primary; scaled: Debian's nginx "
        "(`twin deploy nginx` template, least_conn, keep-alive) → two instances, each "
        f"reading from a streaming replica made by `twin db replica up` ({res['replica_s']:.0f} s "
        "to copy the cluster); the replica served reads: "
        f"{'yes' if res.get('replica_reads') else 'not seen in /metrics'}",
        "",
        "| run | what | one: req/s (p50 / p95 ms) | scaled: req/s (p50 / p95 ms) | ratio |",
        "|---|---|---|---|---|",
        *rows, "",
        "On one 2-core machine the cold ratio is what a second server process and a second "
        "PostgreSQL add while sharing the same two cores — the tile work is the "
        "database's, so little; on separate machines each part brings its own cores. "
        "The warm ratio is the HTTP cache in front.", "",
    ])


def write_section(md: str, header: str = HEADER) -> None:
    """Put ``md`` in place of the section of ``bench/RESULTS.md`` under ``header``."""
    old = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else "# Benchmark results\n"
    lines = old.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.strip() == header), None)
    if start is None:
        new = old.rstrip("\n") + "\n\n" + md
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")),
                   len(lines))
        new = "".join(lines[:start]) + md + ("\n" + "".join(lines[end:]) if end < len(lines)
                                             else "")
    RESULTS.write_text(new, encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())

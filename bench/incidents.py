"""L1 and A2: live incident delivery and nearest hospitals by drive time.

``python -m bench.incidents`` (run by ``make bench``) starts ``twin serve --workers 2``
on the configured database (it needs the ``city`` demo: ``twin demo --scale city``),
then measures

- L1: commit of an incident (``POST /incidents``) → its event at every one of N SSE
  clients on ``/live`` (default 1,000 raw-socket readers, spread over the two workers by
  the kernel); the latency runs from the commit (the timeline row's time) to each
  client's arrival, and is also given from just before the POST is sent;
- A2: ``GET /analysis/nearest?kind=hospital&k=3&mode=drive`` at random points of the
  city, one client, in sequence;

and writes the section "## Incidents and help (L1, A2)" of ``bench/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import random
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

from twin.db import make_engine
from twin.incidents import store
from twin.migrate import upgrade
from twin.settings import Settings
from twin.users import add_user

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "RESULTS.md"
HEADER = "## Incidents and help (L1, A2)"
CITY_BOX = (108.15, 16.00, 108.25, 16.09)  # the dense part of the demo city, lon/lat


def log(msg: str) -> None:
    print(f"[bench.incidents] {msg}", flush=True)


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def start_server(settings: Settings, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "TWIN_DATABASE_URL": settings.url()}
    twin = Path(sys.executable).parent / "twin"
    proc = subprocess.Popen([str(twin), "serve", "--port", str(port), "--workers", "2"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise SystemExit("server did not start")


EVENT = re.compile(rb"id: (\d+)\nevent: incident\n")
HELLO = re.compile(rb"event: hello\ndata: (\{[^\n]*\})")


class SSEReader(asyncio.Protocol):
    """One SSE client on a raw socket: wall-clock arrival time per timeline event id.

    A protocol (a callback per read, no coroutine or stream buffer) that parses only the
    SSE header lines (``id:`` / ``event:``), not the JSON body, so the reader costs little
    next to the server and 1,000 of them fit in one process.
    """

    def __init__(self, request: bytes, on_hello: Any, arrivals: dict[int, list[float]]):
        self.request, self.on_hello, self.arrivals = request, on_hello, arrivals
        self.buf = b""
        self.transport: Any = None  # uvloop's transports are not asyncio.Transport

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        now = time.time()
        buf = self.buf + data
        cut = buf.rfind(b"\n\n")
        if cut < 0:
            self.buf = buf
            return
        done, self.buf = buf[:cut + 2], buf[cut + 2:]
        for m in EVENT.finditer(done):
            self.arrivals.setdefault(int(m.group(1)), []).append(now)
        if b"event: hello" in done:
            for m in HELLO.finditer(done):
                self.on_hello(json.loads(m.group(1)))

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def l1(base: str, headers: dict[str, str], clients: int, rounds: int,
             event_times: Any) -> dict[str, Any]:
    """Every client's arrival time minus the commit time of the event (its timeline row's
    ``at``, which PostgreSQL sets at the start of the committing transaction, so the
    figure is if anything a little long); also from just before the POST, for context."""
    arrivals: dict[int, list[float]] = {}
    ready = 0
    workers: set[int] = set()
    u = httpx.URL(base)
    host, port = u.host, int(u.port or 80)
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    request = (f"GET /live HTTP/1.1\r\nHost: {host}:{port}\r\n"
               f"Accept: text/event-stream\r\n{head}\r\n").encode()

    def on_hello(data: dict[str, Any]) -> None:
        nonlocal ready
        workers.add(data["worker"])
        ready += 1

    loop = asyncio.get_running_loop()
    readers: list[SSEReader] = []
    for i in range(clients):  # connect in small steps: the listen backlog is finite
        _, proto = await loop.create_connection(
            lambda: SSEReader(request, on_hello, arrivals), host, port)
        readers.append(proto)
        if i % 50 == 49:
            await asyncio.sleep(0.05)
    t_wait = time.monotonic()
    while ready < clients and time.monotonic() - t_wait < 120:
        await asyncio.sleep(0.1)
    log(f"L1: {ready} clients connected over {len(workers)} workers")
    posted: dict[int, float] = {}
    complete = 0
    async with httpx.AsyncClient(timeout=30) as poster:
        for i in range(rounds):
            body = {"category": "fire", "title": f"bench {i}", "geometry": {
                "type": "Point", "coordinates": [108.21 + i * 1e-4, 16.06]}}
            t0 = time.time()
            r = await poster.post(base + "/incidents", json=body, headers=headers)
            r.raise_for_status()
            iid = r.json()["id"]
            eid = await asyncio.to_thread(event_times.created_event, iid)
            posted[eid] = t0
            deadline = time.monotonic() + 10
            while len(arrivals.get(eid, [])) < ready and time.monotonic() < deadline:
                await asyncio.sleep(0.005)
            complete += len(arrivals.get(eid, [])) == ready
            await asyncio.sleep(0.3)
    for rd in readers:
        rd.close()
    committed = await asyncio.to_thread(event_times.times, list(posted))
    lat = [(t - committed[e]) * 1000 for e in posted for t in arrivals.get(e, [])]
    from_post = [(t - posted[e]) * 1000 for e in posted for t in arrivals.get(e, [])]
    return {"clients": ready, "workers": len(workers), "rounds": rounds,
            "complete_rounds": complete, "deliveries": len(lat),
            "p50": statistics.median(lat) if lat else float("nan"),
            "p95": pct(lat, 95) if lat else float("nan"),
            "max": max(lat) if lat else float("nan"),
            "post_p50": statistics.median(from_post) if from_post else float("nan"),
            "post_p95": pct(from_post, 95) if from_post else float("nan")}


class EventTimes:
    """The timeline rows of the benchmark's incidents, read from the database."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine

    def created_event(self, incident_id: int) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(text(
                "SELECT min(id) FROM incident_event WHERE incident_id = :i"),
                {"i": incident_id}).scalar_one())

    def times(self, event_ids: list[int]) -> dict[int, float]:
        with self.engine.connect() as conn:
            rows = conn.execute(text(
                "SELECT id, extract(epoch FROM at) FROM incident_event WHERE id = ANY(:e)"),
                {"e": event_ids})
            return {int(r[0]): float(r[1]) for r in rows}


def a2(base: str, points: list[tuple[float, float]]) -> dict[str, Any]:
    times: list[float] = []
    full = 0
    with httpx.Client(timeout=30) as c:
        for i, (lon, lat) in enumerate(points):
            t0 = time.perf_counter()
            r = c.get(f"{base}/analysis/nearest",
                      params={"lon": lon, "lat": lat, "kind": "hospital", "k": 3})
            dt_ms = (time.perf_counter() - t0) * 1000
            r.raise_for_status()
            if i >= 3:  # warm-up
                times.append(dt_ms)
                full += len(r.json()["items"]) == 3
    return {"runs": len(times), "full": full, "p50": statistics.median(times),
            "p95": pct(times, 95)}


def report(l1r: dict[str, Any], a2r: dict[str, Any], counts: dict[str, int]) -> str:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()
    load = os.getloadavg()[0]
    ok1 = l1r["p95"] <= 50 and l1r["complete_rounds"] == l1r["rounds"]
    ok2 = a2r["p95"] <= 100
    return "\n".join([
        HEADER, "",
        f"Written by `python -m bench.incidents` on "
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, commit {commit}, 2 cores; 1-min "
        f"load {load:.1f} at the end (a shared machine). `twin serve --workers 2` on "
        f"127.0.0.1; city demo ({counts['building']:,} buildings, "
        f"{counts['road_segment']:,} road segments, {counts['hospitals']} hospitals).", "",
        "| id | what | p50 ms | p95 ms | target | |",
        "|---|---|---|---|---|---|",
        f"| L1 | incident commit → SSE event, {l1r['clients']} clients over "
        f"{l1r['workers']} workers, {l1r['rounds']} incidents ({l1r['deliveries']:,} "
        f"deliveries; every client got every event in {l1r['complete_rounds']}/"
        f"{l1r['rounds']} rounds; timed from the commit; from before the POST: p50 "
        f"{l1r['post_p50']:.1f}, p95 {l1r['post_p95']:.1f}) | {l1r['p50']:.1f} | "
        f"{l1r['p95']:.1f} | ≤ 50 | {'**met**' if ok1 else '**missed**'} |",
        f"| A2 | nearest 3 hospitals by drive time with routes, from {a2r['runs']} random "
        f"buildings ({a2r['full']} answered with 3 reachable), one client | "
        f"{a2r['p50']:.1f} | {a2r['p95']:.1f} | ≤ 100 | {'**met**' if ok2 else '**missed**'} |",
        "",
        "How L1 is taken: the clients are raw-socket SSE readers in one Python (uvloop) "
        "process that note the wall-clock arrival of each event id; the latency runs from "
        "the event's timeline row (`incident_event.at`, the committing transaction's start, "
        "so a little before the commit itself) to each arrival. Both workers, PostgreSQL "
        "and the 1,000 readers share the machine's 2 cores, so the spread (p95) is mostly "
        "the readers and workers waiting for CPU. Each worker renders an event once, "
        "encodes it once per role and writes it to its ~500 streams from one place: a "
        "write that the connection takes at once needs no task; only a slow reader's "
        "write waits in a task, with that stream's later events queued behind it. Before "
        "this (a task per stream woken per event) runs gave p95 45–58 ms; with 10 clients "
        "p50 is about 12 ms.",
        "",
    ])


def write_section(md: str) -> None:
    old = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else "# Benchmark results\n"
    lines = old.splitlines()
    if HEADER not in lines:
        RESULTS.write_text(old.rstrip("\n") + "\n\n" + md.rstrip("\n") + "\n", encoding="utf-8")
        return
    start = lines.index(HEADER)
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")),
               len(lines))
    tail = ([""] if end < len(lines) else []) + lines[end:]
    RESULTS.write_text("\n".join([*lines[:start], *md.rstrip("\n").splitlines(), *tail])
                       .rstrip("\n") + "\n", encoding="utf-8")


def run_loop(coro: Any) -> Any:
    """uvloop when installed (uvicorn's extra brings it), so the client costs less."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def _buildings(settings: Settings) -> int:
    engine = make_engine(settings, pool_size=1)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM building")).scalar_one())
    finally:
        engine.dispose()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--clients", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--a2-runs", type=int, default=200)
    ap.add_argument("--port", type=int, default=8791)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # 1,000 sockets per side
    settings = Settings()
    upgrade(settings.url())  # the server expects the schema at head
    if _buildings(settings) < 10_000:
        # A2 is on the city network: without the city demo in the configured database
        # (a fresh machine before `make run`), the what-if bench's copy of it
        from bench.flood import DATA_DIR, prepare

        url, spare = prepare()
        spare.dispose()
        settings = Settings(database_url=url, data_dir=DATA_DIR)
        log(f"the configured database has no city demo; using {url.rsplit('/', 1)[-1]}")
    engine = make_engine(settings, pool_size=1)
    with engine.begin() as conn:
        counts = {t: int(conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one())
                  for t in ("building", "road_segment")}
        counts["hospitals"] = int(conn.execute(text(
            "SELECT count(*) FROM facility WHERE kind = 'hospital'")).scalar_one())
        if counts["building"] < 10_000:
            raise SystemExit("run `twin demo --scale city` first (A2 is on the city network)")
        rnd = random.Random(1)
        pts = conn.execute(text(
            "SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_PointOnSurface(geom) AS c FROM building "
            "WHERE geom && ST_MakeEnvelope(:a, :b, :c, :d, 4326)) s"),
            dict(zip("abcd", CITY_BOX, strict=True))).all()
        points = [(float(x), float(y)) for x, y in rnd.sample(pts, min(len(pts),
                                                                         args.a2_runs + 3))]
        name = f"bench-{os.getpid()}"
        add_user(conn, name, "bench-password", "responder")
    proc = start_server(settings, args.port)
    base = f"http://127.0.0.1:{args.port}"
    try:
        tok = httpx.post(base + "/auth/token",
                         data={"username": name, "password": "bench-password"}).json()
        headers = {"Authorization": f"Bearer {tok['access_token']}"}
        log(f"A2: {args.a2_runs} nearest-hospital queries")
        a2r = a2(base, points)
        log(f"A2: p50 {a2r['p50']:.1f} ms, p95 {a2r['p95']:.1f} ms")
        log(f"L1: {args.clients} SSE clients, {args.rounds} incidents")
        l1r = run_loop(l1(base, headers, args.clients, args.rounds, EventTimes(engine)))
        log(f"L1: p50 {l1r['p50']:.1f} ms, p95 {l1r['p95']:.1f} ms")
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        # the timeline is append-only, so bench incidents are closed, not deleted
        with engine.begin() as conn:
            ids = [r[0] for r in conn.execute(text(
                "SELECT id FROM incident WHERE title LIKE 'bench %' AND status <> 'closed'"))]
            for iid in ids:
                store.transition(conn, iid, "closed", actor=name, reason="false_alarm",
                                 note="benchmark incident")
            conn.execute(text("DELETE FROM app_user WHERE username = :u"), {"u": name})
    md = report(l1r, a2r, counts)
    print(md)
    if not args.no_write:
        write_section(md)
        log(f"written to {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

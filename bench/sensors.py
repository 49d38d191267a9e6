"""``python -m bench.sensors``: S1, sensor observations ingested per second.

* HTTP: ``POST /sta/v1.1/CreateObservations`` batches (gateway key) from concurrent
  clients against ``twin serve`` (2 workers), bodies built before the clock starts.
* MQTT: QoS 1, one message per observation, from several gateway processes through the
  project's Mosquitto into the real ``twin ingest mqtt`` process; timed from the first
  publish until the database holds every reading.

Both end with the count in the database equal to the count sent (none lost, none
doubled; a resend changes nothing). Uses its own database (``twin_bench_sensors``,
dropped at the end) and writes the section "## Sensors (S1)" of ``bench/RESULTS.md``.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import multiprocessing as mp
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import create_engine, text

from twin import localdb
from twin.migrate import upgrade
from twin.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "RESULTS.md"
DB = "twin_bench_sensors"
HTTP_TARGET, MQTT_TARGET = 20_000, 5_000
DATASTREAMS = 100
HTTP_BATCH = 5_000  # observations per request: 50 datastreams × 100 readings
HTTP_BATCHES = 80
HTTP_CLIENTS = 4
MQTT_PUBLISHERS = 4
MQTT_PER_PUBLISHER = 25_000
T0 = time.monotonic()


def log(msg: str) -> None:
    print(f"[{time.monotonic() - T0:6.1f}s] {msg}", flush=True)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def setup() -> tuple[Settings, list[int], str]:
    base = Settings()
    if base.managed:
        localdb.init_cluster(base)
        localdb.start(base)
    localdb.drop_database(base, DB)
    localdb.ensure_database(base, DB)
    url = base.url(DB)
    upgrade(url)
    engine = create_engine(url)
    from twin.sensors import gateways, write
    from twin.sensors.values import MEASUREMENT

    with engine.begin() as c:
        sensor = write.create(c, "Sensors", {"name": "bench", "encodingType": "text/html"})
        prop = write.create(c, "ObservedProperties", {"name": "level", "definition": "x"})
        ids, things = [], []
        for k in range(DATASTREAMS):
            tid = write.create(c, "Things", {
                "name": f"bench {k}", "Locations": [{
                    "name": f"p{k}", "encodingType": "application/geo+json",
                    "location": {"type": "Point", "coordinates": [108.1 + k * 0.001, 16.05]}}],
                "Datastreams": [{"name": f"ds {k}", "observationType": MEASUREMENT,
                                 "unitOfMeasurement": {"name": "m", "symbol": "m",
                                                       "definition": "x"},
                                 "Sensor": {"@iot.id": sensor},
                                 "ObservedProperty": {"@iot.id": prop}}]})
            things.append(tid)
            ids.append(c.execute(text("SELECT id FROM datastream WHERE thing_id = :t"),
                                 {"t": tid}).scalar_one())
        _, key = gateways.add(c, "bench")
        gateways.adopt(c, "bench", things)  # its key writes these, over HTTP and MQTT
    engine.dispose()
    return Settings(database_url=url, data_dir=Path(tempfile.mkdtemp(prefix="s1-"))), ids, key


def db_count(url: str, start: dt.datetime, end: dt.datetime) -> int:
    eng = create_engine(url, pool_size=1)
    with eng.connect() as c:
        n = c.execute(text("SELECT count(*) FROM observation WHERE phenomenon_time >= :a "
                           "AND phenomenon_time < :b"), {"a": start, "b": end}).scalar_one()
    eng.dispose()
    return int(n)


# -- HTTP ----------------------------------------------------------------------------------

def _bodies(ids: list[int], start: dt.datetime) -> list[bytes]:
    per = HTTP_BATCH // 50
    out = []
    for b in range(HTTP_BATCHES):
        ds = ids[(b % 2) * 50:(b % 2) * 50 + 50]
        body = [{"Datastream": {"@iot.id": d}, "components": ["phenomenonTime", "result"],
                 "dataArray": [[(start + dt.timedelta(seconds=b * per + r)).isoformat(),
                                round(r * 0.01, 2)] for r in range(per)]} for d in ds]
        out.append(orjson.dumps(body))
    return out


def _post_all(port: int, key: str, bodies: list[bytes], clients: int) -> tuple[float, list[int]]:
    lock = threading.Lock()
    queue = list(range(len(bodies)))
    codes: list[int] = []

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        while True:
            with lock:
                if not queue:
                    break
                i = queue.pop(0)
            conn.request("POST", "/sta/v1.1/CreateObservations", body=bodies[i], headers={
                "Content-Type": "application/json", "X-Api-Key": key})
            r = conn.getresponse()
            r.read()
            with lock:
                codes.append(r.status)
        conn.close()

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    t = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return time.perf_counter() - t, codes


def http_bench(settings: Settings, ids: list[int], key: str) -> dict[str, Any]:
    port = free_port()
    env = {**os.environ, "TWIN_DATABASE_URL": settings.url(),
           "TWIN_DATA_DIR": str(settings.data_dir)}
    twin = Path(sys.executable).parent / "twin"
    proc = subprocess.Popen([str(twin), "serve", "--port", str(port), "--workers", "2"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_http(port)
        start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
        bodies = _bodies(ids, start)
        sent = HTTP_BATCH * HTTP_BATCHES
        end = start + dt.timedelta(seconds=HTTP_BATCHES * (HTTP_BATCH // 50) + 1)
        _post_all(port, key, [_bodies(ids, start - dt.timedelta(days=30))[0]], 1)  # warm-up
        log(f"HTTP: {HTTP_BATCHES} batches of {HTTP_BATCH} from {HTTP_CLIENTS} clients")
        seconds, codes = _post_all(port, key, bodies, HTTP_CLIENTS)
        stored = db_count(settings.url(), start, end)
        _, again = _post_all(port, key, bodies[:4], 2)  # a resend stores nothing new
        after = db_count(settings.url(), start, end)
        rate = sent / seconds
        log(f"HTTP: {rate:,.0f} obs/s; stored {stored} of {sent}; after resend {after}")
        return {"sent": sent, "stored": stored, "after_resend": after, "seconds": seconds,
                "rate": rate, "errors": sum(c != 201 for c in codes + again),
                "ok": stored == sent == after and rate >= HTTP_TARGET}
    finally:
        proc.terminate()
        proc.wait(30)


def _wait_http(port: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/healthz")
            if c.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("server did not start")


# -- MQTT ----------------------------------------------------------------------------------

def _publisher(port: int, k: int, ids: list[int], start: dt.datetime, n: int,
               ready: Any, go: Any, out: Any, key: str) -> None:
    from bench import mqttpub
    from twin.sensors.mqtt import topic_for

    mine = ids[k::MQTT_PUBLISHERS]
    msgs = [(topic_for(mine[i % len(mine)]), orjson.dumps({
        "phenomenonTime": (start + dt.timedelta(seconds=i // len(mine))).isoformat(),
        "result": i % 1000 / 100})) for i in range(n)]
    sock = mqttpub.connect("127.0.0.1", port, f"bench-gateway-{k}", "bench", key)
    ready.set()
    go.wait()
    out.put((k, mqttpub.publish_qos1(sock, msgs)))
    mqttpub.disconnect(sock)


def mqtt_bench(settings: Settings, ids: list[int], key: str) -> dict[str, Any]:
    from twin.sensors.broker import Broker

    port = free_port()
    broker = Broker("127.0.0.1", port, settings.data_dir / "mqtt", persistence=True)
    broker.write_config()
    broker.remember("bench", key)  # the gateway signs in with its name and key
    broker.sync(create_engine(settings.url(), pool_size=1))
    bproc = broker.popen()
    env = {**os.environ, "TWIN_DATABASE_URL": settings.url(), "TWIN_MQTT_URL":
           f"mqtt://127.0.0.1:{port}", "TWIN_DATA_DIR": str(settings.data_dir)}
    ing = subprocess.Popen([sys.executable, "-m", "server.cli_sensors", "ingest", "mqtt",
                            "--client-id", "bench-ingest"], env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
    try:
        _wait_ingester(settings.url(), port, ids[0], key)
        start = dt.datetime(2026, 2, 1, tzinfo=dt.UTC)
        total = MQTT_PUBLISHERS * MQTT_PER_PUBLISHER
        end = start + dt.timedelta(days=1)
        ctx = mp.get_context("fork")
        go, out = ctx.Event(), ctx.Queue()
        readies = [ctx.Event() for _ in range(MQTT_PUBLISHERS)]
        procs = [ctx.Process(target=_publisher, args=(port, k, ids, start, MQTT_PER_PUBLISHER,
                                                      readies[k], go, out, key))
                 for k in range(MQTT_PUBLISHERS)]
        for p in procs:
            p.start()
        for r in readies:
            r.wait(120)
        log(f"MQTT: {MQTT_PUBLISHERS} gateways × {MQTT_PER_PUBLISHER} messages, QoS 1")
        t = time.perf_counter()
        go.set()
        for p in procs:
            p.join(300)
        publish_s = max(out.get(timeout=5)[1] for _ in procs)
        eng = create_engine(settings.url(), pool_size=1)
        stored = 0
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            with eng.connect() as c:
                stored = int(c.execute(text(
                    "SELECT count(*) FROM observation WHERE phenomenon_time >= :a AND "
                    "phenomenon_time < :b"), {"a": start, "b": end}).scalar_one())
            if stored >= total:
                break
            time.sleep(0.1)
        seconds = time.perf_counter() - t
        time.sleep(2)  # late duplicates would show now
        final = db_count(settings.url(), start, end)
        eng.dispose()
        rate = total / seconds
        log(f"MQTT: {rate:,.0f} obs/s (publishers done in {publish_s:.1f}s); stored {final} "
            f"of {total}")
        return {"sent": total, "stored": final, "seconds": seconds, "publish_seconds": publish_s,
                "rate": rate, "ok": final == total and rate >= MQTT_TARGET}
    finally:
        ing.send_signal(signal.SIGTERM)
        try:
            tail = ing.communicate(timeout=60)[0].strip().splitlines()[-1:]
            log(f"ingester: {' '.join(tail)}")
        except subprocess.TimeoutExpired:
            ing.kill()
        bproc.terminate()
        bproc.wait(10)


def _wait_ingester(url: str, port: int, ds: int, key: str) -> None:
    """Publish probe readings until the ingester stores one (it is subscribed then)."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

    from twin.sensors.mqtt import topic_for

    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-probe",
                    protocol=MQTTProtocolVersion.MQTTv5)
    c.username_pw_set("bench", key)
    c.connect("127.0.0.1", port)
    c.loop_start()
    probe = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)
    deadline = time.monotonic() + 60
    k = 0
    while time.monotonic() < deadline:
        c.publish(topic_for(ds), json.dumps({"phenomenonTime": (
            probe + dt.timedelta(seconds=k)).isoformat(), "result": 0}), qos=1)
        k += 1
        time.sleep(0.3)
        if db_count(url, probe, probe + dt.timedelta(days=1)):
            c.disconnect()
            return
    raise RuntimeError("the MQTT ingester did not start")


# -- report ----------------------------------------------------------------------------------

def section(res: dict[str, Any]) -> str:
    h, m = res["http"], res["mqtt"]

    def ok(flag: bool) -> str:
        return "**met**" if flag else "**missed**"

    return "\n".join([
        "## Sensors (S1)",
        "",
        f"Written by `python -m bench.sensors` on {res['date']} ({res['machine']}; 1-min "
        f"load average {res['load'][0]:.1f} at start, {res['load'][1]:.1f} at the end — the "
        "machine is shared and busy neighbours lower these figures). Own database, 100 "
        "datastreams; the count in the database is checked against the count sent.",
        "",
        "| path | sent | stored | seconds | obs/s | target | |",
        "|---|---|---|---|---|---|---|",
        f"| HTTP `CreateObservations`, {HTTP_BATCH:,} per request, {HTTP_CLIENTS} clients, "
        f"`twin serve` 2 workers | {h['sent']:,} | {h['stored']:,} (after a resend: "
        f"{h['after_resend']:,}) | {h['seconds']:.1f} | {h['rate']:,.0f} | ≥ {HTTP_TARGET:,} | "
        f"{ok(h['ok'])} |",
        f"| MQTT QoS 1, one message per observation, {MQTT_PUBLISHERS} gateway processes → "
        f"Mosquitto → `twin ingest mqtt` | {m['sent']:,} | {m['stored']:,} | "
        f"{m['seconds']:.1f} | {m['rate']:,.0f} | ≥ {MQTT_TARGET:,} | {ok(m['ok'])} |",
        "",
        "None lost, none doubled: " + ("yes" if h["stored"] == h["sent"] == h["after_resend"]
                                       and m["stored"] == m["sent"] else "**NO**") + ".",
        "",
    ])


def write_section(text_: str) -> None:
    """Replace (or add) the "## Sensors (S1)" section, leaving other sections alone."""
    old = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else "# Benchmark results\n"
    lines = old.splitlines()
    try:
        i = lines.index("## Sensors (S1)")
        j = next((k for k in range(i + 1, len(lines)) if lines[k].startswith("## ")),
                 len(lines))
        new = lines[:i] + text_.rstrip("\n").splitlines() + [""] + lines[j:]
    except ValueError:
        new = lines + ([""] if lines and lines[-1] else []) + text_.rstrip("\n").splitlines()
    RESULTS.write_text("\n".join(new).rstrip("\n") + "\n", encoding="utf-8")


def main() -> int:
    load0 = os.getloadavg()[0]
    settings, ids, key = setup()
    log(f"database {DB} ready with {len(ids)} datastreams")
    try:
        res = {"http": http_bench(settings, ids, key), "mqtt": mqtt_bench(settings, ids, key),
               "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
               "machine": f"{os.cpu_count()} cores, {platform.system()}",
               "load": (load0, os.getloadavg()[0])}
    finally:
        localdb.drop_database(Settings(), DB)
    write_section(section(res))
    log(f"wrote the S1 section of {RESULTS}")
    return 0 if res["http"]["ok"] and res["mqtt"]["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())

"""``twin simulate sensors``: replay a rain event on the demo network, live.

Every tick (``tick_seconds`` of real time) sends one reading per demo datastream,
stamped with the current time, over HTTP (``CreateObservations`` with a gateway key)
or MQTT (QoS 1, one message per reading, signed in as the gateway: its name and key).
The event advances ``1 / event_ticks`` per tick: rain builds over the city, the rivers
rise past their warning and flood marks (alarms; a flood incident at the towers),
turbidity at the plants climbs, traffic thins out, then everything recedes and the
alarms clear.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, text

from twin.sensors import demo
from twin.sensors.values import iso


@dataclass(frozen=True)
class Feed:
    datastream_id: int
    key: str
    thing: str
    kind: str
    stream: demo.Stream
    flood: float | None  # flood mark (water level), from the rules


def feeds(engine: Engine) -> list[Feed]:
    """The demo network's datastreams (run ``twin sensors demo`` first)."""
    by_name = {s[0]: s for s in demo.SITES}
    out = []
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT d.id, d.properties ->> 'key', t.name, t.kind, (SELECT max(r.threshold) "
            "FROM rule r WHERE r.datastream_id = d.id AND r.kind = 'above' AND "
            "r.opens_incident) FROM datastream d JOIN thing t ON t.id = d.thing_id "
            "WHERE t.properties ->> 'source' = :m ORDER BY d.id"), {"m": demo.MARK})
        for did, key, name, kind, flood in rows:
            site = by_name.get(name)
            stream = next((s for s in site[5] if s.key == key), None) if site else None
            if stream is not None:
                out.append(Feed(did, key, name, kind, stream, flood))
    return out


def _bump(p: float, centre: float, width: float) -> float:
    return math.exp(-((p - centre) / width) ** 2)


def reading(f: Feed, p: float, rng: random.Random, now: dt.datetime) -> float | int | bool:
    """The reading of feed ``f`` at event progress ``p`` (0 → 1; quiet outside)."""
    quiet = demo.value(f.stream, rng, now)
    if not 0 <= p <= 1.2:
        return quiet
    rain = _bump(p, 0.3, 0.15)
    if f.key == "rain":
        return round(48 * rain * rng.uniform(0.7, 1.1), 1)
    if f.key == "level" and f.flood is not None and isinstance(quiet, float):
        # the river follows the rain with a lag and overtops the flood mark at its peak,
        # at any state of the tide
        surge = (f.flood * 1.12 - f.stream.base + demo.TIDE) * _bump(p, 0.55, 0.2)
        return round(quiet + surge, 3)
    if f.key == "turbidity" and isinstance(quiet, float):
        return round(quiet + 9 * _bump(p, 0.5, 0.2), 2)
    if f.key in ("pm25", "pm10") and isinstance(quiet, float):
        return round(quiet * (1 - 0.6 * rain), 1)
    if f.key == "vehicles" and isinstance(quiet, int):
        return int(quiet * (1 - 0.7 * rain))
    return quiet


class HttpSender:
    def __init__(self, base_url: str, api_key: str):
        import httpx

        self.url = base_url.rstrip("/") + "/sta/v1.1/CreateObservations"
        self.client = httpx.Client(headers={"X-Api-Key": api_key}, timeout=30)

    def send(self, batch: list[tuple[int, dt.datetime, Any]]) -> None:
        by_ds: dict[int, list[list[Any]]] = {}
        for did, t, v in batch:
            by_ds.setdefault(did, []).append([iso(t), v])
        body = [{"Datastream": {"@iot.id": d}, "components": ["phenomenonTime", "result"],
                 "dataArray": rows} for d, rows in by_ds.items()]
        r = self.client.post(self.url, json=body)
        if r.status_code != 201:
            raise RuntimeError(f"CreateObservations answered {r.status_code}: {r.text[:300]}")

    def close(self) -> None:
        self.client.close()


class MqttSender:
    def __init__(self, mqtt_url: str, client_id: str = "twin-simulator",
                 username: str | None = None, password: str | None = None):
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

        from twin.sensors.broker import host_port

        host, port = host_port(mqtt_url)
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                  protocol=MQTTProtocolVersion.MQTTv5)
        if username:
            self.client.username_pw_set(username, password)
        import threading

        answered, refused = threading.Event(), []

        def on_connect(c: Any, u: Any, f: Any, reason: Any, p: Any) -> None:
            if reason.is_failure:
                refused.append(reason)
            answered.set()

        self.client.on_connect = on_connect
        self.client.connect(host, port, keepalive=30)
        self.client.loop_start()
        if not answered.wait(15) or refused:
            self.close()
            raise RuntimeError(f"the broker refused the connection: "
                               f"{refused[0] if refused else 'no answer'}")

    def send(self, batch: list[tuple[int, dt.datetime, Any]]) -> None:
        from twin.sensors.mqtt import topic_for

        infos = [self.client.publish(topic_for(did), json.dumps(
            {"phenomenonTime": iso(t), "result": v}), qos=1) for did, t, v in batch]
        for info in infos:
            info.wait_for_publish(30)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def run(
    engine: Engine,
    send: Callable[[list[tuple[int, dt.datetime, Any]]], None],
    *,
    tick_seconds: float = 2.0,
    event_ticks: int = 90,
    duration: float = 300.0,
    seed: int = 7,
    max_ticks: int | None = None,
    say: Callable[[str], None] = print,
) -> int:
    """Send readings until ``duration`` seconds (or ``max_ticks`` ticks) have passed;
    returns how many were sent."""
    fs = feeds(engine)
    if not fs:
        raise RuntimeError("no demo sensors found: run `twin sensors demo` first")
    rng = random.Random(seed)
    start, sent, tick = time.monotonic(), 0, 0
    watch = next((f for f in fs if f.thing == "Tháp báo lũ cầu Rồng"), fs[0])
    while time.monotonic() - start < duration and (max_ticks is None or tick < max_ticks):
        p = tick / event_ticks
        now = dt.datetime.now(dt.UTC)
        batch = [(f.datastream_id, now, reading(f, p, rng, now)) for f in fs]
        send(batch)
        sent += len(batch)
        level = next(v for d, _, v in batch if d == watch.datastream_id)
        rain = max((v for (d, _, v), f in zip(batch, fs, strict=True) if f.key == "rain"),
                   default=0)
        say(f"tick {tick:3d} · event {min(p, 9.99):4.2f} · rain {rain:4.1f} mm/10 min · "
            f"{watch.thing} {level} m · {sent} sent")
        tick += 1
        time.sleep(max(0.0, start + tick * tick_seconds - time.monotonic()))
    return sent

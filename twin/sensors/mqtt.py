"""``twin ingest mqtt``: SensorThings' MQTT extension on Mosquitto.

Signs in as the broker's internal user (``twin.sensors.broker``: gateways may publish only
to their own datastreams' topics) and subscribes (QoS 1, persistent session: fixed client
id, ``clean_start`` false, a week of session expiry) to
``v1.1/Datastreams(<id>)/Observations`` (any id), batches the readings (a flush every
``flush_seconds`` or ``flush_max`` messages), stores them idempotently and acknowledges
each message only after its batch is committed (paho's manual acks). A broker restart or
a lost database therefore loses nothing: unacknowledged messages are delivered again,
and a reading delivered twice is stored once.

As a second gate behind the broker's ACL, a reading is stored only when its datastream's
Thing belongs to an enabled gateway. New observations of public datastreams (also those
that arrived over HTTP, announced on ``twin_sensor``) are published to the same topics
for subscribers, with ``@iot.id``; private readings are never republished. When Things
or Datastreams change (``twin_table``), ``acl_sync`` (the broker's ACL) runs.

The ingester subscribes with MQTT v5 ``no_local`` and ignores payloads carrying
``@iot.id``, so it never re-ingests what it published. It also runs the no-signal sweep
every ``sweep_seconds``.
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError, OperationalError

from twin.bus import Message, Subscription, bus_for
from twin.errors import InputError
from twin.sensors import ingest, mqttwire, payloads, rules
from twin.sensors.broker import host_port

log = logging.getLogger("twin.mqtt")
TOPICS = ("v1.1/+/Observations",)
_DS_TOPIC = re.compile(r"^v1\.1/Datastreams\((\d+)\)/Observations$")


_UTC_Z = orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC


def topic_for(datastream_id: int) -> str:
    return f"v1.1/Datastreams({datastream_id})/Observations"


@dataclass
class Stats:
    received: int = 0
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    flushes: int = 0
    published: int = 0
    connects: int = 0
    last_error: str = ""


_Msg = tuple[int, int, int, str, bytes]  # connection generation, mid, qos, topic, payload


@dataclass
class Ingester:
    engine: Engine
    mqtt_url: str
    client_id: str = "twin-ingest"
    flush_seconds: float = 0.2
    flush_max: int = 2000
    publish: bool = True
    sweep_seconds: float = 30.0
    sta_base: str = "http://127.0.0.1:8000/sta/v1.1"
    username: str | None = None
    password: str | None = None
    acl_sync: Callable[[], object] | None = None
    redis_url: str | None = None  # the notify bus on Redis (twin/bus.py); None: PostgreSQL
    stats: Stats = field(default_factory=Stats)

    def __post_init__(self) -> None:
        self._buf: collections.deque[_Msg] = collections.deque()
        self._topics: dict[str, int | None] = {}
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._subscribed = threading.Event()
        self._gen = 0
        self._published: collections.deque[int] = collections.deque(maxlen=200_000)
        self._published_set: set[int] = set()
        self._threads: list[threading.Thread] = []
        self._bridge: Subscription | None = None
        self.client = self._make_client()

    # -- MQTT ---------------------------------------------------------------------------
    def _make_client(self) -> mqtt.Client:
        c = mqttwire.Client(CallbackAPIVersion.VERSION2, client_id=self.client_id,
                        protocol=MQTTProtocolVersion.MQTTv5, manual_ack=True)
        c.reconnect_delay_set(min_delay=1, max_delay=3)
        if self.username:
            c.username_pw_set(self.username, self.password)
        c.max_queued_messages_set(0)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_message = self._on_message
        c.on_subscribe = lambda *_: self._subscribed.set()
        c.on_raw = self._on_raw
        return c

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                    props: Any) -> None:
        if reason.is_failure:
            log.warning("MQTT connect refused: %s", reason)
            return
        self._gen += 1
        self.stats.connects += 1
        opts = SubscribeOptions(qos=1, noLocal=True)
        client.subscribe([(t, opts) for t in TOPICS])
        self._connected.set()
        log.info("MQTT connected (session present: %s)", getattr(flags, "session_present", "?"))

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                       props: Any) -> None:
        self._connected.clear()
        self._subscribed.clear()
        if not self._stop.is_set():
            log.warning("MQTT disconnected (%s); reconnecting", reason)

    def _on_raw(self, mid: int, qos: int, topic: str, payload: bytes) -> None:
        self._buf.append((self._gen, mid, qos, topic, payload))
        self.stats.received += 1
        if len(self._buf) >= self.flush_max:
            self._wake.set()

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        self._buf.append((self._gen, msg.mid, msg.qos, msg.topic, bytes(msg.payload)))
        self.stats.received += 1
        if len(self._buf) >= self.flush_max:
            self._wake.set()

    # -- lifecycle ----------------------------------------------------------------------
    def start(self, wait: float = 10.0) -> None:
        host, port = host_port(self.mqtt_url)
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 7 * 86400
        props.ReceiveMaximum = 65535
        with self.engine.begin() as conn:
            ingest.ensure_partitions(conn)
        self.client.connect_async(host, port, keepalive=20, clean_start=False, properties=props)
        self.client.loop_start()
        t = threading.Thread(target=self._flush_loop, name="twin-mqtt-flush", daemon=True)
        t.start()
        self._threads.append(t)
        self._bridge = self._bridge_subscription()
        if wait and not self._connected.wait(wait):
            log.warning("MQTT broker at %s:%s not reachable yet; retrying", host, port)

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        for t in self._threads:
            t.join(timeout=15)
        if self._bridge is not None:
            self._bridge.stop()
        self.client.disconnect()
        self.client.loop_stop()

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    def wait_subscribed(self, timeout: float) -> bool:
        """Until the broker acknowledged the subscription (SUBACK)."""
        return self._subscribed.wait(timeout)

    # -- storing --------------------------------------------------------------------------
    def _flush_loop(self) -> None:
        last_sweep = last_log = time.monotonic()
        last_parts = time.time()
        while True:
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            while True:
                # batches of up to 2 × flush_max keep acknowledgements flowing
                batch = [self._buf.popleft()
                         for _ in range(min(len(self._buf), 2 * self.flush_max))]
                if not batch:
                    break
                if not self._flush(batch):
                    self._buf.extendleft(reversed(batch))
                    self._stop.wait(1.0)
                    break
            if self._stop.is_set():
                if not self._buf:
                    return
                continue
            now = time.monotonic()
            if now - last_sweep >= self.sweep_seconds:
                last_sweep = now
                self._safe(rules.sweep)
            if time.time() - last_parts > 86400:
                last_parts = time.time()
                self._safe(ingest.ensure_partitions)
            if now - last_log >= 10:
                last_log = now
                log.info("mqtt ingest: %s", self.stats)

    def _safe(self, fn: Any) -> None:
        try:
            with self.engine.begin() as conn:
                fn(conn)
        except Exception as exc:  # noqa: BLE001 - a periodic task must not stop ingest
            log.warning("%s failed: %s", getattr(fn, "__name__", fn), exc)

    def _datastream_of(self, topic: str) -> int | None:
        """The datastream id in ``v1.1/Datastreams(<id>)/Observations`` (cached); 0 for
        ``v1.1/Observations`` (the id is in the payload); None for other topics."""
        ds = self._topics.get(topic, -1)
        if ds == -1:
            mt = _DS_TOPIC.match(topic)
            ds = int(mt.group(1)) if mt else None
            if len(self._topics) < 100_000:
                self._topics[topic] = ds
        return ds

    def _parse(self, batch: list[_Msg]) -> tuple[list[payloads.RawObs], int]:
        raws: list[payloads.RawObs] = []
        bad = 0
        fromiso = dt.datetime.fromisoformat
        for _, _, _, topic, payload in batch:
            ds = self._datastream_of(topic)
            if ds is None:
                continue
            try:
                body = orjson.loads(payload)
                # the common message, {"phenomenonTime": "<instant>", "result": <value>}
                if (ds and type(body) is dict and len(body) == 2 and "result" in body
                        and type(pt := body.get("phenomenonTime")) is str and "/" not in pt):
                    t = fromiso(pt)
                    if t.tzinfo is not None:
                        raws.append(payloads.RawObs(ds, t, None, None, body["result"], None,
                                                  None, None, topic))
                        continue
                items = body if isinstance(body, list) else [body]
                for k, obj in enumerate(items):
                    if isinstance(obj, dict) and "@iot.id" in obj:
                        continue  # a published observation, already stored
                    raws.append(payloads.parse_observation(
                        obj, datastream_id=ds or None, where=f"{topic}[{k}]"))
            except (InputError, orjson.JSONDecodeError, ValueError) as exc:
                bad += 1
                self._reject(topic, str(exc))
        return raws, bad

    def _reject(self, topic: str, reason: str) -> None:
        self.stats.rejected += 1
        if self.stats.rejected <= 20 or self.stats.rejected % 1000 == 0:
            log.warning("rejected a message on %s: %s", topic, reason)

    def _flush(self, batch: list[_Msg]) -> bool:
        """Store one batch and acknowledge it; False to retry later (database down)."""
        raws, _ = self._parse(batch)
        try:
            res = self._store(raws)
        except (OperationalError, DBAPIError) as exc:
            if isinstance(exc, DBAPIError) and not exc.connection_invalidated and not \
                    isinstance(exc, OperationalError):
                res = self._store_one_by_one(raws)
            else:
                self.stats.last_error = str(exc).splitlines()[0]
                log.warning("database unavailable (%s); will retry", self.stats.last_error)
                return False
        self.stats.flushes += 1
        self.stats.stored += res.inserted
        self.stats.duplicates += res.sent - res.inserted
        gen = self._gen
        mqttwire.ack_all(self.client, [m[1] for m in batch if m[2] > 0 and m[0] == gen])
        if self.publish:
            self._publish(res.new)
        return True

    def _store(self, raws: list[payloads.RawObs]) -> ingest.IngestResult:
        if not raws:
            return ingest.IngestResult(0, 0)
        with self.engine.begin() as conn:
            owned = _owned(conn, sorted({r.datastream_id for r in raws}))
            for r in raws:
                if r.datastream_id not in owned:
                    self._reject(r.where, f"Datastream {r.datastream_id} belongs to no enabled "
                                 "gateway")
            raws = [r for r in raws if r.datastream_id in owned]
            rows, meta, rejected = ingest.check(conn, raws, lenient=True)
            for _, reason in rejected:
                self._reject("batch", reason)
            return ingest.store(conn, rows, via="mqtt", meta=meta)

    def _store_one_by_one(self, raws: list[payloads.RawObs]) -> ingest.IngestResult:
        total = ingest.IngestResult(0, 0)
        for r in raws:
            try:
                res = self._store([r])
            except DBAPIError as exc:
                self._reject(r.where, str(exc).splitlines()[0])
                continue
            total.sent += res.sent
            total.inserted += res.inserted
            total.new.extend(res.new)
        return total

    # -- publishing ------------------------------------------------------------------------
    def _publish(self, rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        try:
            with self.engine.connect() as conn:
                public = {r[0] for r in conn.execute(text(
                    "SELECT d.id FROM datastream d JOIN thing t ON t.id = d.thing_id "
                    "WHERE d.id = ANY(:i) AND t.public"), {"i": sorted({r[1] for r in rows})})}
        except DBAPIError as exc:
            log.warning("not publishing %d observations: %s", len(rows), exc)
            return
        out: list[tuple[str, bytes]] = []
        for oid, ds, t, result, result_json in rows:
            if ds not in public:
                continue  # private readings never go out over MQTT
            if oid in self._published_set:
                continue
            if len(self._published) == self._published.maxlen:
                self._published_set.discard(self._published[0])
            self._published.append(oid)
            self._published_set.add(oid)
            link = f"{self.sta_base}/Observations({oid})"
            out.append((topic_for(ds), orjson.dumps({
                "@iot.id": oid, "@iot.selfLink": link, "phenomenonTime": t,
                "result": result if result is not None else result_json,
                "Datastream@iot.navigationLink": f"{link}/Datastream"}, option=_UTC_Z)))
        mqttwire.publish_all(self.client, out)
        self.stats.published += len(out)

    def _bridge_subscription(self) -> Subscription:
        """Publish observations that arrived over HTTP (announced on ``twin_sensor``);
        re-sync the broker's ACL when things or datastreams change (``twin_table``)."""
        from twin.sensors.notify import SENSOR_CHANNEL

        bus = bus_for(self.engine.url.render_as_string(hide_password=False), self.redis_url)
        return bus.subscribe([SENSOR_CHANNEL, "twin_table"], self._bridge_batch,
                             name="twin-mqtt-bridge", on_connect=self.acl_sync)

    def _bridge_batch(self, batch: list[Message]) -> None:
        acl_stale = False
        for channel, payload in batch:
            if channel == "twin_table":
                acl_stale |= payload in ("thing", "datastream")
                continue
            msg = json.loads(payload)
            if msg.get("kind") != "observation" or msg.get("via") == "mqtt":
                continue
            if not self.publish:
                continue
            with self.engine.connect() as conn:
                rows = conn.execute(text(
                    "SELECT id, datastream_id, phenomenon_time, result, "
                    "result_json FROM observation WHERE id BETWEEN :a AND :b"),
                    {"a": msg["first_id"], "b": msg["last_id"]}).all()
            self._publish([tuple(r) for r in rows])
        if acl_stale and self.acl_sync is not None:
            self.acl_sync()


def _owned(conn: Any, ids: list[int]) -> set[int]:
    """Those datastreams whose Thing belongs to an enabled gateway."""
    if not ids:
        return set()
    return {r[0] for r in conn.execute(text(
        "SELECT d.id FROM datastream d JOIN thing t ON t.id = d.thing_id JOIN gateway g ON "
        "g.name = t.properties ->> 'gateway' AND g.enabled WHERE d.id = ANY(:i)"), {"i": ids})}

"""MQTT ingest through a real Mosquitto (started here on a free port): QoS 1, idempotent,
a broker restart in the middle of a stream loses and doubles nothing, new observations
are published to subscribers (also those created over HTTP), bad messages are dropped."""

import datetime as dt
import json
import queue
import threading
import time

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from tests.conftest import count
from tests.server.livesrv import free_port
from tests.twin.sensors_net import make_net
from twin.sensors import ingest, payloads
from twin.sensors.broker import Broker
from twin.sensors.mqtt import Ingester, topic_for


class Mosquitto:
    def __init__(self, folder):
        self.broker = Broker("127.0.0.1", free_port(), folder, persistence=True)
        self.proc = self.broker.popen()

    @property
    def url(self):
        return f"mqtt://127.0.0.1:{self.broker.port}"

    def restart(self, down_seconds=1.0):
        self.proc.terminate()  # a clean stop: mosquitto saves its sessions to disk
        self.proc.wait(10)
        time.sleep(down_seconds)
        self.proc = self.broker.popen()

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    m = Mosquitto(tmp_path_factory.mktemp("mqtt"))
    yield m
    m.stop()


@pytest.fixture(scope="module")
def ingester(engine, broker):
    ing = Ingester(engine, broker.url, client_id="test-ingest", flush_seconds=0.1,
                   sweep_seconds=3600)
    ing.start()
    assert ing.wait_connected(10)
    time.sleep(0.3)  # subscribed
    yield ing
    ing.stop()


def client(broker, cid, inflight=20):
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=cid,
                    protocol=MQTTProtocolVersion.MQTTv5)
    c.reconnect_delay_set(min_delay=1, max_delay=2)
    c.max_inflight_messages_set(inflight)
    host, port = "127.0.0.1", broker.broker.port
    c.connect(host, port)
    c.loop_start()
    return c


def acked(info):
    """Whether the broker acknowledged a QoS 1 message. paho keeps a message published
    while disconnected queued and sends it after reconnecting, but its info keeps
    rc = NO_CONN, on which ``is_published()`` raises; read the acknowledgement itself."""
    try:
        return info.is_published()
    except RuntimeError:
        with info._condition:
            return info._published


def wait_for(pred, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return pred()


def messages(n, start, offset=0.0):
    return [json.dumps({"phenomenonTime": (start + dt.timedelta(seconds=k)).isoformat(),
                        "result": offset + k * 0.01}) for k in range(n)]


def test_readings_stored_once_and_published_with_ids(engine, broker, ingester):
    net = make_net(engine)
    got: queue.Queue = queue.Queue()
    sub = client(broker, "test-subscriber")
    sub.on_message = lambda c, u, m: got.put(json.loads(m.payload))
    sub.subscribe(topic_for(net.level), qos=0)
    time.sleep(0.3)
    pub = client(broker, "test-gateway")
    t0 = dt.datetime(2026, 5, 1, tzinfo=dt.UTC)
    msgs = messages(400, t0)
    for _ in range(2):  # the same readings twice: stored once
        infos = [pub.publish(topic_for(net.level), p, qos=1) for p in msgs]
        for i in infos:
            i.wait_for_publish(10)
    where = f"datastream_id = {net.level}"
    assert wait_for(lambda: count(engine, "observation", where) == 400)
    time.sleep(0.5)
    assert count(engine, "observation", where) == 400
    seen = []
    while not got.empty():
        seen.append(got.get())
    published = [m for m in seen if "@iot.id" in m]
    assert len({m["@iot.id"] for m in published}) == 400  # each new reading, with its id
    assert published[0]["@iot.selfLink"].endswith(f"/Observations({published[0]['@iot.id']})")
    pub.disconnect()
    sub.disconnect()


def test_broker_restart_mid_stream_loses_nothing(engine, broker, ingester):
    net = make_net(engine)
    total = 3000
    msgs = messages(total, dt.datetime(2026, 5, 2, tzinfo=dt.UTC))
    pub = client(broker, "test-restart-gateway", inflight=50)
    sent = threading.Event()
    infos = []

    def stream():
        for k, p in enumerate(msgs):
            infos.append(pub.publish(topic_for(net.level), p, qos=1))
            if k % 100 == 99:
                time.sleep(0.02)
        sent.set()

    t = threading.Thread(target=stream, daemon=True)
    t.start()
    where = f"datastream_id = {net.level}"
    assert wait_for(lambda: count(engine, "observation", where) >= 600, 20)
    reconnects = ingester.stats.connects
    broker.restart(down_seconds=1.5)
    assert sent.wait(60)
    assert wait_for(lambda: all(acked(i) for i in infos), 60)
    assert wait_for(lambda: count(engine, "observation", where) >= total, 60), (
        count(engine, "observation", where), ingester.stats)
    time.sleep(1.0)  # late redeliveries would show up as extra rows now
    assert count(engine, "observation", where) == total
    assert ingester.stats.connects > reconnects  # it did reconnect by itself
    pub.disconnect()


def test_bad_messages_are_dropped_and_the_rest_stored(engine, broker, ingester):
    net = make_net(engine)
    pub = client(broker, "test-bad-gateway")
    rejected = ingester.stats.rejected
    t0 = "2026-05-03T00:00:0{}Z"
    for topic, body in [
        (topic_for(net.level), json.dumps({"phenomenonTime": t0.format(1), "result": 1.0})),
        (topic_for(net.level), b"{not json"),
        (topic_for(net.level), json.dumps({"phenomenonTime": t0.format(2), "result": "x"})),
        (topic_for(999_999_999), json.dumps({"phenomenonTime": t0.format(3), "result": 1.0})),
        (topic_for(net.level), json.dumps({"phenomenonTime": t0.format(4), "result": 4.0})),
        ("v1.1/Observations", json.dumps({"Datastream": {"@iot.id": net.level},
                                          "phenomenonTime": t0.format(5), "result": 5.0})),
        (topic_for(net.level), json.dumps([{"phenomenonTime": t0.format(6), "result": 6.0},
                                           {"phenomenonTime": t0.format(7), "result": 7.0}])),
    ]:
        pub.publish(topic, body, qos=1).wait_for_publish(5)
    where = f"datastream_id = {net.level}"
    assert wait_for(lambda: count(engine, "observation", where) == 5)
    assert wait_for(lambda: ingester.stats.rejected >= rejected + 3)
    pub.disconnect()


def test_http_observations_reach_mqtt_subscribers(engine, broker, ingester):
    net = make_net(engine)
    got: queue.Queue = queue.Queue()
    sub = client(broker, "test-http-subscriber")
    sub.on_message = lambda c, u, m: got.put(json.loads(m.payload))
    sub.subscribe(topic_for(net.count), qos=0)
    time.sleep(0.5)
    with engine.begin() as c:
        ingest.ingest(c, [payloads.RawObs(net.count, dt.datetime(2026, 5, 4, tzinfo=dt.UTC),
                                        None, None, 42)], via="http")
    msg = got.get(timeout=10)
    assert msg["result"] == 42 and msg["phenomenonTime"] == "2026-05-04T00:00:00Z"
    sub.disconnect()

"""MQTT ingest through a real Mosquitto (started here on a free port): QoS 1, idempotent,
a broker restart in the middle of a stream loses and doubles nothing, new observations
are published to subscribers (also those created over HTTP), bad messages are dropped.

Access: gateways sign in with their name and key and may publish only to their own
datastreams; anonymous clients and wrong keys publish nothing; private readings never
reach anonymous subscribers."""

import datetime as dt
import json
import queue
import subprocess
import threading
import time
import uuid

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from tests.conftest import count
from tests.server.livesrv import free_port
from tests.twin.sensors_net import make_net
from twin.sensors import gateways, ingest, payloads
from twin.sensors.broker import INTERNAL_USER, Broker
from twin.sensors.mqtt import Ingester, topic_for

NOT_AUTHORIZED = 135  # MQTT v5 reason code


class Mosquitto:
    def __init__(self, folder):
        self.broker = Broker("127.0.0.1", free_port(), folder, persistence=True)
        self.proc = self.broker.popen()

    @property
    def url(self):
        return f"mqtt://127.0.0.1:{self.broker.port}"

    def gateway(self, engine, *nets):
        """A new gateway owning the nets' Things, able to sign in: (name, key)."""
        name = f"gw-{uuid.uuid4().hex[:6]}"
        with engine.begin() as c:
            _, key = gateways.add(c, name)
            gateways.adopt(c, name, [t for n in nets for t in (n.tower, n.plant)])
        self.broker.remember(name, key)
        self.broker.sync(engine)
        return name, key

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
                   sweep_seconds=3600, username=INTERNAL_USER,
                   password=broker.broker.internal_password(),
                   acl_sync=lambda: broker.broker.sync(engine))
    ing.start()
    assert ing.wait_connected(10)
    assert ing.wait_subscribed(10)
    yield ing
    ing.stop()


def client(broker, cid, inflight=20, auth=None, timeout=10.0):
    """A connected MQTT v5 client (``auth``: (user, password)); ``c.connack`` holds the
    broker's answer, ``c.pubacks`` the reason code of each acknowledged publish by mid.
    Retries while the broker refuses, since a reload (SIGHUP) may still be on its way."""
    deadline = time.monotonic() + timeout
    while True:
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=cid,
                        protocol=MQTTProtocolVersion.MQTTv5)
        c.reconnect_delay_set(min_delay=1, max_delay=2)
        c.max_inflight_messages_set(inflight)
        if auth:
            c.username_pw_set(*auth)
        answered = threading.Event()
        c.connack = None
        c.pubacks = {}
        c.suback = threading.Event()

        def on_connect(cl, u, flags, reason, props, answered=answered):
            cl.connack = reason
            answered.set()

        c.on_connect = on_connect
        c.on_publish = lambda cl, u, mid, reason, props: cl.pubacks.__setitem__(mid, reason)
        def on_subscribe(cl, u, mid, codes, props):
            cl.granted = [rc.value for rc in codes]
            cl.suback.set()

        c.on_subscribe = on_subscribe
        c.connect("127.0.0.1", broker.broker.port)
        c.loop_start()
        assert answered.wait(10), "no CONNACK"
        if not c.connack.is_failure or time.monotonic() > deadline:
            return c
        c.loop_stop()  # before paho reconnects with this client id and takes the session
        c.disconnect()
        time.sleep(0.05)


def subscribe(c, topic):
    """Subscribe at QoS 0; returns the broker's reason code (SUBACK: 0 granted)."""
    c.suback.clear()
    c.subscribe(topic, qos=0)
    assert c.suback.wait(10), "no SUBACK"
    return c.granted[0]


def publish(c, topic, payload):
    """Publish at QoS 1 and return the broker's reason code (PUBACK)."""
    info = c.publish(topic, payload, qos=1)
    info.wait_for_publish(10)
    assert wait_for(lambda: info.mid in c.pubacks, 10)
    return c.pubacks[info.mid].value


def publish_once(broker, cid, auth, topic, payload):
    """Publish one message from a client of its own (Mosquitto may drop a connection
    after refusing its publish); returns the PUBACK's reason code."""
    c = client(broker, cid, auth=auth)
    try:
        return publish(c, topic, payload)
    finally:
        c.loop_stop()
        c.disconnect()


def reading(t, v):
    return json.dumps({"phenomenonTime": t.isoformat(), "result": v})


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
    auth = broker.gateway(engine, net)
    got: queue.Queue = queue.Queue()
    sub = client(broker, "test-subscriber")
    sub.on_message = lambda c, u, m: got.put(json.loads(m.payload))
    subscribe(sub, topic_for(net.level))
    pub = client(broker, "test-gateway", auth=auth)
    assert not pub.connack.is_failure
    t0 = dt.datetime(2026, 5, 1, tzinfo=dt.UTC)
    msgs = messages(400, t0)
    for _ in range(2):  # the same readings twice: stored once
        infos = [pub.publish(topic_for(net.level), p, qos=1) for p in msgs]
        for i in infos:
            i.wait_for_publish(10)
    where = f"datastream_id = {net.level}"
    assert wait_for(lambda: count(engine, "observation", where) == 400)
    # a last new reading: once it is stored, any late duplicate before it was handled
    publish(pub, topic_for(net.level), reading(t0 + dt.timedelta(hours=1), 9.0))
    assert wait_for(lambda: count(engine, "observation", where) == 401)
    seen = []

    def republished():
        while not got.empty():
            seen.append(got.get())
        return sum("@iot.id" in m for m in seen) >= 401

    assert wait_for(republished)
    published = [m for m in seen if "@iot.id" in m]
    assert len({m["@iot.id"] for m in published}) == 401  # each new reading, with its id
    assert published[0]["@iot.selfLink"].endswith(f"/Observations({published[0]['@iot.id']})")
    pub.disconnect()
    sub.disconnect()


def test_broker_restart_mid_stream_loses_nothing(engine, broker, ingester):
    net = make_net(engine)
    total = 3000
    start = dt.datetime(2026, 5, 2, tzinfo=dt.UTC)
    msgs = messages(total, start)
    pub = client(broker, "test-restart-gateway", inflight=50, auth=broker.gateway(engine, net))
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
    # late redeliveries come before a last new reading: once it is stored, count
    publish(pub, topic_for(net.level), reading(start + dt.timedelta(hours=2), 9.0))
    assert wait_for(lambda: count(engine, "observation", where) == total + 1, 30)
    assert ingester.stats.connects > reconnects  # it did reconnect by itself
    pub.disconnect()


def test_bad_messages_are_dropped_and_the_rest_stored(engine, broker, ingester):
    net = make_net(engine)
    auth = broker.gateway(engine, net)
    pub = client(broker, "test-bad-gateway", auth=auth)
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
        if topic in (topic_for(999_999_999), "v1.1/Observations"):
            # the broker refuses topics of datastreams the gateway does not own
            assert publish_once(broker, "test-bad-other", auth, topic, body) == NOT_AUTHORIZED
        else:
            assert publish(pub, topic, body) != NOT_AUTHORIZED
    where = f"datastream_id = {net.level}"
    assert wait_for(lambda: count(engine, "observation", where) == 4)  # 1, 4, 6, 7
    assert wait_for(lambda: ingester.stats.rejected >= rejected + 2)
    pub.disconnect()


def test_http_observations_reach_mqtt_subscribers(engine, broker, ingester):
    net = make_net(engine)
    broker.broker.sync(engine)  # its public topics readable now (the ingester does it soon)
    got: queue.Queue = queue.Queue()
    sub = client(broker, "test-http-subscriber")  # anonymous
    sub.on_message = lambda c, u, m: got.put((m.topic, json.loads(m.payload)))
    # Mosquitto grants subscriptions and checks the ACL on every message it delivers
    assert subscribe(sub, "v1.1/#") == 0
    t = dt.datetime(2026, 5, 4, tzinfo=dt.UTC)
    with engine.begin() as c:  # a private reading first, then a public one
        ingest.ingest(c, [payloads.RawObs(net.turbidity, t, None, None, 7.5)], via="http")
    with engine.begin() as c:
        ingest.ingest(c, [payloads.RawObs(net.count, t, None, None, 42)], via="http")
    ours = {topic_for(net.turbidity), topic_for(net.count)}
    deadline = time.monotonic() + 10
    while True:  # other tests' public datastreams may speak on v1.1/# too
        topic, msg = got.get(timeout=max(0.1, deadline - time.monotonic()))
        if topic in ours:
            break
    assert topic == topic_for(net.count)  # the private reading was never published
    assert msg["result"] == 42 and msg["phenomenonTime"] == "2026-05-04T00:00:00Z"
    sub.disconnect()


def test_anonymous_and_wrong_keys_publish_nothing(engine, broker, ingester):
    net = make_net(engine)
    name, key = broker.gateway(engine, net)
    where = f"datastream_id = {net.level}"
    t = dt.datetime(2026, 5, 5, tzinfo=dt.UTC)
    wrong = client(broker, "test-wrong-key", auth=(name, key + "x"), timeout=0)
    assert wrong.connack.is_failure and wrong.connack.value == NOT_AUTHORIZED
    wrong.loop_stop()
    unknown = client(broker, "test-unknown-user", auth=("nobody", key), timeout=0)
    assert unknown.connack.value == NOT_AUTHORIZED
    unknown.loop_stop()
    anon = client(broker, "test-anonymous")
    assert not anon.connack.is_failure  # anonymous may connect (to read public topics)
    assert publish(anon, topic_for(net.level), reading(t, 666.0)) == NOT_AUTHORIZED
    anon.disconnect()
    # mosquitto_pub without credentials: refused; with the gateway's name and key: stored
    base = ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(broker.broker.port), "-q", "1",
            "-V", "mqttv5", "-t", topic_for(net.level)]
    subprocess.run([*base, "-m", reading(t + dt.timedelta(seconds=1), 667.0)], timeout=30,
                   capture_output=True)
    done = subprocess.run([*base, "-u", name, "-P", key, "-m",
                           reading(t + dt.timedelta(seconds=2), 1.5)], timeout=30,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert wait_for(lambda: count(engine, "observation", f"{where} AND result = 1.5") == 1)
    # both refused readings came before the stored one: they are not there
    assert count(engine, "observation", f"{where} AND phenomenon_time >= '{t.isoformat()}'") == 1


def test_a_gateway_publishes_only_to_its_own_datastreams(engine, broker, ingester):
    mine, theirs = make_net(engine), make_net(engine)
    auth = broker.gateway(engine, mine)  # and syncs the ACL
    a = client(broker, "test-gateway-a", auth=auth)
    broker.gateway(engine, theirs)
    anon = client(broker, "test-anon-reader")
    got: queue.Queue = queue.Queue()
    anon.on_message = lambda c, u, m: got.put((m.topic, json.loads(m.payload)))
    assert subscribe(anon, "v1.1/#") == 0
    t = dt.datetime(2026, 5, 6, tzinfo=dt.UTC)
    assert publish_once(broker, "test-gateway-a2", auth, topic_for(theirs.level),
                        reading(t, 99.0)) == NOT_AUTHORIZED
    assert publish(a, topic_for(mine.turbidity), reading(t, 3.5)) != NOT_AUTHORIZED  # private
    assert publish(a, topic_for(mine.level), reading(t, 1.25)) != NOT_AUTHORIZED
    assert wait_for(lambda: count(engine, "observation",
                                  f"datastream_id = {mine.level}") == 1)
    assert count(engine, "observation", f"datastream_id = {mine.turbidity}") == 1
    assert count(engine, "observation", f"datastream_id = {theirs.level}") == 0
    # anonymous readers see the public reading (as sent, then with its id), never the private
    seen = [got.get(timeout=10) for _ in range(2)]
    assert {tp for tp, _ in seen} == {topic_for(mine.level)}
    assert "@iot.id" in seen[1][1] and seen[1][1]["result"] == 1.25
    assert all(tp != topic_for(mine.turbidity) for tp, _ in list(got.queue))
    a.disconnect()
    anon.disconnect()


def test_new_datastreams_and_revoked_gateways_reach_the_broker(engine, broker, ingester):
    """The ingester regenerates the ACL when Things or Datastreams change; a revoked
    gateway is disconnected and cannot sign in again."""
    first = make_net(engine)
    name, key = broker.gateway(engine, first)
    later = make_net(engine)  # made after the gateway signed in
    t = dt.datetime(2026, 5, 7, tzinfo=dt.UTC)
    assert publish_once(broker, "test-gateway-early", (name, key), topic_for(later.level),
                        reading(t, 1.0)) == NOT_AUTHORIZED
    with engine.begin() as c:
        gateways.adopt(c, name, [later.tower])  # a thing write: twin_table → ACL
    k = 1
    while publish_once(broker, "test-gateway-early", (name, key), topic_for(later.level),
                       reading(t + dt.timedelta(seconds=k), 2.0)) == NOT_AUTHORIZED:
        k += 1
        assert k < 200, "the ACL was not regenerated"
        time.sleep(0.05)  # the reload is on its way; try the next reading
    a = client(broker, "test-gateway-later", auth=(name, key))
    assert wait_for(lambda: count(engine, "observation", f"datastream_id = {later.level}") == 1)
    with engine.begin() as c:
        gateways.revoke(c, name)
    broker.broker.remember(name, None)
    broker.broker.sync(engine)
    assert wait_for(lambda: not a.is_connected(), 10)
    a.loop_stop()
    again = client(broker, "test-gateway-revoked", auth=(name, key), timeout=0)
    deadline = time.monotonic() + 10
    while not again.connack.is_failure and time.monotonic() < deadline:
        again.disconnect()
        again.loop_stop()
        again = client(broker, "test-gateway-revoked", auth=(name, key), timeout=0)
    assert again.connack.value == NOT_AUTHORIZED
    again.loop_stop()

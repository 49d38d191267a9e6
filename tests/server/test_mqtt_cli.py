"""The sensor commands: `mqtt up|status|down`, `gateways`, `sensors demo`, and the real
`ingest mqtt` process storing a gateway's reading (signed in with its name and key) and
stopping cleanly on SIGTERM; a revoked gateway cannot sign in again."""

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from typer.testing import CliRunner

from server.cli_sensors import app
from tests.conftest import count
from tests.server.livesrv import free_port
from tests.twin.sensors_net import make_net
from twin.sensors import gateways
from twin.sensors.mqtt import topic_for


def _connect(port, cid, user, key):
    """A connected client, or its CONNACK reason code when the broker refuses."""
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=cid,
                    protocol=MQTTProtocolVersion.MQTTv5)
    c.username_pw_set(user, key)
    answered, codes = threading.Event(), []
    c.on_connect = lambda cl, u, f, reason, p: (codes.append(reason), answered.set())
    c.connect("127.0.0.1", port)
    c.loop_start()
    assert answered.wait(10), "no CONNACK"
    if codes[0].is_failure:
        c.loop_stop()
        return codes[0].value
    return c


def _wait_for(pred, timeout):
    deadline = time.monotonic() + timeout
    while not pred() and time.monotonic() < deadline:
        time.sleep(0.05)
    return pred()


@pytest.fixture(scope="module")
def env(settings, tmp_path_factory):
    port = free_port()
    return {"TWIN_DATABASE_URL": settings.url(), "TWIN_MQTT_URL": f"mqtt://127.0.0.1:{port}",
            "TWIN_DATA_DIR": str(tmp_path_factory.mktemp("cli-data"))}, port


def test_broker_gateways_and_ingest_process(env, engine):
    e, port = env
    run = CliRunner().invoke
    assert run(app, ["mqtt", "status"], env=e).exit_code == 1
    up = run(app, ["mqtt", "up"], env=e)
    assert up.exit_code == 0 and f"127.0.0.1:{port}" in up.output, up.output
    try:
        assert run(app, ["mqtt", "status"], env=e).exit_code == 0
        name = f"gw-{uuid.uuid4().hex[:6]}"
        added = run(app, ["gateways", "add", name], env=e)
        assert added.exit_code == 0 and "twk_" in added.output
        key = added.output.strip().splitlines()[-1]
        assert run(app, ["gateways", "add", name], env=e).exit_code == 2  # exists
        assert name in run(app, ["gateways", "list"], env=e).output
        folder = Path(e["TWIN_DATA_DIR"]) / "mqtt"
        assert all((folder / f).stat().st_mode & 0o077 == 0
                   for f in ("passwd", "acl", "internal.secret", "gateways.hash"))
        assert key not in (folder / "passwd").read_text()  # only its hash

        net = make_net(engine)
        with engine.begin() as c:
            gateways.adopt(c, name, [net.tower])  # the ingester regenerates the ACL
        proc = subprocess.Popen(
            [sys.executable, "-m", "server.cli_sensors", "ingest", "mqtt", "--client-id",
             f"cli-{net.tag}"], env={**os.environ, **e}, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True)
        try:
            where = f"datastream_id = {net.level}"
            deadline = time.monotonic() + 30
            k = 0
            # until the process is up and subscribed and the ACL has the datastream: a new
            # connection per reading, since Mosquitto may close one after a refused publish
            while count(engine, "observation", where) == 0 and time.monotonic() < deadline:
                pub = _connect(port, f"cli-pub-{net.tag}", name, key)
                assert not isinstance(pub, int), pub
                t = dt.datetime(2026, 7, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=k)
                pub.publish(topic_for(net.level), json.dumps(
                    {"phenomenonTime": t.isoformat(), "result": 1.0}), qos=1).wait_for_publish(5)
                k += 1
                _wait_for(lambda: count(engine, "observation", where) > 0, 1.0)
                pub.disconnect()
                pub.loop_stop()
            assert count(engine, "observation", where) > 0
        finally:
            proc.send_signal(signal.SIGTERM)
            out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0 and "stopped: Stats(" in out, out
        assert run(app, ["gateways", "revoke", name], env=e).exit_code == 0

        def refused():  # once the broker has reloaded its password file
            c = _connect(port, f"cli-revoked-{net.tag}", name, key)
            if isinstance(c, int):
                return c == 135  # not authorized
            c.disconnect()
            c.loop_stop()
            return False

        assert _wait_for(refused, 10)
        assert run(app, ["gateways", "remove", name], env=e).exit_code == 0
        assert name not in run(app, ["gateways", "list"], env=e).output
    finally:
        down = run(app, ["mqtt", "down"], env=e)
        assert "stopped" in down.output
    assert run(app, ["mqtt", "status"], env=e).exit_code == 1


def test_sensors_demo_command(env):
    e, _ = env
    out = CliRunner().invoke(app, ["sensors", "demo"], env=e)
    assert out.exit_code == 0
    assert "added" in out.output or "present, skipping" in out.output


def test_simulator_signs_in_as_the_demo_gateway(env, engine):
    """`make run`'s sensor path with no manual step: demo network, broker, ingester, and
    the simulator publishing over MQTT as demo-gateway (its key kept in the data folder)."""
    e, port = env
    run = CliRunner().invoke
    assert run(app, ["sensors", "demo"], env=e).exit_code == 0
    assert run(app, ["mqtt", "up"], env=e).exit_code == 0
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "server.cli_sensors", "ingest", "mqtt", "--client-id",
             "cli-sim-ingest"], env={**os.environ, **e}, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True)
        try:
            where = "phenomenon_time > now() - interval '10 minutes' AND datastream_id IN " \
                    "(SELECT d.id FROM datastream d JOIN thing t ON t.id = d.thing_id " \
                    "WHERE t.properties ->> 'gateway' = 'demo-gateway')"
            before = count(engine, "observation", where)
            deadline = time.monotonic() + 40
            while count(engine, "observation", where) == before and \
                    time.monotonic() < deadline:  # until the ingester has subscribed
                sim = run(app, ["simulate", "sensors", "--via", "mqtt", "--tick", "0.5",
                                "--duration", "1"], env=e)
                assert sim.exit_code == 0 and "readings sent via mqtt" in sim.output, \
                    sim.output
                _wait_for(lambda: count(engine, "observation", where) > before, 2.0)
            assert count(engine, "observation", where) > before
            key = (Path(e["TWIN_DATA_DIR"]) / "mqtt" / "demo-gateway.key")
            assert key.stat().st_mode & 0o077 == 0
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.communicate(timeout=30)
    finally:
        run(app, ["mqtt", "down"], env=e)

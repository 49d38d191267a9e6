"""The sensor commands: `mqtt up|status|down`, `gateways`, `sensors demo`, and the real
`ingest mqtt` process storing a reading and stopping cleanly on SIGTERM."""

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
import uuid

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from typer.testing import CliRunner

from server.cli_sensors import app
from tests.conftest import count
from tests.server.livesrv import free_port
from tests.twin.sensors_net import make_net
from twin.sensors.mqtt import topic_for


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
        assert run(app, ["gateways", "add", name], env=e).exit_code == 2  # exists
        assert name in run(app, ["gateways", "list"], env=e).output
        assert run(app, ["gateways", "revoke", name], env=e).exit_code == 0

        net = make_net(engine)
        proc = subprocess.Popen(
            [sys.executable, "-m", "server.cli_sensors", "ingest", "mqtt", "--client-id",
             f"cli-{net.tag}"], env={**os.environ, **e}, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True)
        try:
            pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"cli-pub-{net.tag}",
                              protocol=MQTTProtocolVersion.MQTTv5)
            pub.connect("127.0.0.1", port)
            pub.loop_start()
            where = f"datastream_id = {net.level}"
            deadline = time.monotonic() + 30
            k = 0
            while count(engine, "observation", where) == 0 and time.monotonic() < deadline:
                t = dt.datetime(2026, 7, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=k)
                pub.publish(topic_for(net.level), json.dumps(
                    {"phenomenonTime": t.isoformat(), "result": 1.0}), qos=1)
                k += 1
                time.sleep(0.3)  # until the process is up and subscribed
            assert count(engine, "observation", where) > 0
            pub.disconnect()
        finally:
            proc.send_signal(signal.SIGTERM)
            out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0 and "stopped: Stats(" in out, out
    finally:
        down = run(app, ["mqtt", "down"], env=e)
        assert "stopped" in down.output
    assert run(app, ["mqtt", "status"], env=e).exit_code == 1


def test_sensors_demo_command(env):
    e, _ = env
    out = CliRunner().invoke(app, ["sensors", "demo"], env=e)
    assert out.exit_code == 0
    assert "added" in out.output or "present, skipping" in out.output

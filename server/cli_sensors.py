"""Command-line parts for sensors (typer sub-apps registered by ``server.cli``):

``twin ingest mqtt`` · ``twin simulate sensors`` · ``twin mqtt up|down|status`` ·
``twin sensors demo`` · ``twin gateways add|list|revoke|remove``.

Gateways sign in to the broker with their name and API key; every command that changes
gateways or the demo network regenerates the broker's password and ACL files and makes
a running broker reload them (``twin.sensors.broker``).

Also runnable alone: ``python -m server.cli_sensors ingest mqtt``.
"""

from __future__ import annotations

import logging
import signal
import threading
from typing import Annotated

import typer
from rich.console import Console

from twin.errors import TwinError
from twin.settings import Settings

console = Console()
err = Console(stderr=True)

ingest_app = typer.Typer(help="Long-running ingesters.", no_args_is_help=True)
simulate_app = typer.Typer(help="Simulated live data for demos.", no_args_is_help=True)
mqtt_app = typer.Typer(help="The project's Mosquitto broker (TWIN_MQTT_URL).",
                       no_args_is_help=True)
sensors_app = typer.Typer(help="The sensor network (SensorThings).", no_args_is_help=True)
gateways_app = typer.Typer(help="Sensor gateways and their API keys.", no_args_is_help=True)

app = typer.Typer(help="Sensors: MQTT, ingest, simulation, gateways.", no_args_is_help=True)
app.add_typer(ingest_app, name="ingest")
app.add_typer(simulate_app, name="simulate")
app.add_typer(mqtt_app, name="mqtt")
app.add_typer(sensors_app, name="sensors")
app.add_typer(gateways_app, name="gateways")


def _fail(message: str, code: int = 2) -> None:
    err.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


def _engine(settings: Settings, size: int = 4):  # noqa: ANN202
    from twin.db import make_engine

    return make_engine(settings, pool_size=size)


@ingest_app.command("mqtt")
def ingest_mqtt(
    url: Annotated[str | None, typer.Option(help="broker URL (default TWIN_MQTT_URL)")] = None,
    client_id: Annotated[str, typer.Option(help="fixed id: the broker keeps its session")] = (
        "twin-ingest"),
    flush_ms: Annotated[int, typer.Option(help="flush a batch at least this often")] = 200,
    flush_max: Annotated[int, typer.Option(help="or once this many messages wait")] = 2000,
    publish: Annotated[bool, typer.Option(help="publish new observations to subscribers")] = (
        True),
) -> None:
    """Subscribe to v1.1/Datastreams(id)/Observations (QoS 1) and store the readings."""
    from twin.sensors.broker import INTERNAL_USER
    from twin.sensors.mqtt import Ingester

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    s = Settings()
    broker_url = url or s.mqtt_url
    engine = _engine(s)
    broker = _broker()
    ing = Ingester(engine, broker_url, client_id=client_id, flush_seconds=flush_ms / 1000,
                   flush_max=flush_max, publish=publish,
                   sta_base=f"http://{s.host}:{s.port}/sta/v1.1", username=INTERNAL_USER,
                   password=broker.internal_password(), acl_sync=lambda: _sync(engine),
                   redis_url=s.redis_url)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        ing.start()
    except TwinError as exc:
        _fail(str(exc))
    console.print(f"[green]ingesting[/] from {broker_url} as {client_id} (Ctrl-C stops)")
    stop.wait()
    ing.stop()
    console.print(f"stopped: {ing.stats}")


@simulate_app.command("sensors")
def simulate_sensors(
    via: Annotated[str, typer.Option(help="http or mqtt")] = "http",
    base_url: Annotated[str | None, typer.Option(help="server (default TWIN_HOST:PORT)")] = None,
    gateway: Annotated[str, typer.Option(help="the gateway owning the demo network")] = (
        "demo-gateway"),
    api_key: Annotated[str | None, typer.Option(
        envvar="TWIN_GATEWAY_KEY", help="its key (default: a new key for it, kept in the "
        "data folder)")] = None,
    tick: Annotated[float, typer.Option(help="seconds between readings")] = 2.0,
    event_ticks: Annotated[int, typer.Option(help="ticks the rain event lasts")] = 90,
    duration: Annotated[float, typer.Option(help="seconds to run")] = 300.0,
    seed: Annotated[int, typer.Option()] = 7,
) -> None:
    """Replay a rain event on the demo network so the live layers move."""
    from twin.sensors import simulate

    s = Settings()
    engine = _engine(s, 2)
    if via not in ("http", "mqtt"):
        _fail("--via must be http or mqtt")
        return
    sender: simulate.HttpSender | simulate.MqttSender
    try:
        if not api_key:
            api_key = _gateway_key(engine, gateway)
        if via == "http":
            sender = simulate.HttpSender(base_url or f"http://{s.host}:{s.port}", api_key)
        else:
            sender = simulate.MqttSender(s.mqtt_url, username=gateway, password=api_key)
    except (TwinError, RuntimeError, OSError) as exc:
        _fail(str(exc))
        return
    try:
        n = simulate.run(engine, sender.send, tick_seconds=tick, event_ticks=event_ticks,
                         duration=duration, seed=seed, say=lambda m: print(m, flush=True))
    except KeyboardInterrupt:
        n = -1
    except Exception as exc:  # noqa: BLE001 - say what failed, plainly
        where = f"the server at {base_url or f'http://{s.host}:{s.port}'}" if via == "http" \
            else f"the broker at {s.mqtt_url}"
        _fail(f"{type(exc).__name__}: {exc} (is {where} running?)")
        return
    finally:
        sender.close()
    console.print(f"[green]done[/]: {n if n >= 0 else 'interrupted'} readings sent via {via}")


def _broker():  # noqa: ANN202
    from twin.sensors.broker import default_broker

    s = Settings()
    return default_broker(s.mqtt_url, s.data_dir)


def _sync(engine) -> None:  # noqa: ANN001
    """Regenerate the broker's password and ACL files (a running broker reloads them)."""
    try:
        _broker().sync(engine)
    except Exception as exc:  # noqa: BLE001 - say so, the command itself succeeded
        err.print(f"[yellow]warning:[/] MQTT access files not updated: {exc}")


def _gateway_key(engine, name: str) -> str:  # noqa: ANN001
    """The key of gateway ``name`` kept in the data folder (mode 0600), or a new one."""
    from twin.sensors import gateways
    from twin.sensors.broker import write_private

    b = _broker()
    kept = b.folder / f"{name}.key"
    try:
        key = kept.read_text(encoding="utf-8").strip()
    except OSError:
        key = ""
    with engine.begin() as conn:
        _adopt_demo(conn)
        if not key or gateways.verify(conn, key) is None:
            key = gateways.rotate(conn, name)
            b.folder.mkdir(parents=True, exist_ok=True)
            write_private(kept, key + "\n")
            b.remember(name, key)
    _sync(engine)
    return key


def _adopt_demo(conn) -> None:  # noqa: ANN001
    """The demo network belongs to the demo gateway."""
    from sqlalchemy import text

    from twin.sensors import gateways
    from twin.sensors.demo import MARK

    ids = [r[0] for r in conn.execute(text(
        "SELECT id FROM thing WHERE properties ->> 'source' = :m"), {"m": MARK})]
    gateways.adopt(conn, gateways.DEMO, ids)


@mqtt_app.command("up")
def mqtt_up() -> None:
    """Start Mosquitto on TWIN_MQTT_URL's port (config and data in <data dir>/mqtt)."""
    b = _broker()
    try:
        b.write_config()
        b.sync(_engine(Settings(), 1))
    except TwinError as exc:
        _fail(str(exc))
        return
    except Exception as exc:  # noqa: BLE001 - no database: the internal user only
        err.print(f"[yellow]warning:[/] no gateways can sign in ({exc})")
    try:
        pid = b.up()
    except TwinError as exc:
        _fail(str(exc))
        return
    console.print(f"[green]mqtt up[/]: mosquitto pid {pid} on {b.host}:{b.port} ({b.folder})")


@mqtt_app.command("down")
def mqtt_down() -> None:
    """Stop the project's Mosquitto."""
    console.print("stopped" if _broker().down() else "not running")


@mqtt_app.command("status")
def mqtt_status() -> None:
    """Exit 0 when the broker is running."""
    from twin.sensors.broker import port_open

    b = _broker()
    pid = b.pid()
    if pid:
        console.print(f"running: pid {pid} on {b.host}:{b.port}")
        return
    if port_open(b.host, b.port):
        console.print(f"a broker not started by twin listens on {b.host}:{b.port}")
        return
    console.print("not running")
    raise typer.Exit(1)


@sensors_app.command("demo")
def sensors_demo(seed: Annotated[int, typer.Option()] = 7) -> None:
    """Add the demo sensor network of Đà Nẵng (once) with six hours of readings."""
    from twin.sensors.demo import add_sensor_network

    engine = _engine(Settings(), 1)
    with engine.begin() as conn:
        out = add_sensor_network(conn, seed)
        _adopt_demo(conn)
    if out.get("gateway_key"):
        from twin.sensors import gateways
        from twin.sensors.broker import write_private

        b = _broker()
        b.remember(gateways.DEMO, out["gateway_key"])
        b.folder.mkdir(parents=True, exist_ok=True)
        write_private(b.folder / f"{gateways.DEMO}.key", out["gateway_key"] + "\n")
    _sync(engine)
    if not out["created"]:
        console.print("demo sensor network present, skipping")
        return
    console.print(f"[green]added[/] {out['things']} things, {out['datastreams']} datastreams, "
                  f"{out['observations']} observations")
    if out.get("gateway_key"):
        console.print(f"gateway 'demo-gateway' API key (shown once): {out['gateway_key']}")


@gateways_app.command("add")
def gateways_add(name: Annotated[str, typer.Argument(help="gateway name")]) -> None:
    """Create a gateway; prints its API key once (send it as X-Api-Key over HTTP; over
    MQTT sign in with the gateway's name as user name and the key as password)."""
    from twin.sensors import gateways

    engine = _engine(Settings(), 1)
    try:
        with engine.begin() as conn:
            gid, key = gateways.add(conn, name)
    except TwinError as exc:
        _fail(str(exc))
        return
    _broker().remember(name, key)
    _sync(engine)
    console.print(f"[green]added[/] gateway {name} (id {gid})")
    print(key)


@gateways_app.command("list")
def gateways_list() -> None:
    from sqlalchemy import text

    with _engine(Settings(), 1).connect() as conn:
        for r in conn.execute(text("SELECT id, name, key_prefix, enabled, last_seen_at "
                                   "FROM gateway ORDER BY id")):
            console.print(f"{r[0]:4d}  {r[1]:24s}  {r[2]}…  "
                          f"{'enabled' if r[3] else 'revoked'}  last seen {r[4] or 'never'}")


@gateways_app.command("revoke")
def gateways_revoke(name: Annotated[str, typer.Argument()]) -> None:
    """Disable a gateway's key (HTTP and MQTT; a connected gateway is disconnected)."""
    from twin.sensors import gateways

    engine = _engine(Settings(), 1)
    with engine.begin() as conn:
        ok = gateways.revoke(conn, name)
    if not ok:
        _fail(f"no gateway {name!r}")
    _broker().remember(name, None)
    _sync(engine)
    console.print(f"revoked {name}")


@gateways_app.command("remove")
def gateways_remove(name: Annotated[str, typer.Argument()]) -> None:
    """Delete a gateway (its Things stay, owned by no gateway)."""
    from twin.sensors import gateways

    engine = _engine(Settings(), 1)
    with engine.begin() as conn:
        ok = gateways.remove(conn, name)
    if not ok:
        _fail(f"no gateway {name!r}")
    _broker().remember(name, None)
    _sync(engine)
    console.print(f"removed {name}")


if __name__ == "__main__":
    app()

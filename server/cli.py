"""The ``twin`` command line (typer). Heavy imports live inside the commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from server.cli_sensors import gateways_app, ingest_app, mqtt_app, sensors_app, simulate_app
from twin.errors import TwinError
from twin.settings import Settings

app = typer.Typer(help="Da Nang Twin: the city model, its APIs and viewer.", no_args_is_help=True)
db_app = typer.Typer(
    help="The database: managed cluster or TWIN_DATABASE_URL.", no_args_is_help=True
)
import_app = typer.Typer(
    help="Import real data (each import is one transaction).", no_args_is_help=True
)
layers_app = typer.Typer(help="The layer catalogue (data/layers.yaml).", no_args_is_help=True)
users_app = typer.Typer(help="User accounts.", no_args_is_help=True)
deploy_app = typer.Typer(help="Configuration for engines in front of the API.",
                         no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(deploy_app, name="deploy")
app.add_typer(import_app, name="import")
app.add_typer(layers_app, name="layers")
app.add_typer(users_app, name="users")
tiles_app = typer.Typer(help="Vector tiles: generalisation and export.", no_args_is_help=True)
app.add_typer(tiles_app, name="tiles")
app.add_typer(ingest_app, name="ingest")
app.add_typer(simulate_app, name="simulate")
app.add_typer(mqtt_app, name="mqtt")
app.add_typer(sensors_app, name="sensors")
app.add_typer(gateways_app, name="gateways")

console = Console()
err = Console(stderr=True)


def fail(message: str, code: int = 2) -> None:
    err.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


def _settings() -> Settings:
    return Settings()


# -- database -------------------------------------------------------------------------


@db_app.command("up")
def db_up() -> None:
    """Start the managed cluster (if managed), create the database and extensions."""
    from twin import localdb

    s = _settings()
    try:
        steps = localdb.up(s)
    except TwinError as exc:
        fail(str(exc))
    where = f"managed cluster in {s.pg_dir}" if s.managed else "TWIN_DATABASE_URL"
    done = ", ".join(k for k, v in steps.items() if v) or "already up"
    console.print(f"[green]database up[/] ({where}): {done}")


@db_app.command("down")
def db_down() -> None:
    """Stop the managed cluster."""
    from twin import localdb

    s = _settings()
    if not s.managed:
        fail("TWIN_DATABASE_URL is set: that server is not managed by twin")
    console.print("stopped" if localdb.stop(s) else "not running")


@db_app.command("status")
def db_status() -> None:
    """Say whether the database is reachable and migrated."""
    from twin import localdb
    from twin.db import make_engine, ping
    from twin.migrate import at_head, current_revision

    s = _settings()
    if s.managed:
        console.print(f"managed cluster: {s.pg_dir} port {s.db_port}: "
                      + ("running" if localdb.running(s) else "stopped"))
    engine = make_engine(s, pool_size=1)
    if not ping(engine):
        fail("database not reachable", code=1)
    rev = current_revision(engine)
    console.print(f"reachable; migration {rev or 'none'}" + (" (head)" if at_head(engine) else ""))


replica_app = typer.Typer(help="Streaming replicas of the managed cluster.",
                          no_args_is_help=True)
db_app.add_typer(replica_app, name="replica")
ReplicaPort = Annotated[int, typer.Option(help="the replica's port on 127.0.0.1")]


@replica_app.command("up")
def replica_up(port: ReplicaPort = 5545) -> None:
    """Make (pg_basebackup) and start a hot-standby replica; prints its URL."""
    from twin import localdb

    s = _settings()
    try:
        steps = localdb.replica_up(s, port)
    except TwinError as exc:
        fail(str(exc))
    done = [k for k, v in steps.items() if v] or ["already running"]
    console.print(f"replica on 127.0.0.1:{port}: {', '.join(done)}")
    console.print(f"TWIN_DATABASE_REPLICA_URLS={localdb.replica_url(s, port)}")


@replica_app.command("down")
def replica_down(port: ReplicaPort = 5545,
                 remove: Annotated[bool, typer.Option(help="delete its data")] = False) -> None:
    """Stop the replica (and delete its data with --remove)."""
    from twin import localdb

    was = localdb.replica_down(_settings(), port, remove=remove)
    console.print(f"replica on {port}: {'stopped' if was else 'was not running'}"
                  + (", removed" if remove else ""))


@replica_app.command("status")
def replica_status(port: ReplicaPort = 5545) -> None:
    """Whether the replica runs, is a standby, and how far behind the primary it is."""
    from twin import localdb
    from twin.db import ReplicaSet, make_engine

    s = _settings()
    if not localdb.replica_running(s, port):
        fail(f"no replica running on {port} (twin db replica up --port {port})", code=1)
    rs = ReplicaSet(s.model_copy(update={"database_replica_urls": localdb.replica_url(s, port)}),
                    make_engine(s, pool_size=1))
    rs.close()
    lag = rs.lag_bytes[0]
    console.print(f"replica on 127.0.0.1:{port}: {'healthy' if rs.healthy[0] else 'NOT healthy'}"
                  f", {'unreachable' if lag is None else f'{lag:.0f} bytes of WAL behind'}")
    if not rs.healthy[0]:
        raise typer.Exit(1)


@db_app.command("url")
def db_url() -> None:
    """Print the SQLAlchemy URL in use."""
    print(_settings().url())


@db_app.command("migrate")
def db_migrate() -> None:
    """Run Alembic migrations to head."""
    from twin.migrate import head_revision, upgrade

    try:
        upgrade(_settings().url())
    except Exception as exc:  # noqa: BLE001 - report any failure plainly
        fail(f"migration failed: {exc}")
    console.print(f"[green]migrated[/] to {head_revision()}")


# -- imports --------------------------------------------------------------------------


def _print_summary(summary: object) -> None:
    from twin.ingest.summary import OUTCOMES, Summary

    assert isinstance(summary, Summary)
    table = Table(title=f"import summary: {summary.source}")
    table.add_column("table")
    # "gone" (no longer in the file) and "deleted" (pruned) only when something is
    shown = [o for o in OUTCOMES if o not in ("gone", "deleted")
             or any(c[o] for c in summary.counts.values())]
    for o in shown:
        table.add_column(o, justify="right")
    for name, counts in summary.counts.items():
        table.add_row(name, *(str(counts[o]) for o in shown))
    console.print(table)
    for reason, n in summary.skipped_reasons.most_common():
        console.print(f"  skipped {n}: {reason}")
    for note in summary.notes:
        console.print(f"  {note}")


def _run_import(fn, *args, **kwargs) -> None:  # noqa: ANN001
    from twin.db import make_engine
    from twin.progress import rich_progress

    s = _settings()
    engine = make_engine(s, pool_size=1)
    try:
        with rich_progress(console) as reporter, engine.begin() as conn:
            summary = fn(conn, *args, reporter=reporter, **kwargs)
            _generalise(conn, reporter, summary)
    except TwinError as exc:
        fail(f"{exc} (nothing was changed)")
    except Exception as exc:  # noqa: BLE001
        fail(f"import failed: {type(exc).__name__}: {exc} (nothing was changed)")
    finally:
        engine.dispose()
    _print_summary(summary)


def _generalise(conn, reporter, summary) -> None:  # noqa: ANN001
    """Rebuild the low-zoom building blocks of the cells the import touched."""
    from layers.generalise import refresh

    cells, blocks, secs = refresh(conn, reporter)
    if cells:
        summary.notes.append(f"low-zoom buildings: {blocks} blocks in {cells} z14 cells "
                             f"({secs:.1f} s)")


PruneOpt = Annotated[bool, typer.Option(
    "--prune", help="delete what an earlier import of this source holds and the file no "
    "longer does (without it they are counted as gone and kept)")]


@import_app.command("osm")
def import_osm(file: Annotated[Path, typer.Argument(help=".osm XML or .pbf")],
               prune: PruneOpt = False) -> None:
    """Roads (routable), buildings, facilities and power from OpenStreetMap."""
    from twin.ingest.osm import import_osm as run

    _run_import(run, file, prune=prune)


@import_app.command("vector")
def import_vector(
    file: Annotated[Path, typer.Argument(help="GeoJSON, GPKG, Shapefile … (pyogrio)")],
    as_: Annotated[str, typer.Option("--as", help="target layer (table)")],
    map_: Annotated[
        list[str] | None, typer.Option("--map", help="field=column, repeatable")
    ] = None,
    layer: Annotated[str | None, typer.Option(help="layer inside the file")] = None,
    valid_from: Annotated[str | None, typer.Option(
        help="admin units: valid from this date (YYYY-MM-DD), where the file has none")] = None,
    valid_to: Annotated[str | None, typer.Option(
        help="admin units: valid until this date, exclusive (e.g. 2025-07-01)")] = None,
    prune: PruneOpt = False,
) -> None:
    """Any vector file pyogrio reads, into one of the model's tables."""
    import datetime as dt

    from twin.ingest.vector import import_vector as run

    dates: dict[str, dt.date] = {}
    for opt, value in (("valid_from", valid_from), ("valid_to", valid_to)):
        if value is not None:
            try:
                dates[opt] = dt.date.fromisoformat(value)
            except ValueError:
                fail(f"--{opt.replace('_', '-')} expects a date YYYY-MM-DD, got {value!r}")

    mapping: dict[str, str] = {}
    for item in map_ or []:
        if "=" not in item:
            fail(f"--map expects field=column, got {item!r}")
        field, column = item.split("=", 1)
        mapping[field.strip()] = column.strip()
    _run_import(run, file, as_, mapping, file_layer=layer, prune=prune, **dates)


@import_app.command("dem")
def import_dem(
    file: Annotated[Path, typer.Argument(help="GeoTIFF DEM")],
    name: Annotated[str | None, typer.Option(help="name to register (default: file stem)")] = None,
) -> None:
    """A DEM: checked, written as a Cloud-Optimised GeoTIFF, registered in `terrain`."""
    from twin.ingest.dem import import_dem as run

    _run_import(run, file, settings=_settings(), name=name)


@app.command("demo")
def demo(
    scale: Annotated[str, typer.Option(help="small | city | large")] = "city",
    seed: Annotated[int, typer.Option(help="random seed (same seed, same city)")] = 7,
) -> None:
    """Build the deterministic demo city of Đà Nẵng."""
    from twin.demo import SCALES, build_demo

    if scale not in SCALES:
        fail(f"unknown scale {scale!r}; choose one of {', '.join(SCALES)}")
    _run_import(build_demo, scale=scale, seed=seed, settings=_settings())
    from server.cli_sensors import sensors_demo

    sensors_demo(seed=seed)


# -- tiles ------------------------------------------------------------------------------


@tiles_app.command("generalise")
def tiles_generalise(
    everything: Annotated[bool, typer.Option(
        "--all", help="rebuild every cell, not only those written since their last rebuild")]
    = False,
) -> None:
    """Rebuild the merged building blocks the z13-14 tiles draw."""
    from layers.generalise import refresh
    from twin.db import make_engine
    from twin.progress import rich_progress

    engine = make_engine(_settings(), pool_size=1)
    try:
        with rich_progress(console) as reporter, engine.begin() as conn:
            cells, blocks, secs = refresh(conn, reporter, everything=everything)
    finally:
        engine.dispose()
    console.print(f"{blocks} blocks in {cells} z14 cells ({secs:.1f} s)"
                  if cells else "nothing to rebuild: every cell is up to date")


BASEMAP_LAYERS = "water,landuse,admin_boundaries,roads,buildings,places"


@tiles_app.command("export")
def tiles_export(
    out: Annotated[Path | None, typer.Argument(
        help="the .pmtiles file (default: TWIN_DATA_DIR/pmtiles/<layers>.pmtiles, which "
        "the server offers at /pmtiles/<name>.pmtiles)")] = None,
    layers: Annotated[str, typer.Option(help="comma-separated public layer ids")]
    = BASEMAP_LAYERS,
    minzoom: Annotated[int, typer.Option(help="lowest zoom")] = 12,
    maxzoom: Annotated[int, typer.Option(help="highest zoom (≤ 18)")] = 15,
    bbox: Annotated[str | None, typer.Option(
        help="minlon,minlat,maxlon,maxlat (default: the layers' extent)")] = None,
) -> None:
    """Write chosen layers and zooms into a PMTiles archive (for a CDN or offline use)."""
    from layers.catalog import load_catalog
    from layers.pmtiles_export import export
    from twin.db import make_engine
    from twin.geojson import parse_bbox
    from twin.progress import rich_progress

    s = _settings()
    catalog = load_catalog(s.layers_file)
    ids = [i.strip() for i in layers.split(",") if i.strip()]
    try:
        chosen = [catalog.get(i) for i in ids]
        box = parse_bbox(bbox) if bbox else None
    except TwinError as exc:
        fail(f"{exc}; layers: {', '.join(lyr.id for lyr in catalog.all())}")
    name = "basemap" if layers == BASEMAP_LAYERS else "-".join(ids)
    path = out or s.data_dir / "pmtiles" / f"{name}.pmtiles"
    engine = make_engine(s, pool_size=1)
    try:
        with rich_progress(console) as reporter, engine.connect() as conn:
            info = export(conn, chosen, path, minzoom, maxzoom, box, reporter)
    except TwinError as exc:
        fail(str(exc))
    finally:
        engine.dispose()
    console.print(f"{info['tiles']:,} tiles ({info['planned']:,} planned, empty ones left out), "
                  f"{info['file_bytes'] / 1e6:.1f} MB in {info['seconds']:.1f} s → {path}")


# -- layers and users -------------------------------------------------------------------


@layers_app.command("list")
def layers_list() -> None:
    """List the catalogue's layers."""
    from layers.catalog import load_catalog
    from layers.errors import CatalogError

    try:
        catalog = load_catalog(_settings().layers_file)
    except CatalogError as exc:
        fail(str(exc))
    table = Table(title="layers")
    for col in ("id", "title (vi)", "title (en)", "table", "geometry", "zoom", "access"):
        table.add_column(col)
    for lyr in catalog:
        table.add_row(lyr.id, lyr.title.vi, lyr.title.en, lyr.table, lyr.geometry_type,
                      f"{lyr.minzoom}-{lyr.maxzoom}", lyr.access)
    console.print(table)


@layers_app.command("check")
def layers_check() -> None:
    """Validate the catalogue file against the database."""
    from layers.catalog import check_catalog, load_catalog
    from layers.errors import CatalogError
    from twin.db import make_engine

    s = _settings()
    try:
        catalog = load_catalog(s.layers_file)
    except CatalogError as exc:
        fail(str(exc))
    engine = make_engine(s, pool_size=1)
    with engine.connect() as conn:
        problems = check_catalog(conn, catalog)
    for p in problems:
        err.print(f"[red]✗[/] {p}")
    if problems:
        raise typer.Exit(1)
    console.print(f"[green]✓[/] {len(catalog)} layers match the database")


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="user name")],
    role: Annotated[str, typer.Option(help="citizen | responder | planner | admin")],
    password: Annotated[
        str | None, typer.Option(help="password (prompted when omitted)")
    ] = None,
) -> None:
    """Add a user with a role."""
    from twin.db import make_engine
    from twin.users import add_user

    if password is None:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    engine = make_engine(_settings(), pool_size=1)
    try:
        with engine.begin() as conn:
            uid = add_user(conn, name, password, role)
    except TwinError as exc:
        fail(str(exc))
    console.print(f"[green]added[/] user {name} ({role}), id {uid}")


@users_app.command("remove")
def users_remove(name: Annotated[str, typer.Argument(help="user name")]) -> None:
    """Remove a user; their tokens stop working within TWIN_USER_CACHE_SECONDS."""
    from twin.users import remove_user

    _users_change(remove_user, name)
    console.print(f"[green]removed[/] user {name}")


@users_app.command("role")
def users_role(
    name: Annotated[str, typer.Argument(help="user name")],
    role: Annotated[str, typer.Option(help="citizen | responder | planner | admin")],
) -> None:
    """Give a user another role; tokens carrying the old one stop working."""
    from twin.users import set_role

    _users_change(set_role, name, role)
    console.print(f"[green]{name}[/] is now {role}")


@users_app.command("list")
def users_list() -> None:
    """List users and their roles."""
    from twin.db import make_engine
    from twin.users import list_users

    engine = make_engine(_settings(), pool_size=1)
    with engine.connect() as conn:
        users = list_users(conn)
    table = Table(title="users")
    table.add_column("name")
    table.add_column("role")
    for name, role in users:
        table.add_row(name, role)
    console.print(table)


def _users_change(fn, *args: str) -> None:  # noqa: ANN001
    from twin.db import make_engine

    engine = make_engine(_settings(), pool_size=1)
    try:
        with engine.begin() as conn:
            fn(conn, *args)
    except TwinError as exc:
        fail(str(exc))


# -- serving ---------------------------------------------------------------------------


@app.command("serve")
def serve(
    host: Annotated[str | None, typer.Option()] = None,
    port: Annotated[int | None, typer.Option()] = None,
    workers: Annotated[int | None, typer.Option()] = None,
) -> None:
    """Serve the APIs and the viewer (uvicorn)."""
    import uvicorn

    s = _settings()
    # here, before uvicorn starts workers (each would die on it, and be restarted)
    if (problem := s.key_problem()) is not None:
        fail(f"refusing to serve: {problem} (or TWIN_ENVIRONMENT=development)")
    uvicorn.run(
        "server.app:create_app",
        factory=True,
        host=host or s.host,
        port=port or s.port,
        workers=workers or s.workers,
        log_level="info",
    )


@app.command("ready")
def ready() -> None:
    """Exit 0 when the database is reachable and migrated (used by make run)."""
    from twin.db import make_engine, ping
    from twin.migrate import at_head

    engine = make_engine(_settings(), pool_size=1)
    if not ping(engine) or not at_head(engine):
        raise typer.Exit(1)


@app.command("is-empty")
def is_empty() -> None:
    """Exit 0 when the city model holds no buildings (make run then builds the demo)."""
    from sqlalchemy import text

    from twin.db import make_engine

    engine = make_engine(_settings(), pool_size=1)
    with engine.connect() as conn:
        n = conn.execute(text("SELECT count(*) FROM (SELECT 1 FROM building LIMIT 1) b")).scalar()
    raise typer.Exit(0 if n == 0 else 1)


@deploy_app.command("nginx")
def deploy_nginx(
    prefix: Annotated[Path, typer.Option(help="folder for the config, cache and logs")] = Path(
        ".twin-data/nginx"),
    listen: Annotated[str, typer.Option(help="address:port nginx listens on")] = "127.0.0.1:8080",
    upstream: Annotated[list[str] | None, typer.Option(
        help="a `twin serve` host:port, repeatable (default: TWIN_HOST:TWIN_PORT)")] = None,
) -> None:
    """Write an nginx HTTP cache for the API (revalidates with our ETags, credentials
    uncached, /live streamed); run it with the printed command."""
    from server.nginx import write

    s = _settings()
    ups = upstream or [f"{s.host}:{s.port}"]
    conf = write(ups, listen=listen, prefix=prefix)
    console.print(f"wrote {conf} (upstreams {', '.join(ups)}, listening on {listen})")
    console.print(f"run: nginx -p {conf.parent} -c {conf} -g 'daemon off;'")


if __name__ == "__main__":
    app()

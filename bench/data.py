"""The benchmark database: the large demo city (≥ 100k buildings, ≥ 50k roads).

The default database is used when it holds enough; otherwise ``twin_bench`` is built
once with ``twin demo --scale large``. If the demo builder is not available, a
deterministic synthetic city of the same size is generated instead (and the report
says so).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import psycopg

from layers.versions import libpq_url
from twin.settings import Settings

MIN_BUILDINGS = 100_000
MIN_ROADS = 50_000
BENCH_DB = "twin_bench"
LOWZOOM_TABLE = "bench_building_lowzoom"
SYNTHETIC = "bench-synthetic"
WORLD = 40075016.68557849
HALF = WORLD / 2


def counts(url: str) -> tuple[int, int]:
    try:
        with psycopg.connect(libpq_url(url), connect_timeout=5) as conn:
            b = conn.execute("SELECT count(*) FROM building").fetchone()
            r = conn.execute("SELECT count(*) FROM road_segment").fetchone()
            return int(b[0]) if b else 0, int(r[0]) if r else 0
    except psycopg.Error:
        return 0, 0


def enough(url: str) -> bool:
    b, r = counts(url)
    return b >= MIN_BUILDINGS and r >= MIN_ROADS


def demo_built(url: str) -> bool:
    """The large demo is there, with at least MIN_BUILDINGS buildings and MIN_ROADS roads
    (a database built by an older, sparser ``large`` is rebuilt)."""
    try:
        with psycopg.connect(libpq_url(url), connect_timeout=5) as conn:
            b = conn.execute("SELECT count(*) FROM building WHERE source = 'demo'").fetchone()
            r = conn.execute("SELECT count(*) FROM road_segment WHERE source = 'demo'").fetchone()
    except psycopg.Error:
        return False
    return bool(b and r and b[0] >= MIN_BUILDINGS and r[0] >= MIN_ROADS)


def choose(log: Callable[[str], None]) -> tuple[str, str]:
    """The SQLAlchemy URL to benchmark on, and how its data came to be."""
    if os.environ.get("TWIN_BENCH_DATABASE_URL"):
        return os.environ["TWIN_BENCH_DATABASE_URL"], "given (TWIN_BENCH_DATABASE_URL)"
    base = Settings()
    if enough(base.url()):
        return base.url(), "default database"
    from twin import localdb
    from twin.migrate import upgrade

    url = base.url(BENCH_DB)
    if base.managed:
        localdb.init_cluster(base)
        localdb.start(base)
    localdb.ensure_database(base, BENCH_DB)
    upgrade(url)
    if enough(url) or demo_built(url):
        return url, _origin(url)
    if _demo_available():
        log(f"building the large demo city into {BENCH_DB} (once; a few minutes)")
        env = {**os.environ, "TWIN_DATABASE_URL": url}
        twin = Path(sys.executable).parent / "twin"
        res = subprocess.run([str(twin), "demo", "--scale", "large"], env=env,
                             capture_output=True, text=True)
        if res.returncode == 0 and demo_built(url):
            analyse(url)
            return url, "twin demo --scale large"
        log("demo build failed or too small; falling back to the synthetic city:\n"
            + res.stdout[-1500:] + res.stderr[-1500:])
    log(f"generating a synthetic city into {BENCH_DB}")
    synthesise(url)
    return url, _origin(url)


def _origin(url: str) -> str:
    with psycopg.connect(libpq_url(url)) as conn:
        row = conn.execute("SELECT count(*) FROM building WHERE source = %s",
                           (SYNTHETIC,)).fetchone()
    return "synthetic city (bench/data.py)" if row and row[0] else "twin demo --scale large"


def _demo_available() -> bool:
    try:
        import twin.demo as demo
    except ImportError:
        return False
    return hasattr(demo, "build_demo") and "large" in getattr(demo, "SCALES", ())


def synthesise(url: str, buildings: int = 120_000, roads: int = 60_000) -> None:
    """A deterministic city around Đà Nẵng: clustered rectangular buildings (8–30 m) and
    short road segments, in one transaction."""
    with psycopg.connect(libpq_url(url)) as conn:
        conn.execute("DELETE FROM road_segment WHERE source = %s", (SYNTHETIC,))
        conn.execute("DELETE FROM road_node WHERE source = %s", (SYNTHETIC,))
        conn.execute("DELETE FROM building WHERE source = %s", (SYNTHETIC,))
        conn.execute("SELECT setseed(0.42)")
        # 40 district centres; buildings fall around them (normal-ish spread ~1.5 km)
        conn.execute(
            """
            WITH c AS (
              SELECT k, 108.12 + random() * 0.16 AS cx, 15.97 + random() * 0.16 AS cy
              FROM generate_series(0, 39) k
            ), p AS (
              SELECT i, c.cx + (random() + random() + random() - 1.5) * 0.025 AS x,
                     c.cy + (random() + random() + random() - 1.5) * 0.025 AS y,
                     (8 + random() * 22) / 107000.0 AS w, (8 + random() * 22) / 111000.0 AS h,
                     1 + floor(random() * 12)::int AS lv, random() * 0.6 AS a
              FROM generate_series(1, %(n)s) i JOIN c ON c.k = i %% 40
            )
            INSERT INTO building (source, source_id, name, use, levels, height_m, address,
                                  ward, population, area_m2, geom)
            SELECT %(src)s, i::text, CASE WHEN i %% 9 = 0 THEN 'Nhà ' || i END,
                   (ARRAY['residential','residential','commercial','office','school',
                          'industrial','yes'])[1 + i %% 7],
                   lv, lv * 3.2, i || ' Đường Bạch Đằng', 'Phường ' || (i %% 45),
                   lv * 4, w * h * 107000 * 111000,
                   ST_Multi(ST_Rotate(ST_MakeEnvelope(x, y, x + w, y + h, 4326), a,
                                      ST_SetSRID(ST_Point(x, y), 4326)))
            FROM p
            """,
            {"n": buildings, "src": SYNTHETIC},
        )
        conn.execute(
            """
            CREATE TEMP TABLE seg ON COMMIT DROP AS
            SELECT i, x, y, x + cos(a) * l AS x2, y + sin(a) * l AS y2,
                   (ARRAY['motorway','trunk','primary','secondary','tertiary','residential',
                          'residential','residential','service','unclassified'])
                     [1 + floor(random() * 10)::int] AS cls
            FROM (SELECT i, 108.11 + random() * 0.18 AS x, 15.96 + random() * 0.18 AS y,
                         floor(random() * 4) * pi() / 2 + random() * 0.1 AS a,
                         (60 + random() * 240) / 107000.0 AS l
                  FROM generate_series(1, %(n)s) i) s
            """,
            {"n": roads},
        )
        conn.execute(
            """
            INSERT INTO road_node (source, source_id, geom)
            SELECT %(src)s, i || end_, ST_SetSRID(ST_Point(px, py), 4326)
            FROM seg, LATERAL (VALUES ('a', x, y), ('b', x2, y2)) v(end_, px, py)
            """,
            {"src": SYNTHETIC},
        )
        conn.execute(
            """
            INSERT INTO road_segment (source, source_id, from_node, to_node, road_class,
                name, oneway, maxspeed_kmh, bridge, length_m, cost, reverse_cost, geom)
            SELECT %(src)s, seg.i::text, a.id, b.id, seg.cls, 'Đường ' || seg.i, false, 40,
                   false, 150, 13.5, 13.5,
                   ST_SetSRID(ST_MakeLine(ST_Point(seg.x, seg.y), ST_Point(seg.x2, seg.y2)),
                              4326)
            FROM seg
            JOIN road_node a ON a.source = %(src)s AND a.source_id = seg.i || 'a'
            JOIN road_node b ON b.source = %(src)s AND b.source_id = seg.i || 'b'
            """,
            {"src": SYNTHETIC},
        )
        conn.commit()
    analyse(url)


def analyse(url: str) -> None:
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE building")
        conn.execute("VACUUM ANALYZE road_segment")


def is_clustered(url: str) -> bool:
    with psycopg.connect(libpq_url(url)) as conn:
        row = conn.execute(
            "SELECT i.indisclustered FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE c.relname = 'idx_building_geom_3857'").fetchone()
    return bool(row and row[0])


def cluster(url: str, log: Callable[[str], None]) -> None:
    """Store buildings in the order of their spatial index (once), as a tile-serving
    database would: a tile's rows then sit on a few heap pages instead of one page
    each. Both servers read the same table."""
    if is_clustered(url):
        return
    log("clustering building on its EPSG:3857 GiST index (once)")
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute("CLUSTER building USING idx_building_geom_3857")
        conn.execute("ANALYZE building")


def sample_tiles(url: str, z: int, n: int, min_count: int = 50) -> list[tuple[int, int, int, int]]:
    """``n`` z-level tiles spread evenly over the ranks of all tiles holding at least
    ``min_count`` buildings (densest first): (z, x, y, buildings)."""
    size = WORLD / (1 << z)
    with psycopg.connect(libpq_url(url)) as conn:
        rows = conn.execute(
            """
            SELECT x, y, n FROM (
              SELECT floor((ST_X(c) + %(half)s) / %(size)s)::int AS x,
                     floor((%(half)s - ST_Y(c)) / %(size)s)::int AS y, count(*) AS n
              FROM (SELECT ST_Centroid(geom_3857) AS c FROM building) s GROUP BY 1, 2) t
            WHERE n >= %(min)s ORDER BY n DESC, x, y
            """,
            {"half": HALF, "size": size, "min": min_count},
        ).fetchall()
    if len(rows) > n > 1:
        rows = [rows[round(i * (len(rows) - 1) / (n - 1))] for i in range(n)]
    return [(z, int(x), int(y), int(c)) for x, y, c in rows]


def sample_bboxes(url: str, n: int, size_deg: float = 0.005) -> list[tuple[float, ...]]:
    """``n`` bboxes (~500 m) centred on buildings spread over the data (for items)."""
    with psycopg.connect(libpq_url(url)) as conn:
        rows = conn.execute(
            """
            SELECT ST_X(c), ST_Y(c) FROM (
              SELECT ST_Centroid(geom) AS c, row_number() OVER (ORDER BY id) AS r,
                     count(*) OVER () AS total FROM building) s
            WHERE r %% greatest(total / %(n)s, 1) = 0 LIMIT %(n)s
            """,
            {"n": n},
        ).fetchall()
    h = size_deg / 2
    return [(round(x - h, 6), round(y - h, 6), round(x + h, 6), round(y + h, 6))
            for x, y in rows]


def lowzoom_table(url: str, log: Callable[[str], None]) -> dict[str, float]:
    """Rebuild the generalised low-zoom buildings of dirty cells (timed), and copy them
    into ``LOWZOOM_TABLE`` the way tipg serves a table (id key, EPSG:4326 ``geom`` with
    a GiST index), so both servers draw the same blocks at z <= 14."""
    import time

    from sqlalchemy import text

    from layers.generalise import refresh
    from twin.db import make_engine

    engine = make_engine(Settings(database_url=url), pool_size=1)
    try:
        with engine.begin() as conn:
            cells, blocks, secs = refresh(conn)
            log(f"generalised buildings: {blocks} blocks rebuilt in {cells} cells ({secs:.1f} s)")
            started = time.perf_counter()
            conn.execute(text(f"DROP TABLE IF EXISTS {LOWZOOM_TABLE}"))
            conn.execute(text(
                f"CREATE TABLE {LOWZOOM_TABLE} AS SELECT fid AS id, name, use, levels, "
                "height_m, address, ward, area_m2, "
                "ST_Transform(geom_3857, 4326)::geometry(MultiPolygon, 4326) AS geom "
                "FROM building_generalised ORDER BY geom_3857"))
            conn.execute(text(f"ALTER TABLE {LOWZOOM_TABLE} ADD PRIMARY KEY (id)"))
            conn.execute(text(f"CREATE INDEX ON {LOWZOOM_TABLE} USING gist (geom)"))
            total = conn.execute(text("SELECT count(*), (SELECT count(*) FROM building) "
                                      "FROM building_generalised")).one()
            conn.execute(text(f"ANALYZE {LOWZOOM_TABLE}"))
            conn.execute(text("ANALYZE building_generalised"))
        return {"blocks": float(total[0]), "buildings": float(total[1]),
                "rebuild_s": round(secs, 1),
                "copy_s": round(time.perf_counter() - started, 1)}
    finally:
        engine.dispose()

"""building_generalised: merged building blocks for the low-zoom building tiles

Revision ID: 0012
Revises: 0011

At z13–14 a tile of a dense district holds thousands of single footprints (7,479 and
205 KB gzip on the ``large`` demo) that draw as a grey smear. The buildings layer reads
this table there instead: footprints closer than ~10 m merged into blocks (DBSCAN on the
EPSG:3857 copy, a 5 m closing, simplified by 2 m; alleys narrower than ~10 m vanish, as on
a printed map at this scale), one row per block with its members'
attributes summarised, computed per z14 cell (the tile a building's box centre falls
in).

The table follows ``building`` through a change feed of its own: statement triggers on
``building`` record the cells a write touched in ``building_generalised_dirty``; the
tile query draws the raw footprints of a dirty cell, so a tile is never stale, and
``twin_generalise_cells`` rebuilds the cells (importers, the demo, ``twin tiles
generalise`` and the server's background refresher call it). A rebuild bumps
``building``'s table version, so cached tiles and ETags follow.
"""
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

HALF_WORLD = 20037508.342789244
CELL = 2 * HALF_WORLD / 16384  # a z14 tile, in EPSG:3857 metres
EPS_M = 10.0  # footprints closer than this (EPSG:3857 metres, ~0.96 m on the ground) merge
CLOSE_M = 5.0  # the closing (buffer out, union, buffer in) that fills the gaps between them
SIMPLIFY_M = 2.0  # below half a pixel of a 512-px z14 tile (4.8 m)


def upgrade() -> None:
    op.execute(f"""
        CREATE FUNCTION twin_cell14(g geometry) RETURNS bigint
        LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
          SELECT (floor(((ST_XMin(g) + ST_XMax(g)) / 2 + {HALF_WORLD}) / {CELL})::bigint
                  * 16384
                  + floor(({HALF_WORLD} - (ST_YMin(g) + ST_YMax(g)) / 2) / {CELL})::bigint)
        $$
    """)
    op.execute("""
        CREATE TABLE building_generalised (
          id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
          cell bigint NOT NULL,
          fid bigint NOT NULL,
          members integer NOT NULL,
          name text, use text, levels integer, height_m double precision,
          address text, ward text, population integer, area_m2 double precision,
          geom_3857 geometry(MultiPolygon, 3857) NOT NULL
        )
    """)
    op.execute("CREATE INDEX ix_building_generalised_geom_3857 ON building_generalised "
               "USING gist (geom_3857)")
    op.execute("CREATE INDEX ix_building_generalised_cell ON building_generalised (cell)")
    op.execute("CREATE TABLE building_generalised_dirty (cell bigint PRIMARY KEY)")
    # every cell that holds buildings starts dirty: the first refresh builds them all
    op.execute("INSERT INTO building_generalised_dirty SELECT DISTINCT twin_cell14(geom_3857) "
               "FROM building WHERE geom_3857 IS NOT NULL ON CONFLICT DO NOTHING")
    for event, tables in (("INSERT", "NEW TABLE AS new_rows"),
                          ("UPDATE", "OLD TABLE AS old_rows NEW TABLE AS new_rows"),
                          ("DELETE", "OLD TABLE AS old_rows")):
        parts = []
        if "new_rows" in tables:
            parts.append("SELECT twin_cell14(geom_3857) FROM new_rows WHERE geom_3857 IS NOT NULL")
        if "old_rows" in tables:
            parts.append("SELECT twin_cell14(geom_3857) FROM old_rows WHERE geom_3857 IS NOT NULL")
        name = f"twin_building_dirty_{event.lower()}"
        op.execute(f"""
            CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              INSERT INTO building_generalised_dirty (cell)
              SELECT DISTINCT c FROM ({' UNION ALL '.join(parts)}) AS t(c)
              ON CONFLICT DO NOTHING;
              RETURN NULL;
            END $$
        """)
        op.execute(f"CREATE TRIGGER trg_building_dirty_{event.lower()} AFTER {event} ON building "
                   f"REFERENCING {tables} FOR EACH STATEMENT EXECUTE FUNCTION {name}()")
    op.execute("""
        CREATE FUNCTION twin_building_dirty_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          DELETE FROM building_generalised;
          DELETE FROM building_generalised_dirty;
          RETURN NULL;
        END $$
    """)
    op.execute("CREATE TRIGGER trg_building_dirty_truncate AFTER TRUNCATE ON building "
               "FOR EACH STATEMENT EXECUTE FUNCTION twin_building_dirty_truncate()")
    op.execute(f"""
        CREATE OR REPLACE FUNCTION twin_generalise_cells(cells bigint[]) RETURNS integer
        LANGUAGE plpgsql AS $$
        DECLARE
          n integer;
        BEGIN
          DELETE FROM building_generalised WHERE cell = ANY(cells);
          INSERT INTO building_generalised (cell, fid, members, name, use, levels, height_m,
                                            address, ward, population, area_m2, geom_3857)
          SELECT cell, fid, members, name, use, levels, height_m, address, ward, population,
                 area_m2, geom
          FROM (
            SELECT k.cell,
                   (array_agg(k.id ORDER BY k.area_m2 DESC NULLS LAST, k.id))[1] AS fid,
                   count(*)::int AS members,
                   CASE WHEN count(*) = 1 THEN max(k.name) END AS name,
                   mode() WITHIN GROUP (ORDER BY k.use) AS use,
                   max(k.levels) AS levels,
                   max(k.height_m) AS height_m,
                   CASE WHEN count(*) = 1 THEN max(k.address) END AS address,
                   mode() WITHIN GROUP (ORDER BY k.ward) AS ward,
                   sum(k.population)::int AS population,
                   sum(k.area_m2) AS area_m2,
                   ST_Multi(ST_CollectionExtract(ST_MakeValid(ST_SimplifyPreserveTopology(
                     CASE WHEN count(*) = 1 THEN ST_Union(k.g)
                          ELSE ST_Buffer(ST_Union(ST_Buffer(k.g, {CLOSE_M},
                                                            'join=mitre mitre_limit=2')),
                                         -{CLOSE_M}, 'join=mitre mitre_limit=2') END,
                     {SIMPLIFY_M})), 3)) AS geom
            FROM (
              SELECT b.*, ST_ClusterDBSCAN(b.g, eps := {EPS_M}, minpoints := 1)
                            OVER (PARTITION BY b.cell) AS k
              FROM (
                SELECT f.id, f.name, f.use, f.levels, f.height_m, f.address, f.ward,
                       f.population, f.area_m2, f.geom_3857 AS g, c.cell
                FROM unnest(cells) AS c(cell)
                JOIN building f
                  ON f.geom_3857 && ST_TileEnvelope(14, (c.cell / 16384)::int,
                                                    (c.cell % 16384)::int)
                 AND twin_cell14(f.geom_3857) = c.cell
                WHERE f.geom_3857 IS NOT NULL
              ) AS b
            ) AS k
            GROUP BY k.cell, k.k
          ) AS blocks
          WHERE NOT ST_IsEmpty(geom);
          GET DIAGNOSTICS n = ROW_COUNT;
          DELETE FROM building_generalised_dirty WHERE cell = ANY(cells);
          RETURN n;
        END $$
    """)
    # a rebuild changes what the buildings layer's low-zoom tiles hold: bump 'building'
    op.execute("""
        CREATE FUNCTION twin_bump_building_version() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
          INSERT INTO table_version (table_name, version, changed_at)
          VALUES ('building', 1, now())
          ON CONFLICT (table_name)
          DO UPDATE SET version = table_version.version + 1, changed_at = now();
          PERFORM pg_notify('twin_table', 'building');
          RETURN NULL;
        END $$
    """)
    op.execute("CREATE TRIGGER trg_building_generalised_version AFTER INSERT OR UPDATE OR "
               "DELETE ON building_generalised FOR EACH STATEMENT "
               "EXECUTE FUNCTION twin_bump_building_version()")


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS trg_building_generalised_version ON building_generalised")
    op.execute("DROP FUNCTION IF EXISTS twin_bump_building_version()")
    op.execute("DROP FUNCTION IF EXISTS twin_generalise_cells(bigint[])")
    for event in ("insert", "update", "delete", "truncate"):
        op.execute(f"DROP TRIGGER IF EXISTS trg_building_dirty_{event} ON building")
        op.execute(f"DROP FUNCTION IF EXISTS twin_building_dirty_{event}()")
    op.execute("DROP TABLE IF EXISTS building_generalised_dirty")
    op.execute("DROP TABLE IF EXISTS building_generalised")
    op.execute("DROP FUNCTION IF EXISTS twin_cell14(geometry)")

"""building_generalised_z14: the blocks' z14 tile geometry, computed when they are built

Revision ID: 0017
Revises: 0016

A z14 building tile draws the merged blocks of ``building_generalised`` (0012). Drawing
them meant one ``ST_AsMVTGeom`` per block and request (transform to tile units, snap,
validate, clip): most of the tile's SQL. The blocks only change when their cell is
rebuilt, so this table holds that function's answer for every z14 tile a block reaches
(its 64-unit buffer included), written by the same rebuild: a z14 tile is then one index
scan and ``ST_AsMVT``. A dirty cell still draws its raw footprints through
``ST_AsMVTGeom``, so a tile is right at every moment, as before.
"""
from alembic import op

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None

HALF_WORLD = 20037508.342789244
CELL = 2 * HALF_WORLD / 16384  # a z14 tile, in EPSG:3857 metres
EXTENT, BUFFER = 4096, 64  # layers/mvt.py: the tiles' extent and clip buffer
MARGIN_M = CELL * BUFFER / EXTENT

FILL = f"""
    DELETE FROM building_generalised_z14 WHERE cell = ANY(cells);
    INSERT INTO building_generalised_z14 (tile, cell, fid, name, use, levels, height_m,
                                          address, ward, population, area_m2, geom)
    SELECT t.x::bigint * 16384 + t.y, g.cell, g.fid, g.name, g.use, g.levels, g.height_m,
           g.address, g.ward, g.population, g.area_m2, m.geom
    FROM building_generalised AS g
    CROSS JOIN LATERAL (
      SELECT x, y
      FROM generate_series(
             greatest(0, floor((ST_XMin(g.geom_3857) + {HALF_WORLD} - {MARGIN_M}) / {CELL}))::int,
             least(16383, floor((ST_XMax(g.geom_3857) + {HALF_WORLD} + {MARGIN_M}) / {CELL}))::int
           ) AS x,
           generate_series(
             greatest(0, floor(({HALF_WORLD} - ST_YMax(g.geom_3857) - {MARGIN_M}) / {CELL}))::int,
             least(16383, floor(({HALF_WORLD} - ST_YMin(g.geom_3857) + {MARGIN_M}) / {CELL}))::int
           ) AS y
    ) AS t
    CROSS JOIN LATERAL (
      SELECT ST_AsMVTGeom(g.geom_3857, ST_TileEnvelope(14, t.x, t.y), {EXTENT}, {BUFFER},
                          true) AS geom
    ) AS m
    WHERE g.cell = ANY(cells) AND m.geom IS NOT NULL
    ORDER BY 1;
"""


def upgrade() -> None:
    op.execute("""
        CREATE TABLE building_generalised_z14 (
          tile bigint NOT NULL,
          cell bigint NOT NULL,
          fid bigint NOT NULL,
          name text, use text, levels integer, height_m double precision,
          address text, ward text, population integer, area_m2 double precision,
          geom geometry NOT NULL
        )
    """)
    op.execute("COMMENT ON TABLE building_generalised_z14 IS 'ST_AsMVTGeom of each "
               "building_generalised block for each z14 tile it reaches (tile = x * 16384 + y; "
               "geom in tile units); rebuilt with the block''s cell'")
    op.execute("CREATE INDEX ix_building_generalised_z14_tile ON building_generalised_z14 (tile)")
    op.execute("CREATE INDEX ix_building_generalised_z14_cell ON building_generalised_z14 (cell)")
    # the blocks' rebuild (0012) keeps its body under a new name; the rebuild the callers
    # know runs it, then writes the rebuilt cells' z14 tile geometry
    op.execute("ALTER FUNCTION twin_generalise_cells(bigint[]) RENAME TO twin_generalise_blocks")
    op.execute(f"""
        CREATE FUNCTION twin_generalise_z14(cells bigint[]) RETURNS void
        LANGUAGE plpgsql AS $$
        BEGIN
          {FILL}
        END $$
    """)
    op.execute("""
        CREATE FUNCTION twin_generalise_cells(cells bigint[]) RETURNS integer
        LANGUAGE plpgsql AS $$
        DECLARE
          n integer;
        BEGIN
          n := twin_generalise_blocks(cells);
          PERFORM twin_generalise_z14(cells);
          RETURN n;
        END $$
    """)
    op.execute("""
        CREATE OR REPLACE FUNCTION twin_building_dirty_truncate() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
          DELETE FROM building_generalised_z14;
          DELETE FROM building_generalised;
          DELETE FROM building_generalised_dirty;
          RETURN NULL;
        END $$
    """)
    # the blocks built so far
    op.execute("SELECT twin_generalise_z14(ARRAY(SELECT DISTINCT cell FROM building_generalised))")


def downgrade() -> None:
    op.execute("""
        CREATE OR REPLACE FUNCTION twin_building_dirty_truncate() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
          DELETE FROM building_generalised;
          DELETE FROM building_generalised_dirty;
          RETURN NULL;
        END $$
    """)
    op.execute("DROP FUNCTION IF EXISTS twin_generalise_cells(bigint[])")
    op.execute("DROP FUNCTION IF EXISTS twin_generalise_z14(bigint[])")
    op.execute("ALTER FUNCTION twin_generalise_blocks(bigint[]) RENAME TO twin_generalise_cells")
    op.execute("DROP TABLE IF EXISTS building_generalised_z14")

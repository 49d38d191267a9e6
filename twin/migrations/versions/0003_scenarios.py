"""what-if scenarios (flood, closure, outage)

Revision ID: 0003
Revises: 0002
"""
from alembic import op
import sqlalchemy as sa
import geoalchemy2
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_geospatial_table(
        'scenario',
        sa.Column('id', sa.BigInteger(), nullable=False),
        sa.Column('kind', sa.Text(), nullable=False),
        sa.Column('name', sa.Text(), nullable=True),
        sa.Column('params', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column('result', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'),
                  nullable=False),
        sa.Column('created_by', sa.Text(), nullable=True),
        sa.Column('public', sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column('raster_path', sa.Text(), nullable=True),
        sa.Column('geom', Geometry(geometry_type='MULTIPOLYGON', srid=4326, spatial_index=False,
                                   from_text='ST_GeomFromEWKT', name='geometry'), nullable=True),
        sa.Column('geom_3857', Geometry(geometry_type='MULTIPOLYGON', srid=3857,
                                        spatial_index=False, from_text='ST_GeomFromEWKT',
                                        name='geometry'),
                  sa.Computed('ST_Transform(geom, 3857)', persisted=True), nullable=True),
        sa.CheckConstraint("kind IN ('flood', 'closure', 'outage')",
                           name=op.f('ck_scenario_kind_known')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_scenario')),
    )
    op.create_geospatial_index('idx_scenario_geom', 'scenario', ['geom'], unique=False,
                               postgresql_using='gist', postgresql_ops={})
    op.create_geospatial_index('idx_scenario_geom_3857', 'scenario', ['geom_3857'],
                               unique=False, postgresql_using='gist', postgresql_ops={})
    op.create_index(op.f('ix_scenario_kind'), 'scenario', ['kind'], unique=False)
    op.create_index(op.f('ix_scenario_created_at'), 'scenario', ['created_at'], unique=False)
    op.execute("INSERT INTO table_version (table_name, version) VALUES ('scenario', 1) "
               "ON CONFLICT (table_name) DO NOTHING")
    op.execute(
        "CREATE TRIGGER trg_scenario_version AFTER INSERT OR UPDATE OR DELETE "
        "ON scenario FOR EACH STATEMENT EXECUTE FUNCTION twin_bump_version()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS trg_scenario_version ON scenario")
    op.execute("DELETE FROM table_version WHERE table_name = 'scenario'")
    op.drop_index(op.f('ix_scenario_created_at'), table_name='scenario')
    op.drop_index(op.f('ix_scenario_kind'), table_name='scenario')
    op.drop_geospatial_index('idx_scenario_geom_3857', table_name='scenario',
                             postgresql_using='gist', column_name='geom_3857')
    op.drop_geospatial_index('idx_scenario_geom', table_name='scenario',
                             postgresql_using='gist', column_name='geom')
    op.drop_geospatial_table('scenario')

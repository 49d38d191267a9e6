"""road_restriction: turn restrictions as forbidden sequences of road segments

Revision ID: 0011
Revises: 0010

OSM ``type=restriction`` relations (from way, via node or way, to way) become the
segment paths a drive may not take: ``no_*`` one path ``[from, (via,) to]``, ``only_*``
one path for every other way out of the via node. Drive routing passes them to
``pgr_trsp`` (pgRouting's restriction-aware Dijkstra).
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'road_restriction',
        sa.Column('id', sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column('source', sa.Text(), nullable=False),
        sa.Column('source_id', sa.Text(), nullable=False),
        sa.Column('kind', sa.Text(), nullable=False),
        sa.Column('path', postgresql.ARRAY(sa.BigInteger()), nullable=False),
    )
    # the via point: routing picks the restrictions inside its box
    op.execute("ALTER TABLE road_restriction ADD COLUMN geom geometry(Point, 4326)")
    op.create_index('ix_road_restriction_source', 'road_restriction', ['source', 'source_id'])
    op.execute("CREATE INDEX idx_road_restriction_geom ON road_restriction USING gist (geom)")


def downgrade() -> None:
    op.drop_table('road_restriction')

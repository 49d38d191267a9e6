"""road nodes know their connected component (routing snaps to large components)

Revision ID: 0006
Revises: 0005

``road_node.component`` (the smallest node id of its connected component on the
undirected road graph, as pgr_connectedComponents numbers them) and
``road_node.component_size`` (nodes in that component; a node with no segment is a
component of one). Importers refresh them after every road write; existing networks are
computed here.
"""
from alembic import op
import sqlalchemy as sa

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('road_node', sa.Column('component', sa.BigInteger(), nullable=True))
    op.add_column('road_node', sa.Column('component_size', sa.Integer(), nullable=True))
    op.create_index(op.f('ix_road_node_component_size'), 'road_node', ['component_size'],
                    unique=False)
    op.execute(
        """
        WITH cc AS (
            SELECT node, component FROM pgr_connectedComponents(
                'SELECT id, from_node AS source, to_node AS target, 1::float8 AS cost,
                        1::float8 AS reverse_cost FROM road_segment')
        ), sized AS (
            SELECT n.id, coalesce(cc.component, n.id) AS component,
                   count(*) OVER (PARTITION BY coalesce(cc.component, n.id))::int AS size
            FROM road_node n LEFT JOIN cc ON cc.node = n.id
        )
        UPDATE road_node r SET component = s.component, component_size = s.size
        FROM sized s WHERE r.id = s.id
        """
    )


def downgrade() -> None:
    op.drop_index(op.f('ix_road_node_component_size'), table_name='road_node')
    op.drop_column('road_node', 'component_size')
    op.drop_column('road_node', 'component')

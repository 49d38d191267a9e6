"""scenario description (issue 13: saved scenarios renamed and described by their author)

Revision ID: 0015
Revises: 0014
"""
from alembic import op
import sqlalchemy as sa

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('scenario', sa.Column('description', sa.Text(), nullable=True))
    op.create_index(op.f('ix_scenario_created_by'), 'scenario', ['created_by'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_scenario_created_by'), table_name='scenario')
    op.drop_column('scenario', 'description')

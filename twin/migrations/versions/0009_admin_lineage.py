"""admin_lineage: which old unit became which new one, on which day, with what share

Revision ID: 0009
Revises: 0007

Đà Nẵng's 2025-07-01 reform abolished the districts and merged the old wards; the
facts of that merge (old ward → new ward) used to live only in the demo's YAML. One row
per (old unit, new unit, day); ``share`` is the part of the old unit that went to the
new one (1 for a whole ward merged, an area share for a district, NULL when unknown).
Old units without a polygon in ``admin_area`` (the pre-2025 wards) are named here.
"""
from alembic import op
import sqlalchemy as sa

revision = '0009'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'admin_lineage',
        sa.Column('id', sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column('old_code', sa.Text(), nullable=False),
        sa.Column('old_name_vi', sa.Text(), nullable=False),
        sa.Column('old_level', sa.Text(), nullable=False),
        sa.Column('old_parent_code', sa.Text(), nullable=True),
        sa.Column('new_code', sa.Text(), nullable=False),
        sa.Column('new_name_vi', sa.Text(), nullable=False),
        sa.Column('new_level', sa.Text(), nullable=False),
        sa.Column('changed_on', sa.Date(), nullable=False),
        sa.Column('share', sa.Float(), nullable=True),
        sa.Column('source', sa.Text(), nullable=False),
        sa.Column('verified', sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.UniqueConstraint('old_code', 'new_code', 'changed_on', name='uq_admin_lineage'),
    )
    op.create_index('ix_admin_lineage_old_code', 'admin_lineage', ['old_code'])
    op.create_index('ix_admin_lineage_new_code', 'admin_lineage', ['new_code'])


def downgrade() -> None:
    op.drop_table('admin_lineage')

"""admin_area (name_vi) index: an incident's ward_en is looked up by its ward's name

Revision ID: 0018
Revises: 0017

Every incident row read (the /ops list asks for 500) looks up its ward's English name
by ``name_vi`` (``twin/incidents/store.COLUMNS``); without an index that is a scan of
the admin areas per row.
"""
from alembic import op

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE INDEX IF NOT EXISTS ix_admin_area_name_vi ON admin_area (name_vi)")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_admin_area_name_vi")

"""job: OGC API - Processes jobs (what-if analyses run asynchronously)

Revision ID: 0014
Revises: 0013

One row per job: the process and its inputs, who submitted it, its status
(accepted, running, successful, failed; a dismissed job's row is removed), progress,
times, the answer or the error, and the stored scenario it produced. ``instance`` is
the server instance running it: each instance holds a PostgreSQL advisory lock on its
number while it runs jobs, so a starting server can tell a job whose server died.
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'job',
        sa.Column('id', sa.Text(), primary_key=True),
        sa.Column('process', sa.Text(), nullable=False),
        sa.Column('status', sa.Text(), nullable=False, server_default='accepted'),
        sa.Column('progress', sa.SmallInteger(), nullable=False, server_default='0'),
        sa.Column('message', sa.Text()),
        sa.Column('owner', sa.Text()),
        sa.Column('inputs', postgresql.JSONB(), nullable=False),
        sa.Column('result', postgresql.JSONB()),
        sa.Column('error', postgresql.JSONB()),
        sa.Column('scenario_id', sa.BigInteger(),
                  sa.ForeignKey('scenario.id', ondelete='SET NULL')),
        sa.Column('instance', sa.Integer()),
        sa.Column('created', sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.func.now()),
        sa.Column('started', sa.DateTime(timezone=True)),
        sa.Column('finished', sa.DateTime(timezone=True)),
        sa.Column('updated', sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.func.now()),
        sa.CheckConstraint("status IN ('accepted', 'running', 'successful', 'failed', "
                           "'dismissed')", name='status_known'),
        sa.CheckConstraint('progress BETWEEN 0 AND 100', name='progress_range'),
    )
    op.create_index('ix_job_created', 'job', ['created'])
    op.create_index('ix_job_owner_created', 'job', ['owner', 'created'])
    op.execute("CREATE INDEX ix_job_active ON job (instance) "
               "WHERE status IN ('accepted', 'running')")


def downgrade() -> None:
    op.drop_table('job')

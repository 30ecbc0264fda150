"""each version keeps how many of its changes its diff policy turned off, by rule

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-01 05:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_versions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("suppressed", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_versions", schema=None) as batch_op:
        batch_op.drop_column("suppressed")

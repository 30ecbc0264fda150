"""the last conformance run of each version

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24 20:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_versions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("conformance", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_versions", schema=None) as batch_op:
        batch_op.drop_column("conformance")

"""each version keeps its changes against its predecessor

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 19:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_versions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("base_version", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("required_bump", sa.String(length=10), nullable=True))
        batch_op.add_column(sa.Column("breaking", sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column("change_count", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("changes", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_versions", schema=None) as batch_op:
        for column in ("changes", "change_count", "breaking", "required_bump", "base_version"):
            batch_op.drop_column(column)

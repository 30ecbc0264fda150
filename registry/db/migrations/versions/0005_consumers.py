"""consumers of APIs: version ranges and the operations they call

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24 20:05:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "consumers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("api_id", sa.Integer(), nullable=False),
        sa.Column("consumer", sa.String(length=100), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("versions", sa.String(length=200), nullable=False),
        sa.Column("operations", sa.JSON(), nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("registered_by", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(["api_id"], ["apis.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["team_id"], ["teams.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("api_id", "consumer", name="uq_consumers_api_consumer"),
    )
    op.create_index(op.f("ix_consumers_api_id"), "consumers", ["api_id"], unique=False)
    op.create_index(op.f("ix_consumers_team_id"), "consumers", ["team_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_consumers_team_id"), table_name="consumers")
    op.drop_index(op.f("ix_consumers_api_id"), table_name="consumers")
    op.drop_table("consumers")

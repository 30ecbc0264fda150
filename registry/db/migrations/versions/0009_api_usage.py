"""calls through the gateway per version, operation and consumer

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-24 20:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_usage",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("api", sa.String(length=100), nullable=False),
        sa.Column("version", sa.String(length=100), nullable=False),
        sa.Column("operation", sa.String(length=600), nullable=False),
        sa.Column("consumer", sa.String(length=200), nullable=False),
        sa.Column("calls", sa.BigInteger(), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("api", "version", "operation", "consumer", name="uq_api_usage"),
    )
    op.create_index(op.f("ix_api_usage_api"), "api_usage", ["api"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_api_usage_api"), table_name="api_usage")
    op.drop_table("api_usage")

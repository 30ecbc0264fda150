"""calls through the gateway per version, consumer and day

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-30 22:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Starts empty: the totals kept so far carry no dates to spread over days.
    op.create_table(
        "api_daily_usage",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("api", sa.String(length=100), nullable=False),
        sa.Column("version", sa.String(length=100), nullable=False),
        sa.Column("consumer", sa.String(length=200), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("calls", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("api", "version", "consumer", "day", name="uq_api_daily_usage"),
    )
    op.create_index("ix_api_daily_usage_api_day", "api_daily_usage", ["api", "day"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_api_daily_usage_api_day", table_name="api_daily_usage")
    op.drop_table("api_daily_usage")

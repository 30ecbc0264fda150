"""what the gateway measured against each API's SLA, per version and minute; burn alerts firing

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-01 01:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

# Frozen here: gateway.service_levels' 61 latency bounds and the bucket above them.
BUCKETS = 62


def upgrade() -> None:
    op.create_table(
        "api_service_minutes",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("api", sa.String(length=100), nullable=False),
        sa.Column("version", sa.String(length=100), nullable=False),
        sa.Column("minute", sa.DateTime(timezone=True), nullable=False),
        sa.Column("requests", sa.BigInteger(), nullable=False),
        sa.Column("errors", sa.BigInteger(), nullable=False),
        sa.Column("throttled", sa.BigInteger(), nullable=False),
        *(sa.Column(f"b{index}", sa.BigInteger(), nullable=False) for index in range(BUCKETS)),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("api", "version", "minute", name="uq_api_service_minutes"),
    )
    op.create_index("ix_api_service_minutes_api_minute", "api_service_minutes", ["api", "minute"])
    op.create_index("ix_api_service_minutes_minute", "api_service_minutes", ["minute"])
    op.create_table(
        "api_slo_alerts",
        sa.Column("api", sa.String(length=100), nullable=False),
        sa.Column("severity", sa.String(length=20), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("api", "severity"),
    )


def downgrade() -> None:
    op.drop_table("api_slo_alerts")
    op.drop_index("ix_api_service_minutes_minute", table_name="api_service_minutes")
    op.drop_index("ix_api_service_minutes_api_minute", table_name="api_service_minutes")
    op.drop_table("api_service_minutes")

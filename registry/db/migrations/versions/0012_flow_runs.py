"""flow runs index

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30 17:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "flow_runs",
        sa.Column("id", sa.String(length=100), nullable=False),
        sa.Column("flow", sa.String(length=200), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("record", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_flow_runs_flow_state", "flow_runs", ["flow", "state"], unique=False)
    op.create_index(op.f("ix_flow_runs_state"), "flow_runs", ["state"], unique=False)
    op.create_index(op.f("ix_flow_runs_created_at"), "flow_runs", ["created_at"], unique=False)
    op.create_table(
        "flow_run_keys",
        sa.Column("run_id", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("value", sa.String(length=500), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["flow_runs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("run_id", "name"),
    )
    op.create_index(op.f("ix_flow_run_keys_value"), "flow_run_keys", ["value"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_flow_run_keys_value"), table_name="flow_run_keys")
    op.drop_table("flow_run_keys")
    op.drop_index(op.f("ix_flow_runs_created_at"), table_name="flow_runs")
    op.drop_index(op.f("ix_flow_runs_state"), table_name="flow_runs")
    op.drop_index("ix_flow_runs_flow_state", table_name="flow_runs")
    op.drop_table("flow_runs")

"""schemas that declare a canonical model (`x-canonical`), for a model's dependents

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-01 01:00:00

Versions stored before this revision are not read again: their declarations were never checked,
so they count as dependents once a new version declaring a model is published.
"""

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "canonical_declarations",
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("pointer", sa.String(length=1000), nullable=False),
        sa.Column("canonical", sa.String(length=100), nullable=False),
        sa.Column("range", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(["version_id"], ["api_versions.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("version_id", "pointer"),
    )
    with op.batch_alter_table("canonical_declarations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_canonical_declarations_canonical"), ["canonical"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("canonical_declarations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_canonical_declarations_canonical"))
    op.drop_table("canonical_declarations")

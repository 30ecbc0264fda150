"""webhook secrets sealed at rest

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-25 10:00:00

Existing clear-text secrets are sealed with the key the server starts with: `registry.db.engine.migrate`
hands its SecretBox over in the Alembic config's attributes.
"""

import sqlalchemy as sa
from alembic import context, op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_consumers = sa.table(
    "consumers",
    sa.column("id", sa.Integer),
    sa.column("webhook_secret", sa.String),
    sa.column("webhook_secret_sealed", sa.Text),
)


def _convert(source: sa.ColumnClause, target: str, convert_name: str) -> None:
    bind = op.get_bind()
    rows = bind.execute(sa.select(_consumers.c.id, source).where(source.is_not(None))).all()
    if not rows:
        return
    box = context.config.attributes.get("secret_box")
    if box is None:
        raise RuntimeError("webhook secrets need the secrets key: run this migration through `charter serve`")
    convert = getattr(box, convert_name)
    for row_id, value in rows:
        bind.execute(_consumers.update().where(_consumers.c.id == row_id).values({target: convert(value)}))


def upgrade() -> None:
    with op.batch_alter_table("consumers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("webhook_secret_sealed", sa.Text(), nullable=True))
    _convert(_consumers.c.webhook_secret, "webhook_secret_sealed", "seal")
    with op.batch_alter_table("consumers", schema=None) as batch_op:
        batch_op.drop_column("webhook_secret")


def downgrade() -> None:
    with op.batch_alter_table("consumers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("webhook_secret", sa.String(length=200), nullable=True))
    _convert(_consumers.c.webhook_secret_sealed, "webhook_secret", "open")
    with op.batch_alter_table("consumers", schema=None) as batch_op:
        batch_op.drop_column("webhook_secret_sealed")

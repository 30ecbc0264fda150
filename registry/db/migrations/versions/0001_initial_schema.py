"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-24 09:19:55.785869
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=100), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_events_actor"), ["actor"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_events_at"), ["at"], unique=False)
        batch_op.create_index("ix_audit_subject_at", ["subject", "at"], unique=False)

    op.create_table(
        "outbox_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("topic", sa.String(length=100), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("relayed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("outbox_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_outbox_events_relayed_at"), ["relayed_at"], unique=False)

    op.create_table(
        "teams",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "apis",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=True),
        sa.Column("domain", sa.String(length=100), nullable=True),
        sa.Column("layer", sa.String(length=20), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("contacts", sa.JSON(), nullable=False),
        sa.Column("compatibility", sa.String(length=30), nullable=False),
        sa.Column("validity", sa.String(length=20), nullable=False),
        sa.Column("sla", sa.JSON(), nullable=True),
        sa.Column("latest_version", sa.String(length=100), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["teams.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    with op.batch_alter_table("apis", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_apis_domain"), ["domain"], unique=False)
        batch_op.create_index(batch_op.f("ix_apis_kind"), ["kind"], unique=False)
        batch_op.create_index(batch_op.f("ix_apis_layer"), ["layer"], unique=False)
        batch_op.create_index(batch_op.f("ix_apis_owner_id"), ["owner_id"], unique=False)

    op.create_table(
        "team_members",
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(["team_id"], ["teams.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("team_id", "subject"),
    )
    op.create_table(
        "api_tags",
        sa.Column("api_id", sa.Integer(), nullable=False),
        sa.Column("tag", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(["api_id"], ["apis.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("api_id", "tag"),
    )
    with op.batch_alter_table("api_tags", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_tags_tag"), ["tag"], unique=False)

    op.create_table(
        "api_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("api_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.String(length=100), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=True),
        sa.Column("spec_version", sa.String(length=20), nullable=True),
        sa.Column("fingerprint", sa.String(length=80), nullable=False),
        sa.Column("media_type", sa.String(length=100), nullable=False),
        sa.Column("source", sa.LargeBinary(), nullable=False),
        sa.Column("canonical", sa.LargeBinary(), nullable=False),
        sa.Column("root_path", sa.String(length=500), nullable=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("search_text", sa.Text(), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_by", sa.String(length=200), nullable=False),
        sa.Column("deprecated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sunset", sa.Date(), nullable=True),
        sa.Column("replacement", sa.String(length=100), nullable=True),
        sa.Column("deprecation_reason", sa.Text(), nullable=True),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["api_id"], ["apis.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("api_id", "version", name="uq_api_versions_api_version"),
    )
    with op.batch_alter_table("api_versions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_versions_api_id"), ["api_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_api_versions_state"), ["state"], unique=False)

    op.create_table(
        "version_files",
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("path", sa.String(length=500), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["version_id"], ["api_versions.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("version_id", "path"),
    )

    _create_search_index()


def _create_search_index() -> None:
    """Full-text search over APIs: FTS5 on SQLite, a weighted tsvector with GIN on PostgreSQL.

    Rows are written by registry.search, keyed by the API id; name and title weigh most.
    """
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            "CREATE VIRTUAL TABLE api_search USING fts5("
            "name, title, description, tags, operations, tokenize='unicode61 remove_diacritics 2')"
        )
        return
    op.execute(
        """
        CREATE TABLE api_search (
            api_id integer PRIMARY KEY REFERENCES apis(id) ON DELETE CASCADE,
            head text NOT NULL,
            body text NOT NULL,
            tsv tsvector GENERATED ALWAYS AS (
                setweight(to_tsvector('simple', head), 'A') || setweight(to_tsvector('simple', body), 'B')
            ) STORED
        )
        """
    )
    op.execute("CREATE INDEX ix_api_search_tsv ON api_search USING gin (tsv)")


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS api_search")
    op.drop_table("version_files")
    with op.batch_alter_table("api_versions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_versions_state"))
        batch_op.drop_index(batch_op.f("ix_api_versions_api_id"))

    op.drop_table("api_versions")
    with op.batch_alter_table("api_tags", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_tags_tag"))

    op.drop_table("api_tags")
    op.drop_table("team_members")
    with op.batch_alter_table("apis", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_apis_owner_id"))
        batch_op.drop_index(batch_op.f("ix_apis_layer"))
        batch_op.drop_index(batch_op.f("ix_apis_kind"))
        batch_op.drop_index(batch_op.f("ix_apis_domain"))

    op.drop_table("apis")
    op.drop_table("teams")
    with op.batch_alter_table("outbox_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outbox_events_relayed_at"))

    op.drop_table("outbox_events")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_subject_at")
        batch_op.drop_index(batch_op.f("ix_audit_events_at"))
        batch_op.drop_index(batch_op.f("ix_audit_events_actor"))

    op.drop_table("audit_events")

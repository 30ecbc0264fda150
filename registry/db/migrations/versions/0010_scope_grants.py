"""scopes declared by each version, and access requests that grant another team's scopes

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30 16:00:00
"""

import msgspec
import sqlalchemy as sa
from alembic import op

from contracts.bundle import bundle_from_files, resolve_bundle
from contracts.index import declared_scopes

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "version_scopes",
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("scope", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(["version_id"], ["api_versions.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("version_id", "scope"),
    )
    op.create_index(op.f("ix_version_scopes_scope"), "version_scopes", ["scope"], unique=False)
    op.create_table(
        "access_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("api_id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("requested_by", sa.String(length=200), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.String(length=200), nullable=True),
        sa.Column("decision_reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["api_id"], ["apis.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["client_id"], ["clients.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_access_requests_api_id"), "access_requests", ["api_id"], unique=False)
    op.create_index(
        "ix_access_requests_client_state", "access_requests", ["client_id", "state"], unique=False
    )
    _index_stored_versions()


def _index_stored_versions() -> None:
    """Scope ownership of versions stored before this revision; retired ones never route again."""
    bind = op.get_bind()
    versions = bind.execute(
        sa.text("SELECT id, canonical, root_path FROM api_versions WHERE state <> 'retired'")
    ).all()
    for version_id, canonical, root_path in versions:
        try:
            if root_path is None:
                document = msgspec.json.decode(canonical)
            else:
                files = bind.execute(
                    sa.text("SELECT path, content FROM version_files WHERE version_id = :id"),
                    {"id": version_id},
                ).all()
                document = resolve_bundle(bundle_from_files(dict(files), root=root_path))
        except Exception:  # stored below full validity: it can declare nothing the gateway routes on
            continue
        if not isinstance(document, dict):
            continue
        # A longer scope fits no client (registration takes up to 100 characters): nobody can hold it.
        scopes = sorted(s for s in declared_scopes(document) if len(s) <= 200)
        if scopes:
            bind.execute(
                sa.text("INSERT INTO version_scopes (version_id, scope) VALUES (:id, :scope)"),
                [{"id": version_id, "scope": s} for s in scopes],
            )


def downgrade() -> None:
    op.drop_index("ix_access_requests_client_state", table_name="access_requests")
    op.drop_index(op.f("ix_access_requests_api_id"), table_name="access_requests")
    op.drop_table("access_requests")
    op.drop_index(op.f("ix_version_scopes_scope"), table_name="version_scopes")
    op.drop_table("version_scopes")

"""search finds a contract's description, schema and property names; empty API descriptions filled

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-30 22:00:00

Every stored version's search words are computed again (the contract's info.description, schema
names and property names join its operations, bounded per version), APIs without a description take
their contract's, and every API's search row is written again from them.
"""

import msgspec
import sqlalchemy as sa
from alembic import op

from contracts.bundle import bundle_from_files, resolve_bundle
from contracts.index import build_index
from contracts.kinds import DocumentKind, Family

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

_TOKEN_SPLIT = str.maketrans({c: " " for c in "._-"})


def upgrade() -> None:
    bind = op.get_bind()
    texts: dict[int, str] = {}
    descriptions: dict[int, str | None] = {}
    indexed = sa.text("SELECT id FROM api_versions WHERE kind IS NOT NULL ORDER BY id")
    ids = bind.execute(indexed).scalars().all()
    for version_id in ids:  # one document in memory at a time
        canonical, root_path, kind, spec_version = bind.execute(
            sa.text("SELECT canonical, root_path, kind, spec_version FROM api_versions WHERE id = :id"),
            {"id": version_id},
        ).one()
        try:
            if root_path is None:
                document = msgspec.json.decode(canonical)
            else:
                files = bind.execute(
                    sa.text("SELECT path, content FROM version_files WHERE version_id = :id"),
                    {"id": version_id},
                ).all()
                document = resolve_bundle(bundle_from_files(dict(files), root=root_path))
            index = build_index(document, DocumentKind(Family(kind), spec_version))
        except Exception:  # stored below full validity: its words stay as they were
            continue
        texts[version_id] = index.search_text().replace("\x00", "")
        described = index.description.replace("\x00", "") if index.description else None
        descriptions[version_id] = described or None
    if texts:
        bind.execute(
            sa.text("UPDATE api_versions SET search_text = :text WHERE id = :id"),
            [{"id": version_id, "text": text} for version_id, text in texts.items()],
        )

    apis = bind.execute(sa.text("SELECT id, name, title, description, tags, latest_version FROM apis")).all()
    for api_id, name, title, description, tags, latest in apis:
        # As registry.catalog.reindex: the latest version's words, or the newest draft's.
        if latest is not None:
            row = bind.execute(
                sa.text("SELECT id, search_text FROM api_versions WHERE api_id = :api AND version = :v"),
                {"api": api_id, "v": latest},
            ).first()
        else:
            row = bind.execute(
                sa.text(
                    "SELECT id, search_text FROM api_versions WHERE api_id = :api ORDER BY id DESC LIMIT 1"
                ),
                {"api": api_id},
            ).first()
        if not description and row is not None and descriptions.get(row[0]):
            description = descriptions[row[0]]
            bind.execute(
                sa.text("UPDATE apis SET description = :description WHERE id = :id"),
                {"id": api_id, "description": description},
            )
        _index(bind, api_id, name, title, description, _tags(tags), row[1] if row else "")


def _tags(stored: object) -> str:
    if isinstance(stored, str):  # a JSON column read back as text on SQLite
        stored = msgspec.json.decode(stored or "[]")
    return " ".join(str(tag) for tag in stored or [])


def _index(
    bind: sa.Connection, api_id: int, name: str, title: str, description: str | None, tags: str, words: str
) -> None:
    """The API's search row as registry.search.index_api writes it at this revision."""
    names = f"{name} {name.translate(_TOKEN_SPLIT)}"
    if bind.dialect.name == "sqlite":
        bind.execute(
            sa.text(
                "INSERT OR REPLACE INTO api_search (rowid, name, title, description, tags, operations) "
                "VALUES (:id, :name, :title, :description, :tags, :operations)"
            ),
            {
                "id": api_id,
                "name": names,
                "title": title,
                "description": description or "",
                "tags": tags,
                "operations": words,
            },
        )
        return
    bind.execute(
        sa.text(
            "INSERT INTO api_search (api_id, head, body) VALUES (:id, :head, :body) "
            "ON CONFLICT (api_id) DO UPDATE SET head = excluded.head, body = excluded.body"
        ),
        {"id": api_id, "head": f"{names} {title}", "body": f"{description or ''} {tags} {words}"},
    )


def downgrade() -> None:
    """The added words stay: search finds more, nothing breaks."""

"""Full-text search over APIs: SQLite FTS5 in the embedded default, PostgreSQL full-text at scale."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TypeVar

import msgspec
from sqlalchemy import bindparam, column, delete, exists, func, insert, literal_column, select, table, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import defaultload
from sqlalchemy.sql import Select

from registry.db.models import Api, ApiTag, ApiVersion, Team

_TOKEN = re.compile(r"\w+", re.UNICODE)
# A query of hundreds of terms is abuse, not search; the cap keeps the match expression small.
MAX_TERMS = 16

S = TypeVar("S", bound=Select)


class SearchQuery(msgspec.Struct, frozen=True, kw_only=True):
    q: str | None = None
    owner: str | None = None
    layer: str | None = None
    domain: str | None = None
    tag: str | None = None
    kind: str | None = None
    state: str | None = None
    limit: int = 20
    offset: int = 0


def terms(q: str | None) -> list[str]:
    return _TOKEN.findall(q.lower())[:MAX_TERMS] if q else []


async def index_api(session: AsyncSession, api: Api, operations_text: str) -> None:
    """Write the API's search row: its current name, title, description, tags and operations.

    One upsert, never a delete then an insert: two writers of the same row would both find it gone
    and the second insert would break the key.
    """
    tags = " ".join(api.tags or [])
    dialect = session.bind.dialect.name
    if dialect == "sqlite":
        # An FTS5 table has no ON CONFLICT clause; it honours OR REPLACE on its rowid.
        await session.execute(
            text(
                "INSERT OR REPLACE INTO api_search (rowid, name, title, description, tags, operations) "
                "VALUES (:id, :name, :title, :description, :tags, :operations)"
            ),
            {
                "id": api.id,
                "name": _split_name(api.name),
                "title": api.title,
                "description": api.description or "",
                "tags": tags,
                "operations": operations_text,
            },
        )
        return
    head = f"{_split_name(api.name)} {api.title}"
    body = f"{api.description or ''} {tags} {operations_text}"
    await session.execute(
        text(
            "INSERT INTO api_search (api_id, head, body) VALUES (:id, :head, :body) "
            "ON CONFLICT (api_id) DO UPDATE SET head = excluded.head, body = excluded.body"
        ),
        {"id": api.id, "head": head, "body": body},
    )


def _split_name(name: str) -> str:
    """`time-entries` is found by `time`, `entries` and `time-entries`."""
    return f"{name} {' '.join(_TOKEN.findall(name))}"


async def search_apis(session: AsyncSession, query: SearchQuery) -> tuple[Sequence[Api], int]:
    words = terms(query.q)
    # A hit names its owner team; the team's members would cost a query per page for nothing.
    stmt = _filtered(select(Api), query).options(defaultload(Api.owner).raiseload(Team.members))
    count = _filtered(select(func.count(Api.id)), query)
    if not words:
        total = (await session.execute(count)).scalar_one()
        rows = await session.scalars(stmt.order_by(Api.name).limit(query.limit).offset(query.offset))
        return rows.all(), total

    search_table = table("api_search", column("rowid"), column("api_id"), column("tsv"))
    match_param = bindparam("match")
    if session.bind.dialect.name == "sqlite":
        # Each term a quoted prefix: punctuation in user input can never become FTS5 syntax.
        match = " ".join(f'"{w}"*' for w in words)
        rank = literal_column("bm25(api_search, 10.0, 8.0, 3.0, 4.0, 1.0)")
        hits = (
            select(search_table.c.rowid.label("api_id"), rank.label("rank"))
            .where(literal_column("api_search").op("MATCH")(match_param))
            .cte("hits")
            # Materialized, or SQLite re-runs the match once per row that the other filters keep.
            .prefix_with("MATERIALIZED")
        )
        order = hits.c.rank.asc()
        matched = select(search_table.c.rowid).where(literal_column("api_search").op("MATCH")(match_param))
    else:
        match = " & ".join(f"{w}:*" for w in words)
        tsquery = func.to_tsquery("simple", match_param)
        hits = (
            select(search_table.c.api_id, func.ts_rank(search_table.c.tsv, tsquery).label("rank"))
            .where(search_table.c.tsv.op("@@")(tsquery))
            .cte("hits")
        )
        order = hits.c.rank.desc()
        matched = select(search_table.c.api_id).where(search_table.c.tsv.op("@@")(tsquery))
    params = {"match": match}
    # The total needs no ranking: counting ids in the bare match costs a third of the ranked query.
    total = (await session.execute(count.where(Api.id.in_(matched)), params)).scalar_one()
    ranked = stmt.join(hits, hits.c.api_id == Api.id).order_by(order, Api.name)
    rows = await session.scalars(ranked.limit(query.limit).offset(query.offset), params)
    return rows.all(), total


def _filtered(stmt: S, query: SearchQuery) -> S:
    if query.owner:
        stmt = stmt.where(Api.owner_id == select(Team.id).where(Team.name == query.owner).scalar_subquery())
    if query.layer:
        stmt = stmt.where(Api.layer == query.layer)
    if query.domain:
        stmt = stmt.where(Api.domain == query.domain)
    if query.kind:
        stmt = stmt.where(Api.kind == query.kind)
    if query.tag:
        stmt = stmt.where(exists().where(ApiTag.api_id == Api.id, ApiTag.tag == query.tag))
    if query.state:
        stmt = stmt.where(exists().where(ApiVersion.api_id == Api.id, ApiVersion.state == query.state))
    return stmt


async def set_tags(session: AsyncSession, api: Api, tags: Sequence[str]) -> None:
    await session.execute(delete(ApiTag).where(ApiTag.api_id == api.id))
    unique = sorted(set(tags))
    if unique:
        await session.execute(insert(ApiTag), [{"api_id": api.id, "tag": t} for t in unique])

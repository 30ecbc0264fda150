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
    loaded = select(Api).options(defaultload(Api.owner).raiseload(Team.members))
    if not words:
        stmt = _filtered(loaded, query)
        count = _filtered(select(func.count(Api.id)), query)
        total = (await session.execute(count)).scalar_one()
        rows = await session.scalars(stmt.order_by(Api.name).limit(query.limit).offset(query.offset))
        return rows.all(), total

    # The page is ranked inside the full-text index, which keeps only the best `limit + offset` rows
    # while it ranks; joining every match to `apis` first and sorting them all took three times as long
    # (measured by bench/search.py). Ties are broken by id, which the index holds, not by name, which
    # it would read from the catalog for every match.
    search_table = table("api_search", column("rowid"), column("api_id"), column("tsv"))
    wanted = _filtered(select(Api.id), query)
    filtered = wanted.whereclause is not None
    if session.bind.dialect.name == "sqlite":
        # Each term a quoted prefix: punctuation in user input can never become FTS5 syntax.
        match = " ".join(f'"{w}"*' for w in words)
        api_id = search_table.c.rowid
        matches = literal_column("api_search").op("MATCH")(bindparam("match", match))
        rank = literal_column("bm25(api_search, 10.0, 8.0, 3.0, 4.0, 1.0)").asc()
        # `rowid + 0`, not `rowid`: FTS5 is handed a bare rowid constraint and runs the whole match
        # again for every id the filters keep (a second per query at 10,000 APIs).
        kept = (api_id + 0).in_(wanted)
    else:
        tsquery = func.to_tsquery("simple", bindparam("match", " & ".join(f"{w}:*" for w in words)))
        api_id = search_table.c.api_id
        matches = search_table.c.tsv.op("@@")(tsquery)
        rank = func.ts_rank(search_table.c.tsv, tsquery).desc()
        kept = api_id.in_(wanted)
    conditions = [matches, kept] if filtered else [matches]
    counted = select(func.count()).select_from(search_table).where(*conditions)
    total = (await session.execute(counted)).scalar_one()
    page = select(api_id).where(*conditions).order_by(rank, api_id).limit(query.limit).offset(query.offset)
    ids = list((await session.scalars(page)).all())
    if not ids:
        return [], total
    found = {api.id: api for api in await session.scalars(loaded.where(Api.id.in_(ids)))}
    return [found[i] for i in ids if i in found], total


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

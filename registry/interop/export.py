"""Write the whole registry into a backup zip (registry.interop.archive_format), in bounded memory.

Rows are read in pages by id and written line by line into a temporary file on disk, which the
API then streams: the size of the registry costs disk, never memory. One read transaction covers
every table, so the backup is one consistent snapshot (REPEATABLE READ on PostgreSQL; SQLite's
read transaction in WAL mode is a snapshot already).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import shutil
import tempfile
import zipfile
from typing import IO, Any

import anyio.to_thread
import msgspec
from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncSession

from registry.interop.archive_format import (
    BLOB_PREFIX,
    EXPORTED,
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    Manifest,
    is_binary,
    table_entry,
)

PAGE = 500
_encoder = msgspec.json.Encoder()


async def write_backup(session: AsyncSession, *, charter_version: str) -> tuple[IO[bytes], Manifest]:
    """A temporary file holding the backup zip (positioned at its start), and its manifest."""
    if session.bind.dialect.name == "postgresql":
        await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
    spool = tempfile.TemporaryFile()  # noqa: SIM115 - handed to the caller, which closes it
    counts: dict[str, int] = {}
    blobs: set[str] = set()
    try:
        with zipfile.ZipFile(spool, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
            for model in EXPORTED:
                table = model.__table__
                counts[table.name] = await _write_table(session, archive, table, blobs)  # type: ignore[arg-type]
            manifest = Manifest(
                format=FORMAT,
                format_version=FORMAT_VERSION,
                charter_version=charter_version,
                created_at=dt.datetime.now(dt.UTC),
                counts=counts,
                blobs=len(blobs),
            )
            archive.writestr(MANIFEST, msgspec.json.format(msgspec.json.encode(manifest), indent=2))
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return spool, manifest


async def _write_table(session: AsyncSession, archive: zipfile.ZipFile, table: Table, blobs: set[str]) -> int:
    """Write a table's rows; their binary columns go to blobs as they come.

    A zip takes one entry at a time: the lines wait in a file of their own while blobs are added,
    then are copied in as the table's entry."""
    binary = [c.name for c in table.columns if is_binary(c)]
    query = select(table).order_by(*table.primary_key.columns).execution_options(yield_per=PAGE)
    written = 0
    with tempfile.TemporaryFile() as lines:
        result = await session.stream(query)
        async for page in result.mappings().partitions(PAGE):
            # Compressing is CPU work: a page at a time in a worker thread keeps the server answering.
            rows = [dict(row) for row in page]
            await anyio.to_thread.run_sync(_write_page, archive, blobs, lines, binary, rows)
            written += len(rows)
        lines.seek(0)
        await anyio.to_thread.run_sync(_copy_entry, archive, table_entry(table), lines)
    return written


def _write_page(
    archive: zipfile.ZipFile, blobs: set[str], lines: IO[bytes], binary: list[str], rows: list[dict[str, Any]]
) -> None:
    for record in rows:
        for name in binary:
            if record[name] is not None:
                record[name] = _blob(archive, blobs, record[name])
        lines.write(_encoder.encode(record) + b"\n")


def _copy_entry(archive: zipfile.ZipFile, name: str, lines: IO[bytes]) -> None:
    with archive.open(name, "w", force_zip64=True) as out:
        shutil.copyfileobj(lines, out, 1024 * 1024)


def _blob(archive: zipfile.ZipFile, written: set[str], content: bytes) -> str:
    digest = hashlib.sha256(content).hexdigest()
    if digest not in written:
        archive.writestr(BLOB_PREFIX + digest, content)
        written.add(digest)
    return digest

"""`charter export` and `charter import FILE.zip`: move a backup zip to and from the registry's admin API,
streamed in chunks (with a progress bar when stdout is a terminal), never held whole in memory."""

from __future__ import annotations

import os
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

from registry.interop.archive_format import MANIFEST
from registry.interop.backstage_import import RegistryClient

CHUNK = 256 * 1024
# A large registry takes minutes to pack or to import; connecting still fails fast.
SLOW = httpx.Timeout(None, connect=5)


def is_backup(path: Path) -> bool:
    """Whether `path` is a zip holding a backup manifest (a contract bundle zip holds none)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return MANIFEST in archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return False


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=Console(stderr=True),
        transient=True,
        disable=not sys.stdout.isatty(),
    )


def download_backup(registry: RegistryClient, target: Path) -> int:
    """Write the registry's backup to `target` (through a temporary file beside it); its size."""
    partial = target.with_name(target.name + ".part")
    with registry.stream("GET", "/api/v1/admin/export", timeout=SLOW) as response:
        total = int(response.headers.get("content-length") or 0) or None
        written = 0
        try:
            with partial.open("wb") as out, _progress() as progress:
                task = progress.add_task("exporting", total=total)
                for chunk in response.iter_bytes(CHUNK):
                    out.write(chunk)
                    written += len(chunk)
                    progress.update(task, completed=written)
            os.replace(partial, target)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
    return written


def upload_backup(registry: RegistryClient, source: Path, *, merge: bool) -> dict[str, Any]:
    size = source.stat().st_size

    def chunks(progress: Progress) -> Iterator[bytes]:
        task = progress.add_task("importing", total=size)
        with source.open("rb") as stream:
            while chunk := stream.read(CHUNK):
                yield chunk
                progress.advance(task, len(chunk))

    with _progress() as progress:
        response = registry.request(
            "POST",
            "/api/v1/admin/import",
            source=str(source),
            content=chunks(progress),
            headers={"Content-Type": "application/zip", "Content-Length": str(size)},
            params={"merge": "true" if merge else "false"},
            timeout=SLOW,
        )
    return response.json()

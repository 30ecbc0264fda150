"""Reading a backup zip that anyone could have made: bounded, checked, never unpacked to disk.

Limits come before any content is read: the number of entries, the total size they declare, and
each entry's compression ratio (a zip bomb declares a huge size for a few bytes; `zipfile` never
inflates an entry past the size it declares, so checking the declared sizes bounds the work). Names
inside the zip are only keys of the archive's directory: no path is ever built from them.
"""

from __future__ import annotations

import hashlib
import zipfile
import zlib
from collections.abc import Iterator
from typing import IO, Any

import msgspec

from contracts.bundle import read_entry
from contracts.errors import ContractInvalid
from registry.errors import RegistryError
from registry.interop.archive_format import (
    BLOB_PREFIX,
    EXPORTED,
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    ROW_TYPES,
    Manifest,
    table_entry,
)

# One row of a table (JSON columns hold audit snapshots and adapter bindings): far below this.
MAX_LINE_BYTES = 16 * 1024 * 1024
MAX_MANIFEST_BYTES = 1024 * 1024
# Entries larger than this may not be compressed more than MAX_RATIO times: JSON lines and contracts
# compress 5-20 times, a bomb a thousand times.
RATIO_FLOOR_BYTES = 1024 * 1024
MAX_RATIO = 200


class BackupInvalid(RegistryError):
    """The uploaded file is not a backup this registry can read, or is damaged: nothing is imported."""

    status, slug, title = 422, "invalid-backup", "Invalid backup"


class BackupLimits(msgspec.Struct, frozen=True, kw_only=True):
    max_entries: int = 1_000_000
    max_unpacked_bytes: int = 8 * 1024 * 1024 * 1024


class BackupReader:
    def __init__(self, file: IO[bytes], limits: BackupLimits) -> None:
        try:
            self._archive = zipfile.ZipFile(file)
        except (zipfile.BadZipFile, UnicodeDecodeError, ValueError, OSError):
            raise BackupInvalid("the file is not a readable zip archive") from None
        except NotImplementedError as exc:
            raise BackupInvalid(f"the zip archive uses a feature that is not supported: {exc}") from None
        entries = self._archive.infolist()
        if len(entries) > limits.max_entries:
            raise BackupInvalid(
                f"the archive has {len(entries)} entries; at most {limits.max_entries} are read"
            )
        if sum(e.file_size for e in entries) > limits.max_unpacked_bytes:
            raise BackupInvalid(f"the archive unpacks to more than {limits.max_unpacked_bytes} bytes")
        for entry in entries:
            if entry.file_size > RATIO_FLOOR_BYTES and entry.file_size > MAX_RATIO * max(
                entry.compress_size, 1
            ):
                raise BackupInvalid(
                    f"{entry.filename}: compressed more than {MAX_RATIO} times; refused as a zip bomb"
                )
        self._entries = {e.filename: e for e in entries}
        self.manifest = self._manifest()

    def close(self) -> None:
        self._archive.close()

    def _manifest(self) -> Manifest:
        entry = self._entries.get(MANIFEST)
        if entry is None:
            raise BackupInvalid(f"the archive holds no {MANIFEST}: it is not a Charter backup")
        try:
            manifest = msgspec.json.decode(self._read(entry, MAX_MANIFEST_BYTES), type=Manifest)
        except msgspec.DecodeError as exc:
            raise BackupInvalid(f"{MANIFEST}: {exc}") from None
        if manifest.format != FORMAT:
            raise BackupInvalid(f"{MANIFEST}: format {manifest.format!r} is not {FORMAT!r}")
        if manifest.format_version > FORMAT_VERSION:
            raise BackupInvalid(
                f"{MANIFEST}: format version {manifest.format_version} is newer than this registry reads "
                f"({FORMAT_VERSION}); upgrade Charter first"
            )
        for model in EXPORTED:
            if table_entry(model.__table__) not in self._entries:  # type: ignore[arg-type]
                raise BackupInvalid(f"the archive holds no {table_entry(model.__table__)}")  # type: ignore[arg-type]
        return manifest

    def _read(self, entry: zipfile.ZipInfo, limit: int) -> bytes:
        if entry.file_size > limit:
            raise BackupInvalid(f"{entry.filename}: larger than {limit} bytes")
        try:
            return read_entry(self._archive, entry, limit)
        except ContractInvalid as exc:
            raise BackupInvalid(exc.detail) from None

    def rows(self, table: str) -> Iterator[Any]:
        """The rows of `table`, decoded and checked against its columns, one at a time."""
        name = f"tables/{table}.jsonl"
        entry = self._entries[name]
        row_type = ROW_TYPES[table]
        decoder = msgspec.json.Decoder(row_type)
        try:
            with self._archive.open(entry) as stream:
                for number, line in enumerate(iter(lambda: stream.readline(MAX_LINE_BYTES + 1), b""), 1):
                    if len(line) > MAX_LINE_BYTES:
                        raise BackupInvalid(f"{name} line {number}: longer than {MAX_LINE_BYTES} bytes")
                    if not line.strip():
                        continue
                    try:
                        yield decoder.decode(line)
                    except msgspec.DecodeError as exc:
                        raise BackupInvalid(f"{name} line {number}: {exc}") from None
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError) as exc:
            raise BackupInvalid(f"{name}: the entry is corrupt ({exc or type(exc).__name__})") from None

    def blob(self, digest: str, *, where: str) -> bytes:
        """The bytes named by `digest`, checked against it."""
        entry = self._entries.get(BLOB_PREFIX + digest)
        if entry is None:
            raise BackupInvalid(f"{where}: blob {digest} is missing from the archive")
        content = self._read(entry, entry.file_size)
        if hashlib.sha256(content).hexdigest() != digest:
            raise BackupInvalid(f"{where}: blob {digest} does not match its SHA-256; the archive is damaged")
        return content

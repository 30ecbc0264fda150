"""Zip archives damaged the way an attacker would: one field of a real entry's headers rewritten."""

from __future__ import annotations

import io
import struct
import zipfile
from collections.abc import Callable

MINIMAL = b'{"openapi": "3.0.3", "info": {"title": "t", "version": "1.0.0"}, "paths": {}}'
# Offsets in a local file header and in a central directory header (APPNOTE.TXT 4.3.7 and 4.3.12).
_LOCAL, _CENTRAL = b"PK\x03\x04", b"PK\x01\x02"
_FIELDS = {"flags": (6, 8, "<H"), "method": (8, 10, "<H"), "crc": (14, 16, "<I")}


def one_entry_zip(name: str = "api.json", content: bytes = MINIMAL) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, content)
    return buffer.getvalue()


def edited(archive: bytes, field: str, edit: Callable[[int], int]) -> bytes:
    """The archive with one field of its only entry rewritten in both the local and the central header."""
    data = bytearray(archive)
    local_offset, central_offset, fmt = _FIELDS[field]
    for signature, offset in ((_LOCAL, local_offset), (_CENTRAL, central_offset)):
        at = data.index(signature) + offset
        (value,) = struct.unpack_from(fmt, data, at)
        struct.pack_into(fmt, data, at, edit(value))
    return bytes(data)


def damaged_archives() -> dict[str, bytes]:
    """A flipped CRC byte, the encrypted flag (bit 0), compression method 99 (WinZip AES)."""
    good = one_entry_zip()
    return {
        "bad-crc": edited(good, "crc", lambda crc: crc ^ 0xFF),
        "encrypted": edited(good, "flags", lambda flags: flags | 0x1),
        "method-99": edited(good, "method", lambda _: 99),
    }

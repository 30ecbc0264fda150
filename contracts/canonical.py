"""Canonical form and fingerprint: equal for documents that differ only in key order or format."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

import msgspec

from contracts.loading import Document

_encoder = msgspec.json.Encoder(order="sorted")


def canonical_json(doc: Document) -> bytes:
    """Compact JSON with object keys sorted: YAML and JSON spellings of one document agree."""
    return _encoder.encode(doc)


def fingerprint(doc: Document) -> str:
    return "sha256:" + hashlib.sha256(canonical_json(doc)).hexdigest()


def bundle_fingerprint(files: Mapping[str, Document], root: str) -> str:
    """Fingerprint of a multi-file contract: its root, then every file's canonical form in path order."""
    digest = hashlib.sha256(root.encode() + b"\0")
    for path in sorted(files):
        digest.update(path.encode())
        digest.update(b"\0")
        digest.update(canonical_json(files[path]))
        digest.update(b"\0")
    return "sha256:" + digest.hexdigest()

"""Multi-file contracts: files that `$ref` each other by relative path, stored whole, resolved for checks."""

from __future__ import annotations

import io
import lzma
import posixpath
import zipfile
import zlib
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

import msgspec

from contracts.errors import ContractError, ContractInvalid, DocumentTooComplex, Issue
from contracts.loading import DEFAULT_LIMITS, Document, LoadLimits, load_document
from contracts.positions import with_positions
from contracts.references import escape, fragment, iter_refs, resolve_pointer

MAX_FILES = 500
_METHODS = {
    zipfile.ZIP_STORED: "stored",
    zipfile.ZIP_DEFLATED: "deflate",
    zipfile.ZIP_BZIP2: "bzip2",
    zipfile.ZIP_LZMA: "lzma",
}
# What the zipfile module raises on a damaged entry: a bad CRC or header (BadZipFile), a broken
# deflate, bzip2 or lzma stream (zlib.error, OSError, LZMAError), data that ends early (EOFError),
# offsets that point before the archive (ValueError), features it does not implement.
_CORRUPT = (
    zipfile.BadZipFile,
    zlib.error,
    lzma.LZMAError,
    OSError,
    EOFError,
    ValueError,
    NotImplementedError,
)
DOCUMENT_SUFFIXES = {".json": "application/json", ".yaml": "application/yaml", ".yml": "application/yaml"}
ROOT_FIELDS = ("openapi", "swagger", "asyncapi")


class Bundle(msgspec.Struct, frozen=True):
    root: str  # normalized POSIX path of the root document inside the bundle
    files: dict[str, Document]  # every document, parsed, by normalized path
    sources: dict[str, bytes]  # the same files as submitted


def bundle_from_zip(data: bytes, *, root: str | None = None, limits: LoadLimits = DEFAULT_LIMITS) -> Bundle:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, UnicodeDecodeError):
        raise ContractInvalid("the body is not a readable zip archive") from None
    except NotImplementedError as exc:  # a directory entry that needs a newer zip version
        raise ContractInvalid(f"the zip archive uses a feature that is not supported: {exc}") from None
    with archive:
        # Not ZipInfo.is_dir(): it fails on an empty name, which _safe_path refuses with a message.
        entries = [e for e in archive.infolist() if not e.filename.endswith("/") and not _ignored(e.filename)]
        if len(entries) > MAX_FILES:
            raise ContractInvalid(f"the bundle has {len(entries)} files; at most {MAX_FILES} are accepted")
        # Declared sizes can lie (a zip bomb); they are checked first, then what is read is counted.
        if sum(e.file_size for e in entries) > limits.max_bytes:
            raise ContractInvalid(f"the bundle unpacks to more than {limits.max_bytes} bytes")
        files: dict[str, bytes] = {}
        budget = limits.max_bytes
        for entry in entries:
            content = read_entry(archive, entry, budget + 1)
            budget -= len(content)
            if budget < 0:
                raise ContractInvalid(f"the bundle unpacks to more than {limits.max_bytes} bytes")
            files[entry.filename] = content
    return bundle_from_files(files, root=root, limits=limits)


def read_entry(archive: zipfile.ZipFile, entry: zipfile.ZipInfo, limit: int) -> bytes:
    """At most `limit` bytes of an entry; ContractInvalid for an encrypted, unsupported or corrupt one."""
    if entry.flag_bits & 0x1:
        raise ContractInvalid(f"{entry.filename}: the entry is encrypted; send an archive without a password")
    if entry.compress_type not in _METHODS:
        raise ContractInvalid(
            f"{entry.filename}: compression method {entry.compress_type} is not supported; "
            f"use {', '.join(_METHODS.values())}"
        )
    try:
        with archive.open(entry) as stream:
            return stream.read(limit)
    except _CORRUPT as exc:
        reason = str(exc) or type(exc).__name__
        raise ContractInvalid(f"{entry.filename}: the entry is corrupt ({reason})") from None


def bundle_from_files(
    files: Mapping[str, bytes], *, root: str | None = None, limits: LoadLimits = DEFAULT_LIMITS
) -> Bundle:
    sources: dict[str, bytes] = {}
    for name, content in files.items():
        if _ignored(name):
            continue
        path = _safe_path(name)
        suffix = posixpath.splitext(path)[1].lower()
        if suffix not in DOCUMENT_SUFFIXES:
            raise ContractInvalid(f"{path}: only .json, .yaml and .yml files may be in a contract bundle")
        sources[path] = content
    if not sources:
        raise ContractInvalid("the bundle holds no JSON or YAML file")
    if len(sources) > MAX_FILES:
        raise ContractInvalid(f"the bundle has {len(sources)} files; at most {MAX_FILES} are accepted")
    documents: dict[str, Document] = {}
    for path, content in sources.items():
        media_type = DOCUMENT_SUFFIXES[posixpath.splitext(path)[1].lower()]
        try:
            documents[path] = load_document(content, media_type=media_type, limits=limits)
        except ContractError as exc:
            raise type(exc)(f"{path}: {exc.detail}", exc.issues) from None
    chosen = _choose_root(documents, _safe_path(root) if root else None)
    return Bundle(root=chosen, files=documents, sources=sources)


class ResolvedBundle(msgspec.Struct, frozen=True):
    document: Document
    # Where each part of the resolved document comes from: (pointer in the result, file, pointer in
    # the file), the root first, then each copied target in the order it was placed.
    origins: list[tuple[str, str, str]]

    def origin(self, at: str) -> tuple[str, str]:
        """The file and the pointer in it of the node at `at` in the resolved document."""
        best = ("", self.origins[0][1], self.origins[0][2])
        for placed, file, where in self.origins:
            if (at == placed or at.startswith(placed + "/")) and len(placed) >= len(best[0]):
                best = (placed, file, where)
        placed, file, where = best
        return file, where + at[len(placed) :]

    def locate(self, issues: list[Issue], bundle: Bundle) -> list[Issue]:
        """Issues found in the resolved document, each at its file, pointer, line and column there."""
        mapped = []
        for issue in issues:
            file, at = self.origin(issue.pointer)
            mapped.append(msgspec.structs.replace(issue, pointer=at, file=file))
        positioned: dict[int, Issue] = {}
        for file in dict.fromkeys(issue.file for issue in mapped if issue.file is not None):
            found = [issue for issue in mapped if issue.file == file]
            media_type = DOCUMENT_SUFFIXES[posixpath.splitext(file)[1].lower()]
            located = with_positions(found, bundle.sources[file], media_type=media_type)
            positioned.update((id(before), after) for before, after in zip(found, located, strict=True))
        return [positioned[id(issue)] for issue in mapped]


def resolve_bundle(bundle: Bundle, *, limits: LoadLimits = DEFAULT_LIMITS) -> Document:
    return resolve_bundle_located(bundle, limits=limits).document


def resolve_bundle_located(bundle: Bundle, *, limits: LoadLimits = DEFAULT_LIMITS) -> ResolvedBundle:
    """The root document with every cross-file `$ref` resolved.

    A foreign file's own internal refs (`#/...`) mean that file, not the root, so they are
    resolved too; only the root's internal refs stay as they are. Each target is copied in once,
    where it is first met, and every other reference to it becomes an internal `$ref` to that copy
    (as json-schema-ref-parser's `bundle` does): the result grows with the files, not with the
    number of paths through them. Copying every reference instead turns 600 bytes of schemas that
    each name the next one twice into 2^18 copies of the last. A cycle through another file cannot
    be copied in and is refused, naming the cycle.
    """
    size = sum(len(source) for source in bundle.sources.values())
    budget = max(limits.min_node_budget, int(size * limits.max_nodes_per_byte))
    resolver = _Resolver(bundle, budget)
    document = resolver.copy(bundle.files[bundle.root], bundle.root, (), "", "", 0)
    origins = [("", bundle.root, "")] + [(at, file, where) for (file, where), at in resolver.placed.items()]
    return ResolvedBundle(document, origins)


# The validators walk the resolved document recursively; jsonschema-rs stops at 255 levels.
MAX_RESOLVED_DEPTH = 200

Target = tuple[str, str]  # (file, JSON pointer in it)


class _Resolver:
    def __init__(self, bundle: Bundle, budget: int) -> None:
        self.bundle = bundle
        self.budget = budget
        self.placed: dict[Target, str] = {}  # target -> pointer of its copy in the result

    def copy(self, node: Any, file: str, stack: tuple[Target, ...], where: str, at: str, depth: int) -> Any:
        """`node` of `file` (at `where` in it) as it lands at `at` in the result."""
        if not isinstance(node, dict | list):
            return node
        if depth > MAX_RESOLVED_DEPTH:
            raise DocumentTooComplex(
                f"{file}: references nest the resolved document deeper than {MAX_RESOLVED_DEPTH} levels",
                [Issue(where, "nested too deeply once references are resolved", file)],
            )
        self.budget -= len(node)
        if self.budget < 0:
            raise DocumentTooComplex("the bundle expands to too many nodes once its references are resolved")
        if isinstance(node, list):
            return [
                self.copy(v, file, stack, f"{where}/{i}", f"{at}/{i}", depth + 1) for i, v in enumerate(node)
            ]
        ref = node.get("$ref")
        if isinstance(ref, str):
            target = self.target(ref, file, where)
            if isinstance(target, tuple):
                return self.follow(target, stack, file, where, at, depth)
            node = {**node, "$ref": target}
        return {
            k: self.copy(v, file, stack, f"{where}/{escape(k)}", f"{at}/{escape(k)}", depth + 1)
            for k, v in node.items()
        }

    def target(self, ref: str, file: str, where: str) -> Target | str:
        """(file, pointer) of a reference to resolve, or the internal `$ref` it becomes in the root."""
        location, _, written = ref.partition("#")
        if "://" in location:
            raise ContractInvalid(
                f"{file}: remote reference {ref!r} is not allowed", [Issue(f"{where}/$ref", "remote", file)]
            )
        if not location:
            return ref if file == self.bundle.root else (file, unquote(written))
        target_file = posixpath.normpath(posixpath.join(posixpath.dirname(file), location))
        if target_file not in self.bundle.files:
            raise ContractInvalid(
                f"{file}: reference {ref!r} names a file that is not in the bundle",
                [Issue(f"{where}/$ref", f"no file {target_file} in the bundle", file)],
            )
        if target_file == self.bundle.root:
            return "#" + written
        return target_file, unquote(written)

    def follow(
        self, target: Target, stack: tuple[Target, ...], file: str, where: str, at: str, depth: int
    ) -> Any:
        if target in stack:
            cycle = " -> ".join(f"{f}#{p}" for f, p in (*stack, target))
            raise ContractInvalid(f"references form a cycle across files: {cycle}")
        placed = self.placed.get(target)
        if placed is not None:
            return {"$ref": fragment(placed)}
        target_file, pointer = target
        try:
            node = resolve_pointer(self.bundle.files[target_file], pointer)
        except KeyError:
            raise ContractInvalid(
                f"{file}: reference to {target_file}#{pointer} points to nothing",
                [Issue(f"{where}/$ref", f"nothing at {pointer or '/'} in {target_file}", file)],
            ) from None
        self.placed[target] = at
        return self.copy(node, target_file, (*stack, target), pointer, at, depth)


def _choose_root(documents: Mapping[str, Document], root: str | None) -> str:
    if root is not None:
        if root not in documents:
            raise ContractInvalid(f"root {root!r} is not a file of the bundle")
        return root
    referenced = set()
    for path, doc in documents.items():
        for _, ref in iter_refs(doc):
            location = ref.partition("#")[0]
            if location and "://" not in location:
                referenced.add(posixpath.normpath(posixpath.join(posixpath.dirname(path), location)))
    candidates = sorted(
        p for p, d in documents.items() if any(f in d for f in ROOT_FIELDS) and p not in referenced
    )
    if len(candidates) != 1:
        listed = ", ".join(candidates) or "none"
        raise ContractInvalid(
            f"cannot tell the root document of the bundle (candidates: {listed}); pass `root`"
        )
    return candidates[0]


def _ignored(name: str) -> bool:
    parts = name.replace("\\", "/").split("/")
    return parts[0] == "__MACOSX" or any(part.startswith(".") and part not in (".", "..") for part in parts)


def _safe_path(name: str) -> str:
    raw = name.replace("\\", "/")
    path = posixpath.normpath(raw)
    if raw.startswith("/") or path.startswith("..") or path == "." or ":" in path.split("/")[0]:
        raise ContractInvalid(f"{name!r}: bundle paths must be relative and stay inside the bundle")
    return path

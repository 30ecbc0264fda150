"""From submitted bytes to everything the registry stores about a contract version."""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from contracts.bundle import bundle_from_files, bundle_from_zip, resolve_bundle_located
from contracts.canonical import bundle_fingerprint, canonical_json, fingerprint
from contracts.canonical_models import Declarations, find_declarations
from contracts.errors import ContractInvalid, UnknownKind
from contracts.index import ContractIndex, build_index
from contracts.kinds import DocumentKind, Family, detect_kind
from contracts.loading import DEFAULT_LIMITS, Document, LoadLimits, load_document
from contracts.positions import with_positions
from contracts.strictness import Strictness
from contracts.validation import validate_document


class AnalyzedContract(msgspec.Struct, frozen=True):
    document: Document  # the root document; for a bundle, with other files' $refs inlined
    kind: DocumentKind | None
    fingerprint: str
    canonical: bytes  # canonical JSON of the root document as submitted
    index: ContractIndex | None
    files: dict[str, bytes]  # every file of a bundle as submitted; empty for one document
    root_path: str | None
    # The schemas that declare canonical models; None until `with_declarations` looked (a publish does).
    declarations: Declarations | None = None

    @property
    def declared_version(self) -> str | None:
        info = self.document.get("info")
        version = info.get("version") if isinstance(info, dict) else None
        return str(version) if version is not None else None


def analyze_document(
    data: bytes,
    *,
    media_type: str | None,
    strictness: Strictness = Strictness.FULL,
    limits: LoadLimits = DEFAULT_LIMITS,
) -> AnalyzedContract:
    doc = load_document(data, media_type=media_type, limits=limits)
    try:
        kind, index = _check(doc, strictness)
    except ContractInvalid as exc:
        raise ContractInvalid(exc.detail, with_positions(exc.issues, data, media_type=media_type)) from None
    return AnalyzedContract(
        document=doc,
        kind=kind,
        fingerprint=fingerprint(doc),
        canonical=canonical_json(doc),
        index=index,
        files={},
        root_path=None,
    )


def analyze_bundle(
    *,
    zip_data: bytes | None = None,
    files: Mapping[str, bytes] | None = None,
    root: str | None = None,
    strictness: Strictness = Strictness.FULL,
    limits: LoadLimits = DEFAULT_LIMITS,
) -> AnalyzedContract:
    """A multi-file contract: stored whole, validated and indexed as one resolved document."""
    if zip_data is not None:
        bundle = bundle_from_zip(zip_data, root=root, limits=limits)
    elif files is not None:
        bundle = bundle_from_files(files, root=root, limits=limits)
    else:
        raise ValueError("a bundle needs zip_data or files")
    resolved = resolve_bundle_located(bundle, limits=limits)
    try:
        kind, index = _check(resolved.document, strictness)
    except ContractInvalid as exc:
        raise ContractInvalid(exc.detail, resolved.locate(exc.issues, bundle)) from None
    return AnalyzedContract(
        document=resolved.document,
        kind=kind,
        fingerprint=bundle_fingerprint(bundle.files, bundle.root),
        canonical=canonical_json(bundle.files[bundle.root]),
        index=index,
        files=bundle.sources,
        root_path=bundle.root,
    )


def _check(doc: Document, strictness: Strictness) -> tuple[DocumentKind | None, ContractIndex | None]:
    if strictness is Strictness.NONE:
        try:
            kind = detect_kind(doc)
        except UnknownKind:
            return None, None
        return kind, _safe_index(doc, kind)
    kind = detect_kind(doc)
    if strictness is Strictness.FULL:
        issues = validate_document(doc, kind)
        if issues:
            noun = "error" if len(issues) == 1 else "errors"
            raise ContractInvalid(f"{kind} document has {len(issues)} {noun}", issues)
    return kind, _safe_index(doc, kind)


def _safe_index(doc: Document, kind: DocumentKind) -> ContractIndex | None:
    # Below full validation the document may be any shape; an index is a bonus, never a reason to fail.
    try:
        return build_index(doc, kind)
    except Exception:
        return None


def with_declarations(analyzed: AnalyzedContract) -> AnalyzedContract:
    """`analyzed` carrying its canonical model declarations: a publish loads the models they name, lints
    the projections and indexes the dependents from one walk of the document."""
    kind = analyzed.kind
    if kind is None or kind.family is Family.JSON_SCHEMA or not isinstance(analyzed.document, dict):
        return analyzed
    return msgspec.structs.replace(analyzed, declarations=find_declarations(analyzed.document, kind))

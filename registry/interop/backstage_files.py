"""Backstage `catalog-info.yaml` files read for import: their `kind: API` entities and definitions.

A definition is inline text, or a `$text` (also `$json`, `$yaml`) reference to a file resolved
relative to the catalog file and confined to the directory being imported: no path outside it (by
`..`, an absolute path or a symbolic link) is read, and nothing is fetched from the network (a URL
is reported as skipped; download the document beside the catalog file instead).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

MAX_FILE_BYTES = 25 * 1024 * 1024
CATALOG_SUFFIXES = (".yaml", ".yml")
PLACEHOLDERS = ("$text", "$json", "$yaml")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_CHARTER_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")


class CatalogInputError(ValueError):
    """The input cannot be read as Backstage catalog files at all (exit 2)."""


@dataclass
class ApiEntity:
    """One `kind: API` entity, ready to publish; or with `problem` / `skipped` saying why it is not."""

    name: str
    source: str  # `file.yaml#2`: the catalog file and the document's place in it
    title: str | None = None
    description: str | None = None
    tags: list[str] = field(default_factory=list)
    team: str | None = None
    system: str | None = None
    lifecycle: str | None = None
    definition: bytes | None = None
    media_type: str = "application/yaml"
    problem: str | None = None  # bad input: reported as failed
    skipped: str | None = None  # left out on purpose: reported as skipped


def catalog_files(path: Path) -> tuple[Path, list[Path]]:
    """The directory references are confined to, and the catalog files to read, in a stable order."""
    if path.is_file():
        return path.resolve().parent, [path.resolve()]
    if not path.is_dir():
        raise CatalogInputError(f"{path}: no such file or directory")
    root = path.resolve()
    files = sorted(
        p
        for p in root.rglob("*")
        if p.suffix.lower() in CATALOG_SUFFIXES and p.is_file() and _inside(p.resolve(), root)
    )
    if not files:
        raise CatalogInputError(f"{path}: no .yaml or .yml catalog files found")
    return root, files


def read_entities(path: Path) -> tuple[list[ApiEntity], list[str]]:
    """The API entities of the catalog files at `path`, and a line for each other entity left out."""
    root, files = catalog_files(path)
    entities: list[ApiEntity] = []
    others: list[str] = []
    for file in files:
        for number, document in enumerate(_documents(file), 1):
            where = f"{file.relative_to(root)}#{number}"
            if not isinstance(document, dict):
                continue  # an empty document between `---` separators, or a scalar: no entity
            kind = document.get("kind")
            if kind != "API":
                others.append(f"{where}: kind {kind!r} is not imported (only API)")
                continue
            entities.append(_api_entity(document, file, root, where))
    if not entities and not others:
        raise CatalogInputError(f"{path}: the catalog files hold no Backstage entity")
    return entities, others


def _documents(file: Path) -> list[Any]:
    if file.stat().st_size > MAX_FILE_BYTES:
        raise CatalogInputError(f"{file}: larger than {MAX_FILE_BYTES} bytes")
    try:
        return list(yaml.load_all(file.read_bytes(), Loader=yaml.CSafeLoader))
    except yaml.YAMLError as exc:
        raise CatalogInputError(f"{file}: not YAML: {' '.join(str(exc).split())[:300]}") from None
    except OSError as exc:
        raise CatalogInputError(f"{file}: cannot read it: {exc.strerror or exc}") from None


def _api_entity(document: dict[str, Any], file: Path, root: Path, where: str) -> ApiEntity:
    metadata = document.get("metadata") if isinstance(document.get("metadata"), dict) else {}
    spec = document.get("spec") if isinstance(document.get("spec"), dict) else {}
    raw_name = metadata.get("name")
    name = str(raw_name).lower() if isinstance(raw_name, str) else ""
    entity = ApiEntity(name=name or "?", source=where)
    if not _CHARTER_NAME.match(name):
        entity.problem = f"metadata.name {raw_name!r} is not a usable API name (letters, digits, `.-_`)"
        return entity
    entity.title = _text(metadata.get("title"))
    entity.description = _text(metadata.get("description"))
    entity.tags = [str(t) for t in metadata.get("tags") or [] if isinstance(t, str | int) and str(t)]
    entity.system = _ref_name(spec.get("system")) if spec.get("system") else None
    entity.lifecycle = _text(spec.get("lifecycle"))
    if spec.get("type") not in ("openapi", "asyncapi"):
        entity.skipped = f"spec.type {spec.get('type')!r}: only openapi and asyncapi definitions are imported"
        return entity
    owner = spec.get("owner")
    kind, team = _parse_ref(owner) if isinstance(owner, str) else (None, None)
    if kind not in (None, "group") or team is None or not _CHARTER_NAME.match(team):
        entity.problem = f"spec.owner {owner!r} must name a group (group:default/<team>)"
        return entity
    entity.team = team
    _read_definition(entity, spec.get("definition"), file, root)
    return entity


def _read_definition(entity: ApiEntity, definition: Any, file: Path, root: Path) -> None:
    if isinstance(definition, str):
        entity.definition = definition.encode()
        entity.media_type = "application/json" if definition.lstrip()[:1] == "{" else "application/yaml"
        return
    ref = None
    if isinstance(definition, dict) and len(definition) == 1:
        placeholder, ref = next(iter(definition.items()))
        if placeholder not in PLACEHOLDERS or not isinstance(ref, str):
            ref = None
    if ref is None:
        entity.problem = "spec.definition must be the document's text or {$text: <relative file>}"
        return
    if _SCHEME.match(ref) and not re.match(r"^[A-Za-z]:[\\/]", ref):
        entity.skipped = (
            f"spec.definition names {ref}: remote definitions are not fetched (no network); "
            "save the document beside the catalog file and point $text at it"
        )
        return
    target = (file.parent / ref).resolve()
    if not _inside(target, root):
        entity.problem = f"spec.definition {ref!r} points outside {root}; only files inside it are read"
        return
    if not target.is_file():
        entity.problem = f"spec.definition {ref!r}: no such file"
        return
    if target.stat().st_size > MAX_FILE_BYTES:
        entity.problem = f"spec.definition {ref!r}: larger than {MAX_FILE_BYTES} bytes"
        return
    entity.definition = target.read_bytes()
    entity.media_type = "application/json" if target.suffix.lower() == ".json" else "application/yaml"


def _inside(path: Path, root: Path) -> bool:
    return path == root or path.is_relative_to(root)


def _text(value: Any) -> str | None:
    return str(value) if isinstance(value, str | int | float) and str(value).strip() else None


def _parse_ref(ref: str) -> tuple[str | None, str | None]:
    """`[kind:][namespace/]name` (Backstage's entity reference) as (kind, name), lowercased."""
    kind, _, rest = ref.partition(":") if ":" in ref else (None, "", ref)
    name = rest.rpartition("/")[2]
    return (kind.lower() if kind else None), (name.lower() or None)


def _ref_name(ref: Any) -> str | None:
    return _parse_ref(ref)[1] if isinstance(ref, str) else None

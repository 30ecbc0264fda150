"""Multi-file contracts: zip and file uploads, root detection, cross-file references, hostile archives."""

from __future__ import annotations

import contextlib
import io
import json
import zipfile

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts.bundle import bundle_from_files, bundle_from_zip, resolve_bundle
from contracts.errors import ContractError, ContractInvalid
from contracts.kinds import detect_kind
from contracts.loading import LoadLimits
from contracts.references import iter_refs
from contracts.validation import validate_document
from tests.conftest import corpus
from tests.contracts.zip_fixtures import MINIMAL, damaged_archives, one_entry_zip

SOCIAL = corpus("asyncapi", "social-media")


def zipped(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def social_files() -> dict[str, bytes]:
    return {p.relative_to(SOCIAL).as_posix(): p.read_bytes() for p in SOCIAL.rglob("*") if p.is_file()}


def test_social_media_bundle_resolves_to_a_valid_self_contained_document():
    bundle = bundle_from_zip(zipped(social_files()), root="backend/asyncapi.yaml")
    resolved = resolve_bundle(bundle)

    assert bundle.root == "backend/asyncapi.yaml"
    assert set(bundle.sources) == set(social_files())
    assert all(ref.startswith("#") for _, ref in iter_refs(resolved))
    assert validate_document(resolved, detect_kind(resolved)) == []


def test_the_root_is_found_when_only_one_document_is_not_referenced():
    files = {
        "api.yaml": yaml.safe_dump(
            {
                "openapi": "3.0.3",
                "info": {"title": "t", "version": "1.0.0"},
                "paths": {"/a": {"$ref": "paths/a.yaml"}},
            }
        ).encode(),
        "paths/a.yaml": yaml.safe_dump(
            {"get": {"responses": {"200": {"$ref": "../responses.yaml#/Ok"}}}}
        ).encode(),
        "responses.yaml": yaml.safe_dump({"Ok": {"description": "ok"}}).encode(),
    }
    bundle = bundle_from_files(files)
    assert bundle.root == "api.yaml"
    resolved = resolve_bundle(bundle)
    assert resolved["paths"]["/a"]["get"]["responses"]["200"] == {"description": "ok"}


def test_internal_references_of_a_foreign_file_keep_their_meaning():
    files = {
        "api.json": json.dumps(
            {
                "openapi": "3.0.3",
                "info": {"title": "t", "version": "1"},
                "paths": {},
                "components": {"schemas": {"Order": {"$ref": "models.json#/Order"}}},
            }
        ).encode(),
        "models.json": json.dumps(
            {
                "Order": {"type": "object", "properties": {"line": {"$ref": "#/Line"}}},
                "Line": {"type": "object", "properties": {"sku": {"type": "string"}}},
            }
        ).encode(),
    }
    resolved = resolve_bundle(bundle_from_files(files))
    line = resolved["components"]["schemas"]["Order"]["properties"]["line"]
    assert line == {"type": "object", "properties": {"sku": {"type": "string"}}}


def test_missing_target_file_names_the_referring_file():
    files = {
        "api.yaml": b"openapi: 3.0.3\ninfo: {title: t, version: '1'}\npaths:\n  /a: {$ref: 'gone.yaml'}\n"
    }
    with pytest.raises(ContractInvalid) as raised:
        resolve_bundle(bundle_from_files(files))
    assert raised.value.issues[0].file == "api.yaml"
    assert raised.value.issues[0].pointer == "/paths/~1a/$ref"


def test_cycles_across_files_are_refused():
    files = {
        "api.yaml": b"openapi: 3.0.3\ninfo: {title: t, version: '1'}\npaths: {}\ncomponents:\n"
        b"  schemas:\n    A: {$ref: 'a.yaml'}\n",
        "a.yaml": b"type: object\nproperties:\n  b: {$ref: 'b.yaml'}\n",
        "b.yaml": b"type: object\nproperties:\n  a: {$ref: 'a.yaml'}\n",
    }
    with pytest.raises(ContractInvalid, match="cycle"):
        resolve_bundle(bundle_from_files(files))


def test_ambiguous_root_lists_the_candidates():
    with pytest.raises(ContractInvalid, match=r"backend/asyncapi\.yaml"):
        bundle_from_zip(zipped(social_files()))


@pytest.mark.parametrize("name", ["../evil.yaml", "/etc/passwd.yaml", "a/../../evil.yaml", "C:/x.yaml"])
def test_paths_escaping_the_bundle_are_refused(name):
    with pytest.raises(ContractInvalid, match="inside the bundle"):
        bundle_from_zip(zipped({name: b"openapi: 3.0.3\n"}))


def test_archives_that_unpack_past_the_limit_are_refused():
    big = zipped({"api.yaml": b"openapi: 3.0.3\n" + b"#" * 200_000})
    assert len(big) < 5_000
    with pytest.raises(ContractInvalid, match="unpacks to more than"):
        bundle_from_zip(big, limits=LoadLimits(max_bytes=100_000))


def test_only_documents_may_be_bundled_and_junk_is_ignored():
    with pytest.raises(ContractInvalid, match=r"only \.json, \.yaml"):
        bundle_from_files({"api.yaml": b"openapi: 3.0.3\n", "run.sh": b"rm -rf /"})
    bundle = bundle_from_files(
        {
            "api.yaml": b"openapi: 3.0.3\ninfo: {title: t, version: '1'}\npaths: {}\n",
            "__MACOSX/x.yaml": b"junk",
            ".DS_Store": b"junk",
        }
    )
    assert set(bundle.files) == {"api.yaml"}


def test_not_a_zip():
    with pytest.raises(ContractInvalid, match="zip"):
        bundle_from_zip(b"PK\x03\x04 not really")


def test_the_unedited_archive_is_a_bundle():
    assert bundle_from_zip(one_entry_zip()).root == "api.json"


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("bad-crc", r"^api\.json: the entry is corrupt \(Bad CRC-32"),
        ("encrypted", r"^api\.json: the entry is encrypted"),
        ("method-99", r"^api\.json: compression method 99 is not supported"),
    ],
)
def test_a_damaged_entry_is_an_invalid_contract_naming_the_entry(case, message):
    with pytest.raises(ContractInvalid, match=message):
        bundle_from_zip(damaged_archives()[case])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    method=st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA]),
    edits=st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 255)), min_size=1, max_size=3),
)
def test_any_damaged_archive_is_a_bundle_or_a_contract_error(method, edits):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=method) as archive:
        archive.writestr("api.json", MINIMAL)
        archive.writestr("parts/b.yaml", b"type: string\n")
    data = bytearray(buffer.getvalue())
    for position, value in edits:
        data[position % len(data)] = value
    with contextlib.suppress(ContractError):
        bundle_from_zip(bytes(data))

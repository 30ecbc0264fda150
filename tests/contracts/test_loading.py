"""Loading documents: formats, limits, and YAML made JSON-compatible."""

from __future__ import annotations

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts.canonical import canonical_json, fingerprint
from contracts.errors import DocumentTooLarge, DocumentUnreadable, UnknownKind
from contracts.kinds import Family, detect_kind
from contracts.loading import LoadLimits, decode_json, load_document
from tests.conftest import corpus
from tests.samples import as_json, as_yaml, projects


def test_json_and_yaml_spellings_load_to_the_same_document():
    doc = projects()
    assert load_document(as_json(doc)) == doc
    assert load_document(as_yaml(doc)) == doc
    assert load_document(as_yaml(doc, reverse_keys=True), media_type="application/yaml") == doc


def test_yaml_keys_and_dates_become_json_strings():
    doc = load_document(
        b"openapi: 3.0.3\npaths:\n  /a:\n    get:\n      responses:\n        200: {description: ok}\n"
        b"x-released: 2024-01-01\nx-flag: yes\n"
    )
    assert doc["paths"]["/a"]["get"]["responses"] == {"200": {"description": "ok"}}
    assert doc["x-released"] == "2024-01-01"


def test_size_limit():
    with pytest.raises(DocumentTooLarge):
        load_document(b'{"a": "' + b"x" * 200 + b'"}', limits=LoadLimits(max_bytes=100))


def test_alias_bomb_is_stopped_quickly():
    levels = ['a: &a ["x","x","x","x","x","x","x","x","x","x"]']
    for i in range(1, 9):
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        levels.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 10) + "]")
    started = time.perf_counter()
    with pytest.raises(DocumentTooLarge):
        load_document("\n".join(levels).encode())
    assert time.perf_counter() - started < 5  # bounded work, not a benchmark: 10^9 nodes would never end


@pytest.mark.parametrize(
    "data",
    [
        b"\xff\xfe{}",
        b"",
        b"   ",
        b"[1, 2]",
        b"{bad json",
        b"a: [unclosed",
        b"!!binary aGVsbG8=",
        b"x: !!python/name:os.system",
        b'{"a": ' + b"[" * 100 + b"]" * 100 + b"}",
    ],
)
def test_unreadable_input_raises_a_typed_error(data):
    with pytest.raises((DocumentUnreadable, DocumentTooLarge)):
        load_document(data)


def test_depth_limit_applies_to_yaml_and_json():
    deep = b"a: " + b"[" * 80 + b"]" * 80
    with pytest.raises(DocumentUnreadable, match="nested"):
        load_document(deep)
    assert load_document(deep, limits=LoadLimits(max_depth=200))


def test_any_json_value_decodes_within_the_same_limits():
    assert decode_json(b'"text"') == "text"
    assert decode_json(b'[1, {"a": [2]}]') == [1, {"a": [2]}]
    with pytest.raises(DocumentUnreadable, match="nested deeper than 3 levels"):
        decode_json(b"[[[[[]]]]]", limits=LoadLimits(max_depth=3))
    with pytest.raises(DocumentUnreadable, match="nested too deeply"):
        decode_json(b"[" * 100_000 + b"]" * 100_000)
    with pytest.raises(DocumentTooLarge):
        decode_json(b"[1, 2, 3]", limits=LoadLimits(max_bytes=4))


def test_stripe_loads_in_both_formats():
    from_json = load_document(corpus("stripe", "spec3-v110.json").read_bytes())
    assert len(from_json["paths"]) == 243
    from_yaml = load_document(corpus("stripe", "spec3-v190.yaml").read_bytes())
    assert from_yaml["openapi"] == "3.0.0"


@pytest.mark.parametrize(
    ("doc", "family", "line"),
    [
        ({"swagger": "2.0"}, Family.OPENAPI, "2.0"),
        ({"openapi": "3.0.3"}, Family.OPENAPI, "3.0"),
        ({"openapi": "3.1.0"}, Family.OPENAPI, "3.1"),
        ({"asyncapi": "2.6.0"}, Family.ASYNCAPI, "2.6"),
        ({"asyncapi": "3.0.0"}, Family.ASYNCAPI, "3.0"),
        ({"asyncapi": "3.1.0"}, Family.ASYNCAPI, "3.1"),
    ],
)
def test_kinds(doc, family, line):
    kind = detect_kind(doc)
    assert (kind.family, kind.line) == (family, line)


@pytest.mark.parametrize(
    "doc", [{}, {"openapi": "4.0.0"}, {"asyncapi": "1.2.0"}, {"openapi": 3}, {"swagger": "x"}]
)
def test_unknown_or_unsupported_kinds(doc):
    with pytest.raises(UnknownKind):
        detect_kind(doc)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=30,
)


@given(st.dictionaries(st.text(max_size=8), json_values, max_size=6))
def test_fingerprint_ignores_key_order_and_format(doc):
    reordered = dict(reversed(list(doc.items())))
    assert fingerprint(doc) == fingerprint(reordered)
    assert canonical_json(load_document(as_json(doc))) == canonical_json(doc)


def test_fingerprint_sees_content_changes():
    assert fingerprint(projects()) != fingerprint(projects(description="other"))

"""The schemas validation reads as files are the very ones the validator packages answer."""

from __future__ import annotations

import pytest
from openapi_schema_validator._specifications import REGISTRY as OPENAPI_SPECIFICATIONS
from openapi_spec_validator.schemas.utils import get_schema_content

from contracts.validation import bundled
from contracts.validation.openapi import _DIALECTS, _is_regex


@pytest.mark.parametrize("line", ["2.0", "3.0", "3.1"])
def test_the_openapi_schema_of_each_line_is_openapi_spec_validators(line: str) -> None:
    assert bundled.openapi_schema(line) == get_schema_content(line)


@pytest.mark.parametrize("uri", sorted({*_DIALECTS.values(), bundled.OAS31_BASE_VOCABULARY_ID}))
def test_each_meta_schema_is_the_one_openapi_schema_validator_checks_with(uri: str) -> None:
    assert bundled.metaschema(uri) == OPENAPI_SPECIFICATIONS.contents(uri)


def test_the_regex_format_is_checked_as_openapi_schema_validator_checks_it() -> None:
    from openapi_schema_validator._format import is_regex

    for pattern in ("^[a-z]+$", "(unclosed", "a{2,1}", "\\d+", "[", "(?P<name>x)"):
        assert _is_regex(pattern) is is_regex(pattern), pattern

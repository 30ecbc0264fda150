"""The JSON Schemas that validation checks against, read as files from the packages that ship them.

openapi-spec-validator ships the OpenAPI JSON Schema of each line, openapi-schema-validator the OAS
3.1 schema dialect, jsonschema-specifications the JSON Schema drafts' meta-schemas. Importing those
packages to reach their files costs about 0.3 s of a CLI's start-up (openapi-schema-validator reads
its settings through pydantic-settings at import, openapi-spec-validator pulls jsonschema-path and
requests), more than a diff of the Stripe API takes to validate: the files are read here by path,
found with `importlib.util.find_spec`, which locates a package without running its `__init__`.
tests/contracts/test_validation_bundled.py holds them equal to what the packages themselves answer.
"""

from __future__ import annotations

import functools
import importlib.util
import json
from pathlib import Path
from typing import Any

OAS31_BASE_DIALECT_ID = "https://spec.openapis.org/oas/3.1/dialect/base"
OAS31_BASE_VOCABULARY_ID = "https://spec.openapis.org/oas/3.1/meta/base"
# A dialect's meta-schema: the package that ships it and its path inside.
_METASCHEMAS = {
    OAS31_BASE_DIALECT_ID: ("openapi_schema_validator", "schemas/oas3.1/metaschema.json"),
    OAS31_BASE_VOCABULARY_ID: ("openapi_schema_validator", "schemas/oas3.1/vocabularies/base"),
    "https://json-schema.org/draft/2020-12/schema": (
        "jsonschema_specifications",
        "schemas/draft202012/metaschema.json",
    ),
    "https://json-schema.org/draft/2019-09/schema": (
        "jsonschema_specifications",
        "schemas/draft201909/metaschema.json",
    ),
    "http://json-schema.org/draft-07/schema": ("jsonschema_specifications", "schemas/draft7/metaschema.json"),
    "http://json-schema.org/draft-06/schema": ("jsonschema_specifications", "schemas/draft6/metaschema.json"),
    "http://json-schema.org/draft-04/schema": ("jsonschema_specifications", "schemas/draft4/metaschema.json"),
}


@functools.cache
def openapi_schema(line: str) -> Any:
    """The OpenAPI JSON Schema of a line ("2.0", "3.0", "3.1"), as openapi-spec-validator checks it."""
    return _read("openapi_spec_validator", f"resources/schemas/v{line}/schema.json")


@functools.cache
def metaschema(uri: str) -> Any:
    """The meta-schema (or vocabulary) named `uri`, one of those in `_METASCHEMAS`."""
    package, path = _METASCHEMAS[uri.rstrip("#")]
    return _read(package, path)


def _read(package: str, path: str) -> Any:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"{package} is not installed: its JSON Schemas are needed to validate")
    return json.loads((Path(next(iter(spec.submodule_search_locations))) / path).read_bytes())

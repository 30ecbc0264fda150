"""openapi-spec-validator as the oracle of OpenAPI validity, with the place of each of its errors.

It reports its semantic errors without a place (`$`) and its schema errors relative to the sub-schema
or value checked. Here its keyword validators are wrapped to prefix each error with the path it
walked to get there (through `$ref`s), and `written` turns that path into the pointer of the place
the offending node is written, which is what Charter's validator reports.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import Any

from jsonschema.exceptions import ValidationError
from jsonschema_path.paths import SchemaPath
from openapi_spec_validator.validation import keywords
from openapi_spec_validator.validation.exceptions import (
    ExtraParametersError,
    OpenAPIValidationError,
    ParameterDuplicateError,
)
from openapi_spec_validator.validation.validators import (
    OpenAPIV2SpecValidator,
    OpenAPIV30SpecValidator,
    OpenAPIV31SpecValidator,
)

from contracts.references import follow, pointer

# id of each error the wrappers placed -> whether its last step follows a `$ref` (a schema's error is
# where the schema is written; a duplicate list entry is where it is listed).
_tagged: dict[int, bool] = {}


def _tag(error: ValidationError, parts: list[Any], *, follow_last: bool = True) -> ValidationError:
    if id(error) not in _tagged:
        _tagged[id(error)] = follow_last
        error.path = deque([*parts, *error.path])
    return error


def _parts(path: SchemaPath) -> list[Any]:
    return list(path.parts)


def _schema_validator(base: type[keywords.SchemaValidator]) -> type[keywords.SchemaValidator]:
    class Located(base):  # type: ignore[valid-type, misc]
        def __call__(self, schema: SchemaPath, *args: Any, **kwargs: Any) -> Iterator[ValidationError]:
            for error in super().__call__(schema, *args, **kwargs):
                extra = ["required"] if isinstance(error, ExtraParametersError) else []
                yield _tag(error, _parts(schema) + extra)

    return Located


def _value_validator(base: type[keywords.ValueValidator]) -> type[keywords.ValueValidator]:
    class Located(base):  # type: ignore[valid-type, misc]
        def __call__(self, schema: SchemaPath, value: Any) -> Iterator[ValidationError]:
            for error in super().__call__(schema, value):
                # As the oracle would wrap it later, so that the tag stays on the object it reports.
                yield _tag(OpenAPIValidationError.create_from(error), [*_parts(schema), "default"])

    return Located


class _Parameters(keywords.ParametersValidator):
    def __call__(self, parameters: SchemaPath) -> Iterator[ValidationError]:
        seen = set()
        for index, parameter in enumerate(parameters):
            yield from self.parameter_validator(parameter)
            key = (parameter["name"], parameter["in"])
            if key in seen:
                error = ParameterDuplicateError(f"Duplicate parameter '{parameter['name']}'")
                yield _tag(error, [*_parts(parameters), index], follow_last=False)
            seen.add(key)


class _Operation(keywords.OperationValidator):
    def __call__(
        self, url: str, name: str, operation: SchemaPath, path_parameters: SchemaPath | None
    ) -> Iterator[ValidationError]:
        for error in super().__call__(url, name, operation, path_parameters):
            extra = ["operationId"] if "Operation ID" in error.message else []
            yield _tag(error, _parts(operation) + extra)


class _Tags(keywords.TagsValidator):
    def __call__(self, tags: SchemaPath) -> Iterator[ValidationError]:
        for error in super().__call__(tags):
            yield _tag(error, _parts(tags))


def _located(base: Any) -> Any:
    validators = dict(base.keyword_validators)
    validators["schema"] = _schema_validator(validators["schema"])
    validators["default"] = _value_validator(validators["default"])
    validators["parameters"] = _Parameters
    validators["operation"] = _Operation
    validators["tags"] = _Tags
    return type(f"Located{base.__name__}", (base,), {"keyword_validators": validators})


ORACLES = {
    "2.0": _located(OpenAPIV2SpecValidator),
    "3.0": _located(OpenAPIV30SpecValidator),
    "3.1": _located(OpenAPIV31SpecValidator),
}


class Verdict:
    def __init__(self, valid: bool, places: set[str], crashed: str | None) -> None:
        self.valid = valid
        self.places = places
        self.crashed = crashed  # the oracle raised instead of reporting (a broken $ref, a missing key)


def oracle(doc: dict[str, Any], line: str) -> Verdict:
    places: set[str] = set()
    crashed = None
    try:
        for error in ORACLES[line](doc).iter_errors():
            path = list(error.path)
            # Structural errors carry the path into the document as written; the walk's go through refs.
            if id(error) in _tagged:
                places.add(written(doc, path, follow_last=_tagged[id(error)]))
            else:
                places.add(pointer(path))
    except Exception as exc:  # the oracle assumes a well-formed document and resolvable refs
        crashed = f"{type(exc).__name__}: {exc}"[:200]
    _tagged.clear()
    return Verdict(not places and crashed is None, places, crashed)


def written(doc: Any, path: list[Any], *, follow_last: bool = True) -> str:
    """The pointer of the place a path walked through `$ref`s leads to, as it is written."""
    node, at = follow(doc, doc, "")
    for step, part in enumerate(path):
        inside = isinstance(node, list) and isinstance(part, int) and part < len(node)
        if inside or (isinstance(node, dict) and part in node):
            node, at = node[part], at + pointer([part])
            if follow_last or step < len(path) - 1:
                node, at = follow(doc, node, at)
        else:
            return at + pointer([part])
    return at

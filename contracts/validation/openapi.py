"""OpenAPI documents against their specification, every finding at the absolute place it is written.

Structure: the OpenAPI JSON Schema of the document's line (the one openapi-spec-validator ships),
compiled once per process by jsonschema-rs. Semantics: the checks openapi-spec-validator makes
(its `validation/keywords.py`), walked here over the plain document in the same order:
duplicate tag names; per path, duplicate parameters, unique operationIds, path parameters declared
and used; every schema it reaches (responses, parameters, `components/schemas`) checked against the
JSON Schema dialect (draft 4 for OpenAPI 2.0 and 3.0, the OAS base dialect or `$schema` for 3.1),
`required` names without a property under `allOf`, and `default` values against their schema.

Where openapi-spec-validator stops (one meta-schema error per schema, semantic checks cut short by
the first error of a schema, pointers relative to the sub-schema, messages built from sets) this
walk goes on: every error of every schema, each at its absolute pointer, in document order.
openapi-spec-validator stays the oracle of what is valid (tests/contracts/test_validation_oracle.py).
Where the two cannot agree exactly, and why:
- Charter reports more, never less: all meta-schema errors of a schema and what follows them; a
  document the oracle cannot walk (`responses: "none"`, a path template with unpaired braces, a
  dangling `$ref`) makes it raise, and Charter reports it instead.
- A reference to nothing is an error wherever it is; the oracle never looks at request bodies,
  headers or callbacks, so one there passes it.
- Meta-schema messages are jsonschema-rs's wording (`1 is not of type "boolean"`), not Python
  jsonschema's; the places are the same.
- A 3.1 schema that declares draft 3 (`$schema`) is an unknown dialect here: jsonschema-rs has none.
- The oracle checks `required` names under `allOf` only for a schema it first meets at the top
  (a schema first met as a property is never checked): mirrored, walking in its order, so that the
  same documents are valid.
"""

from __future__ import annotations

import functools
import re
import string
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import jsonschema_rs

from contracts.errors import Issue
from contracts.loading import Document
from contracts.references import child, follow, fragment, pointer
from contracts.validation.bundled import (
    OAS31_BASE_DIALECT_ID,
    OAS31_BASE_VOCABULARY_ID,
    metaschema,
    openapi_schema,
)

if TYPE_CHECKING:
    from jsonschema.exceptions import ValidationError
    from referencing import Registry

OPERATIONS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_DRAFT4 = "http://json-schema.org/draft-04/schema"
_DIALECTS = {
    OAS31_BASE_DIALECT_ID: OAS31_BASE_DIALECT_ID,
    "https://json-schema.org/draft/2020-12/schema": "https://json-schema.org/draft/2020-12/schema",
    "https://json-schema.org/draft/2019-09/schema": "https://json-schema.org/draft/2019-09/schema",
    "http://json-schema.org/draft-07/schema": "http://json-schema.org/draft-07/schema",
    "http://json-schema.org/draft-06/schema": "http://json-schema.org/draft-06/schema",
    "http://json-schema.org/draft-04/schema": _DRAFT4,
}
# Formats the meta-schemas name that openapi-schema-validator does not check when it checks a
# schema (only `regex` is in its format checkers): accepted as it accepts them.
_UNCHECKED_META_FORMATS = ("uri", "uri-reference", "iri", "iri-reference", "uri-template", "json-pointer")
_DOCUMENT_URI = "urn:charter:openapi-document"


def structure_issues(doc: Document, line: str) -> Iterator[Issue]:
    """Every place `doc` breaks the OpenAPI JSON Schema of its line, at its absolute pointer."""
    for error in _structure_validator(line).iter_errors(doc):
        yield from rs_issues(error)


def semantic_issues(doc: Document, line: str) -> list[Issue]:
    """What openapi-spec-validator checks beyond the JSON Schema, on a document of any shape."""
    return _Semantics(doc, line).run()


@functools.cache
def _structure_validator(line: str) -> Any:
    return jsonschema_rs.validator_for(openapi_schema(line))


@functools.cache
def _meta_validator(dialect: str) -> Any:
    """A compiled validator of schemas written in `dialect`, built once per process.

    The meta-schemas are the files openapi-schema-validator checks schemas with (read without
    importing it: contracts/validation/bundled.py), so that both agree on what a valid schema is.
    """
    formats = {name: _accept for name in _UNCHECKED_META_FORMATS} | {"regex": _is_regex}
    if dialect == OAS31_BASE_DIALECT_ID:
        registry = jsonschema_rs.Registry([(OAS31_BASE_VOCABULARY_ID, metaschema(OAS31_BASE_VOCABULARY_ID))])
        return jsonschema_rs.validator_for(
            metaschema(dialect), registry=registry, validate_formats=True, formats=formats
        )
    return jsonschema_rs.validator_for(metaschema(dialect), validate_formats=True, formats=formats)


def _accept(_: str) -> bool:
    return True


def _is_regex(pattern: str) -> bool:
    """openapi-schema-validator's `regex` format check (`_regex.is_valid_regex`): ECMA 262 through
    `regress` when it is installed, else Python's `re`. Written again here because importing it runs
    that package's `__init__`, a fifth of a second of start-up (see bundled.py)."""
    try:
        from regress import Regex, RegressError
    except ImportError:
        try:
            re.compile(pattern)
        except re.error:
            return False
        return True
    try:
        Regex(pattern)
    except RegressError:
        return False
    return True


def rs_issues(error: Any, base: str = "") -> list[Issue]:
    """jsonschema-rs puts oneOf failures on the parent; report the errors of the best branch instead."""
    context = getattr(error.kind, "context", None)
    branches = [branch for branch in context or () if branch]
    here = base + pointer(error.instance_path)
    if not branches:
        return [Issue(pointer=here, message=one_line(error.message))]
    best = max(branches, key=lambda branch: (max(len(e.instance_path) for e in branch), -len(branch)))
    if max(len(e.instance_path) for e in best) <= len(error.instance_path):
        return [Issue(pointer=here, message=one_line(error.message))]
    issues = []
    for sub in best:
        issues.extend(rs_issues(sub, base))
    return issues


def one_line(message: str) -> str:
    # The jsonschema-rs backend appends the failing schema and instance; the first sentence says it.
    text = " ".join(message.split()).split(" Failed validating ", 1)[0]
    return text if len(text) <= 300 else text[:297] + "..."


class _Semantics:
    def __init__(self, doc: Document, line: str) -> None:
        self.doc = doc
        self.line = line
        self.issues: list[Issue] = []
        self.meta_checked: set[str] = set()
        self.visited: set[str] = set()
        self.operation_ids: set[str] = set()
        self._value_registry: Registry | None = None
        dialect = doc.get("jsonSchemaDialect") if line == "3.1" else None
        self.default_dialect = dialect if isinstance(dialect, str) else OAS31_BASE_DIALECT_ID

    def run(self) -> list[Issue]:
        tags = self.doc.get("tags")
        if isinstance(tags, list):
            self.tags(tags)
        paths = self.doc.get("paths")
        if isinstance(paths, dict):
            for url, item in paths.items():
                self.path(url, item, child("/paths", url))
        components = self.doc.get("components")
        if isinstance(components, dict) and isinstance(components.get("schemas"), dict):
            for name, schema in components["schemas"].items():
                self.schema(schema, child("/components/schemas", name))
        return self.issues

    def report(self, at: str, message: str) -> None:
        self.issues.append(Issue(pointer=at, message=message))

    def tags(self, tags: list[Any]) -> None:
        seen: set[str] = set()
        for index, tag in enumerate(tags):
            name = tag.get("name") if isinstance(tag, dict) else None
            if not isinstance(name, str):
                continue
            if name in seen:
                self.report(f"/tags/{index}/name", f"Duplicate tag name '{name}'")
            seen.add(name)

    def path(self, url: str, node: Any, at: str) -> None:
        item, item_at = follow(self.doc, node, at)
        if not isinstance(item, dict):
            return
        shared: dict[str, str] = {}
        if isinstance(item.get("parameters"), list):
            shared = self.parameters(item["parameters"], child(item_at, "parameters"))
        for method, operation in item.items():
            if method in OPERATIONS:
                self.operation(url, method, operation, child(item_at, method), shared)

    def operation(self, url: str, method: str, node: Any, at: str, shared: dict[str, str]) -> None:
        operation, at = follow(self.doc, node, at)
        if not isinstance(operation, dict):
            return
        operation_id = operation.get("operationId")
        if isinstance(operation_id, str):
            if operation_id in self.operation_ids:
                self.report(
                    child(at, "operationId"),
                    f"Operation ID '{operation_id}' for '{method}' in '{url}' is not unique",
                )
            self.operation_ids.add(operation_id)
        if isinstance(operation.get("responses"), dict):
            for code, response in operation["responses"].items():
                self.response(response, child(at, "responses", code))
        declared = dict(shared)
        if isinstance(operation.get("parameters"), list):
            declared |= self.parameters(operation["parameters"], child(at, "parameters"))
        try:
            in_url = {field for _, field, _, _ in string.Formatter().parse(url) if field}
        except ValueError:
            self.report(child("/paths", url), f"Path '{url}' is not a valid template: its braces do not pair")
            return
        for name in sorted(in_url):
            if name not in declared:
                self.report(at, _unresolved(name, method, url))
        for name in sorted(declared):
            if name not in in_url:
                self.report(declared[name], _unresolved(name, method, url))

    def parameters(self, parameters: list[Any], at: str) -> dict[str, str]:
        """Check a parameter list; the path parameters it declares, by name, with their pointers."""
        seen: set[tuple[str, str]] = set()
        path_parameters: dict[str, str] = {}
        for index, node in enumerate(parameters):
            listed_at = f"{at}/{index}"
            parameter, parameter_at = follow(self.doc, node, listed_at)
            if not isinstance(parameter, dict):
                continue
            if "schema" in parameter:
                self.schema(parameter["schema"], child(parameter_at, "schema"))
            if self.line == "2.0" and "default" in parameter:
                self.value(parameter, parameter_at, parameter["default"], child(parameter_at, "default"))
            name, location = parameter.get("name"), parameter.get("in")
            if not isinstance(name, str) or not isinstance(location, str):
                continue
            if (name, location) in seen:
                self.report(listed_at, f"Duplicate parameter '{name}'")
            seen.add((name, location))
            if location == "path":
                path_parameters[name] = listed_at
        return path_parameters

    def response(self, node: Any, at: str) -> None:
        response, at = follow(self.doc, node, at)
        if not isinstance(response, dict):
            return
        if self.line == "2.0":
            if "schema" in response:
                self.schema(response["schema"], child(at, "schema"))
            return
        content = response.get("content")
        if isinstance(content, dict):
            for media_type, entry in content.items():
                entry, entry_at = follow(self.doc, entry, child(at, "content", media_type))
                if isinstance(entry, dict) and "schema" in entry:
                    self.schema(entry["schema"], child(entry_at, "schema"))

    def schema(self, node: Any, at: str, *, require_properties: bool = True, nested: bool = False) -> None:
        schema, at = follow(self.doc, node, at)
        if not isinstance(schema, dict | bool):
            self.report(at, f"{schema!r} is not of type 'object', 'boolean'")
            return
        if not nested and at not in self.meta_checked:
            self.meta_checked.add(at)
            self.meta(schema, at)
        if at in self.visited or not isinstance(schema, dict):
            return
        self.visited.add(at)

        inherited: set[str] = set()
        for keyword in ("allOf", "anyOf", "oneOf"):
            members = schema.get(keyword)
            if isinstance(members, list):
                for index, member in enumerate(members):
                    self.schema(member, f"{at}/{keyword}/{index}", require_properties=False, nested=True)
                    if keyword == "allOf":
                        inherited |= self.property_names(member, f"{at}/allOf/{index}", set())
        for keyword in ("not", "items"):
            if keyword in schema and isinstance(schema[keyword], dict | bool):
                self.schema(schema[keyword], child(at, keyword), require_properties=False, nested=True)
        properties = schema.get("properties")
        if isinstance(properties, dict):
            for name, member in properties.items():
                self.schema(member, child(at, "properties", name), require_properties=False, nested=True)

        required = schema.get("required")
        if require_properties and "allOf" in schema and isinstance(required, list):
            own = set(properties) if isinstance(properties, dict) else set()
            names = dict.fromkeys(n for n in required if isinstance(n, str))
            missing = [n for n in names if n not in own | inherited]
            if missing:
                self.report(child(at, "required"), f"Required list has not defined properties: {missing}")
        if "default" in schema:
            default = schema["default"]
            if default is not None or schema.get("nullable") is not True:
                self.value(schema, at, default, child(at, "default"))

    def property_names(self, node: Any, at: str, seen: set[str]) -> set[str]:
        """Every property name reachable through allOf/anyOf/oneOf/items/not, as the oracle collects."""
        schema, at = follow(self.doc, node, at)
        if not isinstance(schema, dict) or at in seen:
            return set()
        seen.add(at)
        names = set(schema["properties"]) if isinstance(schema.get("properties"), dict) else set()
        for keyword in ("allOf", "anyOf", "oneOf"):
            if isinstance(schema.get(keyword), list):
                for index, member in enumerate(schema[keyword]):
                    names |= self.property_names(member, f"{at}/{keyword}/{index}", seen)
        for keyword in ("items", "not"):
            if keyword in schema:
                names |= self.property_names(schema[keyword], child(at, keyword), seen)
        return names

    def meta(self, schema: dict[str, Any] | bool, at: str) -> None:
        """Every error of the schema against its JSON Schema dialect, each at its absolute pointer."""
        if self.line != "3.1":
            dialect = _DRAFT4
        else:
            written = schema.get("$schema", self.default_dialect) if isinstance(schema, dict) else None
            written = self.default_dialect if written is None else written
            known = _DIALECTS.get(written.rstrip("#")) if isinstance(written, str) else None
            if known is None:
                self.report(at, f"Unknown JSON Schema dialect: {written!r}")
                return
            dialect = known
        for error in _meta_validator(dialect).iter_errors(schema):
            self.issues.extend(rs_issues(error, at))

    def value(self, schema: dict[str, Any], schema_at: str, value: Any, at: str) -> None:
        """A `default` against the schema it belongs to, with the OpenAPI flavour of JSON Schema.

        openapi-schema-validator's validators, as the oracle uses them: OpenAPI 3.0 reads `nullable`,
        its own formats and draft 4 keywords, which no compiled validator implements. Documents hold
        few defaults, so this costs little.
        """
        # Imported here, not at the top: openapi-schema-validator costs a fifth of a second to import
        # (its settings go through pydantic-settings), and most documents have no `default` to check.
        from openapi_schema_validator import (
            OAS30Validator,
            OAS31Validator,
            oas30_format_checker,
            oas31_format_checker,
        )
        from referencing import Registry, Resource
        from referencing.jsonschema import DRAFT4, DRAFT202012

        if self.line == "3.1":
            validator_class, formats, specification = OAS31Validator, oas31_format_checker, DRAFT202012
        else:
            validator_class, formats, specification = OAS30Validator, oas30_format_checker, DRAFT4
        if self._value_registry is None:
            resource = Resource.from_contents(self.doc, default_specification=specification)
            self._value_registry = Registry().with_resource(_DOCUMENT_URI, resource)
        target = {"$ref": _DOCUMENT_URI + fragment(schema_at)}
        validator = validator_class(target, registry=self._value_registry, format_checker=formats)
        try:
            for error in validator.iter_errors(value):
                error = _most_precise(error)
                self.report(at + pointer(list(error.absolute_path)), one_line(error.message))
        except Exception as exc:  # a schema broken in a way its meta-schema errors already report
            self.report(at, f"cannot check the value against its schema: {one_line(str(exc))}")


def _unresolved(name: str, method: str, url: str) -> str:
    return f"Path parameter '{name}' for '{method}' operation in '{url}' was not resolved"


def _most_precise(error: ValidationError) -> ValidationError:
    """Under oneOf/anyOf the parent error says little; descend into the branch that got furthest."""
    while error.context:
        deepest = max(error.context, key=lambda e: (len(e.absolute_path), -len(e.context or ())))
        if len(deepest.absolute_path) <= len(error.absolute_path) and deepest.validator == "required":
            break
        error = deepest
    return error

"""Spectral's core functions: what a `then` checks on each node a rule's `given` selects.

Each function is a Struct of its `functionOptions` (decoded once, unknown options refused, regular
expressions compiled when the ruleset loads) with a `check` that returns the failures: a message and
the path below the checked value where it is (empty for the value itself).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal

import jsonschema_rs
import msgspec

from contracts.lint.spectral.paths import Budget, Items, Node, compile_regex, plain, search

MISSING: Any = msgspec.UNSET  # the checked field is absent from the node

Failure = tuple[str, tuple[str | int, ...]]


class Context(msgspec.Struct):
    """What a function may need beyond the value: the whole document (as written) and the budget."""

    document: Any
    budget: Budget
    references: set[str] | None = None  # every local `$ref` in the document, computed once


def _short(value: Any) -> str:
    if isinstance(value, Node | Items):
        value = value.raw
    text = value if isinstance(value, str) else msgspec.json.encode(value).decode()
    return text if len(text) <= 60 else text[:57] + "..."


class _Function(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    accepts_missing: ClassVar[bool] = False  # called for a `field` the node lacks

    def check(self, value: Any, context: Context) -> list[Failure]:
        raise NotImplementedError


class Truthy(_Function, frozen=True):
    accepts_missing = True

    def check(self, value: Any, context: Context) -> list[Failure]:
        if value is MISSING or not value:
            return [("must be truthy", ())]
        return []


class Falsy(_Function, frozen=True):
    def check(self, value: Any, context: Context) -> list[Failure]:
        return [("must be falsy", ())] if value is not MISSING and value else []


class Defined(_Function, frozen=True):
    accepts_missing = True

    def check(self, value: Any, context: Context) -> list[Failure]:
        return [("must be defined", ())] if value is MISSING else []


class Undefined(_Function, frozen=True):
    def check(self, value: Any, context: Context) -> list[Failure]:
        return [] if value is MISSING else [("must be undefined", ())]


class Pattern(_Function, frozen=True, rename={"not_match": "notMatch"}):
    match: str | None = None
    not_match: str | None = None

    def __post_init__(self) -> None:
        if self.match is None and self.not_match is None:
            raise ValueError("`pattern` needs `match`, `notMatch` or both")
        for expression in (self.match, self.not_match):
            if expression is not None:
                _compiled(expression)

    def check(self, value: Any, context: Context) -> list[Failure]:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            return []
        text = str(value)
        if self.match is not None and not search(_compiled(self.match), text, context.budget):
            return [(f"must match the pattern '{self.match}'", ())]
        if self.not_match is not None and search(_compiled(self.not_match), text, context.budget):
            return [(f"must not match the pattern '{self.not_match}'", ())]
        return []


_COMPILED: dict[str, Any] = {}


def _compiled(expression: str) -> Any:
    found = _COMPILED.get(expression)
    if found is None:
        if len(_COMPILED) > 4096:
            _COMPILED.clear()
        found = _COMPILED[expression] = compile_regex(expression)
    return found


class Separator(msgspec.Struct, frozen=True, forbid_unknown_fields=True, rename="camel"):
    char: str
    allow_leading: bool = False


_CASES = {
    "flat": "[a-z][a-z{d}]*",
    "camel": "[a-z][a-z{d}]*(?:[A-Z{d}](?:[a-z{d}]+|$))*",
    "pascal": "[A-Z][a-z{d}]*(?:[A-Z{d}](?:[a-z{d}]+|$))*",
    "kebab": "[a-z][a-z{d}]*(?:-[a-z{d}]+)*",
    "cobol": "[A-Z][A-Z{d}]*(?:-[A-Z{d}]+)*",
    "snake": "[a-z][a-z{d}]*(?:_[a-z{d}]+)*",
    "macro": "[A-Z][A-Z{d}]*(?:_[A-Z{d}]+)*",
}


class Casing(_Function, frozen=True, rename="camel"):
    type: Literal["flat", "camel", "pascal", "kebab", "cobol", "snake", "macro"]
    disallow_digits: bool = False
    separator: Separator | None = None

    def regex(self) -> re.Pattern[str]:
        base = _CASES[self.type].format(d="" if self.disallow_digits else "0-9")
        if self.separator is None:
            return re.compile(f"^{base}$")
        sep = re.escape(self.separator.char)
        leading = f"{sep}?" if self.separator.allow_leading else ""
        return re.compile(f"^{leading}{base}(?:{sep}{base})*$")

    def check(self, value: Any, context: Context) -> list[Failure]:
        if not isinstance(value, str) or not value:
            return []
        if self.regex().match(value):
            return []
        return [(f"must be {self.type} case", ())]


class Enumeration(_Function, frozen=True):
    values: list[str | int | float | bool | None]

    def check(self, value: Any, context: Context) -> list[Failure]:
        if value is MISSING or isinstance(value, Node | Items | dict | list):
            return []
        if any(value == v and type(value) is type(v) for v in self.values):
            return []
        allowed = ", ".join(str(v) for v in self.values)
        return [(f"must be equal to one of the allowed values: {allowed}", ())]


class Length(_Function, frozen=True):
    min: int | None = None
    max: int | None = None

    def __post_init__(self) -> None:
        if self.min is None and self.max is None:
            raise ValueError("`length` needs `min`, `max` or both")

    def check(self, value: Any, context: Context) -> list[Failure]:
        if value is MISSING or isinstance(value, bool) or value is None:
            return []
        size = value if isinstance(value, int | float) else len(value)
        if self.min is not None and size < self.min:
            return [(f"must not be shorter than {self.min}", ())]
        if self.max is not None and size > self.max:
            return [(f"must not be longer than {self.max}", ())]
        return []


class Alphabetical(_Function, frozen=True, rename={"keyed_by": "keyedBy"}):
    keyed_by: str | None = None

    def check(self, value: Any, context: Context) -> list[Failure]:
        if isinstance(value, Mapping):
            keys: list[Any] = list(value)
        elif isinstance(value, Sequence) and not isinstance(value, str):
            items = list(value)
            if self.keyed_by is not None:
                keys = [i.get(self.keyed_by) if isinstance(i, Mapping) else None for i in items]
            else:
                keys = items
        else:
            return []
        comparable = [k for k in keys if isinstance(k, str | int | float)]
        for index in range(1, len(comparable)):
            left, right = comparable[index - 1], comparable[index]
            if type(left) is type(right) and left > right:  # type: ignore[operator]
                return [(f"must be sorted alphabetically: {_short(left)} comes after {_short(right)}", ())]
        return []


class Xor(_Function, frozen=True):
    properties: list[str]

    def check(self, value: Any, context: Context) -> list[Failure]:
        if not isinstance(value, Mapping):
            return []
        present = [p for p in self.properties if p in value]
        if len(present) == 1:
            return []
        listed = " and ".join(f'"{p}"' for p in self.properties)
        return [(f"{listed} must not be both defined or both undefined", ())]


class Or(_Function, frozen=True):
    properties: list[str]

    def check(self, value: Any, context: Context) -> list[Failure]:
        if not isinstance(value, Mapping) or any(p in value for p in self.properties):
            return []
        listed = ", ".join(f'"{p}"' for p in self.properties)
        return [(f"at least one of {listed} must be defined", ())]


_DIALECTS = {
    "auto": None,
    "draft4": jsonschema_rs.Draft4Validator,
    "draft6": jsonschema_rs.Draft6Validator,
    "draft7": jsonschema_rs.Draft7Validator,
    "draft2019-09": jsonschema_rs.Draft201909Validator,
    "draft2020-12": jsonschema_rs.Draft202012Validator,
}


class Schema(_Function, frozen=True, rename={"all_errors": "allErrors"}):
    accepts_missing = True  # as Spectral's: an absent value "must exist"

    schema: dict[str, Any] | bool
    dialect: Literal["auto", "draft4", "draft6", "draft7", "draft2019-09", "draft2020-12"] = "auto"
    all_errors: bool = False

    def __post_init__(self) -> None:
        if _has_external_ref(self.schema):
            raise ValueError("a `schema` with a `$ref` to another file is not supported (no file or network)")
        _validator(self)

    def check(self, value: Any, context: Context) -> list[Failure]:
        if value is MISSING:
            return [("must exist", ())]
        instance = plain(value, context.budget)
        failures = []
        for error in _validator(self).iter_errors(instance):
            where = tuple(error.instance_path)
            failures.append((error.message, where))
            if not self.all_errors:
                break
        return failures


_VALIDATORS: dict[bytes, Any] = {}


def _validator(function: Schema) -> Any:
    key = msgspec.json.encode([function.schema, function.dialect])
    found = _VALIDATORS.get(key)
    if found is None:
        kind = _DIALECTS[function.dialect]
        try:
            found = jsonschema_rs.validator_for(function.schema) if kind is None else kind(function.schema)
        except (ValueError, jsonschema_rs.ValidationError, jsonschema_rs.ReferencingError) as exc:
            raise ValueError(f"invalid schema: {str(exc).splitlines()[0]}") from None
        if len(_VALIDATORS) > 1024:
            _VALIDATORS.clear()
        _VALIDATORS[key] = found
    return found


def _has_external_ref(schema: Any) -> bool:
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and not ref.startswith("#"):
                return True
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


_JSON_TYPES = {
    "string": lambda v: isinstance(v, str),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "integer": lambda v: (
        (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, float) and v.is_integer())
    ),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "array": lambda v: isinstance(v, list | Items),
    "object": lambda v: isinstance(v, dict | Node),
}


class TypedEnum(_Function, frozen=True):
    def check(self, value: Any, context: Context) -> list[Failure]:
        if not isinstance(value, Mapping):
            return []
        enum, declared = value.get("enum"), value.get("type")
        if not isinstance(enum, Sequence) or isinstance(enum, str) or declared is None:
            return []
        types = [declared] if isinstance(declared, str) else list(declared)
        if value.get("nullable") is True:
            types.append("null")
        known = [t for t in types if t in _JSON_TYPES]
        if not known:
            return []
        failures = []
        for index, item in enumerate(enum):
            if not any(_JSON_TYPES[t](item) for t in known):
                failures.append((f'Enum value {_short(item)} must be "{"|".join(known)}".', ("enum", index)))
        return failures


class UnreferencedReusableObject(_Function, frozen=True, rename="camel"):
    reusable_objects_location: str

    def __post_init__(self) -> None:
        if not self.reusable_objects_location.startswith("#"):
            raise ValueError(
                "`reusableObjectsLocation` is a local JSON pointer such as `#/components/schemas`"
            )

    def check(self, value: Any, context: Context) -> list[Failure]:
        if not isinstance(value, Mapping):
            return []
        if context.references is None:
            context.references = _local_references(context.document, context.budget)
        location = self.reusable_objects_location.rstrip("/")
        failures = []
        for name in value:
            token = str(name).replace("~", "~0").replace("/", "~1")
            if f"{location}/{token}" not in context.references:
                failures.append(("Potentially unused component has been detected", (str(name),)))
        return failures


def _local_references(doc: Any, budget: Budget) -> set[str]:
    from urllib.parse import unquote

    from contracts.references import iter_refs

    found = set()
    for _, ref in iter_refs(doc):
        budget.step()
        if ref.startswith("#"):
            found.add("#" + unquote(ref[1:]))
    return found


Function = (
    Truthy
    | Falsy
    | Defined
    | Undefined
    | Pattern
    | Casing
    | Enumeration
    | Length
    | Alphabetical
    | Xor
    | Or
    | Schema
    | TypedEnum
    | UnreferencedReusableObject
)
CORE_FUNCTIONS: dict[str, type[_Function]] = {
    "truthy": Truthy,
    "falsy": Falsy,
    "defined": Defined,
    "undefined": Undefined,
    "pattern": Pattern,
    "casing": Casing,
    "enumeration": Enumeration,
    "length": Length,
    "alphabetical": Alphabetical,
    "xor": Xor,
    "or": Or,
    "schema": Schema,
    "typedEnum": TypedEnum,
    "unreferencedReusableObject": UnreferencedReusableObject,
}


# Functions Charter's own rules are built from, for Spectral rules that Spectral writes in JavaScript.
# A ruleset file cannot name them: they are not Spectral's.


class DocumentValid(_Function, frozen=True):
    """`oas2-schema`, `oas3-schema`, `asyncapi-document-resolved`: Charter's own validation."""

    def check(self, value: Any, context: Context) -> list[Failure]:
        from contracts.kinds import detect_kind
        from contracts.validation import validate_document

        context.budget.step(1000)  # about a second of Stripe: a visible share of a budget
        issues = validate_document(context.document, detect_kind(context.document))
        return [(issue.message, _tokens(issue.pointer)) for issue in issues]


class UniqueOperationIds(_Function, frozen=True):
    """`operation-operationId-unique`: Charter's `operation-id-unique`, as Spectral words it."""

    def check(self, value: Any, context: Context) -> list[Failure]:
        from contracts.lint.openapi import operations

        users: dict[str, list[str]] = {}
        for op in operations(context.document):
            operation_id = op.node.get("operationId")
            if isinstance(operation_id, str):
                users.setdefault(operation_id, []).append(op.pointer)
        failures = []
        for pointers in users.values():
            for pointer in pointers[1:]:
                failures.append(
                    ('Every operation must have unique "operationId".', (*_tokens(pointer), "operationId"))
                )
        return failures


def _tokens(pointer: str) -> tuple[str, ...]:
    return tuple(t.replace("~1", "/").replace("~0", "~") for t in pointer.split("/")[1:])


INTERNAL_FUNCTIONS: dict[str, type[_Function]] = {
    "charter:documentValid": DocumentValid,
    "charter:uniqueOperationIds": UniqueOperationIds,
}

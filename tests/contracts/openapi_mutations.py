"""Seeded mutations of real OpenAPI documents: one realistic mistake each, for differential tests."""

from __future__ import annotations

import copy
import random
from collections.abc import Callable, Iterator
from typing import Any

from contracts.references import escape

Json = dict[str, Any]
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def excerpt(doc: Json, paths: list[str], *, schemas: int = 25) -> Json:
    """`doc` with only `paths` and the components they reach, at most `schemas` component schemas:
    a reference to a schema past that becomes a free-form object. A small document of real shapes
    (every path of Stripe reaches nearly all its 500 schemas, which takes the oracle seconds)."""
    out = {k: v for k, v in doc.items() if k not in ("paths", "components")}
    out["paths"] = {p: doc["paths"][p] for p in paths}
    components = doc.get("components", {})
    kept: dict[str, dict[str, Any]] = {}
    pending = [out["paths"]]
    while pending:
        for ref in _refs(pending.pop(0)):
            parts = ref.lstrip("#/").split("/")
            if len(parts) != 3 or parts[0] != "components":
                continue
            section, name = parts[1], parts[2].replace("~1", "/").replace("~0", "~")
            if name in kept.get(section, {}) or name not in components.get(section, {}):
                continue
            if section == "schemas" and len(kept.get("schemas", {})) >= schemas:
                continue
            kept.setdefault(section, {})[name] = components[section][name]
            pending.append(components[section][name])
    if "securitySchemes" in components:
        kept["securitySchemes"] = components["securitySchemes"]
    out["components"] = kept
    return _trim(copy.deepcopy(out), set(kept.get("schemas", {})))


def _trim(node: Any, kept: set[str]) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref")
        name = ref.removeprefix("#/components/schemas/") if isinstance(ref, str) else None
        if name is not None and name != ref and name not in kept:
            return {"type": "object"}
        return {k: _trim(v, kept) for k, v in node.items()}
    if isinstance(node, list):
        return [_trim(v, kept) for v in node]
    return node


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            yield ref
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _nodes(node: Any, at: str = "") -> Iterator[tuple[str, Any]]:
    yield at, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _nodes(value, f"{at}/{escape(key)}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _nodes(value, f"{at}/{index}")


def _schemas(doc: Json, *types: str) -> list[Json]:
    """Schema objects of the given types in the places the validators check."""
    found = []
    for at, node in _nodes(doc):
        if isinstance(node, dict) and node.get("type") in types and ("schema" in at or "/properties/" in at):
            found.append(node)
    return found


def _operations(doc: Json) -> list[tuple[str, str, Json]]:
    return [
        (url, method, op)
        for url, item in doc.get("paths", {}).items()
        for method, op in item.items()
        if method in METHODS and isinstance(op, dict)
    ]


Mutation = Callable[[Json, random.Random], str | None]


def duplicate_required(doc: Json, rng: random.Random) -> str | None:
    schemas = [s for s in _schemas(doc, "object") if s.get("required")]
    if not schemas:
        return None
    schema = rng.choice(schemas)
    schema["required"].append(schema["required"][0])
    return "a name twice in required"


def wrong_default(doc: Json, rng: random.Random) -> str | None:
    schemas = _schemas(doc, "string", "integer", "boolean")
    if not schemas:
        return None
    schema = rng.choice(schemas)
    schema.pop("enum", None)
    schema["default"] = 5 if schema["type"] == "string" else "five"
    return "a default of the wrong type"


def null_default(doc: Json, rng: random.Random) -> str | None:
    schemas = [s for s in _schemas(doc, "string", "integer") if not s.get("nullable")]
    if not schemas:
        return None
    rng.choice(schemas)["default"] = None
    return "a null default on a schema that is not nullable"


def exclusive_minimum(doc: Json, rng: random.Random) -> str | None:
    schemas = _schemas(doc, "integer", "number")
    if not schemas:
        return None
    for schema in rng.sample(schemas, min(len(schemas), rng.randint(1, 7))):
        schema["exclusiveMinimum"] = True if doc.get("openapi", "").startswith("3.1") else 0
    return "exclusiveMinimum of the other draft"


def misspelt_type(doc: Json, rng: random.Random) -> str | None:
    schemas = _schemas(doc, "string", "object", "integer", "array")
    if not schemas:
        return None
    rng.choice(schemas)["type"] = "strin"
    return "a type that does not exist"


def string_minimum(doc: Json, rng: random.Random) -> str | None:
    schemas = _schemas(doc, "integer", "string")
    if not schemas:
        return None
    rng.choice(schemas)["minimum"] = "zero"
    return "a minimum that is a string"


def broken_pattern(doc: Json, rng: random.Random) -> str | None:
    schemas = _schemas(doc, "string")
    if not schemas:
        return None
    rng.choice(schemas)["pattern"] = "([a-z]"
    return "a pattern that is not a regular expression"


def properties_list(doc: Json, rng: random.Random) -> str | None:
    schemas = [s for s in _schemas(doc, "object") if "properties" in s]
    if not schemas:
        return None
    rng.choice(schemas)["properties"] = []
    return "properties as a list"


def required_not_defined(doc: Json, rng: random.Random) -> str | None:
    components = doc.get("components", {}).get("schemas", {})
    names = [n for n, s in components.items() if isinstance(s, dict) and s.get("type") == "object"]
    if not names:
        return None
    schema = components[rng.choice(names)]
    schema["allOf"] = [{"type": "object", "properties": {"inherited": {"type": "string"}}}]
    schema["required"] = [*schema.get("required", []), "inherited", "ghost", "phantom"]
    return "required names no property defines, under allOf"


def duplicate_operation_id(doc: Json, rng: random.Random) -> str | None:
    operations = [op for _, _, op in _operations(doc) if "operationId" in op]
    if len(operations) < 2:
        return None
    first, second = rng.sample(operations, 2)
    second["operationId"] = first["operationId"]
    return "an operationId used twice"


def renamed_template_parameter(doc: Json, rng: random.Random) -> str | None:
    urls = [u for u in doc.get("paths", {}) if "{" in u]
    if not urls:
        return None
    url = rng.choice(urls)
    renamed = url.replace("}", "_renamed}", 1)
    doc["paths"] = {renamed if k == url else k: v for k, v in doc["paths"].items()}
    return "a path parameter renamed in the template only"


def undeclared_in_template(doc: Json, rng: random.Random) -> str | None:
    operations = _operations(doc)
    if not operations:
        return None
    _, _, operation = rng.choice(operations)
    ghost = {"name": "ghost", "in": "path", "required": True, "schema": {"type": "string"}}
    operation.setdefault("parameters", []).append(ghost)
    return "a path parameter the template does not have"


def duplicate_parameter(doc: Json, rng: random.Random) -> str | None:
    operations = [op for _, _, op in _operations(doc) if op.get("parameters")]
    if not operations:
        return None
    operation = rng.choice(operations)
    operation["parameters"].append(copy.deepcopy(rng.choice(operation["parameters"])))
    return "a parameter listed twice"


def duplicate_tag(doc: Json, rng: random.Random) -> str | None:
    tags = doc.setdefault("tags", [{"name": "things"}])
    tags.append(copy.deepcopy(rng.choice(tags)))
    return "a tag name twice"


def missing_title(doc: Json, rng: random.Random) -> str | None:
    doc["info"].pop("title", None)
    return "info without a title"


def responses_string(doc: Json, rng: random.Random) -> str | None:
    operations = _operations(doc)
    if not operations:
        return None
    rng.choice(operations)[2]["responses"] = "none"
    return "responses that are a string"


def dangling_reference(doc: Json, rng: random.Random) -> str | None:
    holders = [n for _, n in _nodes(doc.get("paths", {})) if isinstance(n, dict) and "$ref" in n]
    if not holders:
        return None
    rng.choice(holders)["$ref"] = "#/components/schemas/Nowhere"
    return "a reference to nothing"


def enum_default(doc: Json, rng: random.Random) -> str | None:
    schemas = [s for s in _schemas(doc, "string") if s.get("enum")]
    if not schemas:
        return None
    rng.choice(schemas)["default"] = "not-one-of-them"
    return "a default outside the enum"


MUTATIONS: list[Mutation] = [
    duplicate_required,
    wrong_default,
    null_default,
    exclusive_minimum,
    misspelt_type,
    string_minimum,
    broken_pattern,
    properties_list,
    required_not_defined,
    duplicate_operation_id,
    renamed_template_parameter,
    undeclared_in_template,
    duplicate_parameter,
    duplicate_tag,
    missing_title,
    responses_string,
    dangling_reference,
    enum_default,
]


def mutants(base: Json, count: int, seed: int, *, most: int = 3) -> Iterator[tuple[str, Json]]:
    """`count` copies of `base`, each with one to `most` mutations picked by `random.Random(seed)`."""
    rng = random.Random(seed)
    made = 0
    while made < count:
        doc = copy.deepcopy(base)
        applied = [m(doc, rng) for m in rng.sample(MUTATIONS, rng.randint(1, most))]
        described = [a for a in applied if a]
        if described:
            made += 1
            yield "; ".join(described), doc

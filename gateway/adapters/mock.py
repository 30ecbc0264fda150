"""The mock adapter: answers from the contract's examples, or with data built from the schema.

For consumers who build against an API before it exists. The answer is the operation's first
success response: its example if the contract has one, else a value that fits the schema.
"""

from __future__ import annotations

from typing import Any

from contracts.references import deref
from gateway.adapters.base import GatewayRequest, GatewayResponse
from gateway.routing import Operation

_MAX_DEPTH = 6
# Values in one sample: schemas follow `$ref`s, and ten properties that each name a schema of ten
# more would otherwise make a million values six levels down, built on the event loop.
MAX_SAMPLE_VALUES = 1000
_FORMAT_SAMPLES = {
    "date": "2026-01-31",
    "date-time": "2026-01-31T09:00:00Z",
    "email": "someone@example.com",
    "uuid": "00000000-0000-4000-8000-000000000000",
    "uri": "https://example.com/",
}


class MockAdapter:
    async def handle(self, request: GatewayRequest, operation: Operation) -> GatewayResponse:
        document = operation.document
        responses = deref(document, operation.node.get("responses")) or {}
        status, response = _first_success(responses)
        response = deref(document, response) or {}
        content = response.get("content") if isinstance(response.get("content"), dict) else {}
        if not content:
            schema = response.get("schema")  # OpenAPI 2.0
            if schema is None:
                return GatewayResponse(status=status, body=None, media_type=None)
            return GatewayResponse(status=status, body=_Sampler(document).sample(schema, 0))
        media_type, media = next(iter(content.items()))
        media = media if isinstance(media, dict) else {}
        return GatewayResponse(status=status, body=_example(document, media), media_type=media_type)


def _first_success(responses: dict[str, Any]) -> tuple[int, Any]:
    codes = sorted(code for code in responses if str(code).startswith("2") and str(code).isdigit())
    if codes:
        return int(codes[0]), responses[codes[0]]
    return 200, responses.get("default")


def _example(document: dict[str, Any], media: dict[str, Any]) -> Any:
    if "example" in media:
        return media["example"]
    examples = media.get("examples")
    if isinstance(examples, dict) and examples:
        first = deref(document, next(iter(examples.values())))
        if isinstance(first, dict) and "value" in first:
            return first["value"]
    return _Sampler(document).sample(media.get("schema"), 0)


class _Sampler:
    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.values_left = MAX_SAMPLE_VALUES

    def sample(self, schema: Any, depth: int) -> Any:
        schema = deref(self.document, schema)
        if not isinstance(schema, dict) or depth > _MAX_DEPTH or self.values_left <= 0:
            return None
        self.values_left -= 1
        return self._value(schema, depth)

    def _value(self, schema: dict[str, Any], depth: int) -> Any:
        for keyword in ("example", "default", "const"):
            if keyword in schema:
                return schema[keyword]
        if isinstance(schema.get("examples"), list) and schema["examples"]:
            return schema["examples"][0]
        if isinstance(schema.get("enum"), list) and schema["enum"]:
            return schema["enum"][0]
        if isinstance(schema.get("allOf"), list):
            merged: dict[str, Any] = {}
            for part in schema["allOf"]:
                value = self.sample(part, depth + 1)
                if isinstance(value, dict):
                    merged.update(value)
            return merged
        for keyword in ("oneOf", "anyOf"):
            if isinstance(schema.get(keyword), list) and schema[keyword]:
                return self.sample(schema[keyword][0], depth + 1)
        kind = schema.get("type")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), None)
        if kind == "object" or (kind is None and "properties" in schema):
            props = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
            return {name: self.sample(prop, depth + 1) for name, prop in props.items()}
        if kind == "array":
            item = self.sample(schema.get("items"), depth + 1)
            return [item] if item is not None else []
        if kind == "integer":
            return int(schema.get("minimum", 0))
        if kind == "number":
            return float(schema.get("minimum", 0))
        if kind == "boolean":
            return True
        if kind == "string":
            text = _FORMAT_SAMPLES.get(str(schema.get("format")), "string")
            return text[: schema["maxLength"]] if isinstance(schema.get("maxLength"), int) else text
        return None

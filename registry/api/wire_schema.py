"""The registry's contract says what its msgspec decoder enforces, because msgspec writes the schemas.

litestar 2 builds a Struct's schema itself and loses what msgspec checks: `forbid_unknown_fields`
(no `additionalProperties: false`), and the constraints of an optional field or of list items
(`exclusiveMinimum`, `minLength`, `pattern` ...). A client generated from such a contract sends
bodies the server refuses. This plugin keeps litestar's component registration (names, references
between components) and takes every property, `required` and `additionalProperties` from
`msgspec.json.schema_components`, the same rules the decoder applies. A Struct states what its
`__post_init__` checks as JSON Schema in a `json_schema_all_of` class attribute.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

# litestar exports no public base for it; the plugin is what litestar itself registers for Structs.
from litestar._openapi.schema_generation.plugins.struct import StructSchemaPlugin

if TYPE_CHECKING:
    from litestar._openapi.schema_generation import SchemaCreator
    from litestar.openapi.spec import Schema
    from litestar.typing import FieldDefinition

REF_TEMPLATE = "#/components/schemas/{name}"


class WireStructSchema(StructSchemaPlugin):
    def to_openapi_schema(self, field_definition: FieldDefinition, schema_creator: SchemaCreator) -> Schema:
        # litestar registers the component and every component its fields refer to.
        schema = super().to_openapi_schema(field_definition, schema_creator)
        struct = field_definition.type_
        _, components = msgspec.json.schema_components([struct], ref_template=REF_TEMPLATE)
        wire: dict[str, Any] = components[struct.__name__]
        # Raw JSON Schema dicts render as they are (litestar's spec objects normalise dicts too).
        schema.properties = wire.get("properties", {})
        schema.required = wire.get("required") or None
        schema.additional_properties = wire.get("additionalProperties")
        schema.description = wire.get("description")
        schema.all_of = getattr(struct, "json_schema_all_of", None)
        return schema

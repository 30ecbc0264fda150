"""The event schema catalog: topics matched to AsyncAPI messages, payloads checked against them."""

from __future__ import annotations

from typing import Any

from contracts.events import MAX_VIOLATIONS, EventSchemaCatalog, compile_event_schemas

SKU = {"type": "object", "required": ["sku"], "properties": {"sku": {"type": "string"}}}


def asyncapi_2(channels: dict[str, Any], **components: Any) -> dict[str, Any]:
    return {
        "asyncapi": "2.6.0",
        "info": {"title": "t", "version": "1.0.0"},
        "channels": channels,
        **components,
    }


def test_a_topic_matches_a_2_6_channel_and_any_of_its_messages_is_enough() -> None:
    doc = asyncapi_2(
        {
            "stock.low": {
                "subscribe": {
                    "message": {
                        "oneOf": [
                            {"$ref": "#/components/messages/BySku"},
                            {"name": "ByEan", "payload": {"type": "object", "required": ["ean"]}},
                        ]
                    }
                }
            }
        },
        components={
            "messages": {"BySku": {"payload": {"$ref": "#/components/schemas/Sku"}}},
            "schemas": {"Sku": SKU},
        },
    )
    catalog = EventSchemaCatalog([compile_event_schemas("stock 1.0.0", doc)])

    assert catalog.violations("stock.low", {"sku": "A-1"}) == []
    assert catalog.violations("stock.low", {"ean": "400"}) == []
    assert catalog.violations("stock.low", {"quantity": 3}) == [
        'stock 1.0.0, message BySku: /: "sku" is a required property',
        'stock 1.0.0, message ByEan: /: "ean" is a required property',
    ]
    # A message is also found by its name.
    assert catalog.violations("ByEan", {}) == ['stock 1.0.0, message ByEan: /: "ean" is a required property']


def test_every_contract_that_declares_a_topic_must_be_kept() -> None:
    loose = asyncapi_2({"stock.low": {"publish": {"message": {"payload": {"type": "object"}}}}})
    strict = asyncapi_2({"stock.low": {"publish": {"message": {"name": "Low", "payload": SKU}}}})
    catalog = EventSchemaCatalog(
        [compile_event_schemas("loose 1.0.0", loose), compile_event_schemas("strict 2.0.0", strict)]
    )

    assert catalog.violations("stock.low", {}) == [
        'strict 2.0.0, message Low: /: "sku" is a required property'
    ]


def test_a_message_without_a_json_schema_payload_is_not_checked() -> None:
    doc = {
        "asyncapi": "3.0.0",
        "info": {"title": "t", "version": "1.0.0"},
        "channels": {
            "avro": {
                "address": "stock.avro",
                "messages": {
                    "m": {
                        "payload": {
                            "schemaFormat": "application/vnd.apache.avro;version=1.9.0",
                            "schema": {"type": "record", "name": "S", "fields": []},
                        }
                    }
                },
            },
            "none": {"address": "stock.none", "messages": {"m": {"name": "Nothing"}}},
            "multi": {
                "address": "stock.multi",
                "messages": {
                    "m": {
                        "payload": {"schemaFormat": "application/schema+json;version=draft-07", "schema": SKU}
                    }
                },
            },
        },
    }
    catalog = EventSchemaCatalog([compile_event_schemas("c 1.0.0", doc)])

    assert catalog.covers("stock.avro")
    assert catalog.violations("stock.avro", 42) == []
    assert catalog.violations("stock.none", 42) == []
    assert catalog.violations("stock.multi", {}) == ['c 1.0.0, message m: /: "sku" is a required property']
    assert not catalog.covers("stock.other")
    assert catalog.violations("stock.other", 42) == []


def test_violations_are_bounded() -> None:
    many = {"type": "array", "items": {"type": "string"}}
    doc = asyncapi_2({"many": {"publish": {"message": {"name": "Many", "payload": many}}}})
    catalog = EventSchemaCatalog([compile_event_schemas("c 1.0.0", doc)])

    violations = catalog.violations("many", list(range(1000)))
    assert len(violations) == MAX_VIOLATIONS
    assert violations[0] == 'c 1.0.0, message Many: /0: 0 is not of type "string"'

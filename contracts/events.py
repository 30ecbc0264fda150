"""The event schema catalog: which AsyncAPI message payload schemas an event topic must satisfy.

An event's topic (`delivery.project.created`) matches a contract's channel by its address, or a message by
its name. The catalog is built from compiled contracts (`compile_event_schemas`, one per document,
so a caller can keep them by version fingerprint and recompile only what changed).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

import jsonschema_rs

from contracts.loading import Document
from contracts.references import child, follow, fragment

# Payload formats that are JSON Schema (or a superset of it); a message in another format (Avro,
# RAML) is not checked.
_JSON_SCHEMA_FORMATS = (
    "application/vnd.aai.asyncapi",
    "application/schema+json",
    "application/vnd.oai.openapi",
)
_DOCUMENT_URI = "urn:charter:event-contract"
# Enough to act on; a payload wrong in a thousand places does not make a thousand-line error.
MAX_VIOLATIONS = 10


class EventSchema(NamedTuple):
    message: str
    validator: Any  # a jsonschema-rs validator; None: the message declares no checkable payload


class ContractEvents(NamedTuple):
    """One contract's messages, by the topics that reach them (channel address and message name)."""

    label: str  # `project-events 1.0.0`: how violations name the contract
    by_topic: dict[str, list[EventSchema]]


def compile_event_schemas(label: str, doc: Document) -> ContractEvents:
    registry: jsonschema_rs.Registry | None = None
    by_topic: dict[str, list[EventSchema]] = {}
    for address, name, message, at in _messages(doc):
        payload_at = _payload_pointer(doc, message, at)
        validator = None
        if payload_at is not None:
            if registry is None:
                # AsyncAPI's schema object is a superset of JSON Schema draft 7.
                registry = jsonschema_rs.Registry([(_DOCUMENT_URI, doc)], draft=jsonschema_rs.Draft7)
            validator = jsonschema_rs.Draft7Validator(
                {"$ref": _DOCUMENT_URI + fragment(payload_at)}, registry=registry
            )
        schema = EventSchema(name, validator)
        for topic in dict.fromkeys((address, name)):
            if topic and schema not in by_topic.setdefault(topic, []):
                by_topic[topic].append(schema)
    return ContractEvents(label, by_topic)


class EventSchemaCatalog:
    """The contracts events are checked against; a topic no contract names is not checked."""

    def __init__(self, contracts: Iterable[ContractEvents] = ()) -> None:
        self._by_topic: dict[str, list[tuple[str, list[EventSchema]]]] = {}
        for contract in contracts:
            for topic, schemas in contract.by_topic.items():
                self._by_topic.setdefault(topic, []).append((contract.label, schemas))

    def covers(self, topic: str) -> bool:
        return topic in self._by_topic

    def violations(self, topic: str, payload: Any) -> list[str]:
        """Why `payload` breaks the contracts of `topic`: empty when it satisfies every contract
        that declares the topic (one of a contract's messages for it is enough)."""
        found: list[str] = []
        for label, schemas in self._by_topic.get(topic, ()):
            contract_errors: list[str] = []
            for schema in schemas:
                if schema.validator is None:
                    contract_errors = []
                    break
                errors = _errors(schema.validator, payload)
                if not errors:
                    contract_errors = []
                    break
                contract_errors += [f"{label}, message {schema.message}: {error}" for error in errors]
            found += contract_errors
        return found[:MAX_VIOLATIONS]


def _errors(validator: Any, payload: Any) -> list[str]:
    out = []
    for error in validator.iter_errors(payload):
        where = "".join(f"/{token}" for token in error.instance_path) or "/"
        out.append(f"{where}: {error.message}")
        if len(out) == MAX_VIOLATIONS:
            break
    return out


def _messages(doc: Document) -> Iterable[tuple[str, str, dict[str, Any], str]]:
    """(channel address, message name, message, its pointer) for AsyncAPI 2.6 and 3.x."""
    channels = doc.get("channels") if isinstance(doc.get("channels"), dict) else {}
    version_2 = str(doc.get("asyncapi", "")).startswith("2.")
    for key, raw in channels.items():
        channel, at = follow(doc, raw, child("/channels", key))
        if not isinstance(channel, dict):
            continue
        if version_2:
            address = str(key)
            candidates = []
            for action in ("publish", "subscribe"):
                op = channel.get(action)
                if isinstance(op, dict):
                    message, message_at = follow(doc, op.get("message"), child(at, action, "message"))
                    alternatives = message.get("oneOf") if isinstance(message, dict) else None
                    if isinstance(alternatives, list):
                        candidates += [
                            follow(doc, m, child(message_at, "oneOf", i)) for i, m in enumerate(alternatives)
                        ]
                    else:
                        candidates.append((message, message_at))
        else:
            address = channel["address"] if isinstance(channel.get("address"), str) else str(key)
            messages = channel.get("messages") if isinstance(channel.get("messages"), dict) else {}
            candidates = [follow(doc, m, child(at, "messages", k)) for k, m in messages.items()]
        for message, message_at in candidates:
            if isinstance(message, dict):
                name = message.get("name") or message.get("messageId") or message_at.rsplit("/", 1)[-1]
                yield address, str(name), message, message_at


def _payload_pointer(doc: Document, message: dict[str, Any], at: str) -> str | None:
    """Where the message's payload schema is written; None when there is none to check."""
    if "payload" not in message:
        return None
    payload, payload_at = follow(doc, message["payload"], child(at, "payload"))
    schema_format = message.get("schemaFormat")  # AsyncAPI 2.6: on the message
    if isinstance(payload, dict) and "schemaFormat" in payload and "schema" in payload:
        schema_format = payload["schemaFormat"]  # AsyncAPI 3: a multi-format schema object
        payload, payload_at = follow(doc, payload["schema"], child(payload_at, "schema"))
    if isinstance(schema_format, str) and not schema_format.startswith(_JSON_SCHEMA_FORMATS):
        return None
    if not isinstance(payload, dict | bool) or payload == {}:
        return None
    return payload_at

"""An AsyncAPI document (2.6 or 3.x) as the rows of three tables: channels, operations and messages,
each message with its payload schema (local references inlined, to a bounded depth)."""

from __future__ import annotations

import json
from typing import Any

import msgspec

from contracts.loading import Document
from contracts.references import child, follow

# A payload shown inline stops expanding references here, and a printed schema is cut at this size:
# a page shows a contract, it does not unroll a recursive one.
MAX_SCHEMA_DEPTH = 12
MAX_SCHEMA_CHARS = 20_000
# Nodes one payload may expand to: references fanning out to references would otherwise multiply.
MAX_SCHEMA_NODES = 5_000
MAX_FIELDS = 200


class ChannelRow(msgspec.Struct, frozen=True):
    key: str
    address: str
    description: str | None
    messages: list[str]


class OperationRow(msgspec.Struct, frozen=True):
    id: str
    action: str  # send / receive (3.x), publish / subscribe (2.6)
    channel: str
    summary: str | None
    messages: list[str]


class FieldRow(msgspec.Struct, frozen=True):
    path: str  # `total.amount`, `lines[].quantity`
    type: str
    required: bool
    description: str | None


class MessageRow(msgspec.Struct, frozen=True):
    name: str
    title: str | None
    summary: str | None
    content_type: str | None
    fields: list[FieldRow]  # the payload's properties, nested ones by their dotted path
    payload: str | None  # the payload schema, pretty-printed JSON


class AsyncApiDocs(msgspec.Struct, frozen=True):
    title: str
    version: str
    description: str | None
    channels: list[ChannelRow]
    operations: list[OperationRow]
    messages: list[MessageRow]


def asyncapi_docs(doc: Document) -> AsyncApiDocs:
    info = doc.get("info") if isinstance(doc.get("info"), dict) else {}
    messages: dict[str, MessageRow] = {}
    if str(doc.get("asyncapi", "")).startswith("2."):
        channels, operations = _v2(doc, messages)
    else:
        channels, operations = _v3(doc, messages)
    return AsyncApiDocs(
        title=str(info.get("title") or ""),
        version=str(info.get("version") or ""),
        description=_text(info.get("description")),
        channels=channels,
        operations=operations,
        messages=list(messages.values()),
    )


def _v2(doc: Document, messages: dict[str, MessageRow]) -> tuple[list[ChannelRow], list[OperationRow]]:
    channels, operations = [], []
    for address, raw in _mapping(doc.get("channels")).items():
        channel, at = follow(doc, raw, child("/channels", address))
        if not isinstance(channel, dict):
            continue
        names: list[str] = []
        for action in ("publish", "subscribe"):
            op = channel.get(action)
            if not isinstance(op, dict):
                continue
            op_names = _message_names(doc, op.get("message"), child(at, action, "message"), messages)
            names += [n for n in op_names if n not in names]
            operations.append(
                OperationRow(
                    id=_text(op.get("operationId")) or f"{action} {address}",
                    action=action,
                    channel=str(address),
                    summary=_text(op.get("summary")),
                    messages=op_names,
                )
            )
        channels.append(ChannelRow(str(address), str(address), _text(channel.get("description")), names))
    return channels, operations


def _v3(doc: Document, messages: dict[str, MessageRow]) -> tuple[list[ChannelRow], list[OperationRow]]:
    channels: list[ChannelRow] = []
    names_at: dict[str, str] = {}  # channel message pointer -> message name
    for key, raw in _mapping(doc.get("channels")).items():
        channel, at = follow(doc, raw, child("/channels", key))
        if not isinstance(channel, dict):
            continue
        names = []
        for message_key, message in _mapping(channel.get("messages")).items():
            message_at = child(at, "messages", message_key)
            found = _message_names(doc, message, message_at, messages)
            names += found
            if found:
                names_at[message_at] = found[0]
        address = _text(channel.get("address")) or str(key)
        channels.append(ChannelRow(str(key), address, _text(channel.get("description")), names))
    operations = []
    for op_id, raw in _mapping(doc.get("operations")).items():
        op, _ = follow(doc, raw, child("/operations", op_id))
        if not isinstance(op, dict):
            continue
        channel, _ = follow(doc, op.get("channel"), "")
        address = _text(channel.get("address")) if isinstance(channel, dict) else None
        op_messages = []
        for ref in op.get("messages") or []:
            target = ref.get("$ref") if isinstance(ref, dict) else None
            if isinstance(target, str) and target.startswith("#"):
                name = names_at.get(target[1:])
                if name is None:
                    found = _message_names(doc, ref, target[1:], messages)
                    name = found[0] if found else None
                if name:
                    op_messages.append(name)
        operations.append(
            OperationRow(
                id=str(op_id),
                action=str(op.get("action") or ""),
                channel=address or "",
                summary=_text(op.get("summary")),
                messages=op_messages,
            )
        )
    return channels, operations


def _message_names(doc: Document, raw: Any, at: str, messages: dict[str, MessageRow]) -> list[str]:
    message, message_at = follow(doc, raw, at)
    if not isinstance(message, dict):
        return []
    if isinstance(message.get("oneOf"), list):
        names: list[str] = []
        for i, alternative in enumerate(message["oneOf"]):
            names += _message_names(doc, alternative, child(message_at, "oneOf", i), messages)
        return names
    name = str(message.get("name") or message.get("messageId") or message_at.rsplit("/", 1)[-1])
    if name not in messages:
        schema = _payload_schema(doc, message.get("payload"))
        fields: list[FieldRow] = []
        if schema is not None:
            _fields(schema, "", fields)
        messages[name] = MessageRow(
            name=name,
            title=_text(message.get("title")),
            summary=_text(message.get("summary")) or _text(message.get("description")),
            content_type=_text(message.get("contentType")) or _text(doc.get("defaultContentType")),
            fields=fields,
            payload=_schema_text(schema),
        )
    return [name]


def _payload_schema(doc: Document, payload: Any) -> Any:
    if payload is None:
        return None
    if isinstance(payload, dict) and "schemaFormat" in payload and "schema" in payload:
        payload = payload["schema"]  # AsyncAPI 3's multi-format schema object
    return _inline(doc, payload, 0, [MAX_SCHEMA_NODES])


def _schema_text(schema: Any) -> str | None:
    if schema is None:
        return None
    text = json.dumps(schema, indent=2, ensure_ascii=False)
    return text if len(text) <= MAX_SCHEMA_CHARS else text[:MAX_SCHEMA_CHARS] + "\n…"


def _fields(schema: Any, prefix: str, out: list[FieldRow], depth: int = 0) -> None:
    """The properties of an object schema, and of the objects inside it, as flat rows."""
    if not isinstance(schema, dict) or depth > MAX_SCHEMA_DEPTH:
        return
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        return
    required = schema.get("required") if isinstance(schema.get("required"), list) else []
    for key, value in properties.items():
        if len(out) >= MAX_FIELDS:
            return
        path = f"{prefix}{key}"
        value = value if isinstance(value, dict) else {}
        out.append(FieldRow(path, _type_text(value), key in required, _text(value.get("description"))))
        if isinstance(value.get("properties"), dict):
            _fields(value, f"{path}.", out, depth + 1)
        elif isinstance(value.get("items"), dict):
            _fields(value["items"], f"{path}[].", out, depth + 1)


def _type_text(schema: dict[str, Any]) -> str:
    kind = schema.get("type")
    text = " | ".join(map(str, kind)) if isinstance(kind, list) else str(kind or "any")
    if text == "array" and isinstance(schema.get("items"), dict):
        text = f"array of {_type_text(schema['items'])}"
    extras = [f"{k} {schema[k]}" for k in ("format", "pattern", "minimum", "maximum") if k in schema]
    if isinstance(schema.get("enum"), list):
        extras.append("one of " + ", ".join(map(str, schema["enum"][:10])))
    return text + (f" ({'; '.join(extras)})" if extras else "")


def _inline(doc: Document, node: Any, depth: int, budget: list[int]) -> Any:
    budget[0] -= 1
    if depth > MAX_SCHEMA_DEPTH or budget[0] < 0:
        return node
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#"):
            target, _ = follow(doc, node, "")
            if target is node:
                return node
            return _inline(doc, target, depth + 1, budget)
        return {k: _inline(doc, v, depth + 1, budget) for k, v in node.items()}
    if isinstance(node, list):
        return [_inline(doc, v, depth + 1, budget) for v in node]
    return node


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None

"""Semantic diff of two AsyncAPI documents (2.6, 3.0, 3.1), judged from the event consumer's side."""

from __future__ import annotations

from typing import Any, NamedTuple

from contracts.canonical import canonical_json
from contracts.diff.catalog import MESSAGE_HEADERS, MESSAGE_PAYLOAD, Direction
from contracts.diff.changes import Change, change
from contracts.diff.schema import SchemaComparer, schema_changes
from contracts.diff.side import Side, child
from contracts.loading import Document

# Payload formats that are JSON Schema (or a dialect of it) and so can be compared rule by rule.
_JSON_SCHEMA_FORMATS = (
    "application/vnd.aai.asyncapi",
    "application/schema+json",
    "application/vnd.oai.openapi",
)


class _Message(NamedTuple):
    node: dict[str, Any]
    pointer: str


class _Channel(NamedTuple):
    address: str
    pointer: str
    messages: dict[str, _Message]


def diff_asyncapi(base: Document, revision: Document, *, max_comparisons: int) -> list[Change]:
    return _AsyncApiDiff(Side(base), Side(revision), max_comparisons).run()


class _AsyncApiDiff:
    def __init__(self, base: Side, revision: Side, max_comparisons: int) -> None:
        self.base = base
        self.revision = revision
        self.schemas = SchemaComparer(base, revision, max_comparisons=max_comparisons)
        self.changes: list[Change] = []

    def add(self, rule_id: str, message: str, op: str, base: str | None, revision: str | None) -> None:
        self.changes.append(
            change(rule_id, message, operation=op, base_pointer=base, revision_pointer=revision)
        )

    def run(self) -> list[Change]:
        b_channels, r_channels = _channels(self.base), _channels(self.revision)
        for address, bc in b_channels.items():
            label = f"channel {address}"
            rc = r_channels.get(address)
            if rc is None:
                self.add("channel-removed", f"{label} removed", label, bc.pointer, None)
                continue
            self._messages(bc, rc, label)
        for address, rc in r_channels.items():
            if address not in b_channels:
                self.add("channel-added", f"channel {address} added", f"channel {address}", None, rc.pointer)
        b_ops, r_ops = _operations(self.base), _operations(self.revision)
        for key, pointer in b_ops.items():
            action, address = key
            if key not in r_ops and address in r_channels:
                label = f"channel {address}"
                self.add(
                    "event-operation-removed", f"{label}: {action} operation removed", label, pointer, None
                )
        for key, pointer in r_ops.items():
            action, address = key
            if key not in b_ops and address in b_channels:
                label = f"channel {address}"
                self.add("event-operation-added", f"{label}: {action} operation added", label, None, pointer)
        return self.changes

    def _messages(self, bc: _Channel, rc: _Channel, label: str) -> None:
        for name, bm in bc.messages.items():
            rm = rc.messages.get(name)
            if rm is None:
                self.add("message-removed", f"{label}: message `{name}` removed", label, bm.pointer, None)
                continue
            self._message(name, bm, rm, label)
        for name, rm in rc.messages.items():
            if name not in bc.messages:
                self.add("message-added", f"{label}: message `{name}` added", label, None, rm.pointer)

    def _message(self, name: str, bm: _Message, rm: _Message, label: str) -> None:
        subject = f"{label}: message `{name}`"
        b_type = bm.node.get("contentType") or self.base.doc.get("defaultContentType")
        r_type = rm.node.get("contentType") or self.revision.doc.get("defaultContentType")
        if b_type != r_type:
            message = f"{subject}: content type changed from {b_type} to {r_type}"
            self.add("message-content-type-changed", message, label, bm.pointer, rm.pointer)
        b_format, b_schema, b_pointer = _payload(bm)
        r_format, r_schema, r_pointer = _payload(rm)
        if b_format != r_format:
            message = f"{subject}: payload format changed from {b_format} to {r_format}"
            self.add("message-payload-format-changed", message, label, b_pointer, r_pointer)
        elif _is_json_schema(b_format):
            found = self.schemas.compare(b_schema, b_pointer, r_schema, r_pointer, Direction.RESPONSE)
            self.changes += schema_changes(found, MESSAGE_PAYLOAD, f"{subject} payload", label)
        elif self._resolved(self.base, b_schema, b_pointer) != self._resolved(
            self.revision, r_schema, r_pointer
        ):
            self.add(
                "message-payload-changed",
                f"{subject}: {b_format} payload changed",
                label,
                b_pointer,
                r_pointer,
            )
        if "headers" in bm.node or "headers" in rm.node:
            found = self.schemas.compare(
                bm.node.get("headers"),
                child(bm.pointer, "headers"),
                rm.node.get("headers"),
                child(rm.pointer, "headers"),
                Direction.RESPONSE,
            )
            self.changes += schema_changes(found, MESSAGE_HEADERS, f"{subject} headers", label)

    @staticmethod
    def _resolved(side: Side, node: Any, pointer: str) -> bytes:
        return canonical_json(side.deref(node, pointer)[0])


def _payload(message: _Message) -> tuple[str | None, Any, str]:
    """(schemaFormat, schema, pointer): 3.x wraps other formats in a multi-format schema object."""
    payload = message.node.get("payload")
    pointer = child(message.pointer, "payload")
    if isinstance(payload, dict) and "schemaFormat" in payload and "schema" in payload:
        return str(payload["schemaFormat"]), payload["schema"], child(pointer, "schema")
    schema_format = message.node.get("schemaFormat")
    return (str(schema_format) if schema_format is not None else None), payload, pointer


def _is_json_schema(schema_format: str | None) -> bool:
    return schema_format is None or schema_format.startswith(_JSON_SCHEMA_FORMATS)


def _channels(side: Side) -> dict[str, _Channel]:
    channels = side.doc.get("channels")
    if not isinstance(channels, dict):
        return {}
    version_2 = str(side.doc.get("asyncapi", "")).startswith("2.")
    out = {}
    for key, raw in channels.items():
        node, pointer = side.deref(raw, child("/channels", key))
        if not isinstance(node, dict):
            continue
        if version_2:
            address, messages = key, _messages_v2(side, node, pointer)
        else:
            address = node.get("address") if isinstance(node.get("address"), str) else key
            messages = _messages_v3(side, node, pointer)
        out.setdefault(address, _Channel(address, pointer, messages))
    return out


def _messages_v2(side: Side, channel: dict[str, Any], pointer: str) -> dict[str, _Message]:
    out: dict[str, _Message] = {}
    for action in ("subscribe", "publish"):
        op = channel.get(action)
        if not isinstance(op, dict):
            continue
        message, message_pointer = side.deref(op.get("message"), child(pointer, action, "message"))
        if not isinstance(message, dict):
            continue
        alternatives = message.get("oneOf") if isinstance(message.get("oneOf"), list) else None
        items = (
            [side.deref(m, child(message_pointer, "oneOf", i)) for i, m in enumerate(alternatives)]
            if alternatives is not None
            else [(message, message_pointer)]
        )
        for index, (node, node_pointer) in enumerate(items):
            if isinstance(node, dict):
                name = (
                    node.get("name") or node.get("messageId") or _ref_name(node_pointer) or f"message-{index}"
                )
                out.setdefault(str(name), _Message(node, node_pointer))
    return out


def _messages_v3(side: Side, channel: dict[str, Any], pointer: str) -> dict[str, _Message]:
    messages = channel.get("messages")
    if not isinstance(messages, dict):
        return {}
    out = {}
    for key, raw in messages.items():
        node, node_pointer = side.deref(raw, child(pointer, "messages", key))
        if isinstance(node, dict):
            out[str(node.get("name") or key)] = _Message(node, node_pointer)
    return out


def _operations(side: Side) -> dict[tuple[str, str], str]:
    """(action, channel address) to the operation's pointer, for 2.6 and 3.x alike."""
    out: dict[tuple[str, str], str] = {}
    channels = side.doc.get("channels") if isinstance(side.doc.get("channels"), dict) else {}
    if str(side.doc.get("asyncapi", "")).startswith("2."):
        for address, raw in channels.items():
            node, pointer = side.deref(raw, child("/channels", address))
            if isinstance(node, dict):
                for action in ("publish", "subscribe"):
                    if isinstance(node.get(action), dict):
                        out[(action, address)] = child(pointer, action)
        return out
    operations = side.doc.get("operations")
    if not isinstance(operations, dict):
        return out
    for key, raw in operations.items():
        node, pointer = side.deref(raw, child("/operations", key))
        if not isinstance(node, dict):
            continue
        channel, channel_pointer = side.deref(node.get("channel"), child(pointer, "channel"))
        if not isinstance(channel, dict):
            continue
        address = channel.get("address")
        address = address if isinstance(address, str) else channel_pointer.rsplit("/", 1)[-1]
        out[(str(node.get("action")), address)] = pointer
    return out


def _ref_name(pointer: str) -> str | None:
    return pointer.rsplit("/", 1)[-1] if pointer.startswith("/components/") else None

"""Built-in rules for AsyncAPI documents (2.6, 3.x): channel taxonomy, messages, operation descriptions."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, NamedTuple

from contracts.kinds import DocumentKind
from contracts.lint.findings import Finding, found
from contracts.lint.located import child, follow, members, text
from contracts.loading import Document

_WORD = r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*"
TAXONOMY = re.compile(rf"^{_WORD}\.{_WORD}\.{_WORD}$")


class _Channel(NamedTuple):
    address: str | None  # None: a 3.x channel without an address (dynamic, decided at runtime)
    node: dict[str, Any]
    pointer: str
    address_pointer: str


def check_asyncapi(doc: Document, kind: DocumentKind) -> Iterator[Finding]:
    legacy = kind.line == "2.6"
    channels = _channels(doc, legacy)
    for channel in channels:
        if channel.address is not None and not TAXONOMY.match(channel.address):
            message = (
                f"channel address `{channel.address}` is not `domain.entity.action` in lower case"
                " (e.g. finance.invoice.issued)"
            )
            yield found("channel-address-taxonomy", message, channel.address_pointer, _label(channel))
    for label, op, pointer in _operations(doc, channels, legacy):
        if not (text(op.get("description")) or text(op.get("summary"))):
            yield found("operation-description", f"{label} has no description or summary", pointer, label)
    for label, message, pointer in _messages(doc, channels, legacy):
        name = text(message.get("name"))
        subject = f"message `{name}`" if name else "a message"
        if not isinstance(message.get("payload"), dict | bool):
            yield found("message-payload", f"{subject} has no payload schema", pointer, label)
        if name is None:
            yield found("message-name", "a message has no name", pointer, label)


def _label(channel: _Channel) -> str:
    return f"channel {channel.address if channel.address is not None else channel.pointer}"


def _channels(doc: Document, legacy: bool) -> list[_Channel]:
    out = []
    for key, node, pointer in members(doc, doc.get("channels"), "/channels"):
        if not isinstance(node, dict):
            continue
        if legacy:  # 2.6: the key is the address
            out.append(_Channel(key, node, pointer, child("/channels", key)))
        else:
            address = node.get("address")
            out.append(
                _Channel(
                    address if isinstance(address, str) else None, node, pointer, child(pointer, "address")
                )
            )
    return out


def _operations(
    doc: Document, channels: list[_Channel], legacy: bool
) -> Iterator[tuple[str, dict[str, Any], str]]:
    if legacy:
        for channel in channels:
            for action in ("publish", "subscribe"):
                op, pointer = follow(doc, channel.node.get(action), child(channel.pointer, action))
                if isinstance(op, dict):
                    yield f"{action.upper()} {channel.address}", op, pointer
        return
    by_pointer = {channel.pointer: channel for channel in channels}
    for key, op, pointer in members(doc, doc.get("operations"), "/operations"):
        if not isinstance(op, dict):
            continue
        _, channel_pointer = follow(doc, op.get("channel"), child(pointer, "channel"))
        channel = by_pointer.get(channel_pointer)
        where = channel.address if channel and channel.address is not None else key
        yield f"{str(op.get('action', '')).upper()} {where}".strip(), op, pointer


def _messages(
    doc: Document, channels: list[_Channel], legacy: bool
) -> Iterator[tuple[str | None, dict[str, Any], str]]:
    """Each message once, wherever it is written: those of channels first, then unused components."""
    seen: set[str] = set()

    def visit(node: Any, pointer: str, label: str | None) -> Iterator[tuple[str | None, dict[str, Any], str]]:
        node, pointer = follow(doc, node, pointer)
        if not isinstance(node, dict) or pointer in seen or "$ref" in node:
            return
        seen.add(pointer)
        if legacy and isinstance(node.get("oneOf"), list):
            for index, alternative in enumerate(node["oneOf"]):
                yield from visit(alternative, child(pointer, "oneOf", index), label)
            return
        yield label, node, pointer

    for channel in channels:
        if legacy:
            for action in ("publish", "subscribe"):
                op, pointer = follow(doc, channel.node.get(action), child(channel.pointer, action))
                if isinstance(op, dict) and "message" in op:
                    yield from visit(op["message"], child(pointer, "message"), _label(channel))
        else:
            for _, message, pointer in members(
                doc, channel.node.get("messages"), child(channel.pointer, "messages")
            ):
                yield from visit(message, pointer, _label(channel))
    components = doc.get("components")
    if isinstance(components, dict):
        for _, message, pointer in members(doc, components.get("messages"), "/components/messages"):
            yield from visit(message, pointer, None)

"""Built-in rules for any contract: who to contact, which team owns it, servers without secrets."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from contracts.index import HTTP_METHODS
from contracts.kinds import DocumentKind, Family
from contracts.lint.findings import Finding, found
from contracts.lint.located import child, follow, members, text
from contracts.loading import Document

_SECRET_NAME = re.compile(r"key|token|secret|passw(or)?d|pwd|credential", re.IGNORECASE)


def check_metadata(doc: Document, kind: DocumentKind) -> Iterator[Finding]:
    info = doc.get("info")
    info_pointer = "/info" if isinstance(info, dict) else ""
    info = info if isinstance(info, dict) else {}
    contact = info.get("contact")
    if not (isinstance(contact, dict) and any(text(contact.get(k)) for k in ("name", "email", "url"))):
        where = "/info/contact" if isinstance(contact, dict) else info_pointer
        yield found("info-contact", "`info.contact` names no one (name, email or url)", where)
    if not (text(info.get("x-owner")) or text(doc.get("x-owner"))):
        yield found(
            "info-owner", "no owning team: set `info.x-owner` (or `x-owner` at the root)", info_pointer
        )
    for url, pointer, label in _server_urls(doc, kind):
        for problem in _secrets(url):
            yield found("servers-no-secrets", f"server URL {problem}", pointer, label)


def _server_urls(doc: Document, kind: DocumentKind) -> Iterator[tuple[str, str, str | None]]:
    """(URL or part of one, its pointer, the operation it belongs to) for every server the document names."""
    if kind.family is Family.ASYNCAPI:
        for _, server, pointer in members(doc, doc.get("servers"), "/servers"):
            for field in ("url", "host", "pathname"):  # 2.6 has `url`, 3.x `host` and `pathname`
                if isinstance(server, dict) and isinstance(server.get(field), str):
                    yield server[field], child(pointer, field), None
    elif kind.line == "2.0":
        if isinstance(doc.get("host"), str):
            yield doc["host"], "/host", None
    else:
        yield from _servers(doc, doc.get("servers"), "/servers", None)
        for path, item, item_pointer in members(doc, doc.get("paths"), "/paths"):
            if not isinstance(item, dict):
                continue
            yield from _servers(doc, item.get("servers"), child(item_pointer, "servers"), None)
            for method in HTTP_METHODS:
                op, pointer = follow(doc, item.get(method), child(item_pointer, method))
                if isinstance(op, dict):
                    label = f"{method.upper()} {path}"
                    yield from _servers(doc, op.get("servers"), child(pointer, "servers"), label)


def _servers(
    doc: Document, servers: Any, pointer: str, label: str | None
) -> Iterator[tuple[str, str, str | None]]:
    for index, server in enumerate(servers if isinstance(servers, list) else ()):
        server, where = follow(doc, server, child(pointer, index))
        if isinstance(server, dict) and isinstance(server.get("url"), str):
            yield server["url"], child(where, "url"), label


def _secrets(url: str) -> list[str]:
    """What in a URL looks like a secret, described without repeating it."""
    # Without a scheme, urlsplit reads `user:pass@host` as a path; `//` makes it the authority.
    try:
        parts = urlsplit(url if "//" in url else f"//{url}")
    except ValueError:  # an unbalanced `[` (IPv6 syntax): not a URL anything could connect to
        return []
    problems = []
    if "@" in parts.netloc:
        problems.append("carries credentials (`user:pass@`): pass them at runtime, not in the contract")
    for name, _ in parse_qsl(parts.query, keep_blank_values=True):
        if _SECRET_NAME.search(name):
            problems.append(f"has a query parameter `{name}` that looks like a secret")
    return problems

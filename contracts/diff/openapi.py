"""Semantic diff of two OpenAPI documents (2.0, 3.0 or 3.1, in any pairing)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, NamedTuple

from contracts.canonical import canonical_json
from contracts.diff.catalog import (
    REQUEST_BODY,
    REQUEST_PARAMETER,
    RESPONSE_BODY,
    RESPONSE_HEADER,
    Direction,
)
from contracts.diff.changes import Change, change
from contracts.diff.schema import SchemaComparer, schema_changes
from contracts.diff.side import Side, child
from contracts.index import HTTP_METHODS, security_requirements
from contracts.loading import Document

_TEMPLATE = re.compile(r"\{[^}/]*\}")
# Headers OpenAPI 3 says to ignore when declared as parameters: HTTP itself governs them.
_IGNORED_HEADERS = frozenset({"accept", "content-type", "authorization"})
_STABILITY = {"draft": 0, "alpha": 1, "beta": 2, "stable": 3}
_FORM_MEDIA = "application/x-www-form-urlencoded"


class _Operation(NamedTuple):
    method: str
    path: str
    node: dict[str, Any]
    pointer: str
    path_item: dict[str, Any]
    path_item_pointer: str

    @property
    def label(self) -> str:
        return f"{self.method.upper()} {self.path}"


class _Parameter(NamedTuple):
    name: str
    location: str
    required: bool
    deprecated: bool
    schema: Any
    schema_pointer: str
    pointer: str


class _Media(NamedTuple):
    schema: Any
    schema_pointer: str
    pointer: str


class _Body(NamedTuple):
    required: bool
    content: dict[str, _Media]
    pointer: str


class _Header(NamedTuple):
    required: bool
    schema: Any
    schema_pointer: str
    pointer: str


class _Response(NamedTuple):
    content: dict[str, _Media]
    headers: dict[str, tuple[str, _Header]]
    pointer: str


def diff_openapi(base: Document, revision: Document, *, today: dt.date, max_comparisons: int) -> list[Change]:
    return _OpenApiDiff(Side(base), Side(revision), today, max_comparisons).run()


def normalize_path(path: str) -> str:
    """`/a/{id}` and `/a/{key}` are one path: parameter names do not reach the wire."""
    return _TEMPLATE.sub("{}", path)


class _OpenApiDiff:
    def __init__(self, base: Side, revision: Side, today: dt.date, max_comparisons: int) -> None:
        self.base = base
        self.revision = revision
        self.today = today
        self.schemas = SchemaComparer(base, revision, max_comparisons=max_comparisons)
        self.changes: list[Change] = []
        self.base_schemes = _scheme_identities(base)
        self.revision_schemes = _scheme_identities(revision)
        self.scheme_names = {
            **_scheme_names(base, self.base_schemes),
            **_scheme_names(revision, self.revision_schemes),
        }

    def add(self, rule_id: str, message: str, op: str | None, base: str | None, revision: str | None) -> None:
        self.changes.append(
            change(rule_id, message, operation=op, base_pointer=base, revision_pointer=revision)
        )

    def run(self) -> list[Change]:
        b_paths = _operations_by_path(self.base)
        r_paths = _operations_by_path(self.revision)
        for key, b_ops in b_paths.items():
            r_ops = r_paths.get(key)
            if r_ops is None:
                for op in b_ops.values():
                    rule = self._removal_rule("api-path-removed", op)
                    self.add(rule, f"{op.label} removed with its path", op.label, op.pointer, None)
                continue
            for method, op in b_ops.items():
                if method not in r_ops:
                    rule = self._removal_rule("api-removed", op)
                    self.add(rule, f"{op.label} removed", op.label, op.pointer, None)
                else:
                    self._operation(op, r_ops[method])
            for method, op in r_ops.items():
                if method not in b_ops:
                    self.add("api-operation-added", f"{op.label} added", op.label, None, op.pointer)
        for key, r_ops in r_paths.items():
            if key not in b_paths:
                for op in r_ops.values():
                    self.add(
                        "api-path-added", f"{op.label} added with a new path", op.label, None, op.pointer
                    )
        return self.changes

    def _removal_rule(self, prefix: str, op: _Operation) -> str:
        if op.node.get("deprecated") is not True:
            return f"{prefix}-without-deprecation"
        sunset = _date(op.node.get("x-sunset"))
        return (
            f"{prefix}-after-sunset"
            if sunset is not None and sunset <= self.today
            else f"{prefix}-before-sunset"
        )

    def _operation(self, b: _Operation, r: _Operation) -> None:
        label = r.label
        self._lifecycle(b, r, label)
        self._parameters(b, r, label)
        self._request_body(b, r, label)
        self._responses(b, r, label)
        self._security(b, r, label)

    def _lifecycle(self, b: _Operation, r: _Operation, label: str) -> None:
        b_dep, r_dep = b.node.get("deprecated") is True, r.node.get("deprecated") is True
        if r_dep and not b_dep:
            self.add("api-deprecated", f"{label} deprecated", label, b.pointer, r.pointer)
        elif b_dep and not r_dep:
            self.add("api-reactivated", f"{label} no longer deprecated", label, b.pointer, r.pointer)
        b_sunset, r_sunset = _date(b.node.get("x-sunset")), _date(r.node.get("x-sunset"))
        if b_sunset and r_sunset and r_sunset < b_sunset:
            message = f"{label}: sunset moved earlier, from {b_sunset} to {r_sunset}"
            self.add("api-sunset-date-changed-too-small", message, label, b.pointer, r.pointer)
        b_level = _STABILITY.get(str(b.node.get("x-stability-level")))
        r_level = _STABILITY.get(str(r.node.get("x-stability-level")))
        if b_level is not None and r_level is not None and r_level < b_level:
            message = (
                f"{label}: stability went from {b.node['x-stability-level']} to {r.node['x-stability-level']}"
            )
            self.add("api-stability-decreased", message, label, b.pointer, r.pointer)
        b_id, r_id = b.node.get("operationId"), r.node.get("operationId")
        if b_id is not None and r_id is None:
            self.add(
                "api-operation-id-removed", f"{label}: operationId `{b_id}` removed", label, b.pointer, None
            )
        elif b_id is not None and b_id != r_id:
            message = f"{label}: operationId changed from `{b_id}` to `{r_id}`"
            self.add("api-operation-id-changed", message, label, b.pointer, r.pointer)

    def _parameters(self, b: _Operation, r: _Operation, label: str) -> None:
        b_params = _parameters(self.base, b)
        r_params = _parameters(self.revision, r)
        for key, bp in b_params.items():
            rp = r_params.get(key)
            what = f"{bp.location} parameter `{bp.name}`"
            if rp is None:
                self.add("request-parameter-removed", f"{label}: {what} removed", label, bp.pointer, None)
                continue
            if rp.required and not bp.required:
                message = f"{label}: {what} became required"
                self.add("request-parameter-became-required", message, label, bp.pointer, rp.pointer)
            elif bp.required and not rp.required:
                message = f"{label}: {what} became optional"
                self.add("request-parameter-became-optional", message, label, bp.pointer, rp.pointer)
            if rp.deprecated and not bp.deprecated:
                message = f"{label}: {what} deprecated"
                self.add("request-parameter-deprecated", message, label, bp.pointer, rp.pointer)
            found = self.schemas.compare(
                bp.schema, bp.schema_pointer, rp.schema, rp.schema_pointer, Direction.REQUEST
            )
            self.changes += schema_changes(found, REQUEST_PARAMETER, f"{label}: {what}", label)
        for key, rp in r_params.items():
            if key not in b_params:
                rule = "new-required-request-parameter" if rp.required else "new-optional-request-parameter"
                what = f"{rp.location} parameter `{rp.name}`"
                self.add(rule, f"{label}: {what} added", label, None, rp.pointer)

    def _request_body(self, b: _Operation, r: _Operation, label: str) -> None:
        b_body, r_body = _request_body(self.base, b), _request_body(self.revision, r)
        if b_body is None and r_body is None:
            return
        if b_body is None:
            assert r_body is not None
            rule = "new-required-request-body" if r_body.required else "new-optional-request-body"
            self.add(rule, f"{label}: request body added", label, None, r_body.pointer)
            return
        if r_body is None:
            self.add("request-body-removed", f"{label}: request body removed", label, b_body.pointer, None)
            return
        if r_body.required and not b_body.required:
            message = f"{label}: request body became required"
            self.add("request-body-became-required", message, label, b_body.pointer, r_body.pointer)
        elif b_body.required and not r_body.required:
            message = f"{label}: request body became optional"
            self.add("request-body-became-optional", message, label, b_body.pointer, r_body.pointer)
        self._media(
            b_body.content,
            r_body.content,
            label,
            "request body",
            Direction.REQUEST,
            "request-body-media-type",
        )

    def _media(
        self,
        b_content: dict[str, _Media],
        r_content: dict[str, _Media],
        label: str,
        subject: str,
        direction: Direction,
        rule_prefix: str,
    ) -> None:
        context = REQUEST_BODY if direction is Direction.REQUEST else RESPONSE_BODY
        for media_type, bm in b_content.items():
            rm = r_content.get(media_type)
            if rm is None:
                message = f"{label}: {subject} no longer in {media_type}"
                self.add(f"{rule_prefix}-removed", message, label, bm.pointer, None)
                continue
            found = self.schemas.compare(
                bm.schema, bm.schema_pointer, rm.schema, rm.schema_pointer, direction
            )
            self.changes += schema_changes(found, context, f"{label}: {subject} ({media_type})", label)
        for media_type, rm in r_content.items():
            if media_type not in b_content:
                message = f"{label}: {subject} now also in {media_type}"
                self.add(f"{rule_prefix}-added", message, label, None, rm.pointer)

    def _responses(self, b: _Operation, r: _Operation, label: str) -> None:
        b_responses, r_responses = _responses(self.base, b), _responses(self.revision, r)
        for status, br in b_responses.items():
            rr = r_responses.get(status)
            kind = "success" if status.startswith("2") else "non-success"
            if rr is None:
                message = f"{label}: response {status} removed"
                self.add(f"response-{kind}-status-removed", message, label, br.pointer, None)
                continue
            subject = f"response {status}"
            self._media(br.content, rr.content, label, subject, Direction.RESPONSE, "response-media-type")
            self._headers(br, rr, label, subject)
        for status, rr in r_responses.items():
            if status not in b_responses:
                kind = "success" if status.startswith("2") else "non-success"
                self.add(
                    f"response-{kind}-status-added",
                    f"{label}: response {status} added",
                    label,
                    None,
                    rr.pointer,
                )

    def _headers(self, br: _Response, rr: _Response, label: str, subject: str) -> None:
        for key, (name, bh) in br.headers.items():
            found = rr.headers.get(key)
            what = f"{label}: {subject} header `{name}`"
            if found is None:
                rule = (
                    "response-required-header-removed" if bh.required else "response-optional-header-removed"
                )
                self.add(rule, f"{what} removed", label, bh.pointer, None)
                continue
            rh = found[1]
            if bh.required and not rh.required:
                self.add(
                    "response-header-became-optional",
                    f"{what} became optional",
                    label,
                    bh.pointer,
                    rh.pointer,
                )
            elif rh.required and not bh.required:
                self.add(
                    "response-header-became-required",
                    f"{what} became required",
                    label,
                    bh.pointer,
                    rh.pointer,
                )
            compared = self.schemas.compare(
                bh.schema, bh.schema_pointer, rh.schema, rh.schema_pointer, Direction.RESPONSE
            )
            self.changes += schema_changes(compared, RESPONSE_HEADER, what, label)
        for key, (name, rh) in rr.headers.items():
            if key not in br.headers:
                message = f"{label}: {subject} header `{name}` added"
                self.add("response-header-added", message, label, None, rh.pointer)

    def _security(self, b: _Operation, r: _Operation, label: str) -> None:
        """Alternatives (OR) of requirements (AND), compared as what a client holds: its credentials
        satisfy a base alternative, so the change breaks it only when no revision alternative asks
        for a subset of that. Schemes are known by their definition, not their name."""
        b_alts = _security(self.base, b, self.base_schemes)
        r_alts = _security(self.revision, r, self.revision_schemes)
        b_open, r_open = _is_open(b_alts), _is_open(r_alts)
        bp, rp = child(b.pointer, "security"), child(r.pointer, "security")
        if b_open and not r_open:
            self.add("api-security-added", f"{label} now requires authentication", label, bp, rp)
            return
        if r_open and not b_open:
            self.add("api-security-removed", f"{label} no longer requires authentication", label, bp, rp)
            return
        if b_open or b_alts is None or r_alts is None:
            return
        names = self.scheme_names
        unmatched = [alt for alt in r_alts if alt not in b_alts]
        for alt in b_alts:
            if alt in r_alts:
                continue
            looser = [other for other in r_alts if _within(other, alt)]
            if looser:  # the client's credentials still do: tell what it no longer needs
                partner = max(looser, key=_size)
                if partner in unmatched:
                    unmatched.remove(partner)
                self._requirement_delta(alt, partner, names, label, bp, rp)
                continue
            stricter = [other for other in unmatched if _within(alt, other)]
            if stricter:
                partner = min(stricter, key=_size)
                unmatched.remove(partner)
                self._requirement_delta(alt, partner, names, label, bp, rp)
                continue
            message = f"{label}: authentication by {_show_requirement(alt, names)} no longer accepted"
            self.add("api-security-alternative-removed", message, label, bp, rp)
        for alt in unmatched:
            message = f"{label}: authentication by {_show_requirement(alt, names)} now also accepted"
            self.add("api-security-alternative-added", message, label, bp, rp)

    def _requirement_delta(
        self, old: _Requirement, new: _Requirement, names: dict[str, str], label: str, bp: str, rp: str
    ) -> None:
        shown = _show_requirement(old, names)
        for scheme in sorted(new.keys() - old.keys()):
            message = f"{label}: authentication by {shown} now also needs {names.get(scheme, scheme)}"
            self.add("api-security-scheme-added", message, label, bp, rp)
        for scheme in sorted(old.keys() - new.keys()):
            message = f"{label}: authentication by {shown} no longer needs {names.get(scheme, scheme)}"
            self.add("api-security-scheme-removed", message, label, bp, rp)
        for scheme in sorted(old.keys() & new.keys()):
            for scope in sorted(new[scheme] - old[scheme]):
                message = f"{label}: {names.get(scheme, scheme)} now also needs scope `{scope}`"
                self.add("api-security-scope-added", message, label, bp, rp)
            for scope in sorted(old[scheme] - new[scheme]):
                message = f"{label}: {names.get(scheme, scheme)} no longer needs scope `{scope}`"
                self.add("api-security-scope-removed", message, label, bp, rp)


def _operations_by_path(side: Side) -> dict[str, dict[str, _Operation]]:
    paths = side.doc.get("paths")
    out: dict[str, dict[str, _Operation]] = {}
    if not isinstance(paths, dict):
        return out
    for path, raw_item in paths.items():
        item, item_pointer = side.deref(raw_item, child("/paths", path))
        if not isinstance(item, dict):
            continue
        ops = {}
        for method in HTTP_METHODS:
            node = item.get(method)
            if isinstance(node, dict):
                ops[method] = _Operation(method, path, node, child(item_pointer, method), item, item_pointer)
        out.setdefault(normalize_path(path), ops)
    return out


def _parameters(side: Side, op: _Operation) -> dict[tuple[str, str], _Parameter]:
    """Path-level parameters overridden by operation-level ones; path parameters keyed by position."""
    positions = {name[1:-1]: str(i) for i, name in enumerate(_TEMPLATE.findall(op.path))}
    merged: dict[tuple[str, str], _Parameter] = {}
    for owner, owner_pointer in ((op.path_item, op.path_item_pointer), (op.node, op.pointer)):
        raw = owner.get("parameters")
        if not isinstance(raw, list):
            continue
        for index, item in enumerate(raw):
            node, pointer = side.deref(item, child(owner_pointer, "parameters", index))
            if not isinstance(node, dict) or not isinstance(node.get("name"), str):
                continue
            location = str(node.get("in"))
            name = node["name"]
            if location in ("body", "formData") or (
                location == "header" and name.lower() in _IGNORED_HEADERS
            ):
                continue
            schema, schema_pointer = _parameter_schema(node, pointer)
            key_name = positions.get(name, name) if location == "path" else name
            key = (location, key_name.lower() if location == "header" else key_name)
            merged[key] = _Parameter(
                name=name,
                location=location,
                required=node.get("required") is True or location == "path",
                deprecated=node.get("deprecated") is True,
                schema=schema,
                schema_pointer=schema_pointer,
                pointer=pointer,
            )
    return merged


def _parameter_schema(node: dict[str, Any], pointer: str) -> tuple[Any, str]:
    if "schema" in node:
        return node["schema"], child(pointer, "schema")
    content = node.get("content")
    if isinstance(content, dict):
        for media_type, media in content.items():
            if isinstance(media, dict):
                return media.get("schema"), child(pointer, "content", media_type, "schema")
    return node, pointer  # OpenAPI 2.0: the parameter carries its own type, format, enum...


def _media_key(media_type: str) -> str:
    return media_type.split(";")[0].strip().lower()


def _request_body(side: Side, op: _Operation) -> _Body | None:
    if "requestBody" in op.node:
        node, pointer = side.member(op.node, op.pointer, "requestBody")
        if not isinstance(node, dict):
            return None
        return _Body(node.get("required") is True, _content(node, pointer), pointer)
    return _swagger_body(side, op)


def _content(node: dict[str, Any], pointer: str) -> dict[str, _Media]:
    content = node.get("content")
    if not isinstance(content, dict):
        return {}
    out = {}
    for media_type, media in content.items():
        media_pointer = child(pointer, "content", media_type)
        schema = media.get("schema") if isinstance(media, dict) else None
        out[_media_key(media_type)] = _Media(schema, child(media_pointer, "schema"), media_pointer)
    return out


def _swagger_body(side: Side, op: _Operation) -> _Body | None:
    """OpenAPI 2.0: a `body` parameter, or `formData` parameters gathered into one object schema."""
    consumes = op.node.get("consumes") or side.doc.get("consumes") or ["application/json"]
    form: dict[str, Any] = {"type": "object", "properties": {}, "required": []}
    form_pointer = None
    for owner, owner_pointer in ((op.path_item, op.path_item_pointer), (op.node, op.pointer)):
        raw = owner.get("parameters")
        if not isinstance(raw, list):
            continue
        for index, item in enumerate(raw):
            node, pointer = side.deref(item, child(owner_pointer, "parameters", index))
            if not isinstance(node, dict):
                continue
            if node.get("in") == "body":
                content = {
                    _media_key(m): _Media(node.get("schema"), child(pointer, "schema"), pointer)
                    for m in consumes
                    if isinstance(m, str)
                }
                return _Body(node.get("required") is True, content, pointer)
            if node.get("in") == "formData" and isinstance(node.get("name"), str):
                form["properties"][node["name"]] = node
                if node.get("required") is True:
                    form["required"].append(node["name"])
                form_pointer = form_pointer or child(owner_pointer, "parameters")
    if form_pointer is None:
        return None
    media = [m for m in consumes if isinstance(m, str) and "form" in m] or [_FORM_MEDIA]
    content = {_media_key(m): _Media(form, form_pointer, form_pointer) for m in media}
    return _Body(bool(form["required"]), content, form_pointer)


def _responses(side: Side, op: _Operation) -> dict[str, _Response]:
    responses, pointer = side.member(op.node, op.pointer, "responses")
    if not isinstance(responses, dict):
        return {}
    produces = op.node.get("produces") or side.doc.get("produces") or ["application/json"]
    out = {}
    for status, raw in responses.items():
        node, response_pointer = side.deref(raw, child(pointer, status))
        if not isinstance(node, dict):
            continue
        if "schema" in node:  # OpenAPI 2.0
            schema_pointer = child(response_pointer, "schema")
            content = {
                _media_key(m): _Media(node["schema"], schema_pointer, response_pointer)
                for m in produces
                if isinstance(m, str)
            }
        else:
            content = _content(node, response_pointer)
        out[str(status).upper()] = _Response(
            content, _headers(side, node, response_pointer), response_pointer
        )
    return out


def _headers(side: Side, response: dict[str, Any], pointer: str) -> dict[str, tuple[str, _Header]]:
    raw = response.get("headers")
    if not isinstance(raw, dict):
        return {}
    out = {}
    for name, item in raw.items():
        node, header_pointer = side.deref(item, child(pointer, "headers", name))
        if not isinstance(node, dict) or name.lower() == "content-type":
            continue
        schema, schema_pointer = _parameter_schema(node, header_pointer)
        out[name.lower()] = (
            name,
            _Header(node.get("required") is True, schema, schema_pointer, header_pointer),
        )
    return out


# One requirement (AND): each scheme, by its identity, with the scopes it needs.
_Requirement = dict[str, frozenset[str]]


def _security(side: Side, op: _Operation, identities: dict[str, str]) -> list[_Requirement] | None:
    """Alternatives (OR) of requirements (AND), schemes keyed by identity. None when nothing is declared."""
    raw = op.node["security"] if "security" in op.node else side.doc.get("security")
    alternatives = security_requirements(raw)
    if alternatives is None:
        return None
    return [
        {identities.get(scheme, scheme): frozenset(scopes) for scheme, scopes in alternative}
        for alternative in alternatives
    ]


def _scheme_definitions(side: Side) -> dict[str, Any]:
    components = side.doc.get("components")
    schemes = components.get("securitySchemes") if isinstance(components, dict) else None
    if schemes is None:
        schemes = side.doc.get("securityDefinitions")  # OpenAPI 2.0
    return schemes if isinstance(schemes, dict) else {}


def _scheme_identities(side: Side) -> dict[str, str]:
    """A scheme's name is the document's own label: two names for one definition are one scheme.

    The identity is the definition without its words and without the OAuth scopes it offers (a
    new scope on offer changes no requirement); an undefined name stands for itself.
    """
    out = {}
    for name, raw in _scheme_definitions(side).items():
        node, _ = side.deref(raw, child(_SCHEMES_POINTER, name))
        if not isinstance(node, dict):
            continue
        essential = {k: v for k, v in node.items() if k not in ("description", "flows", "scopes")}
        flows = node.get("flows")
        if isinstance(flows, dict):
            essential["flows"] = {
                kind: {k: v for k, v in flow.items() if k != "scopes"} if isinstance(flow, dict) else flow
                for kind, flow in flows.items()
            }
        out[str(name)] = canonical_json(essential).decode()
    return out


_SCHEMES_POINTER = "/components/securitySchemes"


def _scheme_names(side: Side, identities: dict[str, str]) -> dict[str, str]:
    """Identity to the name the document gives it, for messages."""
    names = {name: name for name in _scheme_definitions(side)}
    names.update({identity: name for name, identity in identities.items()})
    return names


def _within(small: _Requirement, large: _Requirement) -> bool:
    """Whether credentials that meet `large` meet `small` too: fewer schemes, each with fewer scopes."""
    return all(scheme in large and scopes <= large[scheme] for scheme, scopes in small.items())


def _size(requirement: _Requirement) -> int:
    return len(requirement) + sum(len(scopes) for scopes in requirement.values())


def _show_requirement(requirement: _Requirement, names: dict[str, str]) -> str:
    return " + ".join(sorted(names.get(scheme, scheme) for scheme in requirement)) or "none"


def _is_open(alternatives: list[_Requirement] | None) -> bool:
    # No requirement at all, `security: []`, or an empty alternative `{}`: anonymous calls succeed.
    return not alternatives or any(not alt for alt in alternatives)


def _date(value: Any) -> dt.date | None:
    if isinstance(value, dt.date):
        return value if not isinstance(value, dt.datetime) else value.date()
    if not isinstance(value, str):
        return None
    try:
        return dt.date.fromisoformat(value[:10])
    except ValueError:
        return None

"""JSON Schema comparison that knows the direction of the data.

A schema a client writes (a request) breaks the client when it narrows; a schema a client reads
(a response, an event payload) breaks it when it widens. Local `$ref`s are followed, so a schema
inlined from a reference, or a component renamed with the same shape, compares equal. Results are
memoized per pair of locations: a component shared by a hundred operations is compared once.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

import msgspec

from contracts.diff.catalog import SCHEMA_RULES, Direction, Level, SchemaContext
from contracts.diff.changes import Change, change
from contracts.diff.side import Side, child
from contracts.errors import DocumentTooComplex

# Schemas inside schemas, `$ref` hops included, that a diff follows. Each level is a few Python
# frames deep (recursion stops near 300 levels); the deepest in Stripe's contracts is 39.
MAX_SCHEMA_DEPTH = 128
_PROPERTY_SUFFIXES = frozenset(rule.suffix for rule in SCHEMA_RULES if rule.properties_only)
_key_encoder = msgspec.json.Encoder(order="sorted")


class Finding(NamedTuple):
    suffix: str
    detail: str
    base_pointer: str | None
    revision_pointer: str | None
    path: tuple[str, ...] = ()  # property names from the compared schema down to the change
    # An addition to an enum or union the document declares open (`x-extensible-enum`): readers
    # are told to expect values they do not know, so it breaks none of them.
    open: bool = False


class _Bound(NamedTuple):
    name: str
    keyword: str
    exclusive: str | None
    upper: bool


_BOUNDS = (
    _Bound("max", "maximum", "exclusiveMaximum", True),
    _Bound("min", "minimum", "exclusiveMinimum", False),
    _Bound("max-length", "maxLength", None, True),
    _Bound("min-length", "minLength", None, False),
    _Bound("max-items", "maxItems", None, True),
    _Bound("min-items", "minItems", None, False),
    _Bound("max-properties", "maxProperties", None, True),
    _Bound("min-properties", "minProperties", None, False),
)


class SchemaComparer:
    def __init__(
        self, base: Side, revision: Side, *, max_comparisons: int, detect_renames: bool = True
    ) -> None:
        self.base = base
        self.revision = revision
        self.max_comparisons = max_comparisons
        # Off where the revision is a projection of the base: leaving one property out and adding
        # another is then two findings, not a rename.
        self.detect_renames = detect_renames
        self.comparisons = 0  # pairs compared, not answered from the memo
        self._memo: dict[tuple[str, str, Direction], tuple[Finding, ...]] = {}
        self._active: set[tuple[str, str, Direction]] = set()
        self._ref_free: dict[int, bool] = {}  # by id(): the documents do not change during a diff

    def compare(
        self, base: Any, base_pointer: str, revision: Any, revision_pointer: str, direction: Direction
    ) -> tuple[Finding, ...]:
        b, bp = self.base.deref(base, base_pointer)
        r, rp = self.revision.deref(revision, revision_pointer)
        key = (bp, rp, direction)
        if key in self._memo:
            return self._memo[key]
        if key in self._active:
            return ()  # a recursive schema: this pair is being compared further up
        self.comparisons += 1
        if self.comparisons > self.max_comparisons:
            raise DocumentTooComplex(
                f"comparing the two documents takes more than {self.max_comparisons} schema comparisons"
            )
        if b == r and self._self_contained(b):
            # Equal and without references (which could lead to schemas that differ): nothing changed.
            # Dict equality runs in C; this skips most of a large, mostly unchanged contract.
            self._memo[key] = ()
            return ()
        if len(self._active) >= MAX_SCHEMA_DEPTH:
            raise DocumentTooComplex(
                f"schemas nest deeper than {MAX_SCHEMA_DEPTH} levels, counting $ref hops, at {rp or bp}"
            )
        self._active.add(key)
        try:
            found = shortest_paths(self._compare(_as_schema(b), bp, _as_schema(r), rp, direction))
        finally:
            self._active.discard(key)
        self._memo[key] = found
        return found

    def _self_contained(self, node: Any) -> bool:
        if not isinstance(node, dict | list):
            return True
        known = self._ref_free.get(id(node))
        if known is None:
            known = _has_no_ref(node)
            self._ref_free[id(node)] = known
        return known

    def _compare(
        self, b: dict[str, Any], bp: str, r: dict[str, Any], rp: str, direction: Direction
    ) -> Iterable[Finding]:
        for keyword in ("oneOf", "anyOf"):
            if isinstance(b.get(keyword), list) != isinstance(r.get(keyword), list):
                # `X` against `anyOf: [X, Y]` (or back): the plain schema is the one alternative it had,
                # and the wrapper's own keywords say nothing about the values.
                yield from (f for f in _types(b, bp, r, rp) if "nullable" in f.suffix)
                if _free_form(b) or _free_form(r):
                    yield self._free_form_change(keyword, b, bp, r, rp)
                else:
                    yield from self._implicit_alternative(keyword, b, bp, r, rp, direction)
                return
        type_findings = list(_types(b, bp, r, rp))
        yield from type_findings
        if any(f.suffix == "type-changed" for f in type_findings):
            return  # everything else about an unrelated type is noise
        yield from _formats(b, bp, r, rp)
        yield from _enums(b, bp, r, rp)
        yield from _consts(b, bp, r, rp)
        yield from _bounds(b, bp, r, rp)
        yield from _patterns(b, bp, r, rp)
        yield from _access(b, bp, r, rp)
        yield from _defaults(b, bp, r, rp)
        yield from self._properties(b, bp, r, rp, direction)
        yield from self._additional_properties(b, bp, r, rp, direction)
        if isinstance(b.get("items"), dict | bool) and isinstance(r.get("items"), dict | bool):
            for f in self.compare(b["items"], child(bp, "items"), r["items"], child(rp, "items"), direction):
                yield f._replace(path=("[]", *f.path))
        for keyword in ("oneOf", "anyOf", "allOf"):
            yield from self._composition(keyword, b, bp, r, rp, direction)

    def _properties(
        self, b: dict[str, Any], bp: str, r: dict[str, Any], rp: str, direction: Direction
    ) -> Iterable[Finding]:
        b_props = self._members(b, bp, self.base, direction)
        r_props = self._members(r, rp, self.revision, direction)
        if not b_props and not r_props:
            return
        b_required, r_required = _required(b), _required(r)
        renamed = self._renames(b_props, r_props, b_required, r_required) if self.detect_renames else {}
        for old, new in renamed.items():
            yield Finding("renamed", f"renamed `{old}` to `{new}`", bp, rp)
        for name, (b_node, b_ptr, b_hidden) in b_props.items():
            if name not in r_props:
                if not b_hidden and name not in renamed:
                    suffix = "removed-required" if name in b_required else "removed-optional"
                    yield Finding(suffix, "property removed", b_ptr, None, (name,))
                continue
            r_node, r_ptr, r_hidden = r_props[name]
            if b_hidden and r_hidden:
                continue
            if b_hidden:  # e.g. no longer readOnly: clients may now send it, as if it were new
                suffix = "added-required" if name in r_required else "added-optional"
                yield Finding(suffix, "property added", b_ptr, r_ptr, (name,))
                continue
            if not r_hidden:
                if name in r_required and name not in b_required:
                    yield Finding("became-required", "became required", b_ptr, r_ptr, (name,))
                elif name in b_required and name not in r_required:
                    yield Finding("became-optional", "became optional", b_ptr, r_ptr, (name,))
            for f in self.compare(b_node, b_ptr, r_node, r_ptr, direction):
                yield f._replace(path=(name, *f.path))
        renamed_to = set(renamed.values())
        for name, (_, r_ptr, r_hidden) in r_props.items():
            if name not in b_props and not r_hidden and name not in renamed_to:
                suffix = "added-required" if name in r_required else "added-optional"
                yield Finding(suffix, "property added", None, r_ptr, (name,))

    def _renames(
        self,
        b_props: dict[str, tuple[Any, str, bool]],
        r_props: dict[str, tuple[Any, str, bool]],
        b_required: frozenset[str],
        r_required: frozenset[str],
    ) -> dict[str, str]:
        """Old name to new for each property that went while exactly one with its schema (and its
        requiredness) came, and no other that went had that schema too: a rename, not two changes."""
        gone = [n for n, (_, _, hidden) in b_props.items() if n not in r_props and not hidden]
        came = [n for n, (_, _, hidden) in r_props.items() if n not in b_props and not hidden]
        if not gone or not came:
            return {}
        came_shapes = {n: _shape(self.revision.deref(r_props[n][0], r_props[n][1])[0]) for n in came}
        gone_shapes = {n: _shape(self.base.deref(b_props[n][0], b_props[n][1])[0]) for n in gone}
        renames = {}
        for old, shape in gone_shapes.items():
            required = old in b_required
            same = [n for n, s in came_shapes.items() if s == shape and (n in r_required) == required]
            if len(same) == 1 and list(gone_shapes.values()).count(shape) == 1:
                renames[old] = same[0]
        return renames

    @staticmethod
    def _members(
        schema: dict[str, Any], pointer: str, side: Side, direction: Direction
    ) -> dict[str, tuple[Any, str, bool]]:
        """Each property with whether it stays out of this direction (readOnly in requests, writeOnly
        in responses): such a property is neither sent nor required there."""
        props = schema.get("properties")
        if not isinstance(props, dict):
            return {}
        hidden = "readOnly" if direction is Direction.REQUEST else "writeOnly"
        out = {}
        for name, node in props.items():
            prop_pointer = child(pointer, "properties", name)
            resolved, _ = side.deref(node, prop_pointer)
            out[name] = (node, prop_pointer, isinstance(resolved, dict) and resolved.get(hidden) is True)
        return out

    def _additional_properties(
        self, b: dict[str, Any], bp: str, r: dict[str, Any], rp: str, direction: Direction
    ) -> Iterable[Finding]:
        b_extra, r_extra = b.get("additionalProperties"), r.get("additionalProperties")
        if b_extra is False and r_extra is not False and r.get("type", "object") == "object":
            yield Finding("additional-properties-allowed", "unknown properties are now admitted", bp, rp)
        elif r_extra is False and b_extra is not False:
            yield Finding("additional-properties-disallowed", "unknown properties are now refused", bp, rp)
        elif isinstance(b_extra, dict) and isinstance(r_extra, dict):
            found = self.compare(
                b_extra,
                child(bp, "additionalProperties"),
                r_extra,
                child(rp, "additionalProperties"),
                direction,
            )
            for f in found:
                yield f._replace(path=("*", *f.path))

    def _composition(
        self, keyword: str, b: dict[str, Any], bp: str, r: dict[str, Any], rp: str, direction: Direction
    ) -> Iterable[Finding]:
        b_list, r_list = b.get(keyword), r.get(keyword)
        if not isinstance(b_list, list) and not isinstance(r_list, list):
            return
        b_items = self._alternatives(b_list, child(bp, keyword), self.base)
        r_items = self._alternatives(r_list, child(rp, keyword), self.revision)
        pairs, removed, added = _match_alternatives(b_items, r_items)
        suffix = {"oneOf": "one-of", "anyOf": "any-of", "allOf": "all-of"}[keyword]
        is_open = r.get("x-extensible-enum") is True
        for alt in removed:
            yield Finding(f"{suffix}-removed", f"`{keyword}` member {alt.label} removed", alt.pointer, None)
        for alt in added:
            detail = f"`{keyword}` member {alt.label} added"
            yield Finding(f"{suffix}-added", detail, None, alt.pointer, open=is_open)
        for b_alt, r_alt in pairs:
            yield from self.compare(b_alt.node, b_alt.pointer, r_alt.node, r_alt.pointer, direction)

    def _implicit_alternative(
        self, keyword: str, b: dict[str, Any], bp: str, r: dict[str, Any], rp: str, direction: Direction
    ) -> Iterable[Finding]:
        suffix = {"oneOf": "one-of", "anyOf": "any-of"}[keyword]
        if isinstance(r.get(keyword), list):
            plain = _Alternative(_without(b, keyword), bp, _signature(b), _component_name(bp), 0, b)
            others = self._alternatives(r[keyword], child(rp, keyword), self.revision)
            pairs, _, added = _match_alternatives([plain], others)
            for alt in added:
                yield Finding(f"{suffix}-added", f"`{keyword}` member {alt.label} added", None, alt.pointer)
            for _, r_alt in pairs:
                yield from self.compare(plain.node, bp, r_alt.node, r_alt.pointer, direction)
        else:
            plain = _Alternative(_without(r, keyword), rp, _signature(r), _component_name(rp), 0, r)
            others = self._alternatives(b[keyword], child(bp, keyword), self.base)
            pairs, removed, _ = _match_alternatives(others, [plain])
            for alt in removed:
                yield Finding(
                    f"{suffix}-removed", f"`{keyword}` member {alt.label} removed", alt.pointer, None
                )
            for b_alt, _ in pairs:
                yield from self.compare(b_alt.node, b_alt.pointer, plain.node, rp, direction)

    def _free_form_change(
        self, keyword: str, b: dict[str, Any], bp: str, r: dict[str, Any], rp: str
    ) -> Finding:
        """A free-form object that became a union of specific schemas (or back) admits less (more):
        one narrowing, not a member added per alternative."""
        if _free_form(b):
            members = self._alternatives(r[keyword], child(rp, keyword), self.revision)
            named = " or ".join(alt.label for alt in members) or "nothing"
            return Finding("type-narrowed", f"free-form object narrowed to {named}", bp, rp)
        members = self._alternatives(b[keyword], child(bp, keyword), self.base)
        named = " or ".join(alt.label for alt in members) or "nothing"
        return Finding("type-widened", f"{named} widened to a free-form object", bp, rp)

    @staticmethod
    def _alternatives(items: Any, pointer: str, side: Side) -> list[_Alternative]:
        """The members of a union, but for `{type: null}`: nullability is a type, not a member."""
        if not isinstance(items, list):
            return []
        out = []
        for index, node in enumerate(items):
            item_pointer = child(pointer, index)
            resolved, resolved_pointer = side.deref(node, item_pointer)
            if _is_null(resolved):
                continue
            ref_name = resolved_pointer.rsplit("/", 1)[-1] if resolved_pointer != item_pointer else None
            signature = _signature(resolved)
            out.append(_Alternative(node, item_pointer, signature, ref_name, index, resolved))
        return out


def _shape(schema: Any) -> bytes:
    """A schema without its words (description, title, examples): what a rename keeps."""
    if isinstance(schema, dict):
        schema = {k: v for k, v in schema.items() if k not in _WORDS}
    return _key_encoder.encode(schema)


_WORDS = frozenset({"description", "title", "example", "examples", "$comment"})


def _has_no_ref(node: Any) -> bool:
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if "$ref" in item:
                return False
            stack.extend(v for v in item.values() if isinstance(v, dict | list))
        elif isinstance(item, list):
            stack.extend(v for v in item if isinstance(v, dict | list))
    return True


def shortest_paths(findings: Iterable[Finding]) -> tuple[Finding, ...]:
    """One finding per change: a component reached along many property paths is reported once.

    The detail is part of what a change is: two values added to one enum are two changes at one place.
    """
    best: dict[tuple[str, str | None, str | None, str], Finding] = {}
    for f in findings:
        key = (f.suffix, f.base_pointer, f.revision_pointer, f.detail)
        known = best.get(key)
        if known is None or len(f.path) < len(known.path):
            best[key] = f
    return tuple(best.values())


class _Alternative(NamedTuple):
    node: Any
    pointer: str
    signature: str
    ref_name: str | None
    index: int
    resolved: Any = None  # the member behind its `$ref`s, to say what an unnamed one is

    @property
    def label(self) -> str:
        if self.ref_name:
            return f"`{self.ref_name}`"
        kind = _kind(self.resolved)  # "string", `enum ""`
        return f"#{self.index} ({kind})" if kind else f"#{self.index}"


def _kind(schema: Any) -> str:
    if not isinstance(schema, dict):
        return ""
    if isinstance(schema.get("enum"), list):
        values = schema["enum"]
        return "enum " + ", ".join(_show(v) for v in values[:3]) + (", ..." if len(values) > 3 else "")
    if "const" in schema:
        return f"const {_show(schema['const'])}"
    types, _ = _type_set(schema)
    return _describe(types) if types else ""


def _is_null(schema: Any) -> bool:
    """`{type: null}`, `{enum: [null]}` or `{const: null}`: the member that makes a union nullable."""
    if not isinstance(schema, dict):
        return False
    raw = schema.get("type")
    return (
        raw == "null"
        or raw == ["null"]
        or schema.get("enum") == [None]
        or ("const" in schema and schema["const"] is None)
    )


# Keywords that say nothing about which values a schema admits.
_ANNOTATIONS = frozenset(
    {"type", "description", "title", "nullable", "example", "examples", "deprecated", "default", "$comment"}
)


def _free_form(schema: dict[str, Any]) -> bool:
    """`{}` or `{type: object}` with no constraint: any object (or value) is welcome."""
    return schema.get("type", "object") == "object" and all(
        key in _ANNOTATIONS or key.startswith("x-") or (key == "additionalProperties" and schema[key] is True)
        for key in schema
    )


def _match_alternatives(
    base: list[_Alternative], revision: list[_Alternative]
) -> tuple[list[tuple[_Alternative, _Alternative]], list[_Alternative], list[_Alternative]]:
    """Pair alternatives by reference name, then by shape, then by position among the rest."""
    pairs = []
    b_left, r_left = list(base), list(revision)
    for attribute in ("ref_name", "signature"):
        for b_alt in list(b_left):
            value = getattr(b_alt, attribute)
            if value is None:
                continue
            matches = [r_alt for r_alt in r_left if getattr(r_alt, attribute) == value]
            if len(matches) > 1:  # `string` among `string` and `string, enum [""]`: the identical one
                matches = [r_alt for r_alt in matches if _shape(r_alt.node) == _shape(b_alt.node)] or matches
            if len(matches) == 1:
                pairs.append((b_alt, matches[0]))
                b_left.remove(b_alt)
                r_left.remove(matches[0])
    if len(b_left) == len(r_left):
        pairs.extend(zip(b_left, r_left, strict=True))
        return pairs, [], []
    return pairs, b_left, r_left


def _signature(schema: Any) -> str:
    """A cheap shape key: type, title and property names. Enough to pair alternatives, not to compare them."""
    if not isinstance(schema, dict):
        return repr(schema)
    props = schema.get("properties")
    return "|".join(
        (
            repr(schema.get("type")),
            str(schema.get("title") or ""),
            ",".join(sorted(props)) if isinstance(props, dict) else "",
            repr(schema.get("format")),
        )
    )


def _component_name(pointer: str) -> str | None:
    head, _, name = pointer.rpartition("/")
    return name if head in ("/components/schemas", "/definitions") else None


def _without(schema: dict[str, Any], keyword: str) -> dict[str, Any]:
    return {k: v for k, v in schema.items() if k != keyword}


def _as_schema(node: Any) -> dict[str, Any]:
    if isinstance(node, dict):
        return node
    if node is False:
        return {"not": {}}
    return {}  # `true`, a missing schema, or an unresolvable reference: anything goes


def _type_set(schema: dict[str, Any]) -> tuple[frozenset[str] | None, bool]:
    """The non-null types (None: any) and whether null is allowed, across OpenAPI 2.0, 3.0 and 3.1."""
    raw = schema.get("type")
    if isinstance(raw, str):
        types: set[str] | None = {raw}
    elif isinstance(raw, list):
        types = {t for t in raw if isinstance(t, str)}
    else:
        types = None
    nullable = schema.get("nullable") is True or schema.get("x-nullable") is True
    for keyword in ("anyOf", "oneOf"):
        members = schema.get(keyword)
        if isinstance(members, list) and any(_is_null(member) for member in members):
            nullable = True
    if types is not None and "null" in types:
        nullable = True
        types.discard("null")
    return (frozenset(types) if types is not None else None), nullable


def _covers(wide: frozenset[str], narrow: frozenset[str]) -> bool:
    return all(t in wide or (t == "integer" and "number" in wide) for t in narrow)


def _describe(types: frozenset[str] | None) -> str:
    return "any" if types is None else (" or ".join(sorted(types)) or "null")


def _types(b: dict[str, Any], bp: str, r: dict[str, Any], rp: str) -> Iterable[Finding]:
    b_types, b_null = _type_set(b)
    r_types, r_null = _type_set(r)
    if b_types != r_types:
        detail = f"type changed from {_describe(b_types)} to {_describe(r_types)}"
        if b_types is None or (r_types is not None and _covers(b_types, r_types)):
            yield Finding("type-narrowed", detail, bp, rp)
        elif r_types is None or _covers(r_types, b_types):
            yield Finding("type-widened", detail, bp, rp)
        else:
            yield Finding("type-changed", detail, bp, rp)
    if r_null and not b_null:
        yield Finding("became-nullable", "became nullable", bp, rp)
    elif b_null and not r_null:
        yield Finding("became-not-nullable", "is no longer nullable", bp, rp)


def _formats(b: dict[str, Any], bp: str, r: dict[str, Any], rp: str) -> Iterable[Finding]:
    b_format, r_format = b.get("format"), r.get("format")
    if b_format == r_format:
        return
    if b_format is None:
        yield Finding("format-added", f"format `{r_format}` set", bp, rp)
    elif r_format is None:
        yield Finding("format-removed", f"format `{b_format}` removed", bp, rp)
    else:
        yield Finding("format-changed", f"format changed from `{b_format}` to `{r_format}`", bp, rp)


def _value_key(value: Any) -> bytes:
    return _key_encoder.encode(value)


def _show(value: Any) -> str:
    return _key_encoder.encode(value).decode()[:80]


def _enum_values(schema: dict[str, Any]) -> Any:
    """`enum`, or the values of an open enum written as `x-extensible-enum: [...]` (Zalando's form)."""
    values = schema.get("enum")
    extensible = schema.get("x-extensible-enum")
    return values if values is not None or not isinstance(extensible, list) else extensible


def _enums(b: dict[str, Any], bp: str, r: dict[str, Any], rp: str) -> Iterable[Finding]:
    b_enum, r_enum = _enum_values(b), _enum_values(r)
    is_open = bool(r.get("x-extensible-enum"))
    if not isinstance(b_enum, list) and not isinstance(r_enum, list):
        return
    if not isinstance(b_enum, list):
        yield Finding("enum-added", "values restricted to an enum", bp, child(rp, "enum"))
        return
    if not isinstance(r_enum, list):
        yield Finding("enum-removed", "enum restriction removed", child(bp, "enum"), rp)
        return
    b_keys = {_value_key(v): v for v in b_enum}
    r_keys = {_value_key(v): v for v in r_enum}
    for key, value in b_keys.items():
        if key not in r_keys:
            yield Finding("enum-value-removed", f"enum value {_show(value)} removed", child(bp, "enum"), rp)
    for key, value in r_keys.items():
        if key not in b_keys:
            yield Finding(
                "enum-value-added", f"enum value {_show(value)} added", bp, child(rp, "enum"), open=is_open
            )


def _consts(b: dict[str, Any], bp: str, r: dict[str, Any], rp: str) -> Iterable[Finding]:
    if "const" not in b and "const" not in r:
        return
    if "const" not in b:
        yield Finding("const-added", f"value fixed to {_show(r['const'])}", bp, rp)
    elif "const" not in r:
        yield Finding("const-removed", "`const` removed", bp, rp)
    elif _value_key(b["const"]) != _value_key(r["const"]):
        detail = f"`const` changed from {_show(b['const'])} to {_show(r['const'])}"
        yield Finding("const-changed", detail, bp, rp)


def _bound_of(schema: dict[str, Any], bound: _Bound) -> tuple[float, bool] | None:
    """(limit, exclusive): 3.0's boolean `exclusiveMaximum` and 3.1's numeric one both land here."""
    value = schema.get(bound.keyword)
    value = value if isinstance(value, int | float) and not isinstance(value, bool) else None
    exclusive = schema.get(bound.exclusive) if bound.exclusive else None
    if isinstance(exclusive, int | float) and not isinstance(exclusive, bool):
        tighter = exclusive if value is None else (min if bound.upper else max)(value, exclusive)
        return tighter, tighter == exclusive
    if value is None:
        return None
    return value, exclusive is True


def _bounds(b: dict[str, Any], bp: str, r: dict[str, Any], rp: str) -> Iterable[Finding]:
    for bound in _BOUNDS:
        old, new = _bound_of(b, bound), _bound_of(r, bound)
        if old == new:
            continue
        keyword = bound.keyword
        if old is None:
            yield Finding(f"{bound.name}-added", f"`{keyword}` {_show_bound(new)} set", bp, rp)
        elif new is None:
            yield Finding(f"{bound.name}-removed", f"`{keyword}` {_show_bound(old)} removed", bp, rp)
        else:
            # An exclusive limit is a hair tighter than the same inclusive one.
            old_key = (old[0], -1 if old[1] else 0) if bound.upper else (old[0], 1 if old[1] else 0)
            new_key = (new[0], -1 if new[1] else 0) if bound.upper else (new[0], 1 if new[1] else 0)
            change_word = "decreased" if new_key < old_key else "increased"
            detail = f"`{keyword}` {change_word} from {_show_bound(old)} to {_show_bound(new)}"
            yield Finding(f"{bound.name}-{change_word}", detail, bp, rp)


def _show_bound(bound: tuple[float, bool] | None) -> str:
    if bound is None:
        return "none"
    return f"{bound[0]}{' (exclusive)' if bound[1] else ''}"


def _patterns(b: dict[str, Any], bp: str, r: dict[str, Any], rp: str) -> Iterable[Finding]:
    b_pattern, r_pattern = b.get("pattern"), r.get("pattern")
    if b_pattern != r_pattern:
        if b_pattern is None:
            yield Finding("pattern-added", f"pattern `{r_pattern}` set", bp, rp)
        elif r_pattern is None:
            yield Finding("pattern-removed", f"pattern `{b_pattern}` removed", bp, rp)
        else:
            yield Finding("pattern-changed", f"pattern changed from `{b_pattern}` to `{r_pattern}`", bp, rp)
    b_unique, r_unique = b.get("uniqueItems") is True, r.get("uniqueItems") is True
    if r_unique and not b_unique:
        yield Finding("unique-items-added", "items must now be unique", bp, rp)
    elif b_unique and not r_unique:
        yield Finding("unique-items-removed", "items may now repeat", bp, rp)


def _access(b: dict[str, Any], bp: str, r: dict[str, Any], rp: str) -> Iterable[Finding]:
    if r.get("readOnly") is True and b.get("readOnly") is not True:
        yield Finding("became-read-only", "became readOnly", bp, rp)
    if r.get("writeOnly") is True and b.get("writeOnly") is not True:
        yield Finding("became-write-only", "became writeOnly", bp, rp)


def _defaults(b: dict[str, Any], bp: str, r: dict[str, Any], rp: str) -> Iterable[Finding]:
    if "default" not in b:
        return
    if "default" not in r:
        yield Finding("default-removed", f"default {_show(b['default'])} removed", bp, rp)
    elif _value_key(b["default"]) != _value_key(r["default"]):
        detail = f"default changed from {_show(b['default'])} to {_show(r['default'])}"
        yield Finding("default-changed", detail, bp, rp)


def _required(schema: dict[str, Any]) -> frozenset[str]:
    required = schema.get("required")
    return frozenset(n for n in required if isinstance(n, str)) if isinstance(required, list) else frozenset()


def schema_changes(
    findings: Iterable[Finding], context: SchemaContext, subject: str, operation: str | None
) -> list[Change]:
    """Name findings for where it sits: `request-body-...` at the root, `request-property-...` inside."""
    out = []
    for f in findings:
        prefix = context.nested if f.path or f.suffix in _PROPERTY_SUFFIXES else context.root
        where = f"{subject} `{_dotted(f.path)}`" if f.path else subject
        found = change(
            f"{prefix}-{f.suffix}",
            f"{where}: {f.detail}",
            operation=operation,
            base_pointer=f.base_pointer,
            revision_pointer=f.revision_pointer,
            detail=f.detail,
        )
        if f.open and context.direction is Direction.RESPONSE and found.level is not Level.INFO:
            kind = "enum" if "enum" in f.suffix else "union"
            note = f"{found.level.value} → info: an open {kind} (`x-extensible-enum`)"
            found = msgspec.structs.replace(found, level=Level.INFO, policy=note)
        out.append(found)
    return out


def _dotted(path: tuple[str, ...]) -> str:
    text = ""
    for segment in path:
        if segment == "[]":
            text += "[]"
        else:
            text += f".{segment}" if text else segment
    return text

"""Every change the diff can report: a stable id, a level and what it means. Code and docs come from here.

Run `python -m contracts.diff > docs/changes.md` to regenerate the published catalog.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

import msgspec


class Level(enum.StrEnum):
    ERROR = "error"  # breaks existing clients or consumers
    WARNING = "warning"  # may break some of them
    INFO = "info"  # harmless


class Direction(enum.Enum):
    """Who reads the data a schema describes: what narrows a request or widens a response breaks."""

    REQUEST = "request"  # the client writes it, the API reads it
    RESPONSE = "response"  # the API writes it, the client (or event consumer) reads it


class Rule(msgspec.Struct, frozen=True):
    id: str
    level: Level
    category: str
    description: str
    addition: bool = False  # a new capability: needs at least a minor version


E, W, I = Level.ERROR, Level.WARNING, Level.INFO  # noqa: E741 (the table below reads better)


class _SchemaRule(msgspec.Struct, frozen=True):
    suffix: str
    request: Level
    response: Level
    description: str
    category: str
    properties_only: bool = False  # about an object's members, so always named `...-property-...`
    addition: bool = False


def _bound_rules() -> list[_SchemaRule]:
    rules = []
    for name, keyword in (
        ("max", "maximum"),
        ("max-length", "maxLength"),
        ("max-items", "maxItems"),
        ("max-properties", "maxProperties"),
        ("min", "minimum"),
        ("min-length", "minLength"),
        ("min-items", "minItems"),
        ("min-properties", "minProperties"),
    ):
        category = "numeric" if name in ("max", "min") else ("length" if "length" in name else "items")
        upper = name.startswith("max")
        narrowing, widening = ("decreased", "increased") if upper else ("increased", "decreased")
        rules += [
            _SchemaRule(f"{name}-added", E, I, f"`{keyword}` was set", category),
            _SchemaRule(f"{name}-{narrowing}", E, I, f"`{keyword}` became stricter", category),
            _SchemaRule(f"{name}-removed", I, E, f"`{keyword}` was removed", category),
            _SchemaRule(f"{name}-{widening}", I, E, f"`{keyword}` became looser", category),
        ]
    return rules


# Value rules apply to a whole body, parameter, header or payload (`request-body-type-changed`) and to
# any property within it (`request-property-type-changed`).
SCHEMA_RULES: tuple[_SchemaRule, ...] = (
    _SchemaRule("type-changed", E, E, "the type changed to an unrelated one", "types"),
    _SchemaRule("type-widened", I, E, "the type now admits more (e.g. integer to number)", "types"),
    _SchemaRule("type-narrowed", E, I, "the type now admits less (e.g. number to integer)", "types"),
    _SchemaRule("became-nullable", I, E, "null became a valid value", "types"),
    _SchemaRule("became-not-nullable", E, I, "null is no longer a valid value", "types"),
    _SchemaRule("format-added", E, I, "a `format` was set", "types"),
    _SchemaRule("format-removed", I, E, "the `format` was removed", "types"),
    _SchemaRule("format-changed", E, E, "the `format` changed", "types"),
    _SchemaRule("enum-value-added", I, W, "the enum admits a new value", "enums"),
    _SchemaRule("enum-value-removed", E, I, "a value was removed from the enum", "enums"),
    _SchemaRule("enum-added", E, I, "values became restricted to an enum", "enums"),
    _SchemaRule("enum-removed", I, E, "the enum restriction was removed", "enums"),
    _SchemaRule("const-added", E, I, "the value became a `const`", "enums"),
    _SchemaRule("const-removed", I, E, "the `const` restriction was removed", "enums"),
    _SchemaRule("const-changed", E, E, "the `const` value changed", "enums"),
    *_bound_rules(),
    _SchemaRule("pattern-added", E, I, "a `pattern` was set", "pattern"),
    _SchemaRule("pattern-removed", I, E, "the `pattern` was removed", "pattern"),
    _SchemaRule("pattern-changed", W, W, "the `pattern` changed", "pattern"),
    _SchemaRule("unique-items-added", E, I, "array items must be unique", "items"),
    _SchemaRule("unique-items-removed", I, W, "array items may repeat", "items"),
    _SchemaRule("additional-properties-disallowed", E, I, "unknown properties are refused", "properties"),
    _SchemaRule("additional-properties-allowed", I, W, "unknown properties are admitted", "properties"),
    _SchemaRule("one-of-added", I, E, "a new `oneOf` alternative", "composition"),
    _SchemaRule("one-of-removed", E, I, "a `oneOf` alternative was removed", "composition"),
    _SchemaRule("any-of-added", I, E, "a new `anyOf` alternative", "composition"),
    _SchemaRule("any-of-removed", E, I, "an `anyOf` alternative was removed", "composition"),
    _SchemaRule("all-of-added", E, I, "a new `allOf` member (more constraints)", "composition"),
    _SchemaRule("all-of-removed", I, W, "an `allOf` member was removed", "composition"),
    _SchemaRule("became-read-only", W, I, "became `readOnly`: no longer accepted in requests", "access"),
    _SchemaRule("became-write-only", I, E, "became `writeOnly`: no longer returned", "access"),
    _SchemaRule("default-changed", W, I, "the `default` changed", "defaults"),
    _SchemaRule("default-removed", W, I, "the `default` was removed", "defaults"),
    _SchemaRule(
        "added-required",
        E,
        I,
        "a new required property",
        "properties",
        properties_only=True,
        addition=True,
    ),
    _SchemaRule(
        "added-optional",
        I,
        I,
        "a new optional property",
        "properties",
        properties_only=True,
        addition=True,
    ),
    _SchemaRule(
        "removed-required",
        W,
        E,
        "a required property was removed",
        "properties",
        properties_only=True,
    ),
    _SchemaRule(
        "removed-optional",
        W,
        W,
        "an optional property was removed",
        "properties",
        properties_only=True,
    ),
    _SchemaRule(
        "renamed",
        E,
        E,
        "a property was renamed: one with the same schema took its place (clients use the old name)",
        "properties",
        properties_only=True,
    ),
    _SchemaRule(
        "became-required",
        E,
        I,
        "an optional property became required",
        "properties",
        properties_only=True,
    ),
    _SchemaRule(
        "became-optional",
        I,
        E,
        "a required property became optional",
        "properties",
        properties_only=True,
    ),
)


class SchemaContext(msgspec.Struct, frozen=True):
    """Where a schema sits, which names its findings: `{root}-...` for the whole, `{nested}-...` within."""

    root: str
    nested: str
    direction: Direction


REQUEST_PARAMETER = SchemaContext("request-parameter", "request-property", Direction.REQUEST)
REQUEST_BODY = SchemaContext("request-body", "request-property", Direction.REQUEST)
RESPONSE_BODY = SchemaContext("response-body", "response-property", Direction.RESPONSE)
RESPONSE_HEADER = SchemaContext("response-header", "response-property", Direction.RESPONSE)
# Events are judged from the consumer's side: it reads every payload, like a response.
MESSAGE_PAYLOAD = SchemaContext("message-payload", "message-property", Direction.RESPONSE)
MESSAGE_HEADERS = SchemaContext("message-headers", "message-property", Direction.RESPONSE)
# A canonical model is written by producers and read by consumers alike: a change is judged from
# both sides (FULL compatibility) and its level is the worse of the two.
MODEL = SchemaContext("model", "model-property", Direction.REQUEST)
SCHEMA_CONTEXTS = (
    REQUEST_PARAMETER,
    REQUEST_BODY,
    RESPONSE_BODY,
    RESPONSE_HEADER,
    MESSAGE_PAYLOAD,
    MESSAGE_HEADERS,
)

_STRUCTURAL: tuple[Rule, ...] = (
    # Paths and operations
    Rule("api-path-added", I, "paths", "a new path", addition=True),
    Rule("api-path-removed-without-deprecation", E, "paths", "a path was removed without being deprecated"),
    Rule(
        "api-path-removed-before-sunset", E, "paths", "a deprecated path was removed before its sunset date"
    ),
    Rule("api-path-removed-after-sunset", I, "paths", "a deprecated path was removed after its sunset date"),
    Rule("api-operation-added", I, "paths", "a new operation on an existing path", addition=True),
    Rule("api-removed-without-deprecation", E, "paths", "an operation was removed without being deprecated"),
    Rule("api-removed-before-sunset", E, "paths", "a deprecated operation was removed before its sunset"),
    Rule("api-removed-after-sunset", I, "paths", "a deprecated operation was removed after its sunset date"),
    Rule(
        "api-operation-id-changed", W, "paths", "the operationId changed (generated clients rename a method)"
    ),
    Rule("api-operation-id-removed", W, "paths", "the operationId was removed"),
    # Deprecation and sunset
    Rule("api-deprecated", I, "deprecation", "an operation became deprecated"),
    Rule("api-reactivated", I, "deprecation", "a deprecated operation is no longer deprecated"),
    Rule("api-sunset-date-changed-too-small", E, "deprecation", "the `x-sunset` date moved earlier"),
    Rule(
        "api-stability-decreased",
        E,
        "deprecation",
        "`x-stability-level` went down (stable > beta > alpha > draft)",
    ),
    Rule("request-parameter-deprecated", I, "deprecation", "a parameter became deprecated"),
    # Parameters and headers
    Rule("new-required-request-parameter", E, "parameters", "a new required parameter"),
    Rule("new-optional-request-parameter", I, "parameters", "a new optional parameter", addition=True),
    Rule("request-parameter-removed", W, "parameters", "a parameter was removed (clients still send it)"),
    Rule("request-parameter-became-required", E, "parameters", "an optional parameter became required"),
    Rule("request-parameter-became-optional", I, "parameters", "a required parameter became optional"),
    # Request bodies
    Rule("new-required-request-body", E, "request-body", "a required request body where there was none"),
    Rule("new-optional-request-body", I, "request-body", "an optional request body", addition=True),
    Rule("request-body-removed", W, "request-body", "the request body was removed"),
    Rule("request-body-became-required", E, "request-body", "the request body became required"),
    Rule("request-body-became-optional", I, "request-body", "the request body became optional"),
    Rule("request-body-media-type-added", I, "media-types", "a new request media type", addition=True),
    Rule("request-body-media-type-removed", E, "media-types", "a request media type is no longer accepted"),
    # Responses
    Rule("response-success-status-added", I, "responses", "a new success status", addition=True),
    Rule("response-success-status-removed", E, "responses", "a success status was removed"),
    Rule("response-non-success-status-added", I, "responses", "a new error status"),
    Rule("response-non-success-status-removed", W, "responses", "an error status was removed"),
    Rule("response-media-type-added", I, "media-types", "a new response media type", addition=True),
    Rule("response-media-type-removed", E, "media-types", "a response media type is no longer produced"),
    Rule("response-header-added", I, "headers", "a new response header", addition=True),
    Rule("response-required-header-removed", E, "headers", "a required response header was removed"),
    Rule("response-optional-header-removed", W, "headers", "an optional response header was removed"),
    Rule("response-header-became-optional", E, "headers", "a required response header became optional"),
    Rule("response-header-became-required", I, "headers", "an optional response header became required"),
    # Security
    Rule("api-security-added", E, "security", "an open operation now requires authentication"),
    Rule("api-security-removed", I, "security", "an operation no longer requires authentication"),
    Rule("api-security-alternative-added", I, "security", "a new way to authenticate (alternatives are OR)"),
    Rule("api-security-alternative-removed", E, "security", "a way to authenticate was removed"),
    Rule("api-security-scope-added", E, "security", "a requirement needs another scope (scopes are AND)"),
    Rule("api-security-scope-removed", I, "security", "a requirement needs one scope fewer"),
    Rule(
        "api-security-scheme-added",
        E,
        "security",
        "a requirement needs another scheme as well (schemes in one requirement are AND)",
    ),
    Rule("api-security-scheme-removed", I, "security", "a requirement needs one scheme fewer"),
    # Events
    Rule("channel-added", I, "channels", "a new channel", addition=True),
    Rule("channel-removed", E, "channels", "a channel was removed"),
    Rule("event-operation-added", I, "channels", "a new send or receive operation", addition=True),
    Rule("event-operation-removed", E, "channels", "a send or receive operation was removed"),
    Rule(
        "message-added",
        W,
        "messages",
        "a channel carries a new message (consumers meet an unknown one)",
        addition=True,
    ),
    Rule("message-removed", E, "messages", "a channel no longer carries a message"),
    Rule("message-content-type-changed", E, "messages", "a message's content type changed"),
    Rule("message-payload-format-changed", E, "messages", "a message's `schemaFormat` changed"),
    Rule("message-payload-changed", E, "messages", "a payload in a non-JSON-Schema format changed"),
)


def _schema_catalog() -> Iterable[Rule]:
    seen: set[str] = set()
    for context in SCHEMA_CONTEXTS:
        prefixes = (context.root, context.nested)
        for rule in SCHEMA_RULES:
            for prefix in prefixes:
                if rule.properties_only and prefix != context.nested:
                    continue
                rule_id = f"{prefix}-{rule.suffix}"
                if rule_id in seen:
                    continue
                seen.add(rule_id)
                level = rule.request if context.direction is Direction.REQUEST else rule.response
                yield Rule(rule_id, level, rule.category, rule.description, addition=rule.addition)


_SEVERITY = {Level.ERROR: 0, Level.WARNING: 1, Level.INFO: 2}


def _model_catalog() -> Iterable[Rule]:
    for rule in SCHEMA_RULES:
        level = min(rule.request, rule.response, key=_SEVERITY.__getitem__)
        description = f"{rule.description} (canonical model: judged for producers and consumers)"
        for prefix in (MODEL.root, MODEL.nested):
            if rule.properties_only and prefix != MODEL.nested:
                continue
            yield Rule(f"{prefix}-{rule.suffix}", level, "models", description, addition=rule.addition)


RULES: dict[str, Rule] = {rule.id: rule for rule in (*_STRUCTURAL, *_schema_catalog(), *_model_catalog())}


def render_markdown() -> str:
    by_category: dict[str, list[Rule]] = {}
    for rule in RULES.values():
        by_category.setdefault(rule.category, []).append(rule)
    breaking = sum(rule.level is Level.ERROR for rule in RULES.values())
    lines = [
        "# Change catalog",
        "",
        "Generated from `contracts/diff/catalog.py` by `python -m contracts.diff`; do not edit.",
        "",
        f"{len(RULES)} rules, {breaking} of them breaking (`error`). An `error` needs a major version,",
        "an addition a minor one, any other change a patch. Schema rules are named by where the schema",
        "sits (`request-body-...` for the whole body, `request-property-...` within it) and judged by",
        "direction: what narrows a request or widens a response breaks clients; event payloads are",
        "judged from the consumer's side, like responses.",
        "",
        "A change in a shared component is found once per operation that reaches it; reports show it once,",
        "at the place that changed, with the operations it reaches (`charter diff`, the portal, and the",
        "`changes` endpoint, which pages them).",
        "",
        "A severity policy (`charter diff --policy FILE`, or stored in the registry globally and per API)",
        "sets other levels, and the change says so (`error → warning by policy`):",
        "",
        "```yaml",
        "severity:                  # rule id: error, warning, info or off",
        "  api-operation-id-changed: error",
        "  api-reactivated: off",
        "open_enums: true           # a new enum value breaks no reader of responses or events",
        "open_unions: true          # nor does a new oneOf/anyOf member, or a channel's new message",
        "```",
        "",
        "A rule turned `off` has its findings dropped before anything counts them: they do not make a",
        "diff breaking, need no version bump, are not stored on publish and are not shown; reports give",
        "only their number by rule: `suppressed` in `charter diff --format json`, `charter check` (every",
        "format), the dry run of a publish and a version's changes (`GET .../changes`, kept on publish).",
        "",
        "`--policy` also reads oasdiff's `--severity-levels` file: one `rule-id level` a line, level",
        "`err`, `warn`, `info` or `none` (`none` is `off`), `#` comments and blank lines allowed. Many",
        "rule ids are oasdiff's; a line naming a rule this catalog does not have is an error (exit 2,",
        "naming the first such line), as it is in oasdiff: a misspelt rule silently skipped would leave",
        "its findings at a level nobody chose.",
        "",
        "A schema marked `x-extensible-enum` (a list of values, or `true` beside `enum` or a union) is",
        "open without a policy.",
        "",
    ]
    for category in sorted(by_category):
        lines += [f"## {category}", "", "| id | level | bump | meaning |", "| --- | --- | --- | --- |"]
        for rule in sorted(by_category[category], key=lambda r: r.id):
            bump = "major" if rule.level is Level.ERROR else ("minor" if rule.addition else "patch")
            lines.append(f"| `{rule.id}` | {rule.level.value} | {bump} | {rule.description} |")
        lines.append("")
    return "\n".join(lines)

"""Every built-in lint rule: a stable id, a default severity, the documents it applies to and what it asks.

Code and docs come from here: run `python -m contracts.lint > docs/lint-rules.md` to regenerate the page.
"""

from __future__ import annotations

import enum

import msgspec

from contracts.kinds import Family


class Severity(enum.StrEnum):
    ERROR = "error"  # fails the lint (exit code 1)
    WARNING = "warning"
    INFO = "info"


OPENAPI = frozenset({Family.OPENAPI})
ASYNCAPI = frozenset({Family.ASYNCAPI})
BOTH = frozenset({Family.OPENAPI, Family.ASYNCAPI})


class Rule(msgspec.Struct, frozen=True):
    id: str
    severity: Severity
    families: frozenset[Family]
    category: str
    description: str
    minimal: bool = False  # also part of `charter:minimal`


E, W, I = Severity.ERROR, Severity.WARNING, Severity.INFO  # noqa: E741 (the table below reads better)

_RULES = (
    Rule("operation-id-present", E, OPENAPI, "operations", "every operation has an `operationId`", True),
    Rule("operation-id-unique", E, OPENAPI, "operations", "no two operations share an `operationId`", True),
    Rule("operation-id-camel-case", W, OPENAPI, "operations", "`operationId` is camelCase (`listProjects`)"),
    Rule(
        "operation-description",
        W,
        BOTH,
        "operations",
        "every operation has a `description` or a `summary`",
    ),
    Rule(
        "operation-security-defined",
        E,
        OPENAPI,
        "security",
        "every operation declares a security requirement, its own or the document's root `security`, "
        "or opts out with its own `security: []`",
        True,
    ),
    Rule(
        "error-response-problem-json",
        W,
        OPENAPI,
        "responses",
        "4xx and 5xx responses have an `application/problem+json` body (RFC 9457)",
    ),
    Rule(
        "path-kebab-case",
        W,
        OPENAPI,
        "paths",
        "path segments are lower-case kebab-case (`/time-entries`); `{parameters}` are exempt",
    ),
    Rule(
        "path-no-verbs",
        W,
        OPENAPI,
        "paths",
        "no path segment starts with a verb (`get`, `create`, `update`, `delete`, `list`, ...): "
        "the method is the verb",
    ),
    Rule("info-contact", W, BOTH, "metadata", "`info.contact` names a person or team (name, email or url)"),
    Rule(
        "info-owner",
        W,
        BOTH,
        "metadata",
        "an owning team is named in `info.x-owner` (or `x-owner` at the root)",
    ),
    Rule(
        "servers-no-secrets",
        E,
        BOTH,
        "servers",
        "server URLs carry no credentials (`user:pass@`) and no query parameter named like "
        "key, token, secret or password",
        True,
    ),
    Rule(
        "channel-address-taxonomy",
        W,
        ASYNCAPI,
        "events",
        "channel addresses are `domain.entity.action` in lower case (`finance.invoice.issued`)",
    ),
    Rule("message-payload", E, ASYNCAPI, "events", "every message has a `payload` schema", True),
    Rule("message-name", W, ASYNCAPI, "events", "every message has a `name`"),
    Rule(
        "canonical-reference",
        E,
        BOTH,
        "canonical models",
        "`x-canonical: NAME@RANGE` names a canonical model the registry holds, and a range one of its "
        "published versions satisfies (checked on publish, where the registry hands in the models)",
        True,
    ),
    Rule(
        "canonical-projection",
        E,
        BOTH,
        "canonical models",
        "a schema declaring `x-canonical` is a projection of the model's highest version in its range: "
        "each property exists in the model with a compatible schema, and where the object is produced "
        "(responses, events) the model's required properties stay required",
        True,
    ),
    Rule(
        "canonical-undeclared",
        W,
        BOTH,
        "canonical models",
        "in a process or experience API, a schema named like a canonical object (`Client`, `TimeEntry`) "
        "declares the model it carries with `x-canonical`",
    ),
)

RULES: dict[str, Rule] = {rule.id: rule for rule in _RULES}

_FAMILIES = {OPENAPI: "OpenAPI", ASYNCAPI: "AsyncAPI", BOTH: "both"}

_RULESET_FORMAT = """\
## Rulesets

`charter lint FILE` uses `charter:recommended` unless `--ruleset` names a built-in ruleset or a
ruleset file (YAML or JSON):

```yaml
extends: charter:recommended      # or charter:minimal; a list merges in order; absent: no rule
rules:
  operation-id-camel-case: off    # disable a rule
  info-owner: error               # change a severity (error, warning, info); enables it if off
  paths-under-api:                # a custom rule
    description: paths start with /api
    severity: warning             # default warning
    given: "$.paths"              # one expression or a list of them
    then:                         # one check or a list of them
      field: "@key"               # a member name, or @key for the matched key; absent: the node
      function: pattern           # pattern | truthy | falsy | enum | length
      functionOptions: {match: "^/api/"}
```

- `charter:recommended` enables every rule above at its default severity; `charter:minimal` only
  the rules marked in the *minimal* column.
- An unknown rule id, a built-in id given a custom body, an unknown key or a bad option is an
  invalid ruleset (exit code 2), never silently ignored.
- The owner is read from `info.x-owner` (preferred, it travels with the info block) or from a
  root-level `x-owner`: a team name as a non-empty string.

### Functions

| function | functionOptions | fails when the value |
| --- | --- | --- |
| `pattern` | `match`, `notMatch` (regular expressions) | is not a string, misses `match` or hits `notMatch` |
| `truthy` | none | is missing, `null`, `false`, `0`, `""`, `[]` or `{}` |
| `falsy` | none | is present and none of those |
| `enum` | `values` (a list) | is not one of `values` |
| `length` | `min`, `max` (inclusive) | is a string, array or object of another length, or none of these |

A check on a `field` the node lacks passes, except `truthy`. `$ref`s to the same document are
followed, so findings point where the value is written.

### Paths in `given`

JSONPath as Spectral rulesets write it (JSONPath Plus), evaluated by python-jsonpath: members, unions
(`[get,post]`), wildcards, indexes and slices, recursive descent, filters (`[?(@.in == 'query')]`,
`@property`, `@path`, `.match(/re/)`), and a trailing `~` for keys or `^` for the parent. `$ref`s to
the same document are followed, so findings point where the value is written. See docs/spectral.md.

## Spectral rulesets

A ruleset written for Spectral (`.spectral.yaml`) is read as it is: `extends: spectral:oas` or
`spectral:asyncapi` (with `[name, all|recommended|off]`), rules with `message`, `severity` (error,
warn, info, hint, off, 0-3), `formats`, `resolved`, and Spectral's core functions. docs/spectral.md
lists which of Spectral's built-in rules Charter runs and which it reports as not checked.
"""


def render_markdown() -> str:
    lines = [
        "# Lint rules",
        "",
        "Generated from `contracts/lint/catalog.py` by `python -m contracts.lint`; do not edit.",
        "",
        f"{len(RULES)} built-in rules. A finding names its rule, a severity, a message, a JSON pointer",
        "(RFC 6901) to the offending member and, when it has one, the operation. Any `error` fails",
        "`charter lint` with exit code 1.",
        "",
    ]
    by_category: dict[str, list[Rule]] = {}
    for rule in RULES.values():
        by_category.setdefault(rule.category, []).append(rule)
    for category in sorted(by_category):
        lines += [
            f"## {category}",
            "",
            "| id | severity | documents | minimal | asks for |",
            "| --- | --- | --- | --- | --- |",
        ]
        for rule in sorted(by_category[category], key=lambda r: r.id):
            minimal = "yes" if rule.minimal else ""
            lines.append(
                f"| `{rule.id}` | {rule.severity.value} | {_FAMILIES[rule.families]} | {minimal}"
                f" | {rule.description} |"
            )
        lines.append("")
    return "\n".join(lines) + "\n" + _RULESET_FORMAT

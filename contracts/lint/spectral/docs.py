"""docs/spectral.md: how Charter reads Spectral rulesets, and which of Spectral's rules it covers."""

from __future__ import annotations

from contracts.lint.spectral.builtin import NOT_COVERED, builtin_rulesets
from contracts.lint.spectral.functions import CORE_FUNCTIONS
from contracts.lint.spectral.ruleset import MAX_GIVEN, MAX_PATH, MAX_RULES, MAX_THEN

_INTRO = f"""\
# Spectral rulesets

Generated from `contracts/lint/spectral/` by `python -m contracts.lint.spectral`; do not edit.

`charter lint FILE --ruleset .spectral.yaml` and the stored rulesets (`PUT /api/v1/rulesets/global`,
`PUT /api/v1/teams/{{team}}/ruleset`) accept a ruleset written for Spectral as it is. A file is read
as Spectral's format when it uses anything Charter's own format does not have (a `spectral:` name
in `extends`, `warn`, `message`, `formats`, a function of Spectral's, ...). Each finding has `rule`,
`severity`, `message` and `pointer` (RFC 6901, where the value is written) and, inside `paths`, the
operation; `charter lint --format json` prints `{{"findings": [...]}}`.

## What is read

- `extends`: `spectral:oas` and `spectral:asyncapi` (below), `charter:recommended` and
  `charter:minimal`, each as a name (`recommended` rules) or `[name, all|recommended|off]`. Another
  file, a package or a URL is refused: Charter reads no other file and no network.
- `rules`: a rule, or a severity (`error`, `warn`, `info`, `hint`, `off`, `0`-`3`), `true` or
  `false` for a rule an extended ruleset defines. Charter has three levels: `hint` is reported as
  `info`.
- A rule: `description`, `message` (`{{{{error}}}}`, `{{{{property}}}}`, `{{{{value}}}}`, `{{{{path}}}}`,
  `{{{{description}}}}`), `severity` (default `warn`), `given` (one path or a list), `then` (one check or
  a list: `field` as a member path, `@key` or a JSONPath, `function`, `functionOptions`), `formats`
  (`oas2`, `oas3`, `oas3_0`, `oas3_1`, `asyncapi2`, `asyncapi3`), `resolved` (default true: `$ref`s
  are followed; false: the document as written). `recommended`, `type`, `documentationUrl` and
  `tags` are accepted.
- `aliases` (a name for a path or a list of paths, used as `#Name` in `given`), `formats`,
  `functions`, `documentationUrl`.
- Core functions: {", ".join(f"`{name}`" for name in CORE_FUNCTIONS)}. `schema` validates with
  jsonschema-rs (`dialect`: auto, draft4, draft6, draft7, draft2019-09, draft2020-12; `allErrors`).

## What is reported as not checked

A rule Charter cannot run is never skipped quietly: every lint reports it as a `warning` finding
named after the rule, with pointer `""` and a message that starts `rule `x` is not checked:` and
says why. That is a rule whose function is a custom JavaScript function (`functions:`, or any
unknown name), whose `given` uses JavaScript Charter does not run (`typeof`, `@parent`, arrow
functions, ...), whose `schema` `$ref`s another file, a Spectral built-in rule implemented in
JavaScript (below), and `overrides`. They are warnings whatever the rule's severity, so they never
fail a publish.

## Bounds

Stored rulesets come from teams, so a ruleset is checked whole when it is stored (422 with the reason
otherwise, nothing stored) and is bounded: at most 256 KiB, {MAX_RULES} rules, {MAX_GIVEN} paths per
rule of at most {MAX_PATH:,} characters, {MAX_THEN} checks per rule. Every regular expression (in
`pattern` and in filters) must compile with Python's `re`; it runs on the `regex` module, which can
stop at a deadline. A lint on publish has a budget of 60 s and 5,000,000 steps (nodes visited,
regular expressions run): when it runs out, a `lint-budget` error says at which rule the lint
stopped, and the document is refused. Recursive descent visits each node once per `..`, through
`$ref`s, so `$..*..*..*` is linear in the document, and a recursive schema ends.

## Paths

JSONPath Plus is translated for python-jsonpath (RFC 9535 and extensions): names in brackets without
quotes (`[get,put]`) are quoted; `.[` is `[`; a trailing `~` selects the keys and `^` the parents;
in filters `@property` is the key, `@path` the path, `===` is `==`, and `.match(/re/)`,
`.includes(s)`, `.startsWith(s)`, `.endsWith(s)`, `.indexOf(s) === -1` are regular expression
tests; comparing a key with a number (`@property >= 200`) compares it as a number.
"""


def render_markdown() -> str:
    lines = [_INTRO]
    for name, rules in builtin_rulesets().items():
        missing = {m.name: m for m in NOT_COVERED[name]}
        covered = [r for r in rules.values() if r.name not in missing]
        lines += [
            f"## `{name}`",
            "",
            f"{len(covered)} of {len(rules)} rules run in Charter; {len(missing)} are reported as not "
            "checked when enabled.",
            "",
            "| rule | severity | recommended | formats | Charter |",
            "| --- | --- | --- | --- | --- |",
        ]
        for rule in sorted(rules.values(), key=lambda r: r.name):
            severity = rule.severity.value if rule.severity else "off"
            formats = ", ".join(sorted(rule.formats)) or "any"
            recommended = "yes" if rule.recommended else ""
            if rule.name in missing:
                status = f"not checked (Spectral runs JavaScript: {missing[rule.name].checks})"
            else:
                status = f"covered: {rule.description}"
            lines.append(f"| `{rule.name}` | {severity} | {recommended} | {formats} | {status} |")
        lines.append("")
    return "\n".join(lines)

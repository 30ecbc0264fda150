"""Spectral rulesets as they are written: `extends`, `rules`, `aliases`, `formats`, `functions`.

A ruleset is data from a team (stored rulesets are shared): it is checked whole when it loads, with
limits on its size, and a rule Charter cannot run (a custom JavaScript function, a path it cannot
evaluate, a Spectral built-in rule it does not cover) becomes an unsupported rule that every lint
reports by name, never one that is skipped without a word.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from contracts.lint.catalog import Severity
from contracts.lint.spectral import paths
from contracts.lint.spectral.functions import CORE_FUNCTIONS, INTERNAL_FUNCTIONS, Function
from contracts.lint.spectral.paths import UnsupportedPath

MAX_RULES = 500
MAX_GIVEN = 50  # paths per rule
MAX_THEN = 20
MAX_PATH = 1000  # characters of one `given` path
FORMATS = frozenset({"oas2", "oas3", "oas3_0", "oas3_1", "asyncapi2", "asyncapi3"})
_SEVERITIES: dict[Any, Severity | None] = {
    "error": Severity.ERROR,
    "warn": Severity.WARNING,
    "warning": Severity.WARNING,
    "info": Severity.INFO,
    # Charter has three levels; a hint is reported as info (it never fails a lint either).
    "hint": Severity.INFO,
    "off": None,
    0: Severity.ERROR,
    1: Severity.WARNING,
    2: Severity.INFO,
    3: Severity.INFO,
    -1: None,
}
TOP_LEVEL = {
    "extends",
    "rules",
    "functions",
    "functionsDir",
    "formats",
    "documentationUrl",
    "aliases",
    "overrides",
    "parserOptions",
    "description",
}
_RULE_KEYS = {
    "description",
    "message",
    "severity",
    "given",
    "then",
    "formats",
    "resolved",
    "recommended",
    "type",
    "documentationUrl",
    "tags",
    "extensions",
}


# Options that are valid Spectral but that Charter cannot honour say this; the rule is unsupported.
_NOT_SUPPORTED = "is not supported"


class SpectralError(ValueError):
    """The ruleset is not a valid Spectral ruleset: one line saying where and why."""


class Then(msgspec.Struct, frozen=True):
    field: str | None  # a member path (`contact.name`), `@key`, or a JSONPath relative to the node
    function: str
    check: Function | None  # None: a function Charter does not have, or options it cannot honour
    field_path: paths.Path | None = None  # `field` when it is a JSONPath
    unsupported: str | None = None  # why `check` is None


class SpectralRule(msgspec.Struct, frozen=True):
    name: str
    severity: Severity | None  # None: off
    description: str = ""
    message: str | None = None
    given: tuple[str, ...] = ()
    paths: tuple[paths.Path, ...] = ()
    then: tuple[Then, ...] = ()
    formats: frozenset[str] = frozenset()  # empty: every document
    resolved: bool = True
    recommended: bool = True
    unsupported: str | None = None  # why Charter cannot run it


def severity_of(raw: Any, where: str) -> Severity | None:
    if isinstance(raw, bool) or raw not in _SEVERITIES:
        raise SpectralError(f"{where}: severity {raw!r} is not error, warn, info, hint, off or 0-3")
    return _SEVERITIES[raw]


def load_spectral(
    raw: dict[str, Any], builtins: dict[str, dict[str, SpectralRule]]
) -> tuple[SpectralRule, ...]:
    """The rules of a Spectral ruleset, each with its severity (None when off), in a stable order."""
    unknown = set(raw) - TOP_LEVEL
    if unknown:
        raise SpectralError(f"unknown top-level key `{sorted(unknown)[0]}` in a Spectral ruleset")
    rules: dict[str, SpectralRule] = {}
    for name, mode in _extends(raw.get("extends", [])):
        if name not in builtins:
            known = ", ".join(sorted(builtins))
            raise SpectralError(
                f"`extends: {name}`: only built-in rulesets can be extended ({known}); "
                "Charter reads no other file and no network"
            )
        for rule in builtins[name].values():
            on = mode == "all" or (mode == "recommended" and rule.recommended)
            rules[rule.name] = msgspec.structs.replace(rule, severity=rule.severity if on else None)
    custom_functions = raw.get("functions", [])
    if not isinstance(custom_functions, list) or not all(isinstance(f, str) for f in custom_functions):
        raise SpectralError("`functions` is a list of function names")
    default_formats = _formats(raw.get("formats"), "the ruleset")
    aliases = _aliases(raw.get("aliases", {}))
    body = raw.get("rules", {})
    if not isinstance(body, dict):
        raise SpectralError("`rules` is a mapping of rule names to rules")
    if len(body) > MAX_RULES:
        raise SpectralError(f"a ruleset has at most {MAX_RULES} rules, this one has {len(body)}")
    for name, setting in body.items():
        name = str(name)
        if isinstance(setting, dict) and ("given" in setting or "then" in setting or name not in rules):
            rules[name] = _rule(name, setting, default_formats, aliases, rules.get(name))
        elif isinstance(setting, dict):  # a partial override of an extended rule: its severity
            unknown_keys = set(setting) - {"severity", "description", "message", "recommended"}
            if unknown_keys:
                raise SpectralError(f"rule `{name}`: unknown key `{sorted(unknown_keys)[0]}`")
            base = rules[name]
            rules[name] = msgspec.structs.replace(
                base,
                severity=severity_of(setting["severity"], f"rule `{name}`")
                if "severity" in setting
                else base.severity,
                description=str(setting.get("description", base.description)),
                message=setting.get("message", base.message),
            )
        elif name not in rules:
            raise SpectralError(f"rule `{name}` is set to {setting!r} but no extended ruleset defines it")
        elif setting is True:
            rules[name] = msgspec.structs.replace(rules[name], severity=_declared(rules[name], builtins))
        elif setting is False:
            rules[name] = msgspec.structs.replace(rules[name], severity=None)
        else:
            rules[name] = msgspec.structs.replace(
                rules[name], severity=severity_of(setting, f"rule `{name}`")
            )
    out = list(rules.values())
    if "overrides" in raw:
        out.append(
            SpectralRule(
                "overrides",
                Severity.WARNING,
                unsupported="`overrides` (rules per file) are not supported: each rule applies everywhere",
            )
        )
    return tuple(out)


def _declared(rule: SpectralRule, builtins: dict[str, dict[str, SpectralRule]]) -> Severity | None:
    """The severity a rule is declared with, for `rule: true` after `extends: [x, off]`."""
    for rules in builtins.values():
        if rule.name in rules:
            return rules[rule.name].severity
    return rule.severity or Severity.WARNING


def _extends(raw: Any) -> list[tuple[str, str]]:
    entries = raw if isinstance(raw, list) else [raw]
    out = []
    for entry in entries:
        if isinstance(entry, str):
            out.append((entry, "recommended"))
        elif (
            isinstance(entry, list)
            and len(entry) == 2
            and isinstance(entry[0], str)
            and entry[1] in ("all", "recommended", "off")
        ):
            out.append((entry[0], entry[1]))
        else:
            raise SpectralError(f"`extends` entry {entry!r} is not a name or [name, all|recommended|off]")
    return out


def _formats(raw: Any, where: str) -> frozenset[str]:
    if raw is None:
        return frozenset()
    if not isinstance(raw, list) or not all(isinstance(f, str) for f in raw):
        raise SpectralError(f"{where}: `formats` is a list of format names")
    unknown = set(raw) - FORMATS
    if unknown:
        known = ", ".join(sorted(FORMATS))
        raise SpectralError(f"{where}: unknown format `{sorted(unknown)[0]}` (known: {known})")
    return frozenset(raw)


def _aliases(raw: Any) -> dict[str, list[str]]:
    if not isinstance(raw, dict):
        raise SpectralError("`aliases` is a mapping of names to paths")
    out = {}
    for name, value in raw.items():
        targets = [value] if isinstance(value, str) else value
        if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
            raise SpectralError(f"alias `{name}`: only a path or a list of paths is supported")
        out[str(name)] = targets
    return out


def _expand(given: str, aliases: dict[str, list[str]], depth: int = 0) -> list[str]:
    """`#Alias.rest` as the alias's paths followed by `.rest`."""
    found = re.match(r"#([A-Za-z0-9_-]+)(.*)", given, re.DOTALL)
    if not found:
        return [given]
    if found.group(1) not in aliases or depth > 8:
        raise SpectralError(f"`given: {given}` names an unknown alias")
    out = []
    for target in aliases[found.group(1)]:
        out.extend(_expand(target + found.group(2), aliases, depth + 1))
    return out


def _rule(
    name: str,
    body: dict[str, Any],
    default_formats: frozenset[str],
    aliases: dict[str, list[str]],
    base: SpectralRule | None,
    *,
    internal: bool = False,
) -> SpectralRule:
    where = f"rule `{name}`"
    unknown = set(body) - _RULE_KEYS
    if unknown:
        raise SpectralError(f"{where}: unknown key `{sorted(unknown)[0]}`")
    if "given" not in body or "then" not in body:
        raise SpectralError(f"{where}: a rule needs `given` and `then`")
    severity = severity_of(body["severity"], where) if "severity" in body else Severity.WARNING
    if body.get("recommended") is False and base is None:
        pass  # `recommended` only matters for rulesets that are extended; a file's own rules run as set
    given_raw = body["given"] if isinstance(body["given"], list) else [body["given"]]
    if not given_raw or not all(isinstance(g, str) for g in given_raw):
        raise SpectralError(f"{where}: `given` is a path or a list of paths")
    given = [path for g in given_raw for path in _expand(g, aliases)]
    if any(len(g) > MAX_PATH for g in given):
        raise SpectralError(f"{where}: a path in `given` is limited to {MAX_PATH:,} characters")
    if len(given) > MAX_GIVEN:
        raise SpectralError(f"{where}: at most {MAX_GIVEN} paths in `given`")
    then_raw = body["then"] if isinstance(body["then"], list) else [body["then"]]
    if not then_raw or len(then_raw) > MAX_THEN:
        raise SpectralError(f"{where}: `then` has 1 to {MAX_THEN} checks")
    message = body.get("message")
    if message is not None and not isinstance(message, str):
        raise SpectralError(f"{where}: `message` is a string")
    resolved = body.get("resolved", True)
    if not isinstance(resolved, bool):
        raise SpectralError(f"{where}: `resolved` is true or false")
    rule = SpectralRule(
        name,
        severity,
        description=str(body.get("description", "")),
        message=message,
        given=tuple(given),
        formats=_formats(body.get("formats"), where) or default_formats,
        resolved=resolved,
        recommended=body.get("recommended", True) is not False,
    )
    unsupported: list[str] = []
    compiled = []
    for expression in given:
        try:
            compiled.append(paths.parse(expression))
        except UnsupportedPath as exc:
            unsupported.append(f"its path {exc}")
    checks = []
    for index, then in enumerate(then_raw):
        check = _then(then, f"{where}: `then`" + (f"[{index}]" if len(then_raw) > 1 else ""), internal)
        if check.check is None:
            unsupported.append(
                check.unsupported
                or f"the function `{check.function}` is a custom (JavaScript) function Charter does not run"
            )
        checks.append(check)
    return msgspec.structs.replace(
        rule,
        paths=tuple(compiled),
        then=tuple(checks),
        unsupported="; ".join(dict.fromkeys(unsupported)) or None,
    )


def _then(raw: Any, where: str, internal: bool = False) -> Then:
    if not isinstance(raw, dict):
        raise SpectralError(f"{where} is a mapping with `function`")
    unknown = set(raw) - {"field", "function", "functionOptions"}
    if unknown:
        raise SpectralError(f"{where}: unknown key `{sorted(unknown)[0]}`")
    function = raw.get("function")
    if not isinstance(function, str):
        raise SpectralError(f"{where}: `function` is required")
    field = raw.get("field")
    if field is not None and not isinstance(field, str):
        raise SpectralError(f"{where}: `field` is a string")
    field_path = None
    if field is not None and field.startswith("$"):
        try:
            field_path = paths.parse(field)
        except UnsupportedPath as exc:
            raise SpectralError(f"{where}: `field` {exc}") from None
    kind = CORE_FUNCTIONS.get(function) or (INTERNAL_FUNCTIONS.get(function) if internal else None)
    if kind is None:
        return Then(field, function, None, field_path)
    options = raw.get("functionOptions") or {}
    try:
        check = msgspec.convert(options, kind)
    except (msgspec.ValidationError, ValueError) as exc:
        if _NOT_SUPPORTED in str(exc):
            return Then(field, function, None, field_path, f"`{function}`: {str(exc).splitlines()[0]}")
        message = re.sub(
            r" - at `\$\.?([^`]*)`", lambda m: f" (at `{m.group(1)}`)" if m.group(1) else "", str(exc)
        )
        raise SpectralError(f"{where}: `{function}` options: {message.splitlines()[0]}") from None
    return Then(field, function, check, field_path)

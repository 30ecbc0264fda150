"""Rulesets: which rules run at which severity, built in (`charter:recommended`, `charter:minimal`) or
read from a YAML or JSON file that extends one, changes severities and adds custom rules."""

from __future__ import annotations

import re
from typing import Any, Literal, TypeVar

import msgspec

from contracts.errors import ContractError
from contracts.lint import jsonpath
from contracts.lint.catalog import RULES, Severity
from contracts.lint.functions import FUNCTIONS, Function
from contracts.loading import load_document


class InvalidRuleset(ContractError):
    title = "Invalid ruleset"


class Check(msgspec.Struct, frozen=True):
    field: str | None  # a member of the selected node, `@key` for its key, None for the node itself
    function: str
    options: Function


class CustomRule(msgspec.Struct, frozen=True):
    id: str
    description: str
    severity: Severity
    given: tuple[str, ...]
    paths: tuple[tuple[jsonpath.Step, ...], ...]  # `given`, parsed
    then: tuple[Check, ...]


class Ruleset(msgspec.Struct, frozen=True):
    severities: dict[str, Severity]  # the built-in rules that run, each at its severity
    custom: tuple[CustomRule, ...] = ()

    def description_of(self, rule_id: str) -> str:
        if rule_id in RULES:
            return RULES[rule_id].description
        return next((r.description or r.id for r in self.custom if r.id == rule_id), rule_id)

    def severity_of(self, rule_id: str) -> Severity | None:
        if rule_id in self.severities:
            return self.severities[rule_id]
        return next((r.severity for r in self.custom if r.id == rule_id), None)


BUILTIN_RULESETS: dict[str, Ruleset] = {
    "charter:recommended": Ruleset({rule.id: rule.severity for rule in RULES.values()}),
    "charter:minimal": Ruleset({rule.id: rule.severity for rule in RULES.values() if rule.minimal}),
}
RECOMMENDED = BUILTIN_RULESETS["charter:recommended"]

_RULE_ID = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_SETTINGS = ("off", "error", "warning", "info")


class _File(msgspec.Struct, forbid_unknown_fields=True):
    extends: str | list[str] = []
    rules: dict[str, Any] = {}


class _Then(msgspec.Struct, forbid_unknown_fields=True, rename={"function_options": "functionOptions"}):
    function: Literal["pattern", "truthy", "falsy", "enum", "length"]
    field: str | None = None
    function_options: dict[str, Any] = {}


class _Custom(msgspec.Struct, forbid_unknown_fields=True):
    given: str | list[str]
    then: _Then | list[_Then]
    description: str = ""
    severity: Literal["off", "error", "warning", "info"] = "warning"


def load_ruleset(data: bytes | str) -> Ruleset:
    """A ruleset from the text of a YAML or JSON file; InvalidRuleset says what is wrong in one line."""
    try:
        raw = load_document(data.encode() if isinstance(data, str) else data)
    except ContractError as exc:
        raise InvalidRuleset(f"ruleset is unreadable: {exc.detail}") from None
    spec = _convert(raw, _File, "the ruleset")
    severities: dict[str, Severity] = {}
    for name in [spec.extends] if isinstance(spec.extends, str) else spec.extends:
        if name not in BUILTIN_RULESETS:
            known = ", ".join(BUILTIN_RULESETS)
            raise InvalidRuleset(f"`extends: {name}` is not a built-in ruleset (known: {known})")
        severities.update(BUILTIN_RULESETS[name].severities)
    custom = []
    for rule_id, setting in spec.rules.items():
        if isinstance(setting, dict):
            rule = _custom_rule(rule_id, setting)
            if rule is not None:
                custom.append(rule)
        elif setting not in _SETTINGS:
            raise InvalidRuleset(
                f"rule `{rule_id}`: expected off, error, warning, info or a custom rule, got {setting!r}"
            )
        elif rule_id not in RULES:
            raise InvalidRuleset(f"unknown rule `{rule_id}`: not a built-in rule (see docs/lint-rules.md)")
        elif setting == "off":
            severities.pop(rule_id, None)
        else:
            severities[rule_id] = Severity(setting)
    return Ruleset(severities, tuple(custom))


def _custom_rule(rule_id: str, body: dict[str, Any]) -> CustomRule | None:
    if rule_id in RULES:
        raise InvalidRuleset(f"rule `{rule_id}` is built in: give it a severity (off, error, warning, info)")
    if not _RULE_ID.match(rule_id):
        raise InvalidRuleset(f"rule id `{rule_id}` is not kebab-case")
    where = f"rule `{rule_id}`"
    spec = _convert(body, _Custom, where)
    given = (spec.given,) if isinstance(spec.given, str) else tuple(spec.given)
    if not given:
        raise InvalidRuleset(f"{where}: `given` is empty")
    paths = []
    for expression in given:
        try:
            paths.append(jsonpath.parse(expression))
        except ValueError as exc:
            raise InvalidRuleset(f"{where}: `given: {expression}` is not a supported path: {exc}") from None
    checks = []
    for then in [spec.then] if isinstance(spec.then, _Then) else spec.then:
        options = _convert(then.function_options, FUNCTIONS[then.function], f"{where}: `functionOptions`")
        checks.append(Check(then.field, then.function, options))
    if not checks:
        raise InvalidRuleset(f"{where}: `then` is empty")
    if spec.severity == "off":
        return None
    return CustomRule(rule_id, spec.description, Severity(spec.severity), given, tuple(paths), tuple(checks))


_T = TypeVar("_T")


def _convert(raw: Any, kind: type[_T], where: str) -> _T:
    try:
        return msgspec.convert(raw, kind)
    except msgspec.ValidationError as exc:
        message = str(exc)
        # msgspec locates errors as `$.then.function`; name the place as the ruleset file writes it.
        message = re.sub(
            r" - at `\$\.?([^`]*)`", lambda m: f" (at `{m.group(1)}`)" if m.group(1) else "", message
        )
        raise InvalidRuleset(f"{where}: {message}") from None

"""Rulesets: which rules run at which severity, built in (`charter:recommended`, `charter:minimal`) or
read from a YAML or JSON file that extends one, changes severities and adds custom rules."""

from __future__ import annotations

import re
from typing import Any, Literal, TypeVar

import msgspec

from contracts.errors import ContractError
from contracts.lint.catalog import RULES, Severity
from contracts.lint.functions import FUNCTIONS, Function
from contracts.lint.spectral import paths
from contracts.lint.spectral.builtin import builtin_rulesets
from contracts.lint.spectral.ruleset import (
    TOP_LEVEL,
    SpectralError,
    SpectralRule,
    load_spectral,
    severity_of,
)
from contracts.loading import load_document

MAX_RULESET_BYTES = 256 * 1024


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
    paths: tuple[paths.Path, ...]  # `given`, parsed
    then: tuple[Check, ...]


class Ruleset(msgspec.Struct, frozen=True):
    severities: dict[str, Severity]  # the built-in rules that run, each at its severity
    custom: tuple[CustomRule, ...] = ()
    spectral: tuple[SpectralRule, ...] = ()  # the rules of a Spectral ruleset, off ones included

    def description_of(self, rule_id: str) -> str:
        if rule_id in RULES:
            return RULES[rule_id].description
        for rule in self.spectral:
            if rule.name == rule_id:
                return rule.description or rule.name
        return next((r.description or r.id for r in self.custom if r.id == rule_id), rule_id)

    def severity_of(self, rule_id: str) -> Severity | None:
        if rule_id in self.severities:
            return self.severities[rule_id]
        for rule in self.spectral:
            if rule.name == rule_id:
                return rule.severity
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
    """A ruleset from the text of a YAML or JSON file, in Charter's format or Spectral's; InvalidRuleset
    says what is wrong in one line."""
    data = data.encode() if isinstance(data, str) else data
    if len(data) > MAX_RULESET_BYTES:
        raise InvalidRuleset(f"a ruleset is limited to {MAX_RULESET_BYTES // 1024} KiB")
    try:
        raw = load_document(data)
    except ContractError as exc:
        raise InvalidRuleset(f"ruleset is unreadable: {exc.detail}") from None
    if is_spectral(raw):
        return _load_spectral(raw)
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
    parsed = []
    for expression in given:
        try:
            parsed.append(paths.parse(expression))
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
    return CustomRule(rule_id, spec.description, Severity(spec.severity), given, tuple(parsed), tuple(checks))


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


_CHARTER_RULE_KEYS = {"given", "then", "description", "severity"}
_CHARTER_THEN_KEYS = {"field", "function", "functionOptions"}


def is_spectral(raw: Any) -> bool:
    """Whether a ruleset is written in Spectral's format: anything Charter's own format does not have
    (a Spectral name in `extends`, `warn`, `message`, `formats`, a function of Spectral's, ...)."""
    if not isinstance(raw, dict):
        return False
    if set(raw) - {"extends", "rules"}:
        return set(raw) <= TOP_LEVEL
    extends = raw.get("extends", [])
    for entry in extends if isinstance(extends, list) else [extends]:
        if isinstance(entry, list) or (isinstance(entry, str) and entry.startswith("spectral:")):
            return True
    rules = raw.get("rules")
    if not isinstance(rules, dict):
        return False
    for setting in rules.values():
        if isinstance(setting, bool | int) or setting in ("warn", "hint"):
            return True
        if isinstance(setting, dict):
            if set(setting) - _CHARTER_RULE_KEYS or setting.get("severity") in ("warn", "hint", 0, 1, 2, 3):
                return True
            thens = setting.get("then")
            for then in thens if isinstance(thens, list) else [thens]:
                if isinstance(then, dict) and (
                    set(then) - _CHARTER_THEN_KEYS or then.get("function") not in FUNCTIONS
                ):
                    return True
    return False


def _load_spectral(raw: dict[str, Any]) -> Ruleset:
    """A Spectral ruleset; it may also extend `charter:*` rulesets and set their rules' severities."""
    extends = raw.get("extends", [])
    entries = extends if isinstance(extends, list) else [extends]
    charter = [e for e in entries if isinstance(e, str) and e in BUILTIN_RULESETS]
    severities: dict[str, Severity] = {}
    for name in charter:
        severities.update(BUILTIN_RULESETS[name].severities)
    rules = raw.get("rules", {})
    own = {}
    # `info-contact` and `operation-description` are names in both: an extended Spectral ruleset wins.
    extended = [e[0] if isinstance(e, list) and e else e for e in entries]
    spectral_names = {
        name for entry in extended if isinstance(entry, str) for name in builtin_rulesets().get(entry, {})
    }
    if isinstance(rules, dict):
        for rule_id, setting in rules.items():
            if rule_id in RULES and rule_id not in spectral_names and not isinstance(setting, dict):
                try:
                    level = (
                        None
                        if setting is False
                        else severity_of(
                            RULES[rule_id].severity.value if setting is True else setting, f"rule `{rule_id}`"
                        )
                    )
                except SpectralError as exc:
                    raise InvalidRuleset(str(exc)) from None
                if level is None:
                    severities.pop(rule_id, None)
                else:
                    severities[rule_id] = level
            else:
                own[rule_id] = setting
    spectral_raw = {**raw, "extends": [e for e in entries if e not in charter], "rules": own}
    try:
        return Ruleset(severities, (), load_spectral(spectral_raw, builtin_rulesets()))
    except SpectralError as exc:
        raise InvalidRuleset(str(exc)) from None

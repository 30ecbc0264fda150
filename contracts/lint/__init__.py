"""Governance lint: built-in and custom rules over OpenAPI and AsyncAPI documents, grouped in rulesets."""

from contracts.lint.catalog import RULES, Rule, Severity
from contracts.lint.findings import Finding
from contracts.lint.linter import lint
from contracts.lint.ruleset import BUILTIN_RULESETS, InvalidRuleset, Ruleset, load_ruleset

__all__ = [
    "BUILTIN_RULESETS",
    "RULES",
    "Finding",
    "InvalidRuleset",
    "Rule",
    "Ruleset",
    "Severity",
    "lint",
    "load_ruleset",
]

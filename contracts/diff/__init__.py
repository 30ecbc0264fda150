"""The semantic diff of contracts: what changed, what breaks, and which version bump that needs."""

from contracts.diff.catalog import RULES, Level, Rule
from contracts.diff.changes import Bump, Change, actual_bump, bump_suffices, required_bump
from contracts.diff.compare import DiffReport, diff_documents

__all__ = [
    "RULES",
    "Bump",
    "Change",
    "DiffReport",
    "Level",
    "Rule",
    "actual_bump",
    "bump_suffices",
    "diff_documents",
    "required_bump",
]

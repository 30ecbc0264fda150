"""The semantic diff of contracts: what changed, what breaks, and which version bump that needs."""

from contracts.diff.catalog import RULES, Level, Rule
from contracts.diff.changes import Bump, Change, actual_bump, bump_suffices, required_bump
from contracts.diff.compare import DiffReport, diff_documents
from contracts.diff.groups import ChangeGroup, group_changes
from contracts.diff.policy import InvalidPolicy, SeverityPolicy, load_policy, suppressed_summary

__all__ = [
    "RULES",
    "Bump",
    "Change",
    "ChangeGroup",
    "DiffReport",
    "InvalidPolicy",
    "Level",
    "Rule",
    "SeverityPolicy",
    "actual_bump",
    "bump_suffices",
    "diff_documents",
    "group_changes",
    "load_policy",
    "required_bump",
    "suppressed_summary",
]

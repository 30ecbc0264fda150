"""What a custom rule checks on the nodes it selects: `pattern`, `truthy`, `falsy`, `enum`, `length`.

Each function is its options as a Struct (decoded from `functionOptions`, unknown options refused) with a
`check` that returns why a value fails, or None when it passes.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
import regex

from contracts.lint.spectral.paths import UNLIMITED, Budget, search

MISSING: Any = msgspec.UNSET  # the checked field is absent from the node


def show(value: Any) -> str:
    """A value as a message quotes it: short, and never a whole object."""
    if isinstance(value, str):
        return repr(value if len(value) <= 60 else value[:57] + "...")
    if isinstance(value, dict):
        return f"an object of {len(value)} members"
    if isinstance(value, list):
        return f"an array of {len(value)} items"
    return msgspec.json.encode(value).decode()


class Pattern(msgspec.Struct, frozen=True, forbid_unknown_fields=True, rename={"not_match": "notMatch"}):
    match: str | None = None
    not_match: str | None = None

    def __post_init__(self) -> None:
        if self.match is None and self.not_match is None:
            raise ValueError("`pattern` needs `match`, `notMatch` or both")
        for expression in (self.match, self.not_match):
            try:
                re.compile(expression or "")
            except re.error as exc:
                raise ValueError(f"invalid regular expression {expression!r}: {exc}") from None

    def check(self, value: Any, budget: Budget = UNLIMITED) -> str | None:
        if value is MISSING:
            return None
        if not isinstance(value, str):
            return f"is {show(value)}, not a string"
        # `regex` runs them: unlike `re`, it stops at the lint's deadline (a team wrote the pattern).
        if self.match is not None and not search(regex.compile(self.match), value, budget):
            return f"is {show(value)}, which does not match /{self.match}/"
        if self.not_match is not None and search(regex.compile(self.not_match), value, budget):
            return f"is {show(value)}, which matches /{self.not_match}/"
        return None


class Truthy(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    def check(self, value: Any, budget: Budget = UNLIMITED) -> str | None:
        if value is MISSING:
            return "is missing"
        return None if value else f"is {show(value)}"


class Falsy(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    def check(self, value: Any, budget: Budget = UNLIMITED) -> str | None:
        return None if value is MISSING or not value else f"is {show(value)}; it should be absent or empty"


class Enum(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    values: list[Any]

    def check(self, value: Any, budget: Budget = UNLIMITED) -> str | None:
        if value is MISSING or any(value == v and type(value) is type(v) for v in self.values):
            return None
        return f"is {show(value)}, not one of {', '.join(show(v) for v in self.values)}"


class Length(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    min: int | None = None
    max: int | None = None

    def __post_init__(self) -> None:
        if self.min is None and self.max is None:
            raise ValueError("`length` needs `min`, `max` or both")

    def check(self, value: Any, budget: Budget = UNLIMITED) -> str | None:
        if value is MISSING:
            return None
        if not isinstance(value, str | list | dict):
            return f"is {show(value)}, which has no length"
        if self.min is not None and len(value) < self.min:
            return f"has length {len(value)}, less than {self.min}"
        if self.max is not None and len(value) > self.max:
            return f"has length {len(value)}, more than {self.max}"
        return None


Function = Pattern | Truthy | Falsy | Enum | Length
FUNCTIONS: dict[str, type[Function]] = {
    "pattern": Pattern,
    "truthy": Truthy,
    "falsy": Falsy,
    "enum": Enum,
    "length": Length,
}

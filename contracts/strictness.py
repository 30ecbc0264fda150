"""How strictly a contract is checked before it is stored or compared."""

from __future__ import annotations

import enum


class Strictness(enum.StrEnum):
    FULL = "full"  # parse, detect the kind, validate against the specification
    SYNTAX_ONLY = "syntax-only"  # parse and detect the kind
    NONE = "none"  # parse only

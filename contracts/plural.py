"""Counted nouns for messages: "1 change", "2 changes", "0 changes".

Every message that counts goes through here, so that none reads "1 changes" or "change(s)".
English plurals of the few nouns the product counts need no inflection library.
"""

from __future__ import annotations


def counted(number: int, noun: str, plural: str | None = None) -> str:
    """`number` and the noun, plural unless the number is one (`plural` for irregular nouns)."""
    return f"{number} {noun if number == 1 else plural or noun + 's'}"

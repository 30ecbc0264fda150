"""Where a JSON pointer lands in the text a document was parsed from: its line and column.

The parsers that load documents quickly (msgspec, yaml-rs) keep no positions, and most documents
are valid, so positions are found afterwards, only for the pointers of the problems found:
- JSON: msgspec decodes one level at a time into `Raw` members (C speed, no Python objects for the
  members' contents); the offsets of the members on the way to a pointer follow from their lengths.
  Levels are decoded once for all pointers that share them.
- YAML: PyYAML's libyaml parser streams events with their marks and stops once every wanted
  place has been passed (about 0.5 s for all of Stripe's 3.8 MB, less when the places come early).
A pointer to a member that is not written (a required field missing) gets the place of the
nearest ancestor that is.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import msgspec
import yaml

from contracts.errors import Issue
from contracts.loading import looks_like_json

Position = tuple[int, int]  # line and column, both from 1; the column counts characters

_MEMBER = re.compile(rb'[\s,{]*("(?:[^"\\]|\\.)*")\s*:\s*')
_ITEM = re.compile(rb"[\s,\[]*")
_objects = msgspec.json.Decoder(dict[str, msgspec.Raw])
_arrays = msgspec.json.Decoder(list[msgspec.Raw])


def with_positions(issues: list[Issue], source: bytes, *, media_type: str | None = None) -> list[Issue]:
    """`issues` with the line and column of each pointer in `source`, the text they were found in."""
    if not issues:
        return issues
    wanted = {issue.pointer for issue in issues}
    try:
        if _is_json(source, media_type):
            places = _JsonLocator(source).locate(wanted)
        else:
            places = _locate_yaml(source, wanted)
    except (msgspec.DecodeError, yaml.YAMLError, UnicodeDecodeError):
        return issues  # the text was read by another parser; without positions the pointers still hold
    located = []
    for issue in issues:
        place = places.get(issue.pointer)
        located.append(
            issue if place is None else msgspec.structs.replace(issue, line=place[0], column=place[1])
        )
    return located


def _is_json(source: bytes, media_type: str | None) -> bool:
    if media_type is not None and "json" in media_type:
        return True
    if media_type is not None and "yaml" in media_type:
        return False
    return looks_like_json(source)


def _tokens(at: str) -> list[str]:
    if not at:
        return []
    return [t.replace("~1", "/").replace("~0", "~") for t in at[1:].split("/")]


class _JsonLocator:
    def __init__(self, source: bytes) -> None:
        self.source = source
        self.view = memoryview(source)
        self.lead = len(source) - len(source.lstrip())
        # pointer -> (offset of the value, its length, offset where it is named: key or item)
        self.levels: dict[str, dict[str, tuple[int, int, int]]] = {}

    def locate(self, wanted: Iterable[str]) -> dict[str, Position]:
        offsets = {at: self.offset(at) for at in wanted}
        return dict(zip(offsets, _positions(self.source, list(offsets.values())), strict=True))

    def offset(self, at: str) -> int:
        start, length, named = self.lead, len(self.source.rstrip()) - self.lead, self.lead
        prefix = ""
        for token in _tokens(at):
            members = self.members(prefix, start, length)
            found = members.get(token)
            if found is None:
                return named
            start, length, named = found
            prefix = f"{prefix}/{token}"
        return named

    def members(self, prefix: str, start: int, length: int) -> dict[str, tuple[int, int, int]]:
        cached = self.levels.get(prefix)
        if cached is not None:
            return cached
        value = self.view[start : start + length]
        members: dict[str, tuple[int, int, int]] = {}
        head = self.source[start : start + 1]
        if head == b"{":
            position = start + 1
            for key, raw in _objects.decode(value).items():
                match = _MEMBER.match(self.source, position)
                if match is None:
                    break
                members[key] = (match.end(), len(raw), match.start(1))
                position = match.end() + len(raw)
        elif head == b"[":
            position = start + 1
            for index, raw in enumerate(_arrays.decode(value)):
                match = _ITEM.match(self.source, position)
                assert match is not None  # the pattern matches the empty string
                members[str(index)] = (match.end(), len(raw), match.end())
                position = match.end() + len(raw)
        self.levels[prefix] = members
        return members


def _positions(source: bytes, offsets: list[int]) -> list[Position]:
    """Line and column of each offset, counting the lines of the text once, in order of offset."""
    by_offset: dict[int, Position] = {}
    line, counted = 1, 0
    for offset in sorted(set(offsets)):
        line += source.count(b"\n", counted, offset)
        counted = offset
        line_start = source.rfind(b"\n", 0, offset) + 1
        by_offset[offset] = (line, len(source[line_start:offset].decode("utf-8", "replace")) + 1)
    return [by_offset[offset] for offset in offsets]


class _Frame:
    __slots__ = ("at", "expects_key", "index", "key", "mapping")

    def __init__(self, at: str | None, mapping: bool) -> None:
        self.at = at  # None: inside a node no wanted pointer can reach (a complex key, say)
        self.mapping = mapping
        self.expects_key = True
        self.key: str | None = None  # in a mapping: the pointer of the value that comes next, if wanted
        self.index = 0


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


_STARTS = (yaml.MappingStartEvent, yaml.SequenceStartEvent)
_ENDS = (yaml.MappingEndEvent, yaml.SequenceEndEvent)
_NODES = (yaml.MappingStartEvent, yaml.SequenceStartEvent, yaml.ScalarEvent, yaml.AliasEvent)


def _locate_yaml(source: bytes, wanted: set[str]) -> dict[str, Position]:
    """Positions of the wanted pointers and their ancestors, from libyaml's event marks."""
    targets = {""}
    for at in wanted:
        tokens = _tokens(at)
        targets.update("".join("/" + _escape(t) for t in tokens[:end]) for end in range(1, len(tokens) + 1))
    found: dict[str, Position] = {}
    remaining = set(targets)
    stack: list[_Frame] = []
    skipped = 0  # depth inside a container no wanted pointer reaches: only its end matters
    for event in yaml.parse(source, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
        kind = event.__class__
        if skipped:
            if kind in _STARTS:
                skipped += 1
            elif kind in _ENDS:
                skipped -= 1
                if not skipped:
                    _completed(stack)
        elif kind in _ENDS:
            stack.pop()
            _completed(stack)
        elif kind in _NODES:
            at = _place(stack, event, targets, found, remaining)
            if kind in _STARTS:
                if at is None and stack:
                    skipped = 1
                else:
                    stack.append(_Frame(at, kind is yaml.MappingStartEvent))
            else:
                _completed(stack)
            if not remaining:
                break
    places = {}
    for at in wanted:
        tokens = _tokens(at)
        for end in range(len(tokens), -1, -1):
            prefix = "".join("/" + _escape(t) for t in tokens[:end])
            if prefix in found:
                places[at] = found[prefix]
                break
    return places


def _place(
    stack: list[_Frame], event: Any, targets: set[str], found: dict[str, Position], remaining: set[str]
) -> str | None:
    """The pointer of the node `event` starts when it is on the way to a wanted one, else None.

    A member is placed at its key, an item at its first character.
    """
    if not stack:
        at = ""
    else:
        frame = stack[-1]
        if frame.at is None:
            return None
        if frame.mapping:
            if not frame.expects_key:
                return frame.key
            member = f"{frame.at}/{_escape(event.value)}" if isinstance(event, yaml.ScalarEvent) else ""
            frame.key = member if member in targets else None
            at = member
        else:
            at = f"{frame.at}/{frame.index}"
            if at not in targets:
                return None
    if at in remaining:
        found[at] = (event.start_mark.line + 1, event.start_mark.column + 1)
        remaining.discard(at)
    return None if stack and stack[-1].mapping and stack[-1].expects_key else at


def _completed(stack: list[_Frame]) -> None:
    """A node has ended: in a mapping, a key or a value; in a sequence, an item."""
    if stack:
        frame = stack[-1]
        if frame.mapping:
            frame.expects_key = not frame.expects_key
        else:
            frame.index += 1

"""Where callers of a deprecated or retired version are sent: the nearest live version."""

from __future__ import annotations

from policies.versioning import VersionInfo, VersionState, successor

LIVE, GONE = VersionState.PUBLISHED, VersionState.RETIRED


def versions(*items: tuple[str, VersionState, str | None]) -> list[VersionInfo]:
    return [VersionInfo(version=v, state=state, replacement=to) for v, state, to in items]


def named(infos: list[VersionInfo], version: str) -> str | None:
    found = successor(infos, next(i for i in infos if i.version == version))
    return found.version if found else None


def test_the_named_replacement_is_followed_past_retired_ones():
    infos = versions(
        ("1.0.0", GONE, "2.0.0"), ("2.0.0", GONE, "3.0.0"), ("3.0.0", LIVE, None), ("4.0.0", LIVE, None)
    )
    assert named(infos, "1.0.0") == "3.0.0"


def test_a_chain_that_loops_or_ends_retired_falls_back_to_a_later_live_version():
    looping = versions(("1.0.0", GONE, "1.1.0"), ("1.1.0", GONE, "1.0.0"), ("2.0.0", LIVE, None))
    assert named(looping, "1.0.0") == "2.0.0"
    dangling = versions(("1.0.0", GONE, "9.9.9"), ("1.2.0", LIVE, None))
    assert named(dangling, "1.0.0") == "1.2.0"


def test_without_a_replacement_its_own_major_comes_first_and_never_an_earlier_version():
    infos = versions(
        ("1.0.0", LIVE, None),
        ("1.1.0", GONE, None),
        ("1.2.0", VersionState.DEPRECATED, None),
        ("2.0.0", LIVE, None),
        ("3.0.0", GONE, None),
    )
    assert named(infos, "1.1.0") == "1.2.0"
    assert named(infos, "1.2.0") == "2.0.0"
    assert named(infos, "3.0.0") is None

"""SemVer 2.0 precedence for test assertions, and list checks that tolerate any order among
versions of equal precedence (`2.0.0` and `2.0.0+build.1`: build metadata does not count)."""

from __future__ import annotations

import re
from typing import Any, Iterable, List, Sequence, Tuple

_SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)


def precedence(version: str) -> Tuple:
    """A sort key: ascending SemVer precedence (build metadata ignored)."""
    m = _SEMVER.match(version)
    if not m:
        raise ValueError(f"not a SemVer version: {version!r}")
    major, minor, patch, pre = int(m[1]), int(m[2]), int(m[3]), m[4]
    if pre is None:
        return (major, minor, patch, 1, ())
    ids = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split("."))
    return (major, minor, patch, 0, ids)


def group_ties(versions: Sequence[str]) -> List[List[str]]:
    """Consecutive versions of equal precedence, each group sorted (so ties compare equal)."""
    groups: List[List[str]] = []
    last = None
    for v in versions:
        key = precedence(v)
        if groups and key == last:
            groups[-1].append(v)
        else:
            groups.append([v])
        last = key
    return [sorted(g) for g in groups]


def same_up_to_ties(a: Sequence[str], b: Sequence[str]) -> bool:
    return group_ties(a) == group_ties(b)


def is_descending(versions: Sequence[str]) -> bool:
    keys = [precedence(v) for v in versions]
    return all(x >= y for x, y in zip(keys, keys[1:]))


def assert_versions(got: Sequence[str], expected: Sequence[str], what: str = "") -> None:
    """`got` equals `expected` except for the order among equal-precedence versions."""
    assert same_up_to_ties(got, expected), f"{what}: got {list(got)}, expected {list(expected)}"


def versions(cards: Iterable[Any]) -> List[str]:
    return [c["version"] for c in cards]


def card_versions(expected: Sequence[str]):
    """Predicate for a `cards` list: its versions are `expected` (ties in any order)."""
    return lambda cards: same_up_to_ties(versions(cards), expected)

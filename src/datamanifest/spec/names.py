"""When one name resembles another (SCHEMA.md MAN-008): typos of fields and tables.

A name *resembles* a known name when they differ and the optimal string alignment distance
between their lower-case forms is at most 1 (known names of up to 5 characters) or 2
(longer ones). The distance counts insertions, deletions, substitutions and transpositions
of two adjacent characters, each as 1, with no substring edited twice (the restricted
Damerau-Levenshtein distance). Pure; no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable


def osa_distance(a: str, b: str) -> int:
    """The optimal string alignment distance between ``a`` and ``b`` (MAN-008)."""
    if a == b:
        return 0
    la, lb = len(a), len(b)
    if not la or not lb:
        return la or lb
    prev2: list[int] = []
    prev = list(range(lb + 1))
    for i in range(1, la + 1):
        cur = [i] + [0] * lb
        for j in range(1, lb + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        prev2, prev = prev, cur
    return prev[lb]


def resembles(name: str, known: str) -> bool:
    """Does ``name`` resemble ``known`` (MAN-008)? False when they are equal."""
    if name == known:
        return False
    limit = 1 if len(known) <= 5 else 2
    a, b = name.lower(), known.lower()
    if abs(len(a) - len(b)) > limit:
        return False
    return osa_distance(a, b) <= limit


def closest(name: str, known: Iterable[str]) -> str | None:
    """The known name ``name`` resembles most (smallest distance, then code point order),
    or None when it resembles none."""
    hits = sorted((osa_distance(name.lower(), k.lower()), k) for k in known if resembles(name, k))
    return hits[0][1] if hits else None

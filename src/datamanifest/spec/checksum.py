"""Checksums: the ``<algorithm>:<hex>`` form (SCHEMA.md §5, rules SUM-001..SUM-007).

Pure: parsing and normalization only. Streaming digests live in
:mod:`datamanifest.fetch.stream`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: algorithm -> number of lowercase hexadecimal digits (SUM-002).
ALGORITHMS: dict[str, int] = {
    "md5": 32,
    "sha1": 40,
    "sha256": 64,
    "sha384": 96,
    "sha512": 128,
    "blake2b": 128,
}
DEFAULT_ALGORITHM = "sha256"

#: Tree checksums of folders (SCHEMA.md §20, TREE-007): algorithm -> value pattern.
TREE_ALGORITHMS: dict[str, str] = {
    "tree-sha256": "[0-9a-f]{64}",
    "dandi-zarr": "[0-9a-f]{32}-[0-9]+--[0-9]+",
}

#: The JSON Schema pattern for ``checksum`` (schemas/manifest.v1.json must carry
#: exactly this string; tests/test_spec.py asserts it).
CHECKSUM_PATTERN = (
    "^(|[0-9a-f]{64}|"
    + "|".join(f"{a}:[0-9a-f]{{{n}}}" for a, n in ALGORITHMS.items())
    + "|"
    + "|".join(f"{a}:{p}" for a, p in TREE_ALGORITHMS.items())
    + ")$"
)
#: The legacy ``sha256`` field: empty or 64 lowercase hex digits (SUM-005).
SHA256_PATTERN = "^([0-9a-f]{64})?$"

_RE = re.compile(CHECKSUM_PATTERN)
_HEX = re.compile(r"^[0-9a-fA-F]*$")


@dataclass(frozen=True)
class Checksum:
    """A parsed checksum: ``algorithm`` (e.g. ``"sha256"``) and lowercase ``hexdigest``."""

    algorithm: str
    hexdigest: str

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hexdigest}"


def is_valid(text: str) -> bool:
    """True when ``text`` is empty, bare 64-hex (legacy sha256) or ``<algo>:<hex>`` (SUM-001)."""
    return bool(_RE.match(text))


def explain_invalid(text: str) -> tuple[str, str, str]:
    """Say why ``text`` is not a valid checksum: ``(code, message, hint)``.

    ``DM021`` for an unknown algorithm, ``DM020`` for anything else.
    """
    algos = ", ".join([*ALGORITHMS, *TREE_ALGORITHMS])
    if ":" in text:
        algo, _, digest = text.partition(":")
        if algo in TREE_ALGORITHMS:
            form = "64 lowercase hex digits" if algo == "tree-sha256" else "<md5>-<count>--<size>"
            return ("DM020", f"{algo} value must be {form}", "copy the whole checksum, or set "
                    "checksum = \"\" to auto-fill it")
        if algo not in ALGORITHMS:
            return (
                "DM021",
                f"unknown checksum algorithm {algo!r}",
                f"use one of {algos}",
            )
        want = ALGORITHMS[algo]
        if not _HEX.match(digest):
            return ("DM020", f"{algo} digest is not hexadecimal: {digest!r}", "use 0-9 and a-f only")
        if digest != digest.lower():
            return ("DM020", f"{algo} digest must be lowercase", f"write {algo}:{digest.lower()}")
        return (
            "DM020",
            f"{algo} digest must have {want} hex digits, found {len(digest)}",
            "copy the whole digest, or set checksum = \"\" to auto-fill it",
        )
    return (
        "DM020",
        f"malformed checksum {text!r}",
        f"write <algorithm>:<hex> with an algorithm among {algos}",
    )


def parse(text: str) -> Checksum | None:
    """Parse a checksum value; ``None`` for the empty string (auto-fill, SUM-003).

    Bare 64-digit hex reads as sha256 (SUM-004). Raises ``ValueError`` when
    :func:`is_valid` is false.
    """
    if not _RE.match(text):
        raise ValueError(explain_invalid(text)[1])
    if text == "":
        return None
    if ":" not in text:
        return Checksum("sha256", text)
    algo, _, digest = text.partition(":")
    return Checksum(algo, digest)


def hasher(algorithm: str):
    """A hashlib object for a file algorithm of SUM-002 (md5 and sha1 not for security)."""
    import hashlib

    if algorithm in ("md5", "sha1"):
        return hashlib.new(algorithm, usedforsecurity=False)
    return hashlib.new(algorithm)


def is_tree(checksum: str) -> bool:
    """True for a tree checksum (``tree-sha256:`` or ``dandi-zarr:``) of a folder (TREE-007)."""
    return checksum.partition(":")[0] in TREE_ALGORITHMS


def effective(checksum: str, sha256: str) -> str:
    """The normalized checksum of a dataset from ``checksum`` and legacy ``sha256`` (SUM-005).

    Returns ``"<algo>:<hex>"`` or ``""`` (none declared). Assumes both are valid.
    """
    parsed = parse(checksum) if checksum else None
    if parsed is not None:
        return str(parsed)
    if sha256:
        return f"sha256:{sha256}"
    return ""

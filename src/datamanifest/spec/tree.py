"""Tree checksums of directories and Zarr stores (SCHEMA.md §20, rules TREE-001..TREE-012).

Two algorithms, both Merkle trees computed bottom-up, one directory at a time:

``dandi-zarr`` (TREE-002): exactly the DANDI Zarr checksum. Leaves are MD5 hex digests;
a directory digests the compact JSON ``{"directories":[...],"files":[...]}`` of its
children (``{"digest","name","size"}`` records, each list sorted by name in code point
order, non-ASCII escaped as ``\\uXXXX``) with MD5, and is written
``<md5>-<file count>--<total size>``. Empty directories are invisible.

``tree-sha256`` (TREE-003), our recommended one: a directory's digest is the SHA-256 of
the concatenation, over its children sorted by the UTF-8 bytes of their names, of the
records ``kind || name || 0x00 || value || 0x00`` where ``kind`` is one ASCII byte:

    f  regular file       value = "<size>:<sha256 hex of the content>"
    x  executable file    same value (owner execute bit set)
    l  symbolic link      value = the link target, never followed
    d  directory          value = the sub-directory's digest (hex); empty ones count

Pure: the caller supplies listings and leaf digests; no I/O here.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass

ALGORITHMS = ("tree-sha256", "dandi-zarr")
DEFAULT_ALGORITHM = "tree-sha256"
DANDI_RE = re.compile(r"^([0-9a-f]{32})-([0-9]+)--([0-9]+)$")
#: The empty tree's checksums (TREE-004).
EMPTY = {"dandi-zarr": "481a2f77ab786a0f45aafd5db0971caa-0--0",
         "tree-sha256": hashlib.sha256(b"").hexdigest()}


class TreeError(ValueError):
    """A tree that has no checksum (DM120): special files, non-UTF-8 names, links in dandi-zarr."""


@dataclass(frozen=True)
class Child:
    """One child of a directory, as the checksums see it.

    ``kind``: ``"file"``, ``"exec"``, ``"symlink"`` or ``"dir"``. For files ``digest`` is
    the leaf digest (MD5 hex for dandi-zarr, SHA-256 hex for tree-sha256) and ``size`` is
    in bytes; for directories ``digest`` is the sub-directory's checksum and ``size`` its
    total size; for links ``target`` is the link text.
    """

    name: str
    kind: str
    digest: str = ""
    size: int = 0
    target: str = ""


def leaf_algorithm(algorithm: str) -> str:
    """The hashlib name of the leaf digest of a tree algorithm (TREE-001)."""
    if algorithm == "dandi-zarr":
        return "md5"
    if algorithm == "tree-sha256":
        return "sha256"
    raise TreeError(f"unknown tree checksum algorithm {algorithm!r}")


def dandi_parse(digest: str) -> tuple[str, int, int]:
    """(md5 hex, file count, total size) of a ``dandi-zarr`` directory digest."""
    m = DANDI_RE.match(digest)
    if not m:
        raise TreeError(f"malformed dandi-zarr digest {digest!r}")
    return m.group(1), int(m.group(2)), int(m.group(3))


def dandi_directory(children: list[Child]) -> str:
    """The DANDI digest ``<md5>-<count>--<size>`` of one directory (TREE-002)."""
    files, dirs = [], []
    count = size = 0
    for c in children:
        if c.kind in ("file", "exec"):
            files.append({"digest": c.digest, "name": c.name, "size": c.size})
            count += 1
            size += c.size
        elif c.kind == "dir":
            _, n, s = dandi_parse(c.digest)
            if n == 0:
                continue  # empty directories are invisible to dandi-zarr
            dirs.append({"digest": c.digest, "name": c.name, "size": s})
            count += n
            size += s
        else:
            raise TreeError(f"{c.name!r}: dandi-zarr has no representation for symbolic links")
    files.sort(key=lambda r: r["name"])
    dirs.sort(key=lambda r: r["name"])
    body = json.dumps({"directories": dirs, "files": files}, separators=(",", ":"))
    return f"{hashlib.md5(body.encode(), usedforsecurity=False).hexdigest()}-{count}--{size}"


_KIND = {"file": b"f", "exec": b"x", "symlink": b"l", "dir": b"d"}


def tree_sha256_directory(children: list[Child]) -> str:
    """The ``tree-sha256`` digest (hex) of one directory (TREE-003)."""
    h = hashlib.sha256()
    for c in sorted(children, key=lambda c: c.name.encode("utf-8")):
        kind = _KIND.get(c.kind)
        if kind is None:
            raise TreeError(f"{c.name!r}: unknown entry kind {c.kind!r}")
        if c.kind in ("file", "exec"):
            value = f"{c.size}:{c.digest}".encode()
        elif c.kind == "symlink":
            value = c.target.encode("utf-8")
        else:
            value = c.digest.encode()
        h.update(kind + c.name.encode("utf-8") + b"\0" + value + b"\0")
    return h.hexdigest()


def directory_digest(algorithm: str, children: list[Child]) -> str:
    """The digest of one directory in ``algorithm`` (TREE-002, TREE-003)."""
    if algorithm == "dandi-zarr":
        return dandi_directory(children)
    if algorithm == "tree-sha256":
        return tree_sha256_directory(children)
    raise TreeError(f"unknown tree checksum algorithm {algorithm!r}")


def directory_size(algorithm: str, children: list[Child]) -> int:
    """Total bytes of the files below a directory (links count 0)."""
    total = 0
    for c in children:
        if c.kind in ("file", "exec", "dir"):
            total += c.size
    return total


# -- describing a whole tree (for fixtures and tests) ------------------------------------------
def checksum_of_description(entries: list[dict], algorithm: str) -> str:
    """The checksum of a tree described as a list of entries (the ``tree`` fixtures).

    Each entry: ``{"path": "a/b", "type": "file"|"dir"|"symlink", "content": str,
    "executable": bool, "target": str}``. Parent folders are implied.
    """
    import posixpath

    leaf = leaf_algorithm(algorithm)
    dirs: dict[str, list[Child]] = {"": []}
    for e in entries:
        parts = e["path"].strip("/").split("/")
        for i in range(1, len(parts)):
            d = "/".join(parts[:i])
            if d not in dirs:
                dirs[d] = []
        if e.get("type", "file") == "dir":
            dirs.setdefault(e["path"].strip("/"), [])
    for e in entries:
        path = e["path"].strip("/")
        parent, name = posixpath.split(path)
        kind = e.get("type", "file")
        if kind == "dir":
            continue
        if kind == "symlink":
            dirs[parent].append(Child(name, "symlink", target=e["target"]))
            continue
        data = e.get("content", "").encode("utf-8")
        digest = hashlib.new(leaf, data).hexdigest()
        dirs[parent].append(Child(name, "exec" if e.get("executable") else "file", digest, len(data)))
    # bottom-up: deepest directories first
    for d in sorted((d for d in dirs if d), key=lambda d: -d.count("/")):
        children = dirs[d]
        digest = directory_digest(algorithm, children)
        parent, name = posixpath.split(d)
        dirs[parent].append(Child(name, "dir", digest, directory_size(algorithm, children)))
    return directory_digest(algorithm, dirs[""])

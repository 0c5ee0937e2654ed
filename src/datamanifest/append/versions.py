"""Versions of an append target: one tree manifest per commit (SCHEMA.md APP-030, TREE-013).

The manifest of a commit is derived from the previous version's by replacing the entries of
the keys the commit wrote (their digests are computed from the bytes written, never re-read),
so recording a version costs O(entries) and reads no chunk. Without a previous version (the
first commit, a recovered roll-forward, a target written by another tool) the target is
walked and hashed once.

The versions store is the project that holds the target (the folder of the nearest
manifest above it), else ``<target>.versions/``; S3 targets use the project of the working
directory, else the user data folder. The dataset key is the target's absolute path or URL.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from ..store import trees
from ..spec import tree as tree_spec
from ..tree import LOCAL_FIELDS, iter_manifest_files, rfc3339_ns
from .targets import LocalTarget, S3Target, Target

ALGORITHM = "tree-sha256"


def _project_root(start: Path) -> Path | None:
    from ..spec.discovery import discover

    found = discover(start.as_posix(), os.path.isfile, {})
    return Path(found).parent if found else None


def store_root(target: Target) -> Path:
    """The folder whose ``.datamanifest/trees`` keeps the target's versions (APP-030)."""
    if isinstance(target, LocalTarget):
        return _project_root(target.path.parent) or target.side / f"{target.name}.versions"
    root = _project_root(Path.cwd())
    if root is not None:
        return root
    import platformdirs

    return Path(platformdirs.user_data_dir("datamanifest")) / "versions"


def key_of(target: Target) -> str:
    return target.url


def latest_doc(target: Target) -> dict[str, Any] | None:
    path = trees.latest(store_root(target), key_of(target))
    if path is None:
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


class TreeIndex:
    """The rows of a target's tree manifest (``path -> [size, lastModified, digest, type]``)
    with the ``tree-sha256`` digest of every folder cached: a change re-hashes only the
    folders on its path (TREE-003), so a commit's checksum costs O(changed folders' entries),
    not O(target)."""

    def __init__(self, rows: dict[str, list]) -> None:
        self.rows = rows
        self.children: dict[str, dict[str, tuple]] = {"": {}}
        self.cache: dict[str, tuple[str, int]] = {}
        for path, row in rows.items():
            self._link(path, row)

    def _link(self, path: str, row: list) -> None:
        parent, _, name = path.rpartition("/")
        self._ensure(parent)
        self.children[parent][name] = ("file", row[2], row[0])
        self._dirty(parent)

    def _ensure(self, d: str) -> None:
        while d not in self.children:
            self.children[d] = {}
            parent, _, name = d.rpartition("/")
            self.children.setdefault(parent, {})
            self.children[parent][name] = ("dir",)
            d = parent

    def _dirty(self, d: str) -> None:
        while True:
            self.cache.pop(d, None)
            if not d:
                return
            d = d.rpartition("/")[0]

    def set(self, path: str, row: list) -> None:
        self.rows[path] = row
        self._link(path, row)

    def remove(self, path: str) -> None:
        if self.rows.pop(path, None) is None:
            return
        parent, _, name = path.rpartition("/")
        self.children[parent].pop(name, None)
        self._dirty(parent)
        while parent and not self.children[parent]:  # folders left empty vanish
            del self.children[parent]
            self.cache.pop(parent, None)
            grand, _, name = parent.rpartition("/")
            self.children[grand].pop(name, None)
            self._dirty(grand)
            parent = grand

    def _digest(self, d: str) -> tuple[str, int]:
        got = self.cache.get(d)
        if got is not None:
            return got
        kids = []
        size = 0
        for name, entry in self.children[d].items():
            if entry[0] == "dir":
                digest, sub = self._digest(f"{d}/{name}" if d else name)
                kids.append(tree_spec.Child(name, "dir", digest, sub))
                size += sub
            else:
                kids.append(tree_spec.Child(name, "file", entry[1], entry[2]))
                size += entry[2]
        got = (tree_spec.tree_sha256_directory(kids), size)
        self.cache[d] = got
        return got

    def checksum(self) -> str:
        return f"{ALGORITHM}:{self._digest('')[0]}"


_INDEX: dict[str, TreeIndex] = {}  # target url -> the index of its latest recorded version


def _nest(rows: dict[str, list]) -> dict[str, Any]:
    entries: dict[str, Any] = {}
    for path in sorted(rows):
        node = entries
        parts = path.split("/")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = rows[path]
    return entries


def _store(target: Target, index: TreeIndex, keep: int = 0) -> str:
    rows = index.rows
    checksum = index.checksum()
    root = store_root(target)
    folder = trees.versions_dir(root, key_of(target))
    value = checksum.partition(":")[2]
    latest = trees.latest(root, key_of(target))
    if latest is not None and latest.name == f"{value}.json":
        _INDEX[target.url] = index
        return checksum  # recorded already (a roll-forward after the record)
    doc: dict[str, Any] = {"schemaVersion": 2, "fields": LOCAL_FIELDS, "entries": _nest(rows),
                           "statistics": {"entries": len(rows),
                                          "totalSize": sum(r[0] for r in rows.values())},
                           "algorithm": ALGORITHM, "checksum": checksum, "base": target.url}
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".version.", suffix=".tmp", dir=folder)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(json.dumps(doc, separators=(",", ":")))  # the C encoder
    trees.store(root, key_of(target), Path(tmp), checksum)
    _history(folder, checksum, len(rows))
    if keep:
        prune(target, keep)
    _INDEX[target.url] = index
    return checksum


HISTORY = "HISTORY"


def _history(folder: Path, checksum: str, entries: int) -> None:
    """One line per version, oldest first: ``<checksum> <UTC time> <entries>`` (APP-030);
    kept when a version's manifest is pruned."""
    import datetime as _dt

    when = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    fd = os.open(folder / HISTORY, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{checksum} {when} {entries}\n".encode())
    finally:
        os.close(fd)


def history(target: Target) -> list[dict[str, Any]]:
    """Every recorded version, oldest first: ``checksum``, ``time``, ``entries`` and whether
    its manifest is still ``kept``."""
    folder = trees.versions_dir(store_root(target), key_of(target))
    try:
        lines = (folder / HISTORY).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    out = []
    for line in lines:
        parts = line.split()
        if len(parts) >= 3:
            value = parts[0].partition(":")[2]
            out.append({"checksum": parts[0], "time": parts[1], "entries": int(parts[2]),
                        "kept": (folder / f"{value}.json").is_file()})
    return out


def prune(target: Target, keep: int) -> int:
    """Delete all but the newest ``keep`` version manifests (the history keeps their
    checksums); returns how many were deleted."""
    root = store_root(target)
    latest = trees.latest(root, key_of(target))
    kept = [h for h in history(target) if h["kept"]]
    doomed = kept[:-keep] if keep else []
    folder = trees.versions_dir(root, key_of(target))
    n = 0
    for h in doomed:
        path = folder / (h["checksum"].partition(":")[2] + ".json")
        if latest is not None and path == latest:
            continue
        try:
            path.unlink()
            n += 1
        except FileNotFoundError:
            pass
    return n


def _row(target: Target, key: str, data: bytes, when: str) -> list:
    if isinstance(target, LocalTarget):
        try:
            when = rfc3339_ns(target.stat(key).st_mtime_ns)
        except FileNotFoundError:
            pass
    return [len(data), when, hashlib.sha256(data).hexdigest(), "file"]


def _index_of(target: Target, previous: str) -> TreeIndex | None:
    cached = _INDEX.get(target.url)
    if cached is not None and cached.checksum() == previous:
        return cached
    doc = latest_doc(target)
    if doc is None or doc.get("checksum") != previous:
        return None
    return TreeIndex({p: [r.get("size"), r.get("lastModified"), r.get("digest"), r.get("type")]
                      for p, r in iter_manifest_files(doc)})


def record(target: Target, written: dict[str, bytes], removed: list[str],
           previous: str | None, *, keep: int = 0) -> str:
    """Record the version after a commit: ``written`` maps every key the commit wrote to its
    bytes, ``removed`` the keys it deleted; ``previous`` the tree checksum of the committed
    state it started from (None: a new target). ``keep``: version manifests kept (0: all).
    Returns the new tree checksum."""
    import datetime as _dt

    when = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f000+00:00")
    index = TreeIndex({}) if previous is None else _index_of(target, previous)
    if index is None:
        return record_full(target, keep=keep)
    for k in removed:
        index.remove(k)
    for k, data in written.items():
        index.set(k, _row(target, k, data, when))
    return _store(target, index, keep)


def record_full(target: Target, *, keep: int = 0) -> str:
    """Walk and hash the whole target and record it as a version."""
    import datetime as _dt

    when = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f000+00:00")
    rows: dict[str, list] = {}
    if isinstance(target, LocalTarget):
        from ..tree import walk

        result = walk(target.path, ALGORITHM, keep_files=True, exclude_root=())
        for rel, (size, mtime, digest, kind) in result.files.items():
            rows[rel] = [size, rfc3339_ns(mtime), digest, kind]
    else:
        assert isinstance(target, S3Target)
        for k in target.keys():
            data = target.read(k) or b""
            rows[k] = [len(data), when, hashlib.sha256(data).hexdigest(), "file"]
    return _store(target, TreeIndex(rows), keep)


def current(target: Target) -> str | None:
    """The tree checksum of the latest recorded version, or None (read from LATEST's
    name: the file is named by its checksum value)."""
    path = trees.latest(store_root(target), key_of(target))
    return None if path is None else f"{ALGORITHM}:{path.stem}"


def target_of(text: str) -> Target | None:
    """The append target named by a command-line argument (an ``s3://`` URL, or a folder
    holding a Zarr store whose versions are recorded), or None."""
    from .targets import open_target

    if text.startswith("s3://"):
        t = open_target(text)
        return t if trees.latest(store_root(t), key_of(t)) is not None else None
    p = Path(text)
    if not p.is_dir() or not ((p / "zarr.json").is_file() or (p / ".zmetadata").is_file()):
        return None
    t = open_target(p)
    return t if trees.latest(store_root(t), key_of(t)) is not None else None


def manifests(target: Target) -> list[Path]:
    """The kept version manifests of a target, oldest first."""
    return trees.versions(store_root(target), key_of(target))


def find(target: Target, prefix: str | None) -> Path:
    """The latest version's manifest, or the one whose checksum value starts with
    ``prefix``. Raises DataManifestError DM076 when none or several match."""
    from ..errors import DataManifestError

    root = store_root(target)
    if not prefix:
        path = trees.latest(root, key_of(target))
        if path is None:
            raise DataManifestError(f"{target.url} has no recorded version", code="DM122")
        return path
    value = prefix.partition(":")[2] if ":" in prefix else prefix
    hits = [p for p in trees.versions(root, key_of(target)) if p.stem.startswith(value)]
    if len(hits) != 1:
        raise DataManifestError(f"{prefix!r} matches {len(hits)} kept versions of "
                                f"{target.url}", code="DM076",
                                hint=f"`datamanifest versions {target.url}` lists them")
    return hits[0]

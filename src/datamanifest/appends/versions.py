"""Versions of an append target: one tree manifest per commit (SCHEMA.md APP-030, TREE-013).

The manifest of a commit is derived from the previous version's by replacing the entries of
the keys the commit wrote (their digests are computed from the bytes written, never re-read)
and its checksum from cached folder digests, so recording a version reads no chunk and
re-hashes only the folders on the changed paths. Without a previous version (the first
commit, a recovered roll-forward, a target written by another tool) the target is walked
and hashed once.

Stored per version: a *snapshot* ``<value>.json`` (a whole tree manifest, TREE-010) for the
first version and every :data:`SNAPSHOT_EVERY`-th, else a *delta* ``<value>.delta.json``
(``parent``, ``set``: the rows written, ``removed``), so a commit writes O(keys it wrote),
not O(target). :func:`load` rebuilds any version's whole manifest from its snapshot.

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
from ..tree import LOCAL_FIELDS, iter_manifest_files, rfc3339_ns
from .object_targets import S3Target
from .targets import AppendTarget, LocalTarget

ALGORITHM = "tree-sha256"


def _project_root(start: Path) -> Path | None:
    from ..spec.discovery import discover

    found = discover(start.as_posix(), os.path.isfile, {})
    return Path(found).parent if found else None


def store_root(target: AppendTarget) -> Path:
    """The folder whose ``.datamanifest/trees`` keeps the target's versions (APP-030).
    Found once per target object (one ``append`` call): the search for a project above
    the target stats every folder up to ``/``, several times per slice otherwise."""
    if target.versions_root is None:
        target.versions_root = _store_root(target)
    return target.versions_root


def _store_root(target: AppendTarget) -> Path:
    if isinstance(target, LocalTarget):
        return _project_root(target.path.parent) or target.side / f"{target.name}.versions"
    root = _project_root(Path.cwd())
    if root is not None:
        return root
    import platformdirs

    return Path(platformdirs.user_data_dir("datamanifest")) / "versions"


def key_of(target: AppendTarget) -> str:
    return target.url


SNAPSHOT_EVERY = 64  # versions between whole manifests
DELTA = ".delta.json"


def _folder(target: AppendTarget) -> Path:
    return trees.versions_dir(store_root(target), key_of(target))


def _file_of(folder: Path, value: str) -> Path | None:
    for name in (f"{value}.json", f"{value}{DELTA}"):
        if (folder / name).is_file():
            return folder / name
    return None


def load(path: Path) -> dict[str, Any]:
    """The whole tree manifest of the version stored at ``path`` (a snapshot, or a delta
    rebuilt from its snapshot by replaying the deltas after it)."""
    chain = []
    folder = path.parent
    doc = json.loads(path.read_text(encoding="utf-8"))
    while "parent" in doc and "entries" not in doc:
        chain.append(doc)
        parent = _file_of(folder, doc["parent"].partition(":")[2])
        if parent is None:
            raise FileNotFoundError(f"version {doc['parent']} (the parent of "
                                    f"{chain[-1]['checksum']}) is missing")
        doc = json.loads(parent.read_text(encoding="utf-8"))
    if not chain:
        return doc
    rows = {p: [r.get("size"), r.get("lastModified"), r.get("digest"), r.get("type")]
            for p, r in iter_manifest_files(doc)}
    for delta in reversed(chain):
        for p in delta.get("removed") or []:
            rows.pop(p, None)
        rows.update(delta.get("set") or {})
    index = TreeIndex(rows)
    last = chain[0]
    return {"schemaVersion": 2, "fields": LOCAL_FIELDS, "entries": index.entries,
            "statistics": {"entries": len(rows), "totalSize": index._digest("")[1]},
            "algorithm": ALGORITHM, "checksum": last["checksum"], "base": last.get("base")}


def latest_doc(target: AppendTarget) -> dict[str, Any] | None:
    path = trees.latest(store_root(target), key_of(target))
    if path is None:
        return None
    try:
        return load(path)
    except (OSError, ValueError):
        return None


def _utf8(name: str) -> bytes:
    return name.encode("utf-8")


class TreeIndex:
    """The rows of a target's tree manifest (``path -> [size, lastModified, digest, type]``)
    with the ``tree-sha256`` digest of every folder cached: a change re-hashes only the
    folders on its path (TREE-003), so a commit's checksum costs O(changed folders' entries),
    not O(target)."""

    def __init__(self, rows: dict[str, list]) -> None:
        self.rows = rows
        self.children: dict[str, dict[str, tuple]] = {"": {}}
        self.cache: dict[str, tuple[str, int]] = {}
        self.entries: dict[str, Any] = {}  # the manifest's nested ``entries``, kept in step
        self.depth = 0  # deltas since the last snapshot
        for path in sorted(rows):
            self._link(path, rows[path])
            self._place(path, rows[path])

    def _place(self, path: str, row: list | None) -> None:
        node = self.entries
        parts = path.split("/")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        if row is not None:
            node[parts[-1]] = row
            return
        node.pop(parts[-1], None)
        for depth in range(len(parts) - 1, 0, -1):  # prune emptied folders
            node = self.entries
            for part in parts[:depth - 1]:
                node = node[part]
            if node.get(parts[depth - 1]) == {}:
                del node[parts[depth - 1]]

    def _link(self, path: str, row: list) -> None:
        parent, _, name = path.rpartition("/")
        self._ensure(parent)
        self.children[parent][name] = ("file", row[2], row[0])
        self._dirty(parent)

    def _ensure(self, d: str) -> None:
        if d in self.children:
            return
        parent, _, name = d.rpartition("/")
        self._ensure(parent)  # "" always exists
        self.children[d] = {}
        self.children[parent][name] = ("dir",)
        self._dirty(parent)

    def _dirty(self, d: str) -> None:
        while True:
            self.cache.pop(d, None)
            if not d:
                return
            d = d.rpartition("/")[0]

    def set(self, path: str, row: list) -> None:
        self.rows[path] = row
        self._link(path, row)
        self._place(path, row)

    def remove(self, path: str) -> None:
        if self.rows.pop(path, None) is None:
            return
        self._place(path, None)
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
        """The ``tree-sha256`` digest of folder ``d`` (TREE-003: sorted children, each
        ``<kind><name>\\0<size>:<digest>\\0`` for files, ``d<name>\\0<digest>\\0`` for
        folders) and its total size; cached until something below it changes."""
        got = self.cache.get(d)
        if got is not None:
            return got
        import hashlib as _h

        h = _h.sha256()
        size = 0
        prefix = f"{d}/" if d else ""
        for name in sorted(self.children[d], key=_utf8):
            entry = self.children[d][name]
            if entry[0] == "dir":
                digest, sub = self._digest(prefix + name)
                h.update(b"d" + name.encode() + b"\0" + digest.encode() + b"\0")
                size += sub
            else:
                h.update(b"f" + name.encode() + b"\0" + f"{entry[2]}:{entry[1]}".encode() + b"\0")
                size += entry[2]
        got = (h.hexdigest(), size)
        self.cache[d] = got
        return got

    def checksum(self) -> str:
        return f"{ALGORITHM}:{self._digest('')[0]}"


_INDEX: dict[str, TreeIndex] = {}  # target url -> the index of its latest recorded version


def _store(target: AppendTarget, index: TreeIndex, keep: int = 0,
           delta: tuple[str, dict[str, list], list[str]] | None = None) -> str:
    """Record ``index`` as the latest version: a delta ``(parent, set, removed)`` when
    given and the last snapshot is fewer than SNAPSHOT_EVERY versions back, else a
    snapshot. Written atomically but not fsynced: a version record is derived data. After a
    power cut that lost it, the next commit sees that LATEST does not describe the committed
    root (its zarr.json digest differs) and walks the target once (see record)."""
    checksum = index.checksum()
    folder = _folder(target)
    value = checksum.partition(":")[2]
    latest = trees.latest(store_root(target), key_of(target))
    if latest is not None and latest.name.split(".")[0] == value:
        _INDEX[target.url] = index
        return checksum  # recorded already (a roll-forward after the record)
    if not folder.is_dir():
        folder.mkdir(parents=True, exist_ok=True)
    if delta is not None and index.depth + 1 < SNAPSHOT_EVERY:
        parent, changed, removed = delta
        doc: dict[str, Any] = {"parent": parent, "checksum": checksum, "set": changed,
                               "removed": removed, "base": target.url}
        name = f"{value}{DELTA}"
        index.depth += 1
    else:
        doc = {"schemaVersion": 2, "fields": LOCAL_FIELDS, "entries": index.entries,
               "statistics": {"entries": len(index.rows), "totalSize": index._digest("")[1]},
               "algorithm": ALGORITHM, "checksum": checksum, "base": target.url}
        name = f"{value}.json"
        index.depth = 0
    fd, tmp = tempfile.mkstemp(prefix=".version.", suffix=".tmp", dir=folder)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(json.dumps(doc, separators=(",", ":")))  # the C encoder
    os.replace(tmp, folder / name)
    fd, tmp = tempfile.mkstemp(prefix=".LATEST.", suffix=".tmp", dir=folder)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(f"{name}\n")
    os.replace(tmp, folder / trees.LATEST)
    _history(folder, checksum, len(index.rows))
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


def history(target: AppendTarget) -> list[dict[str, Any]]:
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
                        "kept": _file_of(folder, value) is not None})
    return out


def listing(target: AppendTarget) -> list[dict[str, Any]]:
    """Every recorded version, oldest first, as ``datamanifest versions TARGET`` lists them:
    the rows of :func:`history` with ``latest`` (the version the target is at)."""
    latest = trees.latest(store_root(target), key_of(target))
    rows = history(target)
    for r in rows:
        r["latest"] = latest is not None and \
            latest.name.split(".")[0] == r["checksum"].partition(":")[2]
    return rows


def prune(target: AppendTarget, keep: int) -> int:
    """Delete the stored versions older than the newest ``keep`` that no kept version
    needs (a delta needs its snapshot and the deltas between); the history keeps their
    checksums. Returns how many files were deleted."""
    folder = _folder(target)
    rows = [h for h in history(target) if h["kept"]]
    if not keep or len(rows) <= keep:
        return 0
    files = [_file_of(folder, h["checksum"].partition(":")[2]) for h in rows]
    first_kept = len(rows) - keep
    # the newest snapshot at or before the first kept version: everything before it goes
    cut = max((i for i in range(first_kept + 1) if files[i] is not None and
               not files[i].name.endswith(DELTA)), default=0)
    n = 0
    for f in files[:cut]:
        if f is not None:
            f.unlink(missing_ok=True)
            n += 1
    return n


def _row(target: AppendTarget, key: str, data: bytes, when: str) -> list:
    if isinstance(target, LocalTarget):
        try:
            when = rfc3339_ns(target.stat(key).st_mtime_ns)
        except FileNotFoundError:
            pass
    return [len(data), when, hashlib.sha256(data).hexdigest(), "file"]


def _index_of(target: AppendTarget, previous: str, root: tuple[str, bytes] | None) -> TreeIndex | None:
    """The index of the version ``previous``, if it describes the committed state: its
    entry for the root metadata holds the digest of the committed root's bytes."""
    index = _INDEX.get(target.url)
    if index is None or index.checksum() != previous:
        doc = latest_doc(target)
        if doc is None or doc.get("checksum") != previous:
            return None
        index = TreeIndex({p: [r.get("size"), r.get("lastModified"), r.get("digest"),
                               r.get("type")] for p, r in iter_manifest_files(doc)})
        index.depth = SNAPSHOT_EVERY  # unknown here: the next record is a snapshot
    if root is not None:
        row = index.rows.get(root[0])
        if row is None or row[2] != hashlib.sha256(root[1]).hexdigest():
            return None
    return index


def record(target: AppendTarget, written: dict[str, bytes], removed: list[str],
           previous: str | None, *, keep: int = 0,
           committed_root: tuple[str, bytes] | None = None) -> str:
    """Record the version after a commit: ``written`` maps every key the commit wrote to its
    bytes, ``removed`` the keys it deleted; ``previous`` the tree checksum of the committed
    state it started from (None: a new target), ``committed_root`` its root key and bytes
    (the previous version is used only if it records them). ``keep``: version manifests
    kept (0: all). Returns the new tree checksum."""
    import datetime as _dt

    when = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f000+00:00")
    index = TreeIndex({}) if previous is None else _index_of(target, previous,
                                                             committed_root)
    if index is None:
        return record_full(target, keep=keep)
    changed = {}
    for k in removed:
        index.remove(k)
    for k, data in written.items():
        changed[k] = _row(target, k, data, when)
        index.set(k, changed[k])
    return _store(target, index, keep,
                  delta=(previous, changed, list(removed)) if previous else None)


def record_full(target: AppendTarget, *, keep: int = 0) -> str:
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


def current(target: AppendTarget) -> str | None:
    """The tree checksum of the latest recorded version, or None (read from LATEST's
    name: the file is named by its checksum value)."""
    path = trees.latest(store_root(target), key_of(target))
    return None if path is None else f"{ALGORITHM}:{path.name.split('.')[0]}"


def target_of(text: str) -> AppendTarget | None:
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


def find(target: AppendTarget, prefix: str | None) -> dict[str, Any]:
    """The whole manifest of the latest version, or of the one whose checksum value starts
    with ``prefix``. Raises DataManifestError DM076 when none or several match."""
    from ..errors import DataManifestError

    root = store_root(target)
    if not prefix:
        path = trees.latest(root, key_of(target))
        if path is None:
            raise DataManifestError(f"{target.url} has no recorded version", code="DM122")
        return load(path)
    value = prefix.partition(":")[2] if ":" in prefix else prefix
    hits = [p for p in trees.versions(root, key_of(target)) if p.name.startswith(value)]
    if len(hits) != 1:
        raise DataManifestError(f"{prefix!r} matches {len(hits)} kept versions of "
                                f"{target.url}", code="DM076",
                                hint=f"`datamanifest versions {target.url}` lists them")
    return load(hits[0])

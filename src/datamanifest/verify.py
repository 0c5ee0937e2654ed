"""Verification at rest and comparison of tree manifests (SCHEMA.md TREE-013, TREE-014).

* :func:`verify_dataset` re-checks one materialized dataset: a folder against its latest
  tree manifest (fast: re-hash only files whose size or mtime differ; full: re-hash all),
  a file against its checksum (fast: skip when size and mtime match the marker).
* :func:`diff_manifests` compares two tree manifests entry by entry.
"""

from __future__ import annotations

import calendar
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import DataManifestError
from .store import trees
from .store.layout import Target
from .tree import iter_manifest_files, walk

_RFC = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]00:00)$")


def parse_time_ns(text: str | None) -> int | None:
    """Nanoseconds since the epoch of a UTC RFC 3339 time (None when absent or not UTC)."""
    if not text:
        return None
    m = _RFC.match(text)
    if not m:
        return None
    y, mo, d, h, mi, s, frac, _ = m.groups()
    sec = calendar.timegm((int(y), int(mo), int(d), int(h), int(mi), int(s)))
    return sec * 1_000_000_000 + int((frac or "0").ljust(9, "0"))


@dataclass
class Differences:
    """Entries that differ: paths added, removed and modified (content or type)."""

    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    modified: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.modified)

    def lines(self) -> list[str]:
        return ([f"added    {p}" for p in self.added] + [f"removed  {p}" for p in self.removed]
                + [f"modified {p}" for p in self.modified])

    def as_json(self) -> dict[str, list[str]]:
        return {"added": self.added, "removed": self.removed, "modified": self.modified}


def _rows(doc: dict[str, Any]) -> dict[str, tuple[Any, Any, Any]]:
    """path -> (size, digest, type) of a manifest's files and links."""
    out = {}
    for path, row in iter_manifest_files(doc):
        digest = row.get("digest", row.get("ETag"))
        out[path] = (row.get("size"), digest.strip('"') if isinstance(digest, str) else digest,
                     row.get("type", "file"))
    return out


def diff_manifests(a: dict[str, Any], b: dict[str, Any]) -> Differences:
    """Entries of ``b`` added, removed or modified relative to ``a``."""
    ra, rb = _rows(a), _rows(b)
    d = Differences()
    d.added = sorted(set(rb) - set(ra))
    d.removed = sorted(set(ra) - set(rb))
    d.modified = sorted(p for p in set(ra) & set(rb) if ra[p] != rb[p])
    return d


@dataclass
class VerifyResult:
    name: str
    path: Path
    kind: str  # "folder" or "file"
    checksum: str
    differences: Differences
    rehashed: int = 0  # files read during verification

    @property
    def ok(self) -> bool:
        return not self.differences

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "path": str(self.path), "kind": self.kind, "ok": self.ok,
                "checksum": self.checksum, "rehashed": self.rehashed,
                **self.differences.as_json()}


def verify_dataset(project, name: str, *, full: bool = False) -> VerifyResult:
    """Verify one dataset at rest (TREE-014). Raises DataManifestError DM078 when absent."""
    ds = project.dataset(name)
    found = project.locate(name)
    if found is None:
        raise project.not_present(name)
    path, _ = found
    if ds.virtual:
        return _verify_virtual(project, name, ds, path, full)
    if path.is_dir():
        return _verify_folder(project, name, ds, path, full)
    return _verify_file(project, name, ds, path, full)


def _verify_virtual(project, name: str, ds, path: Path, full: bool) -> VerifyResult:
    """CHK-030: the chunk manifest's own checksum, then each source's identity (CHK-011);
    with ``full``, the sources' whole-file checksums where recorded. A source that changed
    or cannot be reached is reported as modified."""
    from .virtual import document
    from .virtual.store import load_manifest

    from .spec.secrets import redact_uri

    manifest, url = load_manifest(path)  # DM155 when the document was edited
    urls = [ds.uri] if ds.uri else ds.uris  # SEC-002: recorded redacted, read with these
    info = document.info(manifest, url, verify=full,
                         credentials={redact_uri(u): u for u in urls if redact_uri(u) != u})
    diffs = Differences()
    diffs.modified = [s["url"] for s in info["sources"] if s["status"] != "ok"]
    return VerifyResult(name, path, "virtual", manifest.checksum or "", diffs,
                        len(info["sources"]))


def _verify_folder(project, name: str, ds, path: Path, full: bool) -> VerifyResult:
    # STO-012: the tree the marker names (its version at rest), else the latest one
    manifest_path = None
    named = Target(path, True).read_marker().get("tree")
    if isinstance(named, str) and ":" in named:
        candidate = trees.versions_dir(project.root, ds.derived_key) / \
            f"{named.partition(':')[2]}.json"
        manifest_path = candidate if candidate.is_file() else None
    manifest_path = manifest_path or trees.latest(project.root, ds.derived_key)
    if manifest_path is None:
        raise DataManifestError(f"dataset {name!r} has no tree manifest to verify against",
                                code="DM122", hint=f"run `datamanifest fetch --force {name}` once")
    doc = json.loads(manifest_path.read_text(encoding="utf-8"))
    from .spec.keys import is_git_uri

    exclude = (".complete", ".git") if ds.uri and is_git_uri(ds.uri) else (".complete",)
    return verify_tree(name, path, doc, full=full, exclude=exclude)


def verify_tree(name: str, path: Path, doc: dict[str, Any], *, full: bool = False,
                exclude: tuple[str, ...] = (".complete",)) -> VerifyResult:
    """Compare the folder ``path`` with the tree manifest ``doc`` (TREE-014): fast mode
    re-hashes only files whose size or mtime differ from the manifest's."""
    algorithm = doc.get("algorithm", "tree-sha256")
    known = None
    if not full:
        known = {}
        for p, row in iter_manifest_files(doc):
            t = parse_time_ns(row.get("lastModified"))
            if t is not None and row.get("type") != "symlink":
                known[p] = (row.get("size"), t, row.get("digest"))
    result = walk(path, algorithm, known=known, keep_files=True, exclude_root=exclude)
    # files read: every regular file in full mode; in fast mode, those whose size or mtime
    # differ from the manifest's (the walk re-reads exactly these, TREE-014)
    rehashed = sum(1 for rel, (size, mtime, _digest, kind) in result.files.items()
                   if kind in ("file", "exec") and (
                       known is None or (known.get(rel) or (None, None))[:2] != (size, mtime)))
    now = {"entries": {}}
    for rel, (size, _mtime, digest, kind) in result.files.items():
        node = now["entries"]
        parts = rel.split("/")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = [size, None, digest, kind]
    now["fields"] = ["size", "lastModified", "digest", "type"]
    diffs = diff_manifests(doc, now)
    return VerifyResult(name, path, "folder", result.checksum, diffs, rehashed)


def verify_target(text: str, *, full: bool = False) -> VerifyResult | None:
    """Verify an append target (a folder or s3:// URL with recorded versions, APP-030)
    against its latest version; None when ``text`` names no such target."""
    from .appends import versions

    t = versions.target_of(text)
    if t is None:
        return None
    doc = versions.find(t, None)
    from .appends.targets import LocalTarget

    if isinstance(t, LocalTarget):
        return verify_tree(t.url, t.path, doc, full=full, exclude=())
    import hashlib

    now = {"fields": ["size", "lastModified", "digest", "type"], "entries": {}}
    n = 0
    for key in t.keys():
        data = t.read(key) or b""
        n += 1
        node = now["entries"]
        parts = key.split("/")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = [len(data), None, hashlib.sha256(data).hexdigest(), "file"]
    from .tree import checksum_from_manifest

    return VerifyResult(t.url, Path(t.url), "folder",
                        checksum_from_manifest(now, "tree-sha256"), diff_manifests(doc, now), n)


def _verify_file(project, name: str, ds, path: Path, full: bool) -> VerifyResult:
    from .store.layout import Target
    from .io.local import hash_file

    declared = ds.effective_checksum
    marker = Target(path, False).read_marker()
    expected = declared or marker.get("checksum", "")
    st = path.stat()
    if not full and marker.get("size") == st.st_size and marker.get("mtime_ns") == st.st_mtime_ns:
        return VerifyResult(name, path, "file", expected, Differences(), 0)
    algo, _, hexd = expected.partition(":") if expected else ("sha256", "", "")
    digest, _ = hash_file(str(path), algo)
    diffs = Differences()
    if expected and digest != hexd:
        diffs.modified.append(path.name)
    return VerifyResult(name, path, "file", f"{algo}:{digest}", diffs, 1)


def tree_manifest(spec_text: str, open_project) -> dict:
    """The tree manifest named on the command line (``diff``): a ``*.json`` file, an append
    target ``TARGET`` or ``TARGET@VALUE-PREFIX`` (APP-030), or a dataset's kept version
    ``NAME`` (the latest) or ``NAME@VALUE-PREFIX`` (TREE-014); ``open_project()`` opens the
    project, only when a dataset is named.

    Raises
    ------
    DataManifestError
        DM122 a dataset without tree manifests, DM076 a prefix matching no kept version
        or several; the project's errors (DM003 no manifest, DM076/DM077 no such dataset).
    """
    p = Path(spec_text)
    if p.suffix == ".json" and p.is_file():
        return json.loads(p.read_text(encoding="utf-8"))
    from .appends import versions as target_versions

    where, _, version = spec_text.rpartition("@") if "@" in spec_text else (spec_text, "", "")
    target = target_versions.target_of(where)
    if target is not None:  # an append target (APP-030): TARGET or TARGET@VALUE-PREFIX
        return target_versions.find(target, version or None)

    project = open_project()
    name, _, version = spec_text.partition("@")
    n = project.resolve(name)
    key = project.dataset(n).derived_key
    if not version:
        latest = trees.latest(project.root, key)
        if latest is None:
            raise DataManifestError(f"dataset {n!r} has no tree manifest", code="DM122")
        return json.loads(latest.read_text(encoding="utf-8"))
    hits = [v for v in trees.versions(project.root, key) if v.stem.startswith(version)]
    if len(hits) != 1:
        raise DataManifestError(f"{spec_text!r} matches {len(hits)} kept versions", code="DM076",
                                hint=f"`datamanifest versions {n}` lists them")
    return json.loads(hits[0].read_text(encoding="utf-8"))

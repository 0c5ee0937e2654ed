"""The objects of a project's stores, their states and selections (SCHEMA.md §22).

Pure: the file system is seen through a :class:`View` (``stat``, ``read`` of small
files, ``listdir``), so the same code lists a real store (the I/O edge,
:mod:`datamanifest.maintain`) and a described one (the conformance kind ``objects``).

MNT-001  objects: each dataset (kind ``data``) and each produced artifact (``cached``)
MNT-002  fields: kind, id, name, key, location, referenced, format, size, created,
         last_access, state, protected
MNT-003  states: clean, untracked, relocated, missing, modified
MNT-004  protected: exact, skip_download, lazy_access, pool, outside
MNT-010  selection: terms (exact, hash prefix or glob; all must match) and filters
MNT-012  ages and sizes
"""

from __future__ import annotations

import fnmatch
import os
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from . import cache

FIELDS = ("kind", "id", "name", "key", "location", "referenced", "format", "size", "created",
          "last_access", "state", "protected")
STATES = ("clean", "untracked", "relocated", "missing", "modified")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_CONTROL_SUFFIXES = (".tmp", ".lock", ".old", ".reclaim")


@dataclass(frozen=True)
class Stat:
    """What listing needs of a path: folder or not, size (bytes), times (seconds)."""

    is_dir: bool
    size: int
    mtime: float
    atime: float


class View(Protocol):
    """Read-only access to a file system (real or described)."""

    def stat(self, path: str) -> Stat | None: ...

    def read(self, path: str) -> str | None: ...

    def listdir(self, path: str) -> list[str] | None: ...


class DescribedView:
    """:class:`View` over a described file system (the conformance kind ``objects``).

    ``files`` maps absolute paths to a file's UTF-8 text, ``None`` for a folder, or
    ``{"content": text or None, "mtime": seconds, "atime": seconds}``. Parent folders
    of a described path exist; times default to 0; a file's size is its UTF-8 length.
    """

    def __init__(self, files: Mapping[str, Any]) -> None:
        self._entries: dict[str, tuple[str | None, float, float]] = {}
        for path, v in files.items():
            path = path.rstrip("/") or "/"
            if isinstance(v, Mapping):
                self._entries[path] = (v.get("content"), float(v.get("mtime", 0)),
                                       float(v.get("atime", 0)))
            else:
                self._entries[path] = (v, 0.0, 0.0)
        for path in list(self._entries):
            parent = path.rsplit("/", 1)[0]
            while parent and parent not in self._entries:
                self._entries[parent] = (None, 0.0, 0.0)
                parent = parent.rsplit("/", 1)[0]

    def stat(self, path: str) -> Stat | None:
        e = self._entries.get(path.rstrip("/") or "/")
        if e is None:
            return None
        content, mtime, atime = e
        return Stat(content is None, len(content.encode("utf-8")) if content is not None else 0,
                    mtime, atime)

    def read(self, path: str) -> str | None:
        e = self._entries.get(path)
        return e[0] if e is not None else None

    def listdir(self, path: str) -> list[str] | None:
        path = path.rstrip("/")
        e = self._entries.get(path)
        if e is None or e[0] is not None:
            return None
        return sorted(p[len(path) + 1:] for p in self._entries
                      if p.startswith(path + "/") and "/" not in p[len(path) + 1:])


@dataclass
class Obj:
    """One object of a store (MNT-002). Times are seconds since the epoch (None: unknown).

    ``target`` is where the object belongs (a dataset's target, an artifact's derived
    folder); ``recorded`` the location the state file records, if any; ``is_dir`` whether
    its bytes are a folder; :attr:`checksum` what its marker records (a dataset) — the
    internals that actions need.
    """

    kind: str
    id: str
    name: str
    key: str
    location: str
    referenced: bool
    format: str
    size: int | None
    created: float | None
    last_access: float | None
    state: str
    protected: str | None
    target: str = ""
    recorded: str | None = None
    is_dir: bool = False
    record_key: str = ""
    #: a dataset's declared checksum, and where to read what its marker records (read on
    #: first use of :attr:`checksum`: a listing opens no marker it does not need)
    declared: str = ""
    marker_file: str | None = None
    view: Any = field(default=None, repr=False, compare=False)
    _checksum: str | None = field(default=None, repr=False)

    @property
    def checksum(self) -> str:
        """What the object's marker records (a dataset), else its declared checksum."""
        if self._checksum is None:
            rec = _marker_record(self.view.read(self.marker_file)) \
                if self.marker_file and self.view is not None else {}
            got = rec.get("checksum")
            self._checksum = got if isinstance(got, str) and got else self.declared
        return self._checksum

    def as_json(self) -> dict[str, Any]:
        """The MNT-002 fields, times as RFC 3339 UTC."""
        return {"kind": self.kind, "id": self.id, "name": self.name, "key": self.key,
                "location": self.location, "referenced": self.referenced,
                "format": self.format, "size": self.size, "created": rfc3339(self.created),
                "last_access": rfc3339(self.last_access), "state": self.state,
                "protected": self.protected}


def rfc3339(t: float | None) -> str | None:
    return None if t is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def _inside(path: str, root: str) -> bool:
    root = root.rstrip("/")
    return path == root or path.startswith(root + "/")


def protection(location: str, *, managed: str = "keyed", skip_download: bool = False,
               lazy_access: bool = False, pools: Iterable[str] = (),
               roots: Iterable[str] = ()) -> str | None:
    """The reason an object is protected (MNT-004), or None."""
    if lazy_access:
        return "lazy_access"
    if skip_download:
        return "skip_download"
    if managed == "exact":
        return "exact"
    if any(_inside(location, p) for p in pools):
        return "pool"
    if not any(_inside(location, r) for r in roots):
        return "outside"
    return None


def _marker_record(text: str | None) -> dict[str, Any]:
    import json

    try:
        rec = json.loads(text) if text and text.strip() else {}
    except ValueError:
        return {}
    return rec if isinstance(rec, dict) else {}


def data_object(name: str, *, key: str, target: str, is_dir: bool, managed: str,
                declared: str, fmt: str, record: Mapping[str, Any] | None,
                pool_candidates: list[str], skip_download: bool, lazy_access: bool,
                in_place: str | None, roots: list[str], pools: list[str], root: str,
                view: View, target_stat: Stat | None = None) -> Obj:
    """The object of one dataset (MNT-001..MNT-004). ``target_stat``: the target's stat,
    when the caller has it already."""

    def marker_of(path: str) -> str:
        return f"{path}/.complete" if is_dir else f"{path}.complete"

    def complete(path: str) -> tuple[Stat, Stat] | None:
        st = target_stat if path == target and target_stat is not None else view.stat(path)
        mst = view.stat(marker_of(path)) if st is not None else None
        return (st, mst) if st is not None and mst is not None else None

    recorded = None
    if record and isinstance(record.get("storage_path"), str) and record["storage_path"]:
        recorded = cache.absolute_from_root(record["storage_path"], root)
    location, state, found = target, "missing", None
    if lazy_access or skip_download:
        location = in_place or target
        st = view.stat(location) if location else None
        state = "clean" if st is not None else "missing"
        found = (st, st) if st is not None else None
    elif recorded is not None and (hit := complete(recorded)) is not None:
        location, state, found = recorded, "clean", hit
    elif (hit := complete(target)) is not None:
        location, found = target, hit
        state = "relocated" if recorded is not None else "untracked"
    else:
        for cand in pool_candidates:
            hit = complete(cand)
            if hit is not None and (not declared or _marker_record(
                    view.read(marker_of(cand))).get("checksum") == declared):
                location, found = cand, hit
                state = "clean" if recorded == cand else "untracked"
                break
    size = created = atime = None
    marker = None
    if found is not None and not (lazy_access or skip_download):
        marker = marker_of(location)
        if found[0].is_dir:  # a folder's size is what its marker records
            rec = _marker_record(view.read(marker))
            size = rec.get("size") if isinstance(rec.get("size"), int) else None
        else:
            size = found[0].size
        created = found[1].mtime
        atime = found[0].atime
    elif found is not None:
        size = None if found[0].is_dir else found[0].size
        atime = found[0].atime
    prot = protection(location, managed=managed, skip_download=skip_download,
                      lazy_access=lazy_access, pools=pools, roots=roots)
    return Obj("data", name, name, key, location, True, fmt, size, created, atime, state, prot,
               target=target, recorded=recorded, is_dir=is_dir, record_key=key,
               declared=declared, marker_file=marker, view=view)


def _artifact_facts(folder: str, view: View) -> tuple[bool, dict | None, Stat | None, list[str]]:
    """(complete, listed formats or None, marker stat, data entries) of a folder."""
    mst = view.stat(f"{folder}/{cache.MARKER}")
    if mst is None:
        return False, None, None, []
    marker = cache.read_marker(view.read(f"{folder}/{cache.MARKER}") or "")
    entries = sorted(r["file"] for r in (marker.formats or {}).values())
    return True, marker.formats, mst, entries


def cached_objects(datacache_dir: str, datacache: Mapping[str, Any], *, root: str,
                   roots: list[str], pools: list[str], view: View) -> list[Obj]:
    """The artifacts in ``datacache_dir`` and those the state's ``[datacache]`` records."""
    found: dict[tuple[str, str], str] = {}  # (record key, hash) -> folder in the store
    store = datacache_dir.rstrip("/")
    for ct in sorted(view.listdir(store) or []):
        if ct.startswith(".") or ct.endswith(_CONTROL_SUFFIXES):
            continue
        for child in sorted(view.listdir(f"{store}/{ct}") or []):
            if _HEX64.match(child):
                found[(ct, child)] = f"{store}/{ct}/{child}"
            elif not child.startswith(".") and not child.endswith(_CONTROL_SUFFIXES):
                for h in sorted(view.listdir(f"{store}/{ct}/{child}") or []):
                    if _HEX64.match(h):
                        found[(f"{ct}@{child}", h)] = f"{store}/{ct}/{child}/{h}"
    recorded: dict[tuple[str, str], str] = {}
    for key, rec in datacache.items():
        inst = rec.get("instances") if isinstance(rec, Mapping) else None
        for h, p in (inst.items() if isinstance(inst, Mapping) else ()):
            if isinstance(p, str) and p:
                recorded[(key, h)] = cache.absolute_from_root(p, root)
    out = []
    for rk, h in sorted(set(found) | set(recorded)):
        ct, version = cache.split_record_key(rk)
        ident = cache.Identity(ct, version, h)
        derived = f"{store}/{ident.cache_key}"
        rec_loc = recorded.get((rk, h))
        location, state, facts = derived, "missing", None
        if rec_loc is not None and (f := _artifact_facts(rec_loc, view))[0]:
            location, state, facts = rec_loc, "clean", f
        elif (f := _artifact_facts(derived, view))[0]:
            location, facts = derived, f
            state = "relocated" if rec_loc is not None else "untracked"
        size = created = atime = None
        fmt = ""
        if facts is not None:
            _, formats, mst, entries = facts
            if formats:
                fmt = ",".join(sorted(formats))
                size = sum(r["size"] for r in formats.values())
            created = mst.mtime if mst else None
            times = [st.atime for e in entries if (st := view.stat(f"{location}/{e}")) is not None]
            atime = max(times) if times else None  # the format used last
        if not fmt:
            rec = datacache.get(rk) if isinstance(datacache.get(rk), Mapping) else {}
            fmts = rec.get("formats") or ([rec["format"]] if rec.get("format") else [])
            fmt = ",".join(f for f in fmts if isinstance(f, str))
        prot = protection(location, pools=pools, roots=roots)
        out.append(Obj("cached", ident.cache_key, ct, ident.cache_key, location,
                       rec_loc is not None, fmt, size, created, atime, state, prot,
                       target=derived, recorded=rec_loc, is_dir=True, record_key=rk))
    return out


# -- selection (MNT-010..MNT-012) ----------------------------------------------------------------------
_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([bkmgt]?)(?:i?b)?\s*$", re.IGNORECASE)
_AGE_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_SIZE_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def _in_place(ds: Any, target: str, root: str) -> str:
    """Where a ``skip_download`` or ``lazy_access`` dataset is used in place (RES-006)."""
    import posixpath
    from urllib.parse import unquote, urlsplit

    uri = ds.uri or ""
    parts = urlsplit(uri)
    if parts.scheme not in ("", "file") and not (len(parts.scheme) == 1 and uri[1:2] == ":"):
        from .secrets import redact_uri

        return redact_uri(uri)  # remote: never a local path; shown, so redacted (SEC-002)
    if ds.storage_path:
        return target
    path = unquote(parts.path) if parts.scheme == "file" else os.path.expanduser(uri)
    return path if os.path.isabs(path) else posixpath.join(root, path)


def objects_of(manifest: Any, resolved: Any, platform: Any, *, records: Mapping[str, Any],
               datacache: Mapping[str, Any], view: View) -> list[Obj]:
    """Every object of a project (MNT-001): its datasets in manifest order, then its
    artifacts by cache key, seen through ``view``.

    ``manifest`` is a :class:`~datamanifest.spec.manifest.Manifest`, ``resolved`` and
    ``platform`` its resolved storage (§9); ``records`` the state file's dataset records
    (key -> table) and ``datacache`` its ``[datacache]`` table. Raises
    :class:`~datamanifest.spec.resolution.ResolutionError` for a storage expression that
    does not resolve.
    """
    from .resolution import pool_candidates, storage_path

    datasets_dir, datacache_dir = resolved.get("datasets_dir"), resolved.get("datacache_dir")
    pools = [*resolved.get("datasets_pools"), *resolved.get("datacache_pools")]
    pools = [p for p in pools if p not in (datasets_dir, datacache_dir)]
    roots = [datasets_dir, datacache_dir]
    root = platform.root
    has_pools = bool(resolved.get("datasets_pools"))
    out: list[Obj] = []
    for name, ds in manifest.datasets.items():
        target, managed = storage_path(name, ds, resolved, platform)
        st = view.stat(target)
        is_dir = ds.is_folder or \
            bool(st is not None and st.is_dir)
        in_place = _in_place(ds, target, root) if ds.lazy_access or ds.skip_download else None
        key, declared = ds.derived_key, ds.effective_checksum
        rec = records.get(key)
        out.append(data_object(
            name, key=key, target=target, is_dir=is_dir, managed=managed,
            declared=declared, fmt=ds.effective_format or "",
            record=rec if isinstance(rec, Mapping) else None,
            pool_candidates=pool_candidates(ds, resolved, platform)
            if declared and managed == "keyed" and has_pools else [],
            skip_download=ds.skip_download, lazy_access=ds.lazy_access, in_place=in_place,
            roots=roots, pools=pools, root=root, view=view, target_stat=st))
    out.extend(cached_objects(datacache_dir, datacache, root=root, roots=roots, pools=pools,
                              view=view))
    return out


def parse_age(text: str) -> float:
    """Seconds of ``<number>[s|m|h|d|w]`` (MNT-012); ValueError (DM136) when malformed."""
    m = _AGE.match(text)
    if not m:
        raise ValueError(f"age {text!r} is not <number>[s|m|h|d|w] (for example 30d)")
    return float(m.group(1)) * _AGE_UNITS[m.group(2)]


def parse_size(text: str) -> int:
    """Bytes of ``<number>[B|K|M|G|T]`` (powers of 1024; MNT-012); ValueError when malformed."""
    m = _SIZE.match(text)
    if not m:
        raise ValueError(f"size {text!r} is not <number>[B|K|M|G|T] (for example 500M)")
    return int(float(m.group(1)) * _SIZE_UNITS[m.group(2).lower()])


@dataclass(frozen=True)
class Selection:
    """Terms and filters (MNT-010). ``empty`` when nothing restricts it (MNT-011).

    Times are seconds; ``time_field`` is ``created`` or ``last_access``.
    """

    terms: tuple[str, ...] = ()
    kind: str | None = None
    formats: tuple[str, ...] = ()
    states: tuple[str, ...] = ()
    present: bool | None = None
    older_than: float | None = None
    newer_than: float | None = None
    time_field: str = "created"
    larger_than: int | None = None
    unreferenced: bool = False
    outside: bool = False
    all: bool = False

    @property
    def empty(self) -> bool:
        return not (self.all or self.terms or self.kind or self.formats or self.states or
                    self.present is not None or self.older_than is not None or
                    self.newer_than is not None or self.larger_than is not None or
                    self.unreferenced or self.outside)

    def matches(self, o: Obj, now: float) -> bool:
        for t in self.terms:
            if not term_matches(t, o):
                return False
        if self.kind and o.kind != self.kind:
            return False
        if self.formats and not set(self.formats) & set(o.format.split(",")):
            return False
        if self.states and o.state not in self.states:
            return False
        if self.present is not None and (o.state != "missing") != self.present:
            return False
        when = o.created if self.time_field == "created" else o.last_access
        if self.older_than is not None and (when is None or when > now - self.older_than):
            return False
        if self.newer_than is not None and (when is None or when < now - self.newer_than):
            return False
        if self.larger_than is not None and (o.size is None or o.size <= self.larger_than):
            return False
        if self.unreferenced and o.referenced:
            return False
        if self.outside and o.protected != "outside":
            return False
        return True


def term_matches(term: str, o: Obj) -> bool:
    """MNT-010: ``term`` equals the id, name or key; is a 6+ character prefix of an
    artifact's hash; or, holding ``*``, ``?`` or ``[``, matches one of them as a glob."""
    if any(c in term for c in "*?["):
        return any(fnmatch.fnmatchcase(v, term) for v in (o.id, o.name, o.key))
    if term in (o.id, o.name, o.key):
        return True
    return o.kind == "cached" and len(term) >= 6 and o.key.rsplit("/", 1)[-1].startswith(term)


def select(objects: Iterable[Obj], selection: Selection, now: float | None = None) -> list[Obj]:
    """The objects ``selection`` picks; none when it is empty and not ``all`` (MNT-011)."""
    if selection.empty:
        return []
    now = time.time() if now is None else now
    return [o for o in objects if selection.matches(o, now)]

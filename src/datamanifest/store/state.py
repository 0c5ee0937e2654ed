"""The state file ``.datamanifest/state.toml`` (SCHEMA.md §8, STA-001..STA-008).

An inventory of what has been materialized, keyed by storage key, in the
ecosystem's shape (``_META.schema = 5``) with optional fields of ours::

    [_META]
    schema = 5

    [datasets."example.org/data/file.csv"]
    storage_path = "datasets/example.org/data/file.csv"   # relative to the project root
    sha256 = "<64 hex>"                                  # when the algorithm is sha256
    checksum = "sha256:<64 hex>"
    size = 1234                                          # bytes
    uri = "https://example.org/data/file.csv"
    fetched = "2026-11-21T06:00:00Z"

Reads keep unknown tables and fields; writes merge under ``state.toml.lock`` and
are atomic (STA-003, STA-004). Produced datasets are recorded in ``[datacache]``
(PRD-030), usually by appending to the journal ``state.journal`` (PRD-031), which
readers apply after ``state.toml`` and every full write folds in. Legacy files
(``cached.toml``, ``.datamanifest-state.toml``, schemas 1-4) are read (PRD-032)
and renamed ``<name>.migrated`` by the first write.
"""

from __future__ import annotations

import os
import time
import tomllib
import warnings
from pathlib import Path
from typing import Any

import tomli_w
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from ..errors import StateError
from ..spec import cache
from ..spec import tomlparse
from .atomic import write_bytes, write_text
from .lock import Lock

STATE_SCHEMA = 5
JOURNAL_FILE = "state.journal"
#: a writer folds the journal into state.toml past this many lines (PRD-031)
JOURNAL_COMPACT_LINES = 1000


class DatasetRecord(BaseModel):
    """One ``[datasets."<key>"]`` record (STA-002). Unknown fields are kept."""

    model_config = ConfigDict(extra="allow")
    storage_path: str = Field(min_length=1)
    sha256: str | None = None
    checksum: str | None = None
    size: int | None = None
    uri: str | None = None
    fetched: str | None = None
    tree: str | None = None  # latest tree manifest, relative to the state file's folder


_RECORDS = TypeAdapter(dict[str, DatasetRecord])


class State(BaseModel):
    """The whole state document. ``other`` holds every table besides _META and datasets."""

    model_config = ConfigDict(extra="forbid")
    schema_version: int = STATE_SCHEMA
    datasets: dict[str, DatasetRecord] = Field(default_factory=dict)
    #: records that do not fit schema 5 (legacy schemas 1-4): kept verbatim (STA-009)
    unreadable: dict[str, Any] = Field(default_factory=dict)
    other: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any], datacache_dir: str | None = None) -> "State":
        """Read a parsed state document of any schema.

        Legacy produced-dataset records (schemas 1-4) become ``[datacache]``
        (PRD-032); an instance recorded without a folder is placed under
        ``datacache_dir``, or left out when it is not given.
        """
        meta = data.get("_META", {})
        version = meta.get("schema", 0) if isinstance(meta, dict) else 0
        raw = data.get("datasets", {})
        if not isinstance(raw, dict):
            raise ValueError("datasets is not a table")
        datasets, unreadable = {}, {}
        try:  # one call for all records; one by one only to find the unreadable ones
            datasets = _RECORDS.validate_python(raw)
        except ValueError:
            for k, v in raw.items():
                try:
                    datasets[k] = DatasetRecord.model_validate(v)
                except ValueError:
                    unreadable[k] = v
        other = {k: v for k, v in data.items() if k not in ("_META", "datasets")}
        schema = cache.legacy_schema(data)
        if schema < STATE_SCHEMA:
            legacy = {k: v for k, v in data.items() if k != "datasets"}
            datacache = cache.legacy_datacache(legacy, datacache_dir)
            if datacache or datacache_dir is not None:
                for k in cache.legacy_tables(legacy):
                    other.pop(k, None)
            other["datacache"] = datacache
        elif not isinstance(other.get("datacache", {}), dict):
            raise ValueError("datacache is not a table")
        return cls(schema_version=version, datasets=datasets, unreadable=unreadable, other=other)

    @property
    def datacache(self) -> dict[str, Any]:
        """The ``[datacache]`` table (PRD-030), created empty when absent."""
        return self.other.setdefault("datacache", {})

    def instance(self, record_key: str, hash_: str) -> str | None:
        """The folder recorded for one produced instance (as written), or None."""
        rec = self.other.get("datacache", {}).get(record_key)
        inst = rec.get("instances") if isinstance(rec, dict) else None
        path = inst.get(hash_) if isinstance(inst, dict) else None
        return path if isinstance(path, str) and path else None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"_META": {"schema": STATE_SCHEMA}}
        if self.other.get("datacache"):
            out["datacache"] = dict(sorted(self.other["datacache"].items()))
        records = dict(self.unreadable)
        records.update({k: r.model_dump(exclude_none=True) for k, r in self.datasets.items()})
        if records:
            out["datasets"] = dict(sorted(records.items()))
        out.update({k: v for k, v in self.other.items() if k != "datacache"})
        return out


def journal_path(path: Path) -> Path:
    """The state journal beside the state file ``path`` (PRD-031)."""
    return path.with_name(JOURNAL_FILE)


#: beside the state file: its parsed form as JSON, tagged with the identity of the bytes it
#: came from (size, mtime, ctime, inode). JSON parses about 15 times faster than TOML, and a
#: state file of 10,000 records is 2 MB. Not a document of the spec: a cache, regenerated
#: whenever the identity differs, like a .pyc file.
PARSED_CACHE = ".state.parsed.json"


def _identity(st: os.stat_result) -> list[int]:
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


def _load_parsed(path: Path) -> dict[str, Any] | None:
    """The state file's parsed dict: from the cache when it tags these very bytes, else
    parsed (and the cache refreshed, best effort). None when the file is absent. Raises
    OSError, UnicodeDecodeError or TOMLDecodeError for an unreadable file."""
    import json

    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return None
    with f:
        ident = _identity(os.fstat(f.fileno()))  # of the bytes read below, not of the name
        kept = path.with_name(PARSED_CACHE)
        try:
            doc = json.loads(kept.read_bytes())
            if doc.get("identity") == ident and isinstance(doc.get("data"), dict):
                return doc["data"]
        except (OSError, ValueError, AttributeError):
            pass
        data = tomlparse.loads(f.read().decode("utf-8"))
    if ident[0] > 64 * 1024:  # small files parse fast; no cache to keep for them
        _save_parsed(path, ident, data)
    return data


def _save_parsed(path: Path, ident: list[int], data: dict[str, Any]) -> None:
    import json

    try:
        text = json.dumps({"identity": ident, "data": data}, ensure_ascii=False)
    except (TypeError, ValueError):
        return  # TOML dates and times have no JSON form: such a file is simply not cached
    try:
        write_bytes(path.with_name(PARSED_CACHE), text.encode("utf-8"))
    except OSError:
        pass


def _parse(path: Path, datacache_dir: str | None) -> State | None:
    try:
        data = _load_parsed(path)
        if data is None:
            return None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise StateError(f"cannot read the state file: {e}", file=str(path),
                         hint="it is regenerable: move it away and run `datamanifest fetch`") from e
    try:
        return State.from_dict(data, datacache_dir)
    except Exception as e:
        raise StateError(f"the state file is malformed: {e}", file=str(path),
                         hint="it is regenerable: move it away and run `datamanifest fetch`") from e


def legacy_paths(path: Path) -> list[Path]:
    """Legacy index files of the project whose state file is ``path`` (PRD-032)."""
    root = path.parent.parent
    return [root / name for name in cache.LEGACY_INDEX_NAMES]


def read_state(path: Path, *, datacache_dir: str | None = None, legacy: bool = True) -> State:
    """Read a state file with its journal applied; an absent file is an empty state.

    ``datacache_dir`` places legacy instances recorded without a folder (PRD-032).
    With ``legacy``, produced-dataset records of the project's legacy index files
    (``cached.toml``, ``.datamanifest-state.toml``) are read too, under the
    records of the state file itself. Raises StateError (DM090).
    """
    state = _parse(path, datacache_dir) or State()
    if legacy:
        for lp in legacy_paths(path):
            try:
                old = _parse(lp, datacache_dir)
            except StateError:
                continue
            if old is None:
                continue
            merged = old.other.get("datacache", {})
            cache.merge_datacache(merged, state.datacache)
            state.other["datacache"] = merged
    try:
        text = journal_path(path).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        text = ""
    if text:
        cache.apply_journal(state.datacache, text)
    return state


def _prepare(path: Path, stale_age: float) -> Lock:
    path.parent.mkdir(parents=True, exist_ok=True)
    ignore = path.parent / ".gitignore"
    if not ignore.exists():
        write_text(ignore, "*\n")
    return Lock(path.with_name(path.name + ".lock"), stale_age=stale_age, timeout=60)


def _rewrite(path: Path, state: State) -> None:
    """Write ``state`` whole, then drop the folded journal and legacy files (caller holds the lock)."""
    # the parse cache is refreshed by the next reader (the identity changed with the rename)
    write_bytes(path, tomli_w.dumps(state.to_dict()).encode("utf-8"))
    journal_path(path).unlink(missing_ok=True)
    for lp in legacy_paths(path):
        if lp.exists():  # PRD-032: kept beside, never read again
            os.replace(lp, lp.with_name(lp.name + ".migrated"))


def _read_for_write(path: Path, datacache_dir: str | None) -> State:
    try:
        return read_state(path, datacache_dir=datacache_dir)
    except StateError:
        # regenerable (STA-006): keep the unreadable file aside, never lose it
        aside = path.with_name(f"{path.name}.unreadable-{int(time.time())}")
        os.replace(path, aside)
        warnings.warn(f"{path} could not be read; it was moved to {aside.name} and a new "
                      "state file was written", stacklevel=3)
        return read_state(path, datacache_dir=datacache_dir)


def update_state(path: Path, records: dict[str, DatasetRecord], *, stale_age: float = 30.0,
                 datacache_dir: str | None = None, remove: tuple[str, ...] | list[str] = (),
                 instances: list[tuple[str, str, str | None, str, str]] = ()) -> State:
    """Merge ``records`` into the state file at ``path`` under its lock; write once, atomically.

    ``remove`` lists dataset keys whose records are dropped; ``instances`` are produced
    instances to record or forget, as in :func:`record_instances`. Other processes'
    records written meanwhile are kept (STA-004); the journal and legacy index files
    are folded in (PRD-031, PRD-032).
    """
    lock = _prepare(path, stale_age)
    with lock:
        state = _read_for_write(path, datacache_dir)
        state.datasets.update(records)
        for key in records:
            state.unreadable.pop(key, None)
        for key in remove:
            state.datasets.pop(key, None)
            state.unreadable.pop(key, None)
        for key, h, folder, ref, fmt in instances:
            cache.merge_instance(state.datacache, key, h, folder, ref=ref, fmt=fmt)
        _rewrite(path, state)
    return state


def record_instances(path: Path, entries: list[tuple[str, str, str | None, str, str]], *,
                     stale_age: float = 30.0, datacache_dir: str | None = None) -> None:
    """Record produced instances (PRD-030) by appending to the journal (PRD-031).

    ``entries`` are ``(record key, hash, folder or None to forget, ref, format)``;
    folders are written as given (relative to the project root when inside it).
    One ``write`` under the state lock: O(1) in the size of the state file. Past
    :data:`JOURNAL_COMPACT_LINES` lines, or when a legacy index file is present,
    the journal is folded into ``state.toml``.
    """
    text = "".join(cache.journal_line(k, h, p, ref=r, fmt=f) for k, h, p, r, f in entries)
    lock = _prepare(path, stale_age)
    jpath = journal_path(path)
    with lock:
        fd = os.open(jpath, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, text.encode("utf-8"))
            size = os.fstat(fd).st_size
        finally:
            os.close(fd)
        # more than JOURNAL_COMPACT_LINES lines are at least this many bytes
        if size > JOURNAL_COMPACT_LINES * 100 and _journal_lines(jpath) > JOURNAL_COMPACT_LINES \
                or any(lp.exists() for lp in legacy_paths(path)):
            _rewrite(path, _read_for_write(path, datacache_dir))


def _journal_lines(path: Path) -> int:
    with open(path, "rb") as f:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 16), b""))

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

Reads keep unknown tables and fields (``datacache`` and others); writes merge
under ``state.toml.lock`` and are atomic (STA-003, STA-004).
"""

from __future__ import annotations

import os
import time
import tomllib
import warnings
from pathlib import Path
from typing import Any

import tomli_w
from pydantic import BaseModel, ConfigDict, Field

from ..errors import StateError
from .atomic import write_bytes, write_text
from .lock import Lock

STATE_SCHEMA = 5
STATE_DIR = ".datamanifest"
STATE_FILE = "state.toml"


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


class State(BaseModel):
    """The whole state document. ``other`` holds every table besides _META and datasets."""

    model_config = ConfigDict(extra="forbid")
    schema_version: int = STATE_SCHEMA
    datasets: dict[str, DatasetRecord] = Field(default_factory=dict)
    #: records that do not fit schema 5 (legacy schemas 1-4): kept verbatim (STA-009)
    unreadable: dict[str, Any] = Field(default_factory=dict)
    other: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "State":
        meta = data.get("_META", {})
        version = meta.get("schema", 0) if isinstance(meta, dict) else 0
        raw = data.get("datasets", {})
        if not isinstance(raw, dict):
            raise ValueError("datasets is not a table")
        datasets, unreadable = {}, {}
        for k, v in raw.items():
            try:
                datasets[k] = DatasetRecord.model_validate(v)
            except ValueError:
                unreadable[k] = v
        other = {k: v for k, v in data.items() if k not in ("_META", "datasets")}
        return cls(schema_version=version, datasets=datasets, unreadable=unreadable, other=other)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"_META": {"schema": STATE_SCHEMA}}
        records = dict(self.unreadable)
        records.update({k: r.model_dump(exclude_none=True) for k, r in self.datasets.items()})
        if records:
            out["datasets"] = dict(sorted(records.items()))
        out.update(self.other)
        return out


def state_path(root: Path) -> Path:
    """``<project root>/.datamanifest/state.toml`` (STA-001)."""
    return root / STATE_DIR / STATE_FILE


def read_state(path: Path) -> State:
    """Read a state file; an absent file is an empty state. Raises StateError (DM090)."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return State()
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise StateError(f"cannot read the state file: {e}", file=str(path),
                         hint="it is regenerable: move it away and run `datamanifest fetch`") from e
    try:
        return State.from_dict(data)
    except Exception as e:
        raise StateError(f"the state file is malformed: {e}", file=str(path),
                         hint="it is regenerable: move it away and run `datamanifest fetch`") from e


def update_state(path: Path, records: dict[str, DatasetRecord], *, stale_age: float = 30.0) -> State:
    """Merge ``records`` into the state file at ``path`` under its lock; write once, atomically.

    Other processes' records written meanwhile are kept (STA-004).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    ignore = path.parent / ".gitignore"
    if not ignore.exists():
        write_text(ignore, "*\n")
    with Lock(path.with_name(path.name + ".lock"), stale_age=stale_age, timeout=60):
        try:
            state = read_state(path)
        except StateError:
            # regenerable (STA-006): keep the unreadable file aside, never lose it
            aside = path.with_name(f"{path.name}.unreadable-{int(time.time())}")
            os.replace(path, aside)
            warnings.warn(f"{path} could not be read; it was moved to {aside.name} and a new "
                          "state file was written", stacklevel=2)
            state = State()
        state.datasets.update(records)
        for key in records:
            state.unreadable.pop(key, None)
        write_bytes(path, tomli_w.dumps(state.to_dict()).encode("utf-8"))
    return state

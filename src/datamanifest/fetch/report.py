"""What a fetch run reports and records (SCHEMA.md §11, STA-002).

:class:`Outcome` is what happened to one dataset; :class:`FetchReport` the whole run, a
mapping from each name to its outcome; :func:`dataset_record` the state-file record of a
dataset found or published; :class:`Deferred` a verified download waiting for its batch's
sync before it is published.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import DataManifestError
from ..spec.secrets import redact_uri
from ..store.state import DatasetRecord

if TYPE_CHECKING:  # a project is handed in
    from ..project import Project
    from ..store.lock import Lock


@dataclass
class Deferred:
    """A verified download whose publish waits for its batch's one sync (STO-007, in a
    forked worker); it holds the dataset's lock until then."""

    name: str
    staging: Path
    publish: Callable[[], "Outcome"]
    lock: "Lock | None" = None
    waited: bool = False
    moved_aside: Path | None = None


@dataclass
class Outcome:
    """What happened to one dataset.

    ``status``: ``fetched`` (downloaded and verified now), ``present`` (already
    there), ``skipped`` (skip_download / lazy_access), ``failed``, ``blocked`` (a
    requirement failed), ``refused`` (its closure has errors, MAN-012; nothing was done),
    ``missing`` (offline) or ``interrupted`` (the run was stopped, FET-023: a partial HTTP
    download is kept for the next run). ``size`` in bytes.
    """

    name: str
    status: str
    path: Path | None = None
    checksum: str = ""
    size: int | None = None
    error: DataManifestError | None = None
    filled: bool = False
    waited: bool = False
    pool: bool = False  # taken in place from a read pool (POOL-004)
    adopted: bool = False  # an unmarked target whose bytes verified, marked (STO-018)
    moved_aside: Path | None = None  # where an existing target went (--force, STO-016)

    def as_json(self) -> dict:
        return {
            "name": self.name,
            "status": self.status,
            "path": str(self.path) if self.path else None,
            "checksum": self.checksum,
            "size": self.size,
            "checksum_filled": self.filled,
            "from_pool": self.pool,
            "adopted": self.adopted,
            "moved_aside": str(self.moved_aside) if self.moved_aside else None,
            "error": self.error.as_diagnostic().as_json() if self.error else None,
            # a refusal's errors (MAN-012): each error of the dataset's closure
            "errors": [d.as_json() for d in self.error.diagnostics] if self.error else [],
        }


@dataclass(eq=False)
class FetchReport(Mapping):
    """The outcomes of one fetch run, by dataset name (SCHEMA.md §12).

    A mapping from each dataset's name to its :class:`Outcome` (``report["obs"].path``,
    ``.status``), in ``requires`` order (refused datasets first).

    Attributes
    ----------
    outcomes : list of Outcome
        One per dataset asked for.
    filled : list of str
        Datasets whose empty checksum was written into the manifest (MAN-004).
    workers : str
        ``"processes"`` (forked workers), ``"threads"``, or ``"none"`` when nothing
        needed fetching.
    """

    outcomes: list[Outcome] = field(default_factory=list)
    filled: list[str] = field(default_factory=list)
    workers: str = "none"

    def __getitem__(self, name: str) -> Outcome:
        for o in self.outcomes:
            if o.name == name:
                return o
        raise KeyError(name)

    def __iter__(self):
        return (o.name for o in self.outcomes)

    def __len__(self) -> int:
        return len(self.outcomes)

    def __repr__(self) -> str:
        counts: dict[str, int] = {}
        for o in self.outcomes:
            counts[o.status] = counts.get(o.status, 0) + 1
        return f"<FetchReport {', '.join(f'{v} {k}' for k, v in counts.items()) or 'empty'}>"

    @property
    def paths(self) -> dict[str, Path | None]:
        """Each dataset's name -> its local path (None when it has none: failed, refused,
        lazy)."""
        return {o.name: o.path for o in self.outcomes}

    def as_json(self) -> dict:
        """The ``fetch --json`` document (SCHEMA.md §11).

        Returns
        -------
        dict
            ``ok``, ``datasets`` (one object per outcome: ``name``, ``status``, ``path``,
            ``checksum``, ``size`` in bytes, ``error``, ...), ``checksums_filled``, ``workers``.
        """
        return {"ok": self.ok, "datasets": [o.as_json() for o in self.outcomes],
                "checksums_filled": self.filled, "workers": self.workers}

    @property
    def ok(self) -> bool:
        """Whether every dataset is fetched, present or skipped (exit status 0)."""
        return all(o.status in ("fetched", "present", "skipped") for o in self.outcomes)

    @property
    def missing(self) -> list[str]:
        """Names of the datasets that are still missing (offline, or not fetchable)."""
        return [o.name for o in self.outcomes if o.status == "missing"]


def dataset_record(project: Project, name: str, path: Path, checksum: str, size: int | None,
                   tree_path: Path | None = None) -> DatasetRecord:
    """The state record of dataset ``name`` found at ``path`` (STA-002): its storage path
    (relative to the project root when under it), checksum, size in bytes, uri, the time
    now, and its tree manifest (``tree_path``) when it is a folder."""
    ds = project.dataset(name)
    try:
        spath = path.relative_to(project.root).as_posix()
    except ValueError:
        spath = str(path)
    algo, _, hexd = checksum.partition(":")
    rec = DatasetRecord(storage_path=spath, sha256=hexd if algo == "sha256" else None,
                        checksum=checksum or None, size=size, uri=redact_uri(ds.uri) or None,
                        fetched=_now())  # SEC-002: the state file never holds a credential
    if tree_path is not None:
        rec.tree = tree_path.relative_to(project.state_file.parent).as_posix()
    return rec


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")

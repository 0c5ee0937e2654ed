"""One dataset's fetch, described once (SCHEMA.md §11): the :class:`Job`.

A job is built once per dataset and run: its model, where it goes (its target), the
declared checksum parsed, the host it downloads from (for the per-host cap, FET-007) and
whether it is forced. Every part of the engine -- the inline check, the lock, the source
kind, the publish and the record -- reads the job instead of looking the dataset up again.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property
from typing import TYPE_CHECKING

from ..errors import ChecksumMismatch, DataManifestError
from ..io.places import host_of
from ..spec import checksum as _checksum
from ..spec.keys import is_git_uri

if TYPE_CHECKING:
    from ..project import Project
    from ..spec.manifest import Dataset
    from ..store.layout import Target


@dataclass(frozen=True)
class Job:
    """A dataset to fetch.

    ``name``: the dataset's name; ``dataset``: its model; ``target``: where it is published
    (a file, or a folder with ``target.is_dir``); ``declared``: its checksum as declared
    (``""`` when empty); ``parsed``: that checksum parsed (None when empty); ``forced``:
    download again even when present.
    """

    name: str
    dataset: "Dataset"
    target: "Target"
    declared: str
    parsed: "_checksum.Checksum | None"
    forced: bool

    @cached_property
    def host(self) -> str:
        """The host its source is on (``""`` when local; FET-007), parsed on first use (a
        present dataset never needs it)."""
        ds = self.dataset
        return host_of(ds.uri or (ds.uris[0] if ds.uris else ""))

    @classmethod
    def build(cls, project: "Project", name: str, *, forced: bool = False) -> "Job":
        """The job of dataset ``name``. Raises the project's errors (DM091 refused, DM060
        an unknown symbol, DM079 nothing to derive a key from, DM031 an unsafe key)."""
        ds = project.dataset(name)
        declared = ds.effective_checksum
        return cls(name, ds, project.target(name), declared,
                   _checksum.parse(declared) if declared else None, forced)

    @property
    def tree_declared(self) -> bool:
        """The declared checksum is a tree checksum (a folder, TREE-001)."""
        return self.parsed is not None and _checksum.is_tree(self.declared)

    @property
    def file_algorithm(self) -> str:
        """The algorithm a file's bytes are hashed in while they stream: the declared file
        checksum's, else sha256 (FET-004; an archive is hashed so too)."""
        if self.parsed is not None and not self.tree_declared:
            return self.parsed.algorithm
        return _checksum.DEFAULT_ALGORITHM

    @property
    def tree_algorithm(self) -> str:
        """The tree algorithm a folder is checksummed in: the declared one, else
        ``tree-sha256``."""
        return self.parsed.algorithm if self.tree_declared else "tree-sha256"

    @property
    def is_git(self) -> bool:
        """A git source (FET-014): its folder's checksum leaves ``.git`` out."""
        return bool(self.dataset.uri) and is_git_uri(self.dataset.uri)

    @property
    def excluded(self) -> tuple[str, ...]:
        """Names left out at the root of the dataset's folder when it is checksummed."""
        return (".complete", ".git") if self.is_git else (".complete",)

    def as_folder(self) -> "Job":
        """This job with a folder target (a fetcher or rsync wrote a folder, a git clone)."""
        if self.target.is_dir:
            return self
        from ..store.layout import Target

        return replace(self, target=Target(self.target.path, True))

    def check_file(self, digest: str) -> None:
        """FET-004: a file's ``digest`` (hex) against the declared file checksum. Raises
        :class:`~datamanifest.errors.ChecksumMismatch` (DM070)."""
        if self.parsed is not None and not self.tree_declared \
                and digest != self.parsed.hexdigest and not self.dataset.skip_checksum:
            raise ChecksumMismatch(self.name, self.file_algorithm, self.parsed.hexdigest, digest)

    def check_tree(self, checksum: str) -> None:
        """TREE-008/TREE-009: a folder's tree ``checksum`` against the declared one (DM070)."""
        if self.tree_declared and checksum != self.declared and not self.dataset.skip_checksum:
            raise ChecksumMismatch(self.name, self.tree_algorithm, self.parsed.hexdigest,
                                   checksum.partition(":")[2])


def build_or_error(project: "Project", name: str, forced: bool) -> "Job | DataManifestError":
    """The job of ``name``, or the error building it (the engine reports it as the
    dataset's failure when it gets to it)."""
    try:
        return Job.build(project, name, forced=forced)
    except DataManifestError as e:
        return e

"""Where a dataset lives and its control files (SCHEMA.md §7.1–§7.2, STO-001..STO-011).

For a dataset with target path ``T`` (a file, or a folder for extracted and
multi-URI datasets):

* staging ``T.tmp`` on the same file system, renamed onto ``T`` when verified (STO-007);
* lock ``T.lock`` (§7.3);
* completion marker ``T.complete`` for a file, ``T/.complete`` for a folder (STO-008);
  a target without its marker is absent (STO-009).
"""

from __future__ import annotations

import json
import os

from .atomic import sync_filesystem
import shutil
from dataclasses import dataclass
from pathlib import Path



MARKER = ".complete"


def status_of(target: bool, marker: bool, staging: bool) -> str:
    """STO-009: a dataset is present only with its marker; bytes without it are incomplete."""
    if target and marker:
        return "present"
    if target or staging:
        return "incomplete"
    return "missing"


def is_current(status: str, declared: str, marker: dict) -> bool:
    """STO-011: present, and the marker records the declared checksum (or none is declared)."""
    if status != "present":
        return False
    return not declared or marker.get("checksum", declared) == declared


def marker_path(path: Path, is_dir: bool) -> Path:
    """STO-005: ``T/.complete`` for a folder, ``T.complete`` for a file."""
    return path / MARKER if is_dir else path.with_name(path.name + MARKER)


@dataclass(frozen=True)
class Target:
    """The on-disk location of one dataset. ``is_dir`` for extracted / multi-URI datasets."""

    path: Path
    is_dir: bool

    @property
    def staging(self) -> Path:
        return self.path.with_name(self.path.name + ".tmp")

    @property
    def lock(self) -> Path:
        return self.path.with_name(self.path.name + ".lock")

    @property
    def marker(self) -> Path:
        return marker_path(self.path, self.is_dir)

    def status(self) -> str:
        """``"present"`` (marker there), ``"incomplete"`` (bytes, no marker) or ``"missing"``."""
        return status_of(self.path.exists(), self.marker.exists(), self.staging.exists())

    def read_marker(self) -> dict:
        """The marker's record ``{"checksum": str, "size": int}`` ({} for an empty marker)."""
        try:
            text = self.marker.read_text(encoding="utf-8")
            return json.loads(text) if text.strip() else {}
        except (OSError, ValueError):
            return {}

    def clear_staging(self) -> None:
        """Remove a staging leftover (only under the lock)."""
        s = self.staging
        if s.is_dir() and not s.is_symlink():
            shutil.rmtree(s)
        elif s.exists() or s.is_symlink():
            s.unlink()

    def publish(self, checksum: str, size: int, *, tree: str | None = None) -> None:
        """Rename the verified staging area onto the target, then write the marker (STO-007/008).

        An unmarked target left by an earlier crash is replaced; a marked one loses its
        marker first, so a replacement killed midway leaves an incomplete folder, never a
        complete-looking mix (STO-008). The marker records the checksum and size (bytes) of
        what was published and, for a folder, ``tree``: the tree checksum of its tree
        manifest, stored before (STO-012).
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.is_dir:
            sync_filesystem(self.staging)  # extracted or fetcher-written files were not fsynced
            if self.path.exists():
                self.marker.unlink(missing_ok=True)
                shutil.rmtree(self.path)
            os.rename(self.staging, self.path)
        else:
            self.marker.unlink(missing_ok=True)
            os.replace(self.staging, self.path)
        # The bytes were fsynced before the rename, so the marker never points at bytes a power
        # cut can lose; a lost rename or marker only means the dataset is fetched again.
        # No folder or marker fsync, then (three fsyncs per small dataset cost 1 ms here).
        record: dict = {"checksum": checksum, "size": size}
        if tree:
            record["tree"] = tree
        if not self.is_dir:
            record["mtime_ns"] = self.path.stat().st_mtime_ns  # for the fast verify (TREE-014)
        # written after the verified, durable publish (STO-008); a torn marker still marks
        # completion and only loses its informational content
        fd = os.open(self.marker, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, (json.dumps(record) + "\n").encode())
        finally:
            os.close(fd)


def pool_hit(candidate: Target, declared: str) -> bool:
    """POOL-003: is ``candidate`` complete and verified against ``declared``?

    A marker must record the declared checksum; a file without a marker is
    hashed (read only: nothing is ever written in a pool, POOL-004).
    """
    if not declared or not candidate.path.exists():
        return False
    if candidate.marker.exists():
        return candidate.read_marker().get("checksum") == declared
    if candidate.is_dir or not candidate.path.is_file():
        return False
    from ..tree import hash_file

    algo, _, hexdigest = declared.partition(":")
    return hash_file(str(candidate.path), algo)[0] == hexdigest

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

import shutil
from dataclasses import dataclass
from pathlib import Path

from .atomic import sync_filesystem

MARKER = ".complete"
#: the project's control folder, beside the manifest (STA-001)
STATE_DIR = ".datamanifest"
STATE_FILE = "state.toml"


def state_path(root: Path) -> Path:
    """``<project root>/.datamanifest/state.toml`` (STA-001)."""
    return root / STATE_DIR / STATE_FILE


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

    def present_marker(self) -> dict | None:
        """The marker's record when the dataset is present (STO-009: the target and its
        marker exist), else None: :meth:`status` and :meth:`read_marker` in one open and
        one stat. An empty or unreadable marker still marks completion ({}, STO-008)."""
        try:
            with open(self.marker, "rb") as f:
                text = f.read()
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError:
            text = b""
        if not os.path.exists(self.path):
            return None
        try:
            record = json.loads(text) if text.strip() else {}
        except ValueError:
            return {}
        return record if isinstance(record, dict) else {}

    def clear_staging(self) -> None:
        """Remove a staging leftover (only under the lock)."""
        import stat

        s = self.staging
        try:
            mode = os.lstat(s).st_mode  # one lstat: nothing there is the common case
        except FileNotFoundError:
            return
        if stat.S_ISDIR(mode):
            shutil.rmtree(s)
        else:
            s.unlink()  # a file, or a link (removed, never followed)

    def publish(self, checksum: str, size: int, *, tree: str | None = None,
                lock=None) -> None:
        """Rename the verified staging area onto the target, then write the marker (STO-007/008).

        The caller has judged the target (STO-018): absent, published by this tool (marked),
        or this tool's own interrupted work; ``lock`` (the held :class:`~datamanifest.store.
        lock.Lock`) is told first that the target is about to change (LCK-009). A marked
        target loses its marker first, so a replacement killed midway leaves an incomplete
        folder, never a complete-looking mix (STO-008). The marker records the checksum and
        size (bytes) of what was published and, for a folder, ``tree``: the tree checksum
        of its tree manifest, stored before (STO-012).
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if lock is not None:
            lock.mark_publishing()
        if self.is_dir:
            sync_filesystem(self.staging)  # extracted or fetcher-written files were not fsynced
            if os.path.lexists(self.path):
                self.marker.unlink(missing_ok=True)
                remove(self.path)
            os.rename(self.staging, self.path)
        else:
            self.marker.unlink(missing_ok=True)
            os.replace(self.staging, self.path)
        # The bytes were fsynced before the rename, so the marker never points at bytes a power
        # cut can lose; a lost rename or marker only means the dataset is fetched again.
        # No folder or marker fsync, then (three fsyncs per small dataset cost 1 ms here).
        self.mark(checksum, size, tree=tree)

    def mark(self, checksum: str, size: int | None, *, tree: str | None = None) -> None:
        """Write the completion marker of verified bytes at the target (STO-008): after a
        publish, or to adopt an unmarked target whose bytes verify (STO-018)."""
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


def remove(path: Path) -> None:
    """Delete a file, a link or a folder tree (a link is removed, never followed)."""
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)


def aside_name(path: Path, exists=os.path.lexists) -> Path:
    """STO-016: where an existing file or folder this tool did not publish is moved when the
    user asks (``--force``): ``<name>.~<n>~`` next to it, with the smallest ``n`` >= 1 that
    is free (the numbered-backup form of GNU ``cp --backup=numbered``)."""
    n = 1
    while exists(path.with_name(f"{path.name}.~{n}~")):
        n += 1
    return path.with_name(f"{path.name}.~{n}~")


def move_aside(path: Path) -> Path:
    """STO-016: move ``path`` (a file, a folder or a link) to :func:`aside_name` in the same
    folder; nothing is deleted, and an earlier ``.~<n>~`` is never replaced (a file or a
    link moves by a hard link and an unlink, which fail rather than replace). Returns the
    new path."""
    import errno

    while True:
        new = aside_name(path)
        try:
            if os.path.isdir(path) and not os.path.islink(path):
                os.rename(path, new)  # onto an existing non-empty folder: ENOTEMPTY
            else:
                try:
                    os.link(path, new, follow_symlinks=False)
                except OSError as e:
                    if e.errno == errno.EEXIST:
                        raise
                    os.rename(path, new)  # a file system without hard links
                else:
                    os.unlink(path)
            return new
        except OSError as e:
            if e.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise


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
    from ..io.local import hash_file

    algo, _, hexdigest = declared.partition(":")
    return hash_file(str(candidate.path), algo)[0] == hexdigest

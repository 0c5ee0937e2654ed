"""The receiving end of ``push`` and ``pull`` (SCHEMA.md §23, SYNC-003, SYNC-005, SYNC-006).

A :class:`Receiver` takes the object's lock, lets the bytes arrive in the staging area
``<new>.tmp``, verifies them against the object's checksum (a file), tree checksum (a folder)
or per-format digests (an artifact), renames, writes the marker last and records the object in
its own state file. :func:`serve_receive` is ``datamanifest receive``: the far receiver of a
push, driven by one JSON line each way.
"""

from __future__ import annotations

import json
import os
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ..errors import ChecksumMismatch, ClobberError, DataManifestError
from ..spec.checksum import TREE_ALGORITHMS
from ..spec import cache
from ..store.atomic import fsync_dir, sync_filesystem, write_bytes
from ..store import trees
from ..store.lock import Lock, reclaim_project_locks, reclaim_stale
from ..store.state import DatasetRecord, update_state
from .actions import _marker, _remove, lock_object
from .inventory import OsView

MARKER = ".complete"


def _record_checksum(kind: str, marker_text: str) -> str:
    """What identifies an object's bytes in its marker: a dataset's checksum, an artifact's
    whole marker (its formats' digests and config digest)."""
    if kind == "cached":
        return json.dumps(cache.parse_marker(marker_text) or {}, sort_keys=True) + \
            str(cache.read_marker(marker_text).config or "")
    try:
        rec = json.loads(marker_text) if marker_text.strip() else {}
    except ValueError:
        return ""
    return rec.get("checksum", "") if isinstance(rec, dict) else ""


def verify_staged(path: str, *, kind: str, is_dir: bool, marker_text: str,
                  manifest_out: Path | None = None, base: str | None = None) -> int:
    """Verify the staged copy at ``path`` against ``marker_text`` (SYNC-003); its size in
    bytes. Raises :class:`~datamanifest.errors.ChecksumMismatch` (DM070)."""
    from ..cache.artifact import digest_entry
    from ..io.local import hash_file
    from ..tree import walk, write_manifest

    if kind == "cached":
        marker = cache.read_marker(marker_text)
        if not marker.formats:
            raise ChecksumMismatch(path, "sha256", "a marker listing digests", "an empty marker")
        total = 0
        for fmt, rec in marker.formats.items():
            entry = Path(path) / rec["file"]
            got = digest_entry(entry, entry.is_dir()) if entry.exists() else ("absent", 0)
            if got != (rec["checksum"], rec["size"]):
                raise ChecksumMismatch(f"{path} ({fmt})", rec["checksum"].split(":")[0],
                                       rec["checksum"], got[0])
            total += got[1]
        if marker.config:
            data = (Path(path) / cache.CONFIG).read_bytes() if (Path(path) / cache.CONFIG).exists() \
                else b""
            if cache.config_digest(data) != marker.config:
                raise ChecksumMismatch(f"{path}/{cache.CONFIG}", "sha256", marker.config,
                                       cache.config_digest(data))
        return total
    checksum = _record_checksum(kind, marker_text)
    if is_dir and checksum.partition(":")[0] not in TREE_ALGORITHMS:
        tree = json.loads(marker_text).get("tree")  # an extracted archive (STO-012)
        checksum = tree if isinstance(tree, str) else checksum
    algo, _, hexdigest = checksum.partition(":")
    if not hexdigest:
        raise ChecksumMismatch(path, "sha256", "a checksum", "none recorded")
    if is_dir and manifest_out is not None:
        # STO-012: the tree manifest is written by the same walk that verifies the folder
        result = write_manifest(path, manifest_out, algo, base=base)
        got, size = result.value, result.total_size
    elif is_dir:
        result = walk(path, algo)
        got, size = result.value, result.total_size
    else:
        got, size = hash_file(path, algo)
    if got != hexdigest:
        raise ChecksumMismatch(path, algo, hexdigest, got)
    return size


@dataclass
class Receiver:
    """The receiving end of one object (SYNC-003, SYNC-005).

    ``location``: where the object goes (absolute); ``kind``, ``is_dir``; ``key`` (a
    dataset's storage key, or an artifact's cache key) and ``record_key`` (an artifact's
    ``<cachetype>[@<version>]``) name its state record in ``state_file`` (None: record
    nothing), whose paths are relative to ``project_root``.
    """

    location: str
    kind: str
    is_dir: bool
    key: str
    record_key: str = ""
    state_file: str | None = None
    project_root: str = ""
    datacache_dir: str | None = None
    stale_age: float = 30.0
    force: bool = False  # move aside what this tool did not publish (STO-016)
    _lock: Lock | None = None
    moved_aside: str | None = None

    @property
    def staging(self) -> str:
        return self.location + ".tmp"

    def current(self, identity: str) -> bool:
        """Is the object complete here with this checksum (an artifact: this marker)?"""
        text = OsView().read(_marker(self.location, self.is_dir))
        done = text is not None and bool(identity) and _record_checksum(self.kind, text) == identity
        if done and self._lock is None and os.path.lexists(self.location + ".lock"):
            # LCK-007: a receiver killed after publishing left its lock (and perhaps the
            # state file's, released just before)
            reclaim_stale(Path(self.location + ".lock"), self.stale_age)
            if self.state_file and self.project_root:
                reclaim_project_locks(Path(self.project_root), self.stale_age)
        if done and self._lock is None and self.kind == "data" and self.state_file:
            # SYNC-003: a receiver killed after its marker and before its state record; the
            # object is whole (its marker is last but one), so it is recorded now
            from ..store.state import StateError, read_state

            try:
                recorded = self.key in read_state(Path(self.state_file)).datasets
            except StateError:
                recorded = True  # a torn state file is not this command's to rewrite
            if not recorded:
                size = json.loads(text or "{}").get("size") if (text or "").strip() else None
                self._record(text or "", size if isinstance(size, int) else 0)
        return done

    def begin(self) -> None:
        """Take the lock without waiting (DM131) and prepare the staging area."""
        os.makedirs(os.path.dirname(self.location), exist_ok=True)
        self._lock = lock_object(self.location, self.stale_age)
        try:
            self._clear_way()
        except BaseException:
            self.release()
            raise
        s = self.staging
        if os.path.lexists(s) and os.path.isdir(s) != self.is_dir:
            _remove(s)  # a leftover of the other shape
        if self.is_dir:
            os.makedirs(s, exist_ok=True)

    def _clear_way(self) -> None:
        """STO-018/SYNC-007: an existing object without its marker is replaced only when a
        killed receiver of this tool was publishing it (LCK-009); with ``force`` it is moved
        aside (STO-016); otherwise DM182, before any byte is transferred."""
        loc = self.location
        if not os.path.lexists(loc) or os.path.lexists(_marker(loc, self.is_dir)):
            return
        if self._lock is not None and self._lock.inherited:
            return
        if self.force:
            from ..store.layout import move_aside

            if self._lock is not None:
                self._lock.mark_publishing()
            self.moved_aside = str(move_aside(Path(loc)))
            return
        raise ClobberError(f"{loc} exists and datamanifest did not publish it (no completion "
                           "marker); it was left as it is", code="DM182", path=loc,
                           hint="move it away yourself, or pass --force to move it aside "
                                "(renamed, never deleted)")

    def commit(self, marker_text: str) -> int:
        """Verify the staged copy, publish it, write the marker last, record it; bytes."""
        # STO-012: a folder dataset arriving in a project keeps its tree manifest
        keeps_tree = self.kind == "data" and self.is_dir and bool(self.project_root)
        manifest_tmp = trees.temp(Path(self.project_root)) if keeps_tree else None
        try:
            size = verify_staged(self.staging, kind=self.kind, is_dir=self.is_dir,
                                 marker_text=marker_text, manifest_out=manifest_tmp,
                                 base=self.location)
        except BaseException as e:
            if isinstance(e, ChecksumMismatch):
                _remove(self.staging)
            if manifest_tmp is not None:
                manifest_tmp.unlink(missing_ok=True)
            raise
        if self.is_dir:
            sync_filesystem(self.staging)
        else:
            fd = os.open(self.staging, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        tree_path = tree_sum = None
        if manifest_tmp is not None:  # STO-012: the tree is stored before the marker
            tree_sum = self._tree_checksum(marker_text)
            tree_path = trees.store(Path(self.project_root), self.key, manifest_tmp, tree_sum)
        marker = _marker(self.location, self.is_dir)
        if self._lock is not None:
            self._lock.mark_publishing()  # LCK-009
        if os.path.lexists(marker):
            os.unlink(marker)
        if os.path.lexists(self.location):
            _remove(self.location)  # this tool's own (judged in begin, STO-018)
        os.replace(self.staging, self.location)
        fsync_dir(Path(self.location).parent)
        if self.kind == "cached":
            text = marker_text
        else:
            rec: dict[str, Any] = {"checksum": _record_checksum(self.kind, marker_text),
                                   "size": size}
            tree = json.loads(marker_text).get("tree") if self.is_dir else None
            if isinstance(tree, str):
                rec["tree"] = tree
            elif tree_sum is not None:
                rec["tree"] = tree_sum
            if not self.is_dir:
                rec["mtime_ns"] = os.stat(self.location).st_mtime_ns
            text = json.dumps(rec) + "\n"
        write_bytes(marker, text.encode("utf-8"))
        self._record(marker_text, size, tree_path)
        return size

    def _tree_checksum(self, marker_text: str) -> str:
        """The tree checksum a folder dataset is verified by: its checksum, or for an
        extracted archive the ``tree`` its sender's marker records (STO-012)."""
        checksum = _record_checksum(self.kind, marker_text)
        if checksum.partition(":")[0] in TREE_ALGORITHMS:
            return checksum
        tree = json.loads(marker_text).get("tree")
        return tree if isinstance(tree, str) else checksum

    def _record(self, marker_text: str, size: int, tree_path: Path | None = None) -> None:
        if not self.state_file:
            return
        path = cache.relative_to_root(self.location, self.project_root)
        if self.kind == "data":
            checksum = _record_checksum("data", marker_text)
            algo, _, hexd = checksum.partition(":")
            rec = DatasetRecord(storage_path=path, checksum=checksum or None,
                                sha256=hexd if algo == "sha256" else None, size=size)
            if tree_path is not None:
                rec.tree = tree_path.relative_to(Path(self.state_file).parent).as_posix()
            update_state(Path(self.state_file), {self.key: rec}, stale_age=self.stale_age,
                         datacache_dir=self.datacache_dir)
        else:
            formats = sorted((cache.read_marker(marker_text).formats or {}).keys()) or [""]
            h = self.key.rsplit("/", 1)[1]
            update_state(Path(self.state_file), {}, stale_age=self.stale_age,
                         datacache_dir=self.datacache_dir,
                         instances=[(self.record_key, h, path, "", f) for f in formats])

    def release(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None


def serve_receive(receiver: Receiver, identity: str, stdin: IO[str], stdout: IO[str]) -> int:
    """The far end of a push (SYNC-006): one JSON line out (``{"staging"}``, ``{"status":
    "current"}`` or ``{"error"}``), the marker in (``{"marker": text}``), the outcome out.
    End of input or a hang-up releases the lock and publishes nothing. Exit status."""

    def say(obj: dict[str, Any]) -> None:
        stdout.write(json.dumps(obj) + "\n")
        stdout.flush()

    def hang_up(signum, frame):  # noqa: ARG001
        raise SystemExit(1)

    previous = {}
    for sig in (signal.SIGHUP, signal.SIGTERM, signal.SIGPIPE):
        previous[sig] = signal.signal(sig, hang_up)
    def failed(e: Exception) -> int:
        if isinstance(e, DataManifestError):
            say({"error": {"code": e.code, "message": e.message}})
        else:  # OSError: this end's store cannot be written (DIAG-006: coded, no traceback)
            say({"error": {"code": "DM137", "message": f"{getattr(e, 'strerror', None) or e}: "
                                                       f"{getattr(e, 'filename', '') or ''}"}})
        return 1

    try:
        if receiver.current(identity):
            say({"status": "current"})
            return 0
        try:
            receiver.begin()
        except (DataManifestError, OSError) as e:
            return failed(e)
        if receiver.current(identity):  # it arrived while we waited for the lock (LCK-003)
            say({"status": "current"})
            return 0
        say({"staging": receiver.staging})
        line = stdin.readline()
        if not line.strip():
            say({"error": {"code": "DM137", "message": "the sender ended before the marker; "
                                                       "nothing was published"}})
            return 1
        try:
            marker_text = json.loads(line)["marker"]
            size = receiver.commit(marker_text)
        except (DataManifestError, OSError) as e:
            return failed(e)
        except (ValueError, KeyError, TypeError) as e:
            say({"error": {"code": "DM137",
                           "message": f"malformed request ({type(e).__name__}: {e})"}})
            return 1
        say({"status": "published", "bytes": size})
        return 0
    finally:
        receiver.release()
        for sig, handler in previous.items():  # a caller in the same process keeps its own
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)

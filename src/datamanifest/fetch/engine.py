"""The fetch engine: verified, atomic, locked, parallel materialization (SCHEMA.md §11).

For each dataset, in ``requires`` order and at most ``jobs`` at a time:

1. a present dataset (marker there, recording the declared checksum) is left
   as it is, without re-hashing (FET-005);
2. otherwise the dataset's lock is taken (LCK-001) and completion re-checked
   (LCK-003);
3. bytes stream from the source into the staging area while being hashed in
   the declared algorithm, or sha256 when none is declared (FET-004);
4. a mismatch raises DM070 and publishes nothing; archives are extracted
   after member validation (FET-020);
5. the staging area is renamed onto the target and the marker written (STO-007);
6. the state file is updated once per run; empty checksums are filled into
   the manifest once per run (SUM-003).

The first SIGINT stops every worker thread and forked worker within a second (FET-023,
LCK-008): downloads end at their next chunk (a blocked read is woken by shutting its
socket), each worker releases its lock and keeps an HTTP download's partial bytes with the
response's validator for a resume (FET-012), and :meth:`Fetcher.run` raises
``KeyboardInterrupt``.
"""

from __future__ import annotations

import collections
import datetime as _dt
import json
import os
import threading
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any


from ..errors import ChecksumMismatch, ClobberError, DataManifestError, FetchError
from ..interrupt import GRACE, Cancelled, Stop, bound, sigint_stops
from ..progress import NullProgress, Progress, Watchdog
from ..spec import checksum as _checksum
from ..spec.secrets import redact_text, redact_uri
from ..store.layout import Target, is_current, move_aside, pool_hit
from ..store.lock import Lock, reclaim_project_locks, reclaim_stale
from ..spec.resolution import fetch_rung
from ..spec.tree import leaf_algorithm
from ..store.state import DatasetRecord, update_state
from .bindings import find_peer, run_fetcher, run_peer
from . import archive as _archive
from ..io.http import HTTPStream, Interrupted
from ..io.local import FileStream
from ..io.places import host_of, local_path, open_stream, scheme_of
from .sources import SSH_SCHEMES, git_clone, is_git, is_rsync_folder, rsync_copy
from .stream import stream_to_file

if TYPE_CHECKING:  # a project is handed in; the project imports this module to fetch
    from ..project import Project


#: fork worker processes when at least this many datasets need fetching
PROCESS_MIN = 64
#: datasets handed to a worker process at once (at most)
BATCH_MAX = 16
#: above this many distinct hosts, threads are used (one semaphore per host, FET-007)
MAX_FORK_HOSTS = 256

_FORKED: "Fetcher | None" = None


def _forked_batch(names: list[str]) -> tuple[list["Outcome"], dict, dict]:
    """Run in a forked worker: fetch ``names`` with the parent's fetcher (inherited).

    Returns the outcomes with the state records and checksum fills they produced,
    which the parent merges and writes once (STA-007, SUM-003).
    """
    import signal

    fetcher = _FORKED
    assert fetcher is not None
    fetcher.progress = NullProgress()  # the parent draws progress as batches return
    fetcher._records, fetcher._fill = {}, {}
    fetcher._defer = []
    # FET-023: a SIGINT (from the terminal, or passed on by the parent) stops this batch;
    # the worker itself lives on until the parent shuts the pool down
    fetcher.stop = Stop()
    signal.signal(signal.SIGINT, lambda signum, frame: fetcher.stop.set())
    outcomes = [fetcher._safe_one(name) for name in names]
    deferred = [o for o in outcomes if isinstance(o, _Deferred)]
    if deferred:
        # STO-007: the staged files of the batch are fsynced back to back, then published.
        # The first fsync's journal commit carries the others' data and metadata along
        # (ext4/xfs ordered mode), so a batch costs about one commit instead of one per file;
        # unlike syncfs, nothing else on the file system is waited for.
        for out in deferred:
            try:
                fd = os.open(out.staging, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
            except OSError:
                pass  # publishing below then fails for this dataset, which is reported
        for i, out in enumerate(outcomes):
            if isinstance(out, _Deferred):
                try:
                    outcomes[i] = out.publish()
                    outcomes[i].waited = out.waited
                    outcomes[i].moved_aside = out.moved_aside
                except OSError as e:
                    outcomes[i] = Outcome(out.name, "failed", error=FetchError(
                        f"dataset {out.name!r}: {e.strerror or e}", code="DM071"))
                finally:
                    out.lock.release()
    return outcomes, fetcher._records, fetcher._fill


@dataclass
class _Deferred:
    """A verified download whose publish waits for the batch's sync; holds the dataset lock."""

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
    """The outcomes of a run: a mapping from each dataset's name to its :class:`Outcome`
    (``report["obs"].path``, ``.status``), in ``requires`` order (refused datasets
    first). ``outcomes`` lists them; :attr:`paths` maps each name to its path;
    ``filled``: datasets whose empty checksum was written into the manifest; ``workers``:
    ``"processes"`` (forked workers), ``"threads"``, or ``"none"`` when nothing needed
    fetching."""

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
        """The ``fetch --json`` document."""
        return {"ok": self.ok, "datasets": [o.as_json() for o in self.outcomes],
                "checksums_filled": self.filled, "workers": self.workers}

    @property
    def ok(self) -> bool:
        return all(o.status in ("fetched", "present", "skipped") for o in self.outcomes)

    @property
    def missing(self) -> list[str]:
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


class Fetcher:
    """Materialize datasets of a :class:`~datamanifest.project.Project`.

    ``jobs``: datasets fetched at once (default 4). ``lock_timeout``: seconds to
    wait for another process's lock (None: wait as long as it heartbeats). ``force``:
    download again even when present, every dataset (True) or these names. ``adopt``:
    dataset name -> a local file whose bytes stand in for the dataset's ``uri`` (AUT-010:
    copied through staging and verified like a download; the record keeps the ``uri``).
    ``move_aside``: an existing file or folder at a target that this tool did not publish
    is renamed ``<name>.~<n>~`` (STO-016) instead of refusing the dataset (DM182).
    ``trusted``: the caller vouches for the manifest (TRU-005: ``--trust``); otherwise a
    run that would run its code or write outside the project asks for trust first (DM180).
    """

    def __init__(self, project: Project, *, jobs: int = 4, progress: Progress | None = None,
                 lock_timeout: float | None = None, force: bool | set[str] = False,
                 offline: bool = False, per_host: int = 4, processes: bool = True,
                 adopt: dict[str, Path] | None = None, move_aside: bool = False,
                 trusted: bool = False) -> None:
        self.project = project
        self.jobs = max(1, jobs)
        self.progress = progress or NullProgress()
        self.lock_timeout = lock_timeout
        self.force = force
        self.adopt = adopt or {}
        self.move_aside = move_aside
        self.trusted = trusted
        self.offline = offline  # FET-006: resolve only what is already present
        self.per_host = max(1, per_host)  # FET-007: downloads from one host at once
        self.processes = processes  # many datasets: forked workers (see run)
        self._defer: list | None = None  # set in forked workers: publishes wait for one sync
        self._resumable: bool | None = None  # is there a resume folder at all (FET-012)
        self._hosts: dict[str, threading.BoundedSemaphore] = {}
        self._known_state = project.state_records()
        self._records: dict[str, DatasetRecord] = {}
        self._fill: dict[str, str] = {}
        self._mutex = threading.Lock()
        # CLI convention: a silent wait (a lock, a server that sends nothing) says what it
        # waits for after PATIENCE seconds (progress notes: a TTY, else the --verbose log)
        self._watchdog: Watchdog | None = None
        #: set by the first SIGINT during :meth:`run`, or by the caller, to stop the run
        #: (FET-023): running downloads end at their next chunk, nothing new starts
        self.stop = Stop()

    @property
    def watchdog(self) -> "Watchdog":
        if self._watchdog is None:
            with self._mutex:
                if self._watchdog is None:
                    self._watchdog = Watchdog(lambda text: self.progress.note(text))
        return self._watchdog

    # -- one dataset ----------------------------------------------------------------------
    def fetch_one(self, name: str, *, checked: bool = False) -> Outcome:
        """Fetch one dataset (no requirements). ``checked``: the caller just found it not
        current (run's inline check), so only the check under the lock is repeated."""
        ds = self.project.dataset(name)
        if ds.skip_download or ds.lazy_access:
            return Outcome(name, "skipped")
        target = self.project.target(name)
        declared = ds.effective_checksum
        forced = self._forced(name)
        if not forced and not checked and self._is_current(target, declared):
            return self._present(name, target)
        if not forced:
            for candidate in self.project.pool_candidates(name):  # POOL-002..POOL-004
                if pool_hit(candidate, declared):
                    rec = candidate.read_marker()
                    size = rec.get("size")
                    if size is None and candidate.path.is_file():
                        size = candidate.path.stat().st_size
                    out = Outcome(name, "present", candidate.path, declared, size, pool=True)
                    self._record(name, candidate, declared, size)
                    return out
        if self.offline:
            return Outcome(name, "missing", target.path, error=FetchError(
                f"dataset {name!r} is not present and --offline forbids fetching it",
                code="DM085", hint=f"run `datamanifest fetch {name}` when online"))
        self._check_links(name, target)
        stale = self.project.storage.lock_stale_age
        waited: list = []
        lock = Lock(target.lock, stale_age=stale, timeout=self.lock_timeout,
                    on_wait=lambda who: waited.append(self.watchdog.start(
                        f"{name}: {who}, which holds the lock {target.lock}")),
                    stop=self.stop)
        self.stop.check()
        try:
            lock.acquire()
        finally:
            for token in waited:
                self.watchdog.stop(token)
        keep = False  # a deferred publish keeps the lock until the batch's sync (_forked_batch)
        try:
            if not forced and self._is_current(target, declared):  # LCK-003
                out = self._present(name, target)
                out.waited = bool(waited)
                return out
            aside, adopted = self._clear_way(name, target, declared, lock, forced)
            if adopted is not None:
                adopted.waited = bool(waited)
                return adopted
            resume = self._resume_info(name, target)
            if resume is None:
                target.clear_staging()
            with self._host_slot(name):
                self.stop.check()  # a slot freed by a download that stopped
                out = self._download(name, target, declared, resume, lock)
            out.waited = bool(waited)
            if aside is not None:
                out.moved_aside = aside
            if isinstance(out, _Deferred):
                out.lock, keep = lock, True
            return out
        finally:
            if not keep:
                lock.release()

    def _clear_way(self, name: str, target: Target, declared: str, lock: Lock,
                   forced: bool) -> tuple[Path | None, "Outcome | None"]:
        """STO-018: never replace a file or folder this tool did not publish. Called under
        the dataset's lock, before anything is downloaded. An existing target is this
        tool's when it has its marker, or when the lock this run took over said a killed
        run had begun publishing it (LCK-009). An unmarked target whose bytes verify
        against the declared checksum is adopted: its marker is written and nothing is
        downloaded (crash recovery; not with ``force``). Otherwise, with ``move_aside``, it
        is renamed ``<name>.~<n>~`` (STO-016); else DM182 names it and it is left as it is.

        Returns (where it was moved, or None; the outcome of an adoption, or None)."""
        path = target.path
        if not os.path.lexists(path) or os.path.lexists(target.marker):
            return None, None
        if not forced and declared and not path.is_symlink():
            out = self._adopt(name, target, declared)
            if out is not None:
                return None, out
        if lock.inherited:
            return None, None  # a killed run of this tool was publishing it (LCK-009)
        if self.move_aside:
            lock.mark_publishing()
            return move_aside(path), None
        kind = "link" if path.is_symlink() else "folder" if path.is_dir() else "file"
        raise ClobberError(
            f"dataset {name!r}: {path} is an existing {kind} that datamanifest did not publish "
            "(it has no completion marker" + (" and does not match the declared checksum)"
                                              if declared else ")") + "; it was left as it is",
            code="DM182", path=str(path), file=str(self.project.manifest_path),
            hint=f"move it away yourself, point the dataset elsewhere, or pass --force to move "
                 f"it aside to {path.name}.~N~ (never deleted) and fetch")

    def _adopt(self, name: str, target: Target, declared: str) -> "Outcome | None":
        """STO-018: mark an unmarked target whose bytes verify against ``declared`` (a file
        checksum for a file, a tree checksum for a folder, STO-012 for its tree manifest)
        and record it; None when it does not verify or cannot be verified."""
        from ..io.local import hash_file

        parsed = _checksum.parse(declared)
        tree = _checksum.is_tree(declared)
        ds = self.project.dataset(name)
        if target.path.is_dir() != tree or ds.skip_checksum:
            return None
        if not tree:
            try:
                digest, size = hash_file(str(target.path), parsed.algorithm)
            except OSError:
                return None
            if digest != parsed.hexdigest:
                return None
            target.mark(declared, size)
            self._record(name, target, declared, size)
            return Outcome(name, "present", target.path, declared, size, adopted=True)
        from ..store import trees
        from ..store.atomic import mkstemp, sweep_temps
        from ..tree import write_manifest

        folder = self.project.root / ".datamanifest" / "trees"
        folder.mkdir(parents=True, exist_ok=True)
        sweep_temps(folder)
        fd, tmp = mkstemp(folder, "tree")
        os.close(fd)
        exclude = (".complete", ".git") if ds.uri and is_git(ds.uri) else (".complete",)
        try:
            result = write_manifest(target.path, tmp, parsed.algorithm, base=str(target.path),
                                    exclude_root=exclude)
        except Exception:
            Path(tmp).unlink(missing_ok=True)
            return None
        if result.checksum != declared:
            Path(tmp).unlink(missing_ok=True)
            return None
        tree_path = trees.store(self.project.root, ds.derived_key, Path(tmp), declared)
        target.mark(declared, result.total_size, tree=declared)
        self._record(name, target, declared, result.total_size, tree_path)
        return Outcome(name, "present", target.path, declared, result.total_size, adopted=True)

    def _check_links(self, name: str, target: Target) -> None:
        """STO-014: a keyed dataset's path is written only where it resolves: no folder
        between the datasets folder and the dataset, and none of the dataset's own paths
        (``T``, ``T.tmp``, ``T.lock``, the marker, ``T.part``), may be a symbolic link.
        The datasets folder itself may be one (a store on another disk). Raises
        FetchError DM096 naming the link; nothing is written."""
        root = self.project.storage.datasets_dir
        try:
            rel = target.path.relative_to(root)
        except ValueError:
            return  # an exact storage_path: the user's own location (STO-001)
        here = root
        links = []
        for part in rel.parts[:-1]:
            here = here / part
            if here.is_symlink():
                links.append(here)
                break
        for p in (target.path, target.staging, target.lock, target.marker,
                  target.path.with_name(target.path.name + ".part")):
            if p.is_symlink():
                links.append(p)
        if links:
            raise FetchError(
                f"dataset {name!r}: {links[0]} is a symbolic link (to "
                f"{os.readlink(links[0])!r}); writing through it could land outside the store",
                code="DM096", file=str(self.project.manifest_path),
                hint=f"remove the link, or point the dataset's storage_path at the real "
                     "location (an exact storage_path may be anywhere)")

    def _forced(self, name: str) -> bool:
        return self.force is True or (not isinstance(self.force, bool) and name in self.force)

    def _host_of(self, name: str) -> str:
        """The host a dataset downloads from ("" for local sources), for the cap of FET-007."""
        ds = self.project.dataset(name)
        return host_of(ds.uri or (ds.uris[0] if ds.uris else ""))

    def _host_slot(self, name: str) -> threading.BoundedSemaphore:
        """The semaphore bounding concurrent downloads from dataset ``name``'s host (FET-007)."""
        host = self._host_of(name)
        with self._mutex:
            sem = self._hosts.get(host)
            if sem is None:
                sem = self._hosts[host] = threading.BoundedSemaphore(
                    self.per_host if host else self.jobs)
        return sem

    def _quick_present(self, name: str) -> Outcome | None:
        """The outcome of a dataset that is already current, checked inline; else None."""
        if self._forced(name):
            return None
        ds = self.project.dataset(name)
        if ds.skip_download or ds.lazy_access:
            return Outcome(name, "skipped")
        try:
            target = self.project.target(name)
        except DataManifestError:
            return None
        status = target.status()
        marker = target.read_marker() if status == "present" else {}
        if not is_current(status, ds.effective_checksum, marker):
            return None
        return self._present(name, target, marker)

    def _is_current(self, target: Target, declared: str) -> bool:
        status = target.status()
        return is_current(status, declared, target.read_marker() if status == "present" else {})

    def _present(self, name: str, target: Target, marker: dict | None = None) -> Outcome:
        rec = target.read_marker() if marker is None else marker
        if os.path.lexists(target.lock):  # a holder killed after publishing (LCK-004)
            reclaim_stale(target.lock, self.project.storage.lock_stale_age)
        out = Outcome(name, "present", target.path, rec.get("checksum", ""), rec.get("size"))
        self._record(name, target, out.checksum, out.size)
        self._maybe_fill(name, out)
        return out

    def _resume_path(self, name: str) -> Path:
        import hashlib

        key = self.project.dataset(name).derived_key
        return self.project.root / ".datamanifest" / "resume" / (
            hashlib.sha256(key.encode()).hexdigest()[:32] + ".json")

    def _resume_info(self, name: str, target: Target) -> dict | None:
        """FET-012: what an interrupted download of this dataset left to resume, if anything."""
        import json as _json

        if self._resumable is None:  # looked up once per run: usually there is nothing
            self._resumable = (self.project.root / ".datamanifest" / "resume").is_dir()
        if not self._resumable:
            return None
        path = self._resume_path(name)
        try:
            info = _json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        ds = self.project.dataset(name)
        dest = Path(info.get("file", ""))
        if info.get("uri") != redact_uri(ds.uri) or not dest.is_file() \
                or not info.get("validator"):
            path.unlink(missing_ok=True)
            return None
        info["offset"] = dest.stat().st_size
        return info

    def _download(self, name: str, target: Target, declared: str,
                  resume: dict | None = None, lock: Lock | None = None) -> Outcome:
        ds = self.project.dataset(name)
        parsed = _checksum.parse(declared) if declared else None
        tree_declared = bool(parsed) and _checksum.is_tree(declared)
        # the archive's bytes are hashed in the declared file algorithm, else sha256
        algorithm = parsed.algorithm if parsed and not tree_declared else _checksum.DEFAULT_ALGORITHM
        base = self.project.root
        manifest_tmp: Path | None = None
        tree_sum = ""
        defer = False
        streamed: dict | None = None  # rel -> (size, mtime_ns, digest) of files hashed once

        def check_file(digest: str) -> None:
            """FET-004: a file's digest against the declared file checksum."""
            if parsed is not None and not tree_declared and digest != parsed.hexdigest \
                    and not ds.skip_checksum:
                raise ChecksumMismatch(name, algorithm, parsed.hexdigest, digest)

        def hash_staged() -> tuple[int, str]:
            """(size in bytes, digest) of what a fetcher or rsync staged, verified; a folder is
            (0, "") here and verified by its tree checksum below."""
            if target.is_dir:
                return 0, ""
            from ..io.local import hash_file

            digest, size = hash_file(str(target.staging), algorithm)
            check_file(digest)
            return size, digest
        try:
            if ds.virtual:
                # CHK-030: the chunk manifest of the sources is the dataset
                size, digest = self._virtualize(name, ds, target, declared)
                algorithm = "sha256"
            elif ds.uris:
                # each file is hashed as it streams in; the tree walk reuses those digests
                leaf = leaf_algorithm(parsed.algorithm if tree_declared else "tree-sha256")
                size, streamed = self._fetch_uris(name, ds.uris, target, leaf)
                digest = ""
            elif (rung := fetch_rung(ds, "python"))["rung"] in ("own-fetcher", "shell"):
                # LAD-001/LAD-002/LAD-020: the fetcher writes download_path = the staging path
                run_fetcher(self.project, name, rung, target.staging, self._variables(name))
                if not target.staging.exists():
                    raise FetchError(f"dataset {name!r}: the fetcher wrote nothing at "
                                     f"{target.staging}", code="DM084",
                                     hint="a fetcher must write the dataset at download_path")
                if target.staging.is_dir() and not target.is_dir:
                    target = Target(target.path, True)
                size, digest = hash_staged()
            elif ds.uri and scheme_of(ds.uri) in SSH_SCHEMES:
                # FET-015: rsync over SSH; a path ending in "/" is a folder
                if is_rsync_folder(ds.uri) and not target.is_dir:
                    target = Target(target.path, True)
                rsync_copy(ds.uri, target.staging)
                size, digest = hash_staged()
            elif ds.uri and is_git(ds.uri):
                # FET-014: a shallow clone is a folder dataset; its checksum leaves out .git
                if not target.is_dir:
                    target = Target(target.path, True)
                git_clone(ds.uri, target.staging, ds.branch, base)
                size, digest = 0, ""
            elif ds.uri:
                # in a forked batch, a file's fsync is replaced by one sync of the batch
                defer = self._defer is not None and not ds.extract
                dest = target.path.with_name(target.path.name + ".part") if ds.extract else target.staging
                dest.parent.mkdir(parents=True, exist_ok=True)
                resumable = scheme_of(ds.uri) in ("http", "https") and name not in self.adopt
                where = self._host_of(name) or ds.uri
                watch = self.watchdog.start(f"{name}: an answer from {where}")
                try:
                    if name in self.adopt:  # AUT-010: bytes already on this machine
                        src_cm = FileStream(self.adopt[name])
                    elif resume is not None and resumable:
                        src_cm = HTTPStream(ds.uri, resume["offset"], resume["validator"])
                    else:
                        src_cm = open_stream(ds.uri, base)
                except BaseException:
                    self.watchdog.stop(watch)
                    raise
                self.watchdog.alive(watch, f"{name}: bytes from {where}")

                def advance(n: int, task=None) -> None:
                    self.watchdog.alive(watch)
                    self.progress.advance(task, n)

                with src_cm as src, self.stop.on_abort(src.abort):
                    appending = bool(getattr(src, "resumed", False))
                    task = self.progress.start(name, src.size)
                    try:
                        digest, size = stream_to_file(src.chunks(), dest, algorithm,
                                                      lambda n: advance(n, task),
                                                      size_hint=src.size, append=appending,
                                                      durable=not defer, stop=self.stop)
                    except (Interrupted, Cancelled) as cut:
                        # FET-012/FET-023: a body cut or a stop keeps the bytes for a resume
                        validator = getattr(cut, "validator", None) or \
                            getattr(src, "validator", None)
                        if resumable and validator and dest.is_file():
                            self._save_resume(name, ds.uri, dest, validator)
                            cut.kept = True
                        raise
                    finally:
                        self.progress.finish(task)
                        self.watchdog.stop(watch)
                if self._resumable:
                    self._resume_path(name).unlink(missing_ok=True)
                check_file(digest)
                if ds.extract:
                    fmt = ds.effective_format
                    _archive.extract(dest, "tar.gz" if fmt == "tgz" else fmt, target.staging,
                                     max_bytes=self.project.storage.resolved.get(
                                         "max_extract_bytes"))
                    dest.unlink()
            elif rung["rung"] == "delegation" and (peer := find_peer(rung.get("language", ""))):
                # LAD-003: the peer writes into the shared store; we verify what it wrote
                if lock is not None:
                    lock.mark_publishing()  # the peer writes the target in place (LCK-009)
                run_peer(self.project, name, peer, self.project.storage.datasets_dir)
                return self._after_peer(name, target, declared)
            else:
                hint = ("its only fetcher is another language's; no peer tool for it was found "
                        "on PATH (LAD-003)" if rung["rung"] == "delegation" else
                        "add uri, uris, fetcher or shell")
                raise FetchError(f"dataset {name!r} has nothing this tool can fetch it from",
                                 code="DM079", hint=hint)
            checksum = f"{algorithm}:{digest}" if digest else ""
            if target.is_dir:
                # TREE-008/TREE-009: verify the staged folder before publishing
                tree_algo = parsed.algorithm if tree_declared else "tree-sha256"
                manifest_tmp, tree_sum, tree_size = self._tree_of(
                    target, tree_algo, exclude=(".complete", ".git") if ds.uri and is_git(ds.uri)
                    else (".complete",), known=streamed)
                size = tree_size  # a folder (an extracted archive) counts the bytes of its tree
                if tree_declared and tree_sum != declared and not ds.skip_checksum:
                    raise ChecksumMismatch(name, tree_algo, parsed.hexdigest,
                                           tree_sum.partition(":")[2])
                if tree_declared or not checksum or not declared:
                    checksum = tree_sum
        except BaseException as exc:
            if not getattr(exc, "kept", False):
                target.clear_staging()
                part = target.path.with_name(target.path.name + ".part")
                part.unlink(missing_ok=True)
                self._resume_path(name).unlink(missing_ok=True)
            if manifest_tmp is not None:
                manifest_tmp.unlink(missing_ok=True)
            raise
        if defer and manifest_tmp is None:
            return _Deferred(name, target.staging,
                             lambda: self._publish(name, target, checksum, size, None, "", lock))
        return self._publish(name, target, checksum, size, manifest_tmp, tree_sum, lock)

    def _virtualize(self, name: str, ds: Any, target: Target, declared: str) -> tuple[int, str]:
        """Index the dataset's sources into a chunk manifest (CHK-030), write it at the
        staging path, durable, and check its checksum against the declared one (FET-004).
        Returns (size in bytes, sha256 hex digest of the document's canonical JSON)."""
        from ..virtual import build, document


        def absolute(uri: str) -> str:
            return uri if scheme_of(uri) != "file" else local_path(uri, self.project.root
                                                                   ).resolve().as_uri()

        sources = [absolute(u) for u in ([ds.uri] if ds.uri else ds.uris)]
        task = self.progress.start(name, len(sources))
        try:
            manifest = build.virtualize(sources, concat_dim=ds.concat_dim or None,
                                        progress=lambda n: self.progress.advance(task, n))
        finally:
            self.progress.finish(task)
        doc = manifest.as_json()
        if any(redact_uri(s["url"]) != s["url"] for s in doc.get("sources", [])):
            # SEC-002: the published document never holds a credential; loading the
            # dataset maps the redacted URLs back to the manifest's (load.py)
            from ..spec.chunks import document_checksum

            for s in doc["sources"]:
                s["url"] = redact_uri(s["url"])
            doc["checksum"] = document_checksum(doc)
        data = document.dumps(doc).encode("utf-8")
        from ..store.atomic import write_bytes

        target.staging.parent.mkdir(parents=True, exist_ok=True)
        write_bytes(target.staging, data)
        digest = doc["checksum"].partition(":")[2]
        parsed = _checksum.parse(declared) if declared else None
        if parsed is not None and not ds.skip_checksum and \
                (parsed.algorithm, parsed.hexdigest) != ("sha256", digest):
            raise ChecksumMismatch(name, parsed.algorithm, parsed.hexdigest, digest)
        return len(data), digest

    def _publish(self, name: str, target: Target, checksum: str, size: int | None,
                 manifest_tmp: Path | None, tree_sum: str, lock: Lock | None = None) -> Outcome:
        """Publish verified, durable staged bytes (STO-007/008) and record them."""
        ds = self.project.dataset(name)
        tree_path = None
        if manifest_tmp is not None:  # STO-012: the tree is stored before the marker
            from ..store import trees

            tree_path = trees.store(self.project.root, ds.derived_key, manifest_tmp, tree_sum)
        target.publish(checksum, size, tree=tree_sum if manifest_tmp is not None else None,
                       lock=lock)
        out = Outcome(name, "fetched", target.path, checksum, size)
        self._record(name, target, checksum, size, tree_path)
        self._maybe_fill(name, out)
        return out

    def _after_peer(self, name: str, target: Target, declared: str) -> Outcome:
        """Verify what a peer tool published into the shared store (LAD-021) and record it."""
        from ..io.local import hash_file
        from ..tree import walk

        ds = self.project.dataset(name)
        target = Target(target.path, target.path.is_dir())
        if not target.path.exists():
            raise FetchError(f"dataset {name!r}: the peer tool wrote nothing at {target.path}",
                             code="DM084")
        if target.is_dir:
            algo = declared.partition(":")[0] if _checksum.is_tree(declared) else "tree-sha256"
            checksum = walk(target.path, algo).checksum
        else:
            parsed = _checksum.parse(declared) if declared else None
            algo = parsed.algorithm if parsed else _checksum.DEFAULT_ALGORITHM
            checksum = f"{algo}:{hash_file(str(target.path), algo)[0]}"
        if declared and checksum != declared and not ds.skip_checksum:
            target.marker.unlink(missing_ok=True)  # the peer wrote in place: mark it incomplete
            raise ChecksumMismatch(name, algo, declared.partition(":")[2],
                                   checksum.partition(":")[2])
        if not target.marker.exists():  # a peer of an older spec may not write markers
            target.marker.write_text(json.dumps({"checksum": checksum}) + "\n")
        out = Outcome(name, "fetched", target.path, checksum, None)
        self._record(name, target, checksum, None)
        self._maybe_fill(name, out)
        return out

    def _variables(self, name: str) -> dict:
        """The fetcher variables of SH-006 (download_path is added by run_fetcher)."""
        ds = self.project.dataset(name)
        req_paths = []
        variables: dict = {}
        for i, req in enumerate(ds.requires, start=1):
            found = self.project.locate(req)
            path = str(found[0]) if found else str(self.project.target(req).path)
            req_paths.append(path)
            variables[f"path_{i}"] = path
            variables["path_" + "".join(c if c.isalnum() or c == "_" else "_" for c in req)] = path
        variables.update({
            "project_root": str(self.project.root), "uri": ds.uri, "key": ds.derived_key
            if (ds.key or ds.uri or ds.uris) else "", "version": ds.version, "doi": ds.doi,
            "format": ds.effective_format, "branch": ds.branch, "requires_paths": req_paths,
        })
        return variables

    def _save_resume(self, name: str, uri: str, dest: Path, validator: str) -> None:
        """FET-012: record what a resume needs (the uri, the partial file, the validator of
        the response it came from), after making the partial bytes durable: a resume
        trusts the file's length."""
        from ..store.atomic import write_text

        try:
            fd = os.open(dest, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError:
            return  # no durable prefix, no resume: the next run starts from byte 0
        self._resumable = True
        write_text(self._resume_path(name), json.dumps(  # SEC-002: no credential in it
            {"uri": redact_uri(uri), "file": str(dest), "validator": validator}) + "\n")

    def _tree_of(self, target: Target, algorithm: str,
                 exclude: tuple[str, ...] = (".complete",),
                 known: dict | None = None) -> tuple[Path, str, int]:
        """Walk the staged folder, writing its tree manifest; returns (manifest temp file,
        checksum, total size of the files in bytes).

        ``known``: digests of files already hashed (rel -> (size, mtime_ns, digest)), not re-read.
        """
        from ..store.atomic import mkstemp, sweep_temps
        from ..tree import write_manifest

        folder = self.project.root / ".datamanifest" / "trees"
        folder.mkdir(parents=True, exist_ok=True)
        sweep_temps(folder)  # of a run killed while writing its tree manifest (STO-013)
        fd, tmp = mkstemp(folder, "tree")
        os.close(fd)
        result = write_manifest(target.staging, tmp, algorithm, base=str(target.path),
                                exclude_root=exclude, known=known)
        return Path(tmp), result.checksum, result.total_size

    def _fetch_uris(self, name: str, uris: list[str], target: Target,
                    leaf: str) -> tuple[int, dict]:
        """Download each member into the staging folder, hashing it in ``leaf``.

        Returns (total bytes, rel -> (size, mtime_ns, digest)) for the tree walk.
        """
        from urllib.parse import urlsplit

        staging = target.staging
        staging.mkdir(parents=True)
        paths = [urlsplit(u).path for u in uris]
        common = os.path.commonpath([os.path.dirname(p) for p in paths]) if len(paths) > 1 \
            else os.path.dirname(paths[0])
        total = 0
        digests: dict = {}
        for uri, p in zip(uris, paths):
            rel = os.path.relpath(p, common) if common else p.lstrip("/")
            dest = staging / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            self.stop.check()
            with open_stream(uri, self.project.root) as src, self.stop.on_abort(src.abort):
                task = self.progress.start(f"{name}/{rel}", src.size)
                try:
                    digest, size = stream_to_file(src.chunks(), dest, leaf,
                                                  lambda n: self.progress.advance(task, n),
                                                  size_hint=src.size, stop=self.stop)
                finally:
                    self.progress.finish(task)
            total += size
            digests[Path(rel).as_posix()] = (size, dest.stat().st_mtime_ns, digest)
        return total, digests

    def _record(self, name: str, target: Target, checksum: str, size: int | None,
                tree_path: Path | None = None) -> None:
        ds = self.project.dataset(name)
        rec = dataset_record(self.project, name, target.path, checksum, size, tree_path)
        key = ds.derived_key
        old = self._known_state.get(key)
        if old is not None and (old.storage_path, old.checksum, old.size, old.tree) == (
                rec.storage_path, rec.checksum, rec.size, rec.tree):
            return  # nothing new to record: the state file is not rewritten (STA-007)
        with self._mutex:
            self._records[key] = rec

    def _maybe_fill(self, name: str, out: Outcome) -> None:
        ds = self.project.dataset(name)
        if ds.effective_checksum or ds.skip_checksum or not out.checksum:
            return
        with self._mutex:
            self._fill[name] = out.checksum
        out.filled = True

    # -- a dry run ----------------------------------------------------------------------------
    def plan(self, names: list[str] | None = None, *, probe: bool = True) -> list[dict]:
        """What :meth:`run` would do, without doing it (``fetch --dry-run``): one row per
        dataset in fetch order, ``{"name", "action", "uri", "uris", "target", "size",
        "checksum", "problem", "error"}``. ``action`` is ``fetch``, ``present`` (its
        target), ``pool`` (found in a read pool), ``state`` (where the state file records
        it), ``skip`` (skip_download, lazy_access) or ``refuse`` (MAN-012). ``size`` is in
        bytes: a present dataset's recorded size, a source's size (a local file's, an
        http(s) Content-Length from one HEAD request when ``probe``), else None. Nothing is
        locked, written or downloaded."""
        from ..io.places import probe as probe_source

        project = self.project
        wanted = None if names is None else [project.resolve(n) for n in names]
        rows: list[dict] = []
        if project.refused:
            asked = project.dataset_names() if wanted is None else list(dict.fromkeys(wanted))
            for n in asked:
                refusal = project.refusal(n)
                if refusal is not None:
                    rows.append({"name": n, "action": "refuse", "uri": None, "uris": [],
                                 "target": None, "size": None, "checksum": "", "problem": None,
                                 "error": refusal.as_diagnostic().as_json(),
                                 "errors": [d.as_json() for d in refusal.diagnostics]})
            wanted = [n for n in asked if n not in project.refused]
        for n in project.manifest.order(wanted):
            ds = project.dataset(n)
            row = {"name": n, "action": "fetch", "uri": redact_uri(ds.uri) or None,  # SEC-002
                   "uris": [redact_uri(u) for u in ds.uris],
                   "target": None, "size": None, "checksum": ds.effective_checksum,
                   "problem": None, "error": None}
            rows.append(row)
            if ds.skip_download or ds.lazy_access:
                row["action"] = "skip"
                continue
            try:
                target = project.target(n)
            except DataManifestError as e:
                row["action"], row["error"] = "fail", e.as_diagnostic().as_json()
                continue
            row["target"] = str(target.path)
            found = None if self._forced(n) else project.locate(n)
            if found is not None:
                row["action"] = {"target": "present"}.get(found[1], found[1])
                row["target"] = str(found[0])
                marker = Target(found[0], found[0].is_dir()).read_marker()
                row["size"] = marker.get("size") if marker.get("size") is not None else \
                    (found[0].stat().st_size if found[0].is_file() else None)
                continue
            if self.offline:
                row["action"] = "missing"
                continue
            if probe:
                sources = [ds.uri] if ds.uri else list(ds.uris)
                infos = [probe_source(u, project.root) for u in sources if u]
                sizes = [i["size"] for i in infos]
                row["size"] = sum(sizes) if sizes and None not in sizes else None
                problems = [i["problem"] for i in infos if i["problem"]]
                row["problem"] = redact_text(problems[0]) if problems else None
        self._plan_trust(rows)
        return rows

    def _plan_trust(self, rows: list[dict]) -> None:
        """``needs_trust`` of each row the run would fetch: what the run would be refused
        for (DM180, TRU-004) while the manifest is not trusted; absent otherwise."""
        from ..trust import granted_by, status

        todo = [r["name"] for r in rows if r["action"] in ("fetch", "missing")]
        if not todo or self.trusted or granted_by() is not None:
            return
        needs = self.project.trust_needs(fetch=todo)
        if self.offline:
            needs = [n for n in needs if n.kind == "read"]
        if not needs or status(self.project).trusted:
            return
        for r in rows:
            if r["name"] in todo:
                r["needs_trust"] = [n.what for n in needs if n.dataset in (None, r["name"])]

    # -- many datasets ----------------------------------------------------------------------
    def run(self, names: list[str] | None = None) -> FetchReport:
        """Fetch ``names`` (identifiers; all when None) and their requirements.

        Returns a :class:`FetchReport`; failures are reported, not raised. Datasets
        already current are resolved inline first (FET-005). When many remain
        (``PROCESS_MIN`` or more, ``jobs`` > 1, POSIX), they are fetched in batches by
        :attr:`workers` forked processes, so that the per-dataset Python work runs on
        every core; otherwise by ``jobs`` threads. Either way at most ``jobs``
        datasets and ``per_host`` downloads per host run at once (FET-003, FET-007).
        """
        project = self.project
        wanted = None if names is None else [project.resolve(n) for n in names]
        # FET-008 / MAN-012: refuse, before any download, every dataset whose closure has an
        # error; a clean dataset requires only clean ones, so the rest is fetched as usual
        refused: list[Outcome] = []
        if project.refused:
            asked = project.dataset_names() if wanted is None else list(dict.fromkeys(wanted))
            refused = [Outcome(n, "refused", error=project.refusal(n))
                       for n in asked if n in project.refused]
            wanted = [n for n in asked if n not in project.refused]
        order = project.manifest.order(wanted)
        requires = {n: [r for r in project.dataset(n).requires if r in order] for n in order}
        outcomes: dict[str, Outcome] = {}
        self.progress.total(len(order))
        quick: dict[str, Outcome] = {}
        for n in order:
            out = self._quick_present(n)  # FET-005: no thread, no lock, no network
            if out is not None:
                quick[n] = out
        pending = len(order) - len(quick)
        from ..trust import granted_by

        if pending and not self.trusted and granted_by() is None:
            # TRU-004/TRU-005: before anything runs or is written; offline, only pool reads
            todo = [n for n in order if n not in quick]
            needs = project.trust_needs(fetch=todo)
            if self.offline:
                needs = [n for n in needs if n.kind == "read"]
            if needs:
                from ..trust import require

                require(project, needs, action="fetch")
        processes = self._process_mode(pending, [n for n in order if n not in quick])
        # a ready queue in requires order: O(datasets + requirements) scheduling
        waiting = {n: len(requires[n]) for n in order}
        dependents: dict[str, list[str]] = {n: [] for n in order}
        for n in order:
            for r in requires[n]:
                dependents[r].append(n)
        ready = collections.deque(n for n in order if waiting[n] == 0)
        running: dict[Future, list[str]] = {}

        def finish(n: str, outcome: Outcome) -> None:
            outcomes[n] = outcome
            self.progress.done_one()
            for d in dependents[n]:
                waiting[d] -= 1
                if waiting[d] == 0:
                    ready.append(d)

        def next_batch(size: int) -> list[str]:
            batch: list[str] = []
            while ready and len(batch) < size:
                n = ready.popleft()
                if n in quick:
                    finish(n, quick.pop(n))
                    continue
                failed = [r for r in requires[n]
                          if outcomes[r].status in ("failed", "blocked", "missing")]
                if failed:
                    finish(n, Outcome(n, "blocked", error=FetchError(
                        f"dataset {n!r} not fetched: requirement {failed[0]!r} failed",
                        code="DM081")))
                    continue
                batch.append(n)
            return batch

        # FET-023: the first SIGINT stops the workers (threads or forked processes, which
        # inherit the handler) and raises KeyboardInterrupt here once they have let go
        with sigint_stops(self.stop):
            if processes:
                pool = self._process_pool()
                size = max(1, min(BATCH_MAX, pending // (self.workers * 4)))
                submit = lambda batch: pool.submit(_forked_batch, batch)  # noqa: E731
            else:
                pool = ThreadPoolExecutor(max_workers=self.jobs, thread_name_prefix="dm-fetch")
                size = 1
                submit = lambda batch: pool.submit(self._safe_batch, batch)  # noqa: E731
            interrupted = False
            try:
                slots = self.workers if processes else self.jobs
                while (ready and not self.stop.is_set()) or running:
                    while ready and len(running) < slots and not self.stop.is_set():
                        batch = next_batch(size)
                        if batch:
                            running[submit(batch)] = batch
                    if not running:
                        continue
                    done, _ = wait(running, return_when=FIRST_COMPLETED)
                    for fut in done:
                        running.pop(fut)
                        batch_outcomes, records, fill = fut.result()
                        self._records.update(records)
                        self._fill.update(fill)
                        for out in batch_outcomes:
                            finish(out.name, out)
            except KeyboardInterrupt:
                interrupted = True
                self._stop_workers(pool, running, processes)
                raise
            finally:
                if not interrupted:
                    pool.shutdown(wait=True, cancel_futures=True)
                global _FORKED
                _FORKED = None
                if self._watchdog is not None:
                    self._watchdog.close()
                    self._watchdog = None
        for n in order:  # stopped by the caller (Fetcher.stop) before these started
            if n not in outcomes:
                outcomes[n] = quick.get(n) or Outcome(n, "interrupted", error=Cancelled(
                    f"dataset {n!r} not fetched: interrupted"))
        report = FetchReport(refused + [outcomes[n] for n in order],
                             workers="none" if not pending else
                             "processes" if processes else "threads")
        self._place_errors(report)
        if self._records:
            update_state(project.state_file, self._records,
                         stale_age=project.storage.lock_stale_age,
                         datacache_dir=project.storage.resolved.get("datacache_dir"))
        if self._fill:
            report.filled = project.fill_checksums(self._fill)
        # LCK-007: locks of the state file and the manifest left by a writer killed
        # between its last write and its release (ours are released by now)
        reclaim_project_locks(project.root, project.storage.lock_stale_age)
        return report

    def _stop_workers(self, pool: Any, running: dict, processes: bool) -> None:
        """FET-023/LCK-008 after the first SIGINT: stop every worker and wait for them at
        most :data:`~datamanifest.interrupt.GRACE` seconds, so that each releases its lock
        and keeps what it downloaded for a resume. Forked workers are told with a SIGINT of
        their own (the signal may have reached this process only); one still running after
        the grace is killed (its lock names a dead pid: stale at once, LCK-004)."""
        import signal
        import time

        self.stop.set()
        procs = list((getattr(pool, "_processes", None) or {}).values()) if processes else []
        for proc in procs:
            try:
                os.kill(proc.pid, signal.SIGINT)
            except (OSError, TypeError):
                pass
        deadline = time.monotonic() + GRACE
        if running:
            wait(running, timeout=GRACE)
        pool.shutdown(wait=False, cancel_futures=True)
        for proc in procs:
            proc.join(timeout=max(0.0, deadline - time.monotonic()) + 0.1)
            if proc.is_alive():
                proc.kill()

    def _process_mode(self, pending: int, names: list[str]) -> bool:
        """Fork workers when enough datasets remain and hosts are few enough to give each its
        own cross-process semaphore (FET-007)."""
        if not (self.processes and self.jobs > 1 and pending >= PROCESS_MIN and not self.offline
                and hasattr(os, "fork") and hasattr(os, "register_at_fork")):
            return False
        from ..io.objects import obstore_used

        if obstore_used():  # its runtime does not survive a fork: a child would hang
            return False
        import multiprocessing

        hosts = {self._host_of(n) for n in names}
        if len(hosts) > MAX_FORK_HOSTS:
            return False
        ctx = multiprocessing.get_context("fork")
        self._hosts = {h: ctx.BoundedSemaphore(self.per_host if h else self.jobs) for h in hosts}
        return True

    def _process_pool(self):
        import multiprocessing
        import warnings
        from concurrent.futures import ProcessPoolExecutor

        global _FORKED
        _FORKED = self  # the forked workers find the fetcher here (copy-on-write)
        import httpx  # noqa: F401  imported once here rather than in every worker (~0.3 s each)
        with warnings.catch_warnings():  # Python >= 3.12 warns about fork with threads
            warnings.simplefilter("ignore", DeprecationWarning)
            return ProcessPoolExecutor(max_workers=self.workers,
                                       mp_context=multiprocessing.get_context("fork"))

    @property
    def workers(self) -> int:
        """Worker processes in process mode: ``jobs``, at most two per core (more only
        contend for the cores; each worker fetches one dataset at a time)."""
        return max(1, min(self.jobs, 2 * (os.cpu_count() or 1)))

    def _safe_batch(self, names: list[str]) -> tuple[list[Outcome], dict, dict]:
        """Fetch ``names`` one after another (a worker thread; records stay in this process)."""
        return [self._safe_one(name) for name in names], {}, {}

    def _place_errors(self, report: FetchReport) -> None:
        """Point each failure without a location at its dataset in the manifest (DIAG-001),
        and remove folders a failed fetch created in the store and left empty."""
        failed = [o for o in report.outcomes if o.error is not None and o.error.file is None]
        if not failed:
            return
        from ..spec._locate import Locator

        try:
            locator = Locator(self.project.manifest_path.read_text(encoding="utf-8"))
        except OSError:
            return
        root = self.project.storage.datasets_dir
        for o in failed:
            ds = self.project.dataset(o.name)
            field_name = "uri" if ds.uri else "uris" if ds.uris else None
            line, col = locator.find((o.name, field_name) if field_name else (o.name,))
            o.error.file, o.error.line, o.error.column = str(self.project.manifest_path), line, col
            if o.status == "failed":
                try:
                    parent = self.project.target(o.name).path.parent
                except DataManifestError:
                    continue
                while parent != root and root in parent.parents:
                    try:
                        parent.rmdir()  # only an empty folder goes
                    except OSError:
                        break
                    parent = parent.parent

    def _safe_one(self, name: str) -> Outcome:
        """Fetch one dataset in a worker; failures become outcomes, and any failure after
        the run was stopped is the outcome ``interrupted`` (FET-023)."""
        if self.stop.is_set():
            return Outcome(name, "interrupted", error=Cancelled(f"dataset {name!r} not "
                                                                "fetched: interrupted"))
        try:
            with bound(self.stop):
                return self.fetch_one(name, checked=True)
        except DataManifestError as e:
            if self.stop.is_set():
                return Outcome(name, "interrupted", error=Cancelled(
                    f"dataset {name!r}: interrupted", hint="run the fetch again: it resumes "
                    "an HTTP download where it stopped"))
            return Outcome(name, "failed", error=e)
        except OSError as e:
            if self.stop.is_set():
                return Outcome(name, "interrupted", error=Cancelled(
                    f"dataset {name!r}: interrupted"))
            return Outcome(name, "failed", error=FetchError(
                f"dataset {name!r}: {e.strerror or e}: {e.filename or ''}".rstrip(": "),
                code="DM071"))


"""The fetch engine: one dataset's transaction, verified, atomic and locked (SCHEMA.md §11).

For each dataset (a :class:`~datamanifest.fetch.job.Job`), when the scheduler
(:mod:`~datamanifest.fetch.schedule`) hands it over:

1. a present dataset (marker there, recording the declared checksum) is left as it is,
   without re-hashing (FET-005); a read pool's verified copy is used in place (POOL-004);
2. otherwise the dataset's lock is taken (LCK-001) and completion re-checked (LCK-003); a
   file or folder this tool did not publish is adopted when it verifies, moved aside, or
   refused (STO-018, STO-016);
3. its source kind (:mod:`~datamanifest.fetch.kinds`) stages the bytes, hashed while they
   stream in the declared algorithm, or sha256 when none is declared (FET-004); a mismatch
   raises DM070 and publishes nothing; archives are extracted after member validation
   (FET-020); a folder is verified by its tree checksum (TREE-008);
4. the staging area is renamed onto the target and the marker written (STO-007);
5. the state file is updated once per run; empty checksums are filled into the manifest
   once per run (SUM-003).

The first SIGINT stops every worker within a second (FET-023, LCK-008): each releases its
lock and keeps an HTTP download's partial bytes for a resume (FET-012), and :meth:`Fetcher.run`
raises ``KeyboardInterrupt``. :func:`datamanifest.fetch.run` is the one entry.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ChecksumMismatch, ClobberError, DataManifestError, FetchError
from ..interrupt import Cancelled, Stop, bound
from ..io.local import hash_file
from ..progress import NullProgress, Progress, Watchdog
from ..spec import checksum as _checksum
from ..store.layout import Target, is_current, move_aside, pool_hit
from ..store.lock import Lock, reclaim_project_locks, reclaim_stale
from ..store.state import DatasetRecord, update_state
from . import resume as _resume
from . import schedule
from .job import Job, build_or_error
from .kinds import Staged, kind_of
from .report import Deferred, FetchReport, Outcome, dataset_record

if TYPE_CHECKING:  # a project is handed in; the project imports this package to fetch
    from ..project import Project


class Fetcher:
    """Materialize datasets of a :class:`~datamanifest.project.Project`.

    ``jobs``: datasets fetched at once (default 4). ``per_host``: downloads from one host at
    once (FET-007). ``lock_timeout``: seconds to wait for another process's lock (None:
    wait as long as it heartbeats). ``force``: download again even when present, every
    dataset (True) or these names. ``offline``: resolve only what is present (FET-006).
    ``adopt``: dataset name -> a local file whose bytes stand in for the dataset's ``uri``
    (AUT-010: copied through staging and verified like a download; the record keeps the
    ``uri``). ``move_aside``: an existing file or folder at a target that this tool did not
    publish is renamed ``<name>.~<n>~`` (STO-016) instead of refusing the dataset (DM182).
    ``trusted``: the caller vouches for the manifest (TRU-005: ``--trust``); otherwise a
    run that would run its code or write outside the project asks for trust first (DM180).
    ``processes``: many datasets may be fetched by forked workers (see
    :mod:`~datamanifest.fetch.schedule`).
    """

    def __init__(self, project: "Project", *, jobs: int = 4, progress: Progress | None = None,
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
        self.processes = processes  # many datasets: forked workers (see schedule)
        self.slots = schedule.HostSlots(per_host, self.jobs)  # FET-007
        #: set in forked workers: a file's fsync waits for one sync of its batch
        self.defer_sync = False
        self._resumable: bool | None = None  # is there a resume folder at all (FET-012)
        self._jobs: dict[str, Job | DataManifestError] = {}
        self._known_state = project.state_records()
        #: state records and checksum fills of this run, written once at its end
        self.records: dict[str, DatasetRecord] = {}
        self.fill: dict[str, str] = {}
        self._mutex = threading.Lock()
        # CLI convention: a silent wait (a lock, a server that sends nothing) says what it
        # waits for after PATIENCE seconds (progress notes: a TTY, else the --verbose log)
        self._watchdog: Watchdog | None = None
        #: set by the first SIGINT during :meth:`run`, or by the caller, to stop the run
        #: (FET-023): running downloads end at their next chunk, nothing new starts
        self.stop = Stop()

    @property
    def watchdog(self) -> Watchdog:
        """The run's watchdog of silent waits (made on first use)."""
        if self._watchdog is None:
            with self._mutex:
                if self._watchdog is None:
                    self._watchdog = Watchdog(lambda text: self.progress.note(text))
        return self._watchdog

    def job(self, name: str) -> Job:
        """The job of dataset ``name``, built once per run. Raises the error building it."""
        found = self._jobs.get(name)
        if found is None:
            found = self._jobs[name] = build_or_error(self.project, name, self._forced(name))
        if isinstance(found, DataManifestError):
            raise found
        return found

    def host(self, name: str) -> str:
        """The host dataset ``name`` downloads from ("" for local sources, FET-007)."""
        try:
            return self.job(name).host
        except DataManifestError:
            return ""

    # -- one dataset ----------------------------------------------------------------------
    def fetch_one(self, name: str, *, checked: bool = False) -> "Outcome | Deferred":
        """Fetch one dataset (no requirements). ``checked``: the caller just found it not
        current (the run's inline check), so only the check under the lock is repeated."""
        ds = self.project.dataset(name)
        if ds.skip_download or ds.lazy_access:
            return Outcome(name, "skipped")
        job = self.job(name)
        target = job.target
        if not job.forced and not checked and self._is_current(job):
            return self._present(job)
        if not job.forced:
            for candidate in self.project.pool_candidates(name):  # POOL-002..POOL-004
                if pool_hit(candidate, job.declared):
                    size = candidate.read_marker().get("size")
                    if size is None and candidate.path.is_file():
                        size = candidate.path.stat().st_size
                    self._record(name, candidate, job.declared, size)
                    return Outcome(name, "present", candidate.path, job.declared, size,
                                   pool=True)
        if self.offline:
            return Outcome(name, "missing", target.path, error=FetchError(
                f"dataset {name!r} is not present and --offline forbids fetching it",
                code="DM085", hint=f"run `datamanifest fetch {name}` when online"))
        self._check_links(job)
        waited: list = []
        lock = Lock(target.lock, stale_age=self.project.storage.lock_stale_age,
                    timeout=self.lock_timeout,
                    on_wait=lambda who: waited.append(self.watchdog.start(
                        f"{name}: {who}, which holds the lock {target.lock}")),
                    stop=self.stop)
        self.stop.check()
        try:
            lock.acquire()
        finally:
            for token in waited:
                self.watchdog.stop(token)
        keep = False  # a deferred publish keeps the lock until the batch's sync
        try:
            if not job.forced and self._is_current(job):  # LCK-003
                out = self._present(job)
                out.waited = bool(waited)
                return out
            aside, adopted = self._clear_way(job, lock)
            if adopted is not None:
                adopted.waited = bool(waited)
                return adopted
            if self.resume_info(job) is None:
                target.clear_staging()
            with self.slots.slot(job.host):
                self.stop.check()  # a slot freed by a download that stopped
                out = self._transfer(job, lock)
            out.waited = bool(waited)
            if aside is not None:
                out.moved_aside = aside
            if isinstance(out, Deferred):
                out.lock, keep = lock, True
            return out
        finally:
            if not keep:
                lock.release()

    def _clear_way(self, job: Job, lock: Lock) -> tuple[Path | None, "Outcome | None"]:
        """STO-018: never replace a file or folder this tool did not publish. Called under
        the dataset's lock, before anything is downloaded. An existing target is this
        tool's when it has its marker, or when the lock this run took over said a killed
        run had begun publishing it (LCK-009). An unmarked target whose bytes verify
        against the declared checksum is adopted: its marker is written and nothing is
        downloaded (crash recovery; not with ``force``). Otherwise, with ``move_aside``, it
        is renamed ``<name>.~<n>~`` (STO-016); else DM182 names it and it is left as it is.

        Returns (where it was moved, or None; the outcome of an adoption, or None)."""
        target = job.target
        path = target.path
        if not os.path.lexists(path) or os.path.lexists(target.marker):
            return None, None
        if not job.forced and job.declared and not path.is_symlink():
            out = self._adopt(job)
            if out is not None:
                return None, out
        if lock.inherited:
            return None, None  # a killed run of this tool was publishing it (LCK-009)
        if self.move_aside:
            lock.mark_publishing()
            return move_aside(path), None
        kind = "link" if path.is_symlink() else "folder" if path.is_dir() else "file"
        raise ClobberError(
            f"dataset {job.name!r}: {path} is an existing {kind} that datamanifest did not "
            "publish (it has no completion marker" + (
                " and does not match the declared checksum)" if job.declared else ")")
            + "; it was left as it is",
            code="DM182", path=str(path), file=str(self.project.manifest_path),
            hint=f"move it away yourself, point the dataset elsewhere, or pass --force to move "
                 f"it aside to {path.name}.~N~ (never deleted) and fetch")

    def _adopt(self, job: Job) -> "Outcome | None":
        """STO-018: mark an unmarked target whose bytes verify against the declared checksum
        (a file checksum for a file, a tree checksum for a folder, STO-012 for its tree
        manifest) and record it; None when it does not verify or cannot be verified."""
        from ..store import trees
        from ..tree import write_manifest

        target, declared, name = job.target, job.declared, job.name
        if target.path.is_dir() != job.tree_declared or job.dataset.skip_checksum:
            return None
        if not job.tree_declared:
            try:
                digest, size = hash_file(str(target.path), job.parsed.algorithm)
            except OSError:
                return None
            if digest != job.parsed.hexdigest:
                return None
            target.mark(declared, size)
            self._record(name, target, declared, size)
            return Outcome(name, "present", target.path, declared, size, adopted=True)
        tmp = self._tree_temp()
        try:
            result = write_manifest(target.path, tmp, job.parsed.algorithm,
                                    base=str(target.path), exclude_root=job.excluded)
        except Exception:
            tmp.unlink(missing_ok=True)
            return None
        if result.checksum != declared:
            tmp.unlink(missing_ok=True)
            return None
        tree_path = trees.store(self.project.root, job.dataset.derived_key, tmp, declared)
        target.mark(declared, result.total_size, tree=declared)
        self._record(name, target, declared, result.total_size, tree_path)
        return Outcome(name, "present", target.path, declared, result.total_size, adopted=True)

    def _check_links(self, job: Job) -> None:
        """STO-014: a keyed dataset's path is written only where it resolves: no folder
        between the datasets folder and the dataset, and none of the dataset's own paths
        (``T``, ``T.tmp``, ``T.lock``, the marker, ``T.part``), may be a symbolic link.
        The datasets folder itself may be one (a store on another disk). Raises
        FetchError DM096 naming the link; nothing is written."""
        target = job.target
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
                f"dataset {job.name!r}: {links[0]} is a symbolic link (to "
                f"{os.readlink(links[0])!r}); writing through it could land outside the store",
                code="DM096", file=str(self.project.manifest_path),
                hint="remove the link, or point the dataset's storage_path at the real "
                     "location (an exact storage_path may be anywhere)")

    def _forced(self, name: str) -> bool:
        return self.force is True or (not isinstance(self.force, bool) and name in self.force)

    def quick_present(self, name: str) -> Outcome | None:
        """The outcome of a dataset that is already current, checked inline (no thread,
        no lock, no network; FET-005); else None."""
        if self._forced(name):
            return None
        ds = self.project.dataset(name)
        if ds.skip_download or ds.lazy_access:
            return Outcome(name, "skipped")
        try:
            job = self.job(name)
        except DataManifestError:
            return None
        marker = job.target.present_marker()
        if marker is None or not is_current("present", job.declared, marker):
            return None
        return self._present(job, marker)

    def _is_current(self, job: Job) -> bool:
        marker = job.target.present_marker()  # STO-009, STO-011
        return marker is not None and is_current("present", job.declared, marker)

    def _present(self, job: Job, marker: dict | None = None) -> Outcome:
        target = job.target
        rec = target.read_marker() if marker is None else marker
        if os.path.lexists(target.lock):  # a holder killed after publishing (LCK-004)
            reclaim_stale(target.lock, self.project.storage.lock_stale_age)
        out = Outcome(job.name, "present", target.path, rec.get("checksum", ""), rec.get("size"))
        self._record(job.name, target, out.checksum, out.size)
        self._maybe_fill(job, out)
        return out

    # -- resume records (FET-012) ------------------------------------------------------------
    @property
    def resumable(self) -> bool:
        """Whether the project has resume records at all (looked up once per run)."""
        if self._resumable is None:
            self._resumable = _resume.folder(self.project).is_dir()
        return self._resumable

    def resume_info(self, job: Job) -> dict | None:
        """What an interrupted download of ``job`` left to resume, if anything."""
        return _resume.info(self.project, job) if self.resumable else None

    def save_resume(self, job: Job, dest: Path, validator: str) -> None:
        """Keep ``dest``'s bytes for a resume with ``validator``."""
        if _resume.save(self.project, job, dest, validator):
            self._resumable = True

    # -- staging, verifying, publishing ----------------------------------------------------------
    def _transfer(self, job: Job, lock: Lock) -> "Outcome | Deferred":
        """Stage the job's bytes with its source kind, verify a folder's tree checksum and
        publish; on any failure, remove what was staged (a kept resume excepted)."""
        manifest_tmp: Path | None = None
        tree_sum = ""
        try:
            staged = kind_of(job).fetch(self, job, lock)
            if isinstance(staged, Outcome):  # published in place (a peer tool)
                return staged
            job = staged.job
            checksum = f"{staged.algorithm}:{staged.digest}" if staged.digest else ""
            size = staged.size
            if job.target.is_dir:
                # TREE-008/TREE-009: verify the staged folder before publishing
                manifest_tmp, tree_sum, size = self._tree_of(job, staged)
                job.check_tree(tree_sum)
                if job.tree_declared or not checksum or not job.declared:
                    checksum = tree_sum
        except BaseException as exc:
            if not getattr(exc, "kept", False):
                job.target.clear_staging()
                job.target.path.with_name(job.target.path.name + ".part").unlink(
                    missing_ok=True)
                _resume.path(self.project, job).unlink(missing_ok=True)
            if manifest_tmp is not None:
                manifest_tmp.unlink(missing_ok=True)
            raise
        if staged.defer and manifest_tmp is None:
            return Deferred(job.name, job.target.staging,
                            lambda: self._publish(job, checksum, size, None, "", lock))
        return self._publish(job, checksum, size, manifest_tmp, tree_sum, lock)

    def _publish(self, job: Job, checksum: str, size: int | None, manifest_tmp: Path | None,
                 tree_sum: str, lock: Lock | None = None) -> Outcome:
        """Publish verified, durable staged bytes (STO-007/008) and record them."""
        tree_path = None
        if manifest_tmp is not None:  # STO-012: the tree is stored before the marker
            from ..store import trees

            tree_path = trees.store(self.project.root, job.dataset.derived_key, manifest_tmp,
                                    tree_sum)
        job.target.publish(checksum, size, tree=tree_sum if manifest_tmp is not None else None,
                           lock=lock)
        out = Outcome(job.name, "fetched", job.target.path, checksum, size)
        self._record(job.name, job.target, checksum, size, tree_path)
        self._maybe_fill(job, out)
        return out

    def after_peer(self, job: Job) -> Outcome:
        """Verify what a peer tool published into the shared store (LAD-021) and record it."""
        from ..tree import walk

        name, declared = job.name, job.declared
        target = Target(job.target.path, job.target.path.is_dir())
        if not target.path.exists():
            raise FetchError(f"dataset {name!r}: the peer tool wrote nothing at {target.path}",
                             code="DM084")
        if target.is_dir:
            algo = declared.partition(":")[0] if _checksum.is_tree(declared) else "tree-sha256"
            checksum = walk(target.path, algo).checksum
        else:
            algo = job.parsed.algorithm if job.parsed else _checksum.DEFAULT_ALGORITHM
            checksum = f"{algo}:{hash_file(str(target.path), algo)[0]}"
        if declared and checksum != declared and not job.dataset.skip_checksum:
            target.marker.unlink(missing_ok=True)  # the peer wrote in place: mark it incomplete
            raise ChecksumMismatch(name, algo, declared.partition(":")[2],
                                   checksum.partition(":")[2])
        if not target.marker.exists():  # a peer of an older spec may not write markers
            target.marker.write_text(json.dumps({"checksum": checksum}) + "\n")
        out = Outcome(name, "fetched", target.path, checksum, None)
        self._record(name, target, checksum, None)
        self._maybe_fill(job, out)
        return out

    def _tree_temp(self) -> Path:
        """A new temporary file for a tree manifest in the project (``store.trees.temp``)."""
        from ..store import trees

        return trees.temp(self.project.root)

    def _tree_of(self, job: Job, staged: Staged) -> tuple[Path, str, int]:
        """Walk the staged folder, writing its tree manifest; returns (manifest temp file,
        checksum, total size of the files in bytes). Files hashed while they streamed
        (``staged.streamed``) are not read again."""
        from ..tree import write_manifest

        tmp = self._tree_temp()
        result = write_manifest(job.target.staging, tmp, job.tree_algorithm,
                                base=str(job.target.path), exclude_root=job.excluded,
                                known=staged.streamed)
        return tmp, result.checksum, result.total_size

    def _record(self, name: str, target: Target, checksum: str, size: int | None,
                tree_path: Path | None = None) -> None:
        key = self.project.dataset(name).derived_key
        old = self._known_state.get(key)
        if old is not None and tree_path is None and old.tree is None and \
                (old.checksum, old.size) == (checksum or None, size) and \
                old.storage_path == self._relative(target.path):
            return  # nothing new to record: the state file is not rewritten (STA-007)
        rec = dataset_record(self.project, name, target.path, checksum, size, tree_path)
        if old is not None and (old.storage_path, old.checksum, old.size, old.tree) == (
                rec.storage_path, rec.checksum, rec.size, rec.tree):
            return
        with self._mutex:
            self.records[key] = rec

    def _relative(self, path: Path) -> str:
        """``path`` as a state record's storage path: relative to the project root when
        under it (as :func:`~datamanifest.fetch.report.dataset_record` writes it)."""
        text, root = str(path), str(self.project.root)
        if text.startswith(root + os.sep):
            rel = text[len(root) + 1:]
            return rel if os.sep == "/" else rel.replace(os.sep, "/")
        try:
            return path.relative_to(self.project.root).as_posix()
        except ValueError:
            return text

    def _maybe_fill(self, job: Job, out: Outcome) -> None:
        ds = job.dataset
        if ds.effective_checksum or ds.skip_checksum or not out.checksum:
            return
        with self._mutex:
            self.fill[job.name] = out.checksum
        out.filled = True

    # -- many datasets ----------------------------------------------------------------------
    def run(self, names: list[str] | None = None) -> FetchReport:
        """Fetch ``names`` (identifiers; all when None) and their requirements.

        Returns a :class:`~datamanifest.fetch.report.FetchReport`; failures are reported,
        not raised. Datasets already current are resolved inline first (FET-005); the rest
        are scheduled by :func:`datamanifest.fetch.schedule.run` (threads or forked workers;
        at most ``jobs`` datasets and ``per_host`` downloads per host at once, FET-003,
        FET-007). Raises TrustError (DM180) before anything runs when the run needs trust
        the manifest does not have (TRU-004), and KeyboardInterrupt after the first SIGINT.
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
        self.progress.total(len(order))
        quick = {n: out for n in order if (out := self.quick_present(n)) is not None}
        todo = [n for n in order if n not in quick]
        if todo:
            self._require_trust(todo)
        outcomes: dict[str, Outcome] = {}

        def done(n: str, outcome: Outcome) -> None:
            outcomes[n] = outcome
            self.progress.done_one()

        try:
            workers = schedule.run(self, order, requires, quick, done)
        finally:
            if self._watchdog is not None:
                self._watchdog.close()
                self._watchdog = None
        for n in order:  # stopped by the caller (Fetcher.stop) before these started
            if n not in outcomes:
                outcomes[n] = quick.get(n) or Outcome(n, "interrupted", error=Cancelled(
                    f"dataset {n!r} not fetched: interrupted"))
        report = FetchReport(refused + [outcomes[n] for n in order], workers=workers)
        self._place_errors(report)
        if self.records:
            update_state(project.state_file, self.records,
                         stale_age=project.storage.lock_stale_age,
                         datacache_dir=project.storage.resolved.get("datacache_dir"))
        if self.fill:
            report.filled = project.fill_checksums(self.fill)
        # LCK-007: locks of the state file and the manifest left by a writer killed
        # between its last write and its release (ours are released by now)
        reclaim_project_locks(project.root, project.storage.lock_stale_age)
        return report

    def _require_trust(self, todo: list[str]) -> None:
        """TRU-004/TRU-005: before anything runs or is written; offline, only pool reads."""
        from ..trust import granted_by, require

        if self.trusted or granted_by() is not None:
            return
        needs = self.project.trust_needs(fetch=todo)
        if self.offline:
            needs = [n for n in needs if n.kind == "read"]
        if needs:
            require(self.project, needs, action="fetch")

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
                    parent = self.job(o.name).target.path.parent
                except DataManifestError:
                    continue
                while parent != root and root in parent.parents:
                    try:
                        parent.rmdir()  # only an empty folder goes
                    except OSError:
                        break
                    parent = parent.parent

    def safe_one(self, name: str) -> "Outcome | Deferred":
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

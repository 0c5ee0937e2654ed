"""Source kinds: how a dataset's bytes reach its staging path, as a table (SCHEMA.md §11).

Each kind is a small class: :meth:`SourceKind.matches` says whether it fetches a
:class:`~datamanifest.fetch.job.Job`, :meth:`SourceKind.fetch` stages its bytes and
returns what it staged (:class:`Staged`). The engine asks :data:`KINDS` in order and runs
the first that matches; it then verifies a folder's tree checksum, publishes and records
(the transaction is the engine's, never a kind's). As pooch picks a downloader from a table,
:func:`register` adds a kind of your own::

    class Ftp(SourceKind):
        name = "ftp"

        def matches(self, job):
            return job.dataset.uri.startswith("ftp://")

        def fetch(self, engine, job, lock):
            ...  # write job.target.staging, then
            return Staged(job, size, digest, job.file_algorithm)

    datamanifest.fetch.kinds.register(Ftp(), before="download")

The built-in kinds, in order: ``virtual`` (CHK-030), ``uris`` (several files, one folder),
``program`` (the dataset's own fetcher or shell template, LAD-001/LAD-002), ``rsync``
(FET-015), ``git`` (FET-014), ``download`` (one place of :mod:`datamanifest.io`: a file,
http(s) with resume, an object) and ``peer`` (another language's tool, LAD-003).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ChecksumMismatch, FetchError
from ..interrupt import Cancelled
from ..io.http import HTTPStream, Interrupted
from ..io.local import FileStream, hash_file
from ..io.places import family_of, local_path, open_stream, scheme_of
from ..spec import checksum as _checksum
from ..spec.resolution import fetch_rung
from ..spec.secrets import redact_uri
from ..spec.tree import leaf_algorithm
from . import archive as _archive
from . import resume as _resume
from .bindings import find_peer, run_fetcher, run_peer
from .job import Job
from .sources import git_clone, is_rsync_folder, rsync_copy
from .stream import stream_to_file

if TYPE_CHECKING:
    from ..store.lock import Lock
    from .engine import Fetcher
    from .report import Outcome


@dataclass
class Staged:
    """What a kind put at the job's staging path: ``size`` in bytes (a folder's is counted
    by its tree walk), the hex ``digest`` of a file in ``algorithm`` (``""`` for a folder),
    the digests of files hashed while they streamed (``streamed``: relative path -> (size,
    mtime_ns, digest), reused by the tree walk) and ``defer`` (publish after the batch's
    one sync). ``job`` is the job as staged: a kind may have turned its target into a
    folder."""

    job: Job
    size: int | None
    digest: str = ""
    algorithm: str = _checksum.DEFAULT_ALGORITHM
    streamed: dict | None = None
    defer: bool = False


class SourceKind:
    """A kind of source. Subclass it, give it a ``name``, and implement :meth:`matches` and
    :meth:`fetch`."""

    name = ""

    def matches(self, job: Job) -> bool:  # pragma: no cover - interface
        """Whether this kind fetches ``job``."""
        raise NotImplementedError

    def fetch(self, engine: "Fetcher", job: Job, lock: "Lock") -> "Staged | Outcome":
        """Stage the job's bytes at ``job.target.staging`` (a file, or a folder for a folder
        target), verified against a declared file checksum (:meth:`Job.check_file`).

        Parameters
        ----------
        engine : Fetcher
            The run: its ``project``, ``progress``, ``stop`` (check it between blocks),
            ``watchdog``.
        job : Job
            The dataset.
        lock : Lock
            The dataset's lock, held by the engine.

        Returns
        -------
        Staged
            What was staged; or an :class:`~datamanifest.fetch.report.Outcome` when the kind
            published in place itself (a peer tool).

        Raises
        ------
        DataManifestError
            The source's failure (DM071, DM074, DM070 a mismatch, ...); the engine removes
            what was staged.
        """
        raise NotImplementedError  # pragma: no cover - interface


def _staged_file(job: Job) -> Staged:
    """A file a program wrote at the staging path, hashed and verified; a folder is
    verified by its tree checksum afterwards."""
    if job.target.is_dir:
        return Staged(job, 0, "", job.file_algorithm)
    digest, size = hash_file(str(job.target.staging), job.file_algorithm)
    job.check_file(digest)
    return Staged(job, size, digest, job.file_algorithm)


class Virtual(SourceKind):
    """CHK-030: the chunk manifest of the sources is the dataset."""

    name = "virtual"

    def matches(self, job: Job) -> bool:
        return bool(job.dataset.virtual)

    def fetch(self, engine, job, lock):
        from ..spec.virtual import document_checksum
        from ..store.atomic import write_bytes
        from ..virtual import build, document

        ds = job.dataset

        def absolute(uri: str) -> str:
            return uri if scheme_of(uri) != "file" else \
                local_path(uri, engine.project.root).resolve().as_uri()

        sources = [absolute(u) for u in ([ds.uri] if ds.uri else ds.uris)]
        task = engine.progress.start(job.name, len(sources))
        try:
            manifest = build.virtualize(sources, concat_dim=ds.concat_dim or None,
                                        progress=lambda n: engine.progress.advance(task, n))
        finally:
            engine.progress.finish(task)
        doc = manifest.as_json()
        if any(redact_uri(s["url"]) != s["url"] for s in doc.get("sources", [])):
            # SEC-002: the published document never holds a credential; loading the
            # dataset maps the redacted URLs back to the manifest's (load.py)
            for s in doc["sources"]:
                s["url"] = redact_uri(s["url"])
            doc["checksum"] = document_checksum(doc)
        data = document.dumps(doc).encode("utf-8")
        job.target.staging.parent.mkdir(parents=True, exist_ok=True)
        write_bytes(job.target.staging, data)
        digest = doc["checksum"].partition(":")[2]
        if job.parsed is not None and not ds.skip_checksum and \
                (job.parsed.algorithm, job.parsed.hexdigest) != ("sha256", digest):
            raise ChecksumMismatch(job.name, job.parsed.algorithm, job.parsed.hexdigest, digest)
        return Staged(job, len(data), digest, "sha256")


class Uris(SourceKind):
    """Several files, one folder: each file hashed as it streams in; the tree walk reuses
    those digests."""

    name = "uris"

    def matches(self, job: Job) -> bool:
        return bool(job.dataset.uris)

    def fetch(self, engine, job, lock):
        from urllib.parse import urlsplit

        leaf = leaf_algorithm(job.tree_algorithm)
        uris = job.dataset.uris
        staging = job.target.staging
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
            engine.stop.check()
            with open_stream(uri, engine.project.root) as src, engine.stop.on_abort(src.abort):
                task = engine.progress.start(f"{job.name}/{rel}", src.size)
                try:
                    digest, size = stream_to_file(src.chunks(), dest, leaf,
                                                  lambda n: engine.progress.advance(task, n),
                                                  size_hint=src.size, stop=engine.stop)
                finally:
                    engine.progress.finish(task)
            total += size
            digests[Path(rel).as_posix()] = (size, dest.stat().st_mtime_ns, digest)
        return Staged(job, total, "", job.file_algorithm, streamed=digests)


class Program(SourceKind):
    """LAD-001/LAD-002/LAD-020: the dataset's own fetcher or shell template writes
    ``download_path`` (the staging path); a folder written makes it a folder dataset."""

    name = "program"

    def matches(self, job: Job) -> bool:
        return _rung(job)["rung"] in ("own-fetcher", "shell")

    def fetch(self, engine, job, lock):
        staging = job.target.staging
        run_fetcher(engine.project, job.name, _rung(job), staging, variables(engine, job))
        if not staging.exists():
            raise FetchError(f"dataset {job.name!r}: the fetcher wrote nothing at {staging}",
                             code="DM084", hint="a fetcher must write the dataset at "
                             "download_path")
        return _staged_file(job.as_folder() if staging.is_dir() else job)


class Rsync(SourceKind):
    """FET-015: rsync over SSH; a path ending in ``/`` is a folder."""

    name = "rsync"

    def matches(self, job: Job) -> bool:
        return bool(job.dataset.uri) and family_of(job.dataset.uri) == "ssh"  # FET-015

    def fetch(self, engine, job, lock):
        if is_rsync_folder(job.dataset.uri):
            job = job.as_folder()
        rsync_copy(job.dataset.uri, job.target.staging)
        return _staged_file(job)


class Git(SourceKind):
    """FET-014: a shallow clone is a folder dataset; its checksum leaves ``.git`` out."""

    name = "git"

    def matches(self, job: Job) -> bool:
        return job.is_git

    def fetch(self, engine, job, lock):
        job = job.as_folder()
        git_clone(job.dataset.uri, job.target.staging, job.dataset.branch, engine.project.root)
        return Staged(job, 0, "", job.file_algorithm)


class Download(SourceKind):
    """One place of :mod:`datamanifest.io` (a file, http(s), an object), hashed while it
    streams in. An http(s) download cut midway, or stopped, keeps its bytes with the
    response's validator for a resume with ``If-Range`` (FET-012). An archive is extracted
    after its members are validated (FET-020). An adopted local file stands in for the
    source (AUT-010)."""

    name = "download"

    def matches(self, job: Job) -> bool:
        return bool(job.dataset.uri)

    def fetch(self, engine, job, lock):
        ds, name = job.dataset, job.name
        target = job.target
        # in a forked batch, a file's fsync is replaced by one sync of the batch
        defer = engine.defer_sync and not ds.extract
        dest = target.path.with_name(target.path.name + ".part") if ds.extract else target.staging
        dest.parent.mkdir(parents=True, exist_ok=True)
        adopted = engine.adopt.get(name)
        resumable = family_of(ds.uri) == "http" and adopted is None
        where = job.host or ds.uri
        info = engine.resume_info(job)
        watch = engine.watchdog.start(f"{name}: an answer from {where}")
        try:
            if adopted is not None:  # AUT-010: bytes already on this machine
                src_cm = FileStream(adopted)
            elif info is not None and resumable:
                src_cm = HTTPStream(ds.uri, info["offset"], info["validator"])
            else:
                src_cm = open_stream(ds.uri, engine.project.root)
        except BaseException:
            engine.watchdog.stop(watch)
            raise
        engine.watchdog.alive(watch, f"{name}: bytes from {where}")

        def advance(n: int, task=None) -> None:
            engine.watchdog.alive(watch)
            engine.progress.advance(task, n)

        with src_cm as src, engine.stop.on_abort(src.abort):
            appending = bool(getattr(src, "resumed", False))
            task = engine.progress.start(name, src.size)
            try:
                digest, size = stream_to_file(src.chunks(), dest, job.file_algorithm,
                                              lambda n: advance(n, task),
                                              size_hint=src.size, append=appending,
                                              durable=not defer, stop=engine.stop)
            except (Interrupted, Cancelled) as cut:
                # FET-012/FET-023: a body cut or a stop keeps the bytes for a resume
                validator = getattr(cut, "validator", None) or getattr(src, "validator", None)
                if resumable and validator and dest.is_file():
                    engine.save_resume(job, dest, validator)
                    cut.kept = True
                raise
            finally:
                engine.progress.finish(task)
                engine.watchdog.stop(watch)
        _resume.forget(engine, job)
        job.check_file(digest)
        if ds.extract:
            fmt = ds.effective_format
            _archive.extract(dest, "tar.gz" if fmt == "tgz" else fmt, target.staging,
                             max_bytes=engine.project.storage.resolved.get("max_extract_bytes"))
            dest.unlink()
        return Staged(job, size, digest, job.file_algorithm, defer=defer)


class Peer(SourceKind):
    """LAD-003: a dataset whose only fetcher is another language's is fetched by that
    language's tool, found on PATH, into the shared store; what it wrote is verified."""

    name = "peer"

    def matches(self, job: Job) -> bool:
        rung = _rung(job)
        return rung["rung"] == "delegation" and find_peer(rung.get("language", "")) is not None

    def fetch(self, engine, job, lock):
        lock.mark_publishing()  # the peer writes the target in place (LCK-009)
        run_peer(engine.project, job.name, find_peer(_rung(job).get("language", "")),
                 engine.project.storage.datasets_dir)
        return engine.after_peer(job)


#: the kinds asked in order; the first that matches a job fetches it
KINDS: list[SourceKind] = [Virtual(), Uris(), Program(), Rsync(), Git(), Download(), Peer()]


def register(kind: SourceKind, *, before: str | None = None) -> None:
    """Add a source kind to :data:`KINDS`: before the kind named ``before`` (so that it is
    asked first), else last. A kind of the same name is replaced."""
    KINDS[:] = [k for k in KINDS if k.name != kind.name]
    names = [k.name for k in KINDS]
    KINDS.insert(names.index(before) if before in names else len(KINDS), kind)


def kind_of(job: Job) -> SourceKind:
    """The first kind of :data:`KINDS` that fetches ``job``. Raises FetchError DM079 when
    none does (nothing this tool can fetch it from)."""
    for kind in KINDS:
        if kind.matches(job):
            return kind
    hint = ("its only fetcher is another language's; no peer tool for it was found on PATH "
            "(LAD-003)" if _rung(job)["rung"] == "delegation" else
            "add uri, uris, fetcher or shell")
    raise FetchError(f"dataset {job.name!r} has nothing this tool can fetch it from",
                     code="DM079", hint=hint)


def _rung(job: Job) -> dict[str, Any]:
    """The dataset's rung of the fetch ladder for Python (LAD-001..LAD-003)."""
    return fetch_rung(job.dataset, "python")


def variables(engine: "Fetcher", job: Job) -> dict:
    """The fetcher variables of SH-006 (``download_path`` is added by run_fetcher)."""
    project, ds = engine.project, job.dataset
    req_paths = []
    found_vars: dict = {}
    for i, req in enumerate(ds.requires, start=1):
        found = project.locate(req)
        path = str(found[0]) if found else str(project.target(req).path)
        req_paths.append(path)
        found_vars[f"path_{i}"] = path
        found_vars["path_" + "".join(c if c.isalnum() or c == "_" else "_" for c in req)] = path
    found_vars.update({
        "project_root": str(project.root), "uri": ds.uri, "key": ds.derived_key
        if (ds.key or ds.uri or ds.uris) else "", "version": ds.version, "doi": ds.doi,
        "format": ds.effective_format, "branch": ds.branch, "requires_paths": req_paths,
    })
    return found_vars

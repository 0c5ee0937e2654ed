"""A manifest on disk: discovery, storage resolution, targets and edits (SCHEMA.md §2, §7).

This is the I/O edge around the pure :mod:`datamanifest.spec` modules.
"""

from __future__ import annotations

import os
from pathlib import Path

from .check import CheckResult, check_path
from .errors import DataManifestError, Diagnostic, LookupFailed, ManifestError
from .spec.manifest import Dataset, Manifest
from .store.atomic import write_text
from .store.layout import Target
from .store.lock import Lock
from .store.layout import STATE_DIR, state_path
from .config import check_configs, discover, resolve_storage


class Project:
    """An opened manifest: its path, model, check diagnostics and storage.

    Open with :meth:`Project.open`. One error policy (SCHEMA.md MAN-012): a dataset whose
    closure (its table, the tables it requires, the structural tables, the configuration
    files) has an error is *refused* (:attr:`refused`, :meth:`refusal`); every other
    dataset can be fetched, located and loaded. A manifest that cannot be read as a whole
    (DM001, DM002, DM004, or storage settings that cannot be resolved) raises
    :class:`ManifestError` (DM091) carrying every diagnostic.

    Typical use::

        project = datamanifest.Project.open()      # discovers datamanifest.toml
        project.list()                             # what the stores hold (``datamanifest list``)
        project.add("https://example.org/obs.csv") # declare, fetch, write the checksum
        report = project.fetch()                   # name -> (path, status)
        project.load("obs")                        # the loaded dataset
    """

    def __init__(self, manifest_path: Path, result: CheckResult,
                 refused: "dict[str, list[Diagnostic]] | None" = None,
                 config_diagnostics: "list[Diagnostic] | None" = None) -> None:
        self.manifest_path = manifest_path
        self.root = manifest_path.parent
        self.check = result
        assert result.manifest is not None
        self.manifest: Manifest = result.manifest
        self.storage = resolve_storage(self.manifest, self.root)
        #: dataset name -> the errors of its closure (MAN-012); empty when all are clean
        self.refused: dict[str, list[Diagnostic]] = refused or {}
        #: the diagnostics of the configuration files read (CFG-003)
        self.config_diagnostics: list[Diagnostic] = config_diagnostics or []
        self._state_cache: dict | None = None  # state records, read lazily

    # -- opening ----------------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | Path | None = None) -> "Project":
        """Open the manifest at ``path`` (a file or a folder), or discover it (SCHEMA.md §2).

        Parameters
        ----------
        path : str or Path, optional
            The manifest file, or a folder to discover it from; default: discovered upward
            from the working directory (``$DATAMANIFEST_TOML`` wins).

        Returns
        -------
        Project

        Raises
        ------
        ManifestError
            DM003 when no manifest is found; DM091 (with ``err.diagnostics``) when the
            document cannot be read as a whole (MAN-012). Errors confined to some datasets
            do not raise: those datasets are refused (:meth:`refusal`).
        """
        if path is None:
            mpath = discover()
        else:
            p = Path(path)
            mpath = discover(p) if p.is_dir() else p
        mpath = mpath.resolve()
        return cls._checked(mpath, check_path(mpath))

    @classmethod
    def from_text(cls, manifest_path: str | Path, text: str) -> "Project":
        """A project whose manifest is ``text`` (not the file's bytes), rooted at
        ``manifest_path``'s folder: what a fetch would do with an edit before it is written
        (SCHEMA.md AUT-005). Raises :class:`ManifestError` (DM091) as :meth:`open` does."""
        from .check import check_text

        mpath = Path(manifest_path).resolve()
        return cls._checked(mpath, check_text(text, str(mpath), "manifest"))

    def with_text(self, text: str) -> "Project":
        """This project reading ``text`` as its manifest instead of the file's bytes: what
        a fetch would do with an edit before it is written (SCHEMA.md AUT-005).

        Parameters
        ----------
        text : str
            A whole manifest document (TOML).

        Returns
        -------
        Project
            A new project rooted where this one is; this one is unchanged.

        Raises
        ------
        ManifestError
            DM091 when ``text`` cannot be read as a whole (MAN-012), as :meth:`open`.
        """
        return type(self).from_text(self.manifest_path, text)

    @classmethod
    def _checked(cls, mpath: Path, result: CheckResult) -> "Project":
        from .check.structure import lenient_datasets
        from .spec.policy import refused

        def whole(errors: list[Diagnostic]) -> ManifestError:
            first = errors[0] if errors else None
            return ManifestError(
                f"{mpath} has {len(errors)} error(s)" + (f"; the first: {first.code} "
                                                         f"{first.message}" if first else ""),
                code="DM091", file=str(mpath), line=first.line if first else None,
                column=first.column if first else None,
                hint="run `datamanifest check` for details", diagnostics=result.diagnostics)

        errors = result.errors
        # MAN-012: a document that cannot be read as a whole refuses everything
        if result.data is None or any(d.code in ("DM001", "DM002", "DM004") for d in errors):
            raise whole(errors)
        configs = check_configs(mpath.parent)
        config_errors = [d for d in configs if d.severity == "error"]
        if result.manifest is None:
            data = result.data
            meta = data.get("_META") if isinstance(data.get("_META"), dict) else {}
            structural = {k: v for k, v in data.items() if k.startswith("_") and k != "_META"}
            # lenient: unknown fields kept (MAN-003); refused ones may lack a model
            datasets = lenient_datasets(data, {})
            result.manifest = Manifest(meta=meta, structural=structural, datasets=datasets)
        refusals = refused(result.data, errors, config_errors) if (errors or config_errors) \
            else {}
        try:
            return cls(mpath, result, refusals, configs)
        except ManifestError as e:
            if not (errors or config_errors):
                raise
            # storage settings that cannot be resolved: every dataset is refused (MAN-012)
            raise whole(errors + config_errors) from e

    def __repr__(self) -> str:
        from .display import project_repr

        return project_repr(self)

    def _repr_html_(self) -> str:
        """The datasets with their states, sizes and paths as HTML (SCHEMA.md INT-030)."""
        from .display import project_html

        return project_html(self)

    @property
    def warnings(self) -> list[Diagnostic]:
        """The warnings of the manifest and the configuration files (errors refuse datasets,
        see :meth:`refusal`; information, DM181, is for `check`)."""
        return [d for d in self.check.diagnostics + self.config_diagnostics
                if d.severity == "warning"]

    # -- trust (SCHEMA.md §27.1) ------------------------------------------------------------
    def trust_needs(self, *, fetch: list[str] = (), load: list[str] = (), roots: bool = False,
                    datacache: bool = False) -> list:
        """What a run would do that needs this manifest trusted (TRU-004): run the code of
        the datasets it ``fetch``es or ``load``s, write their targets, read their pools,
        write in the store roots (``roots``: maintenance) or in ``datacache_dir``. Paths are
        judged where they really lead (symbolic links resolved). Returns a list of
        :class:`~datamanifest.spec.trust.Need` (empty: no trust needed)."""
        from .trust import needs

        return needs(self, fetch=fetch, load=load, roots=roots, datacache=datacache)

    def require_trust(self, action: str, **uses) -> None:
        """Raise DM180 when a run doing ``uses`` (see :meth:`trust_needs`) needs trust this
        manifest does not have (TRU-005); nothing has run or been written then."""
        needs = self.trust_needs(**uses)
        if needs:
            from .trust import require

            require(self, needs, action=action)

    def refusal(self, name: str) -> ManifestError | None:
        """The DM091 error refusing dataset ``name`` (MAN-012), or None when its closure is
        clean. ``err.diagnostics`` lists the errors of its closure."""
        errs = self.refused.get(name)
        if not errs:
            return None
        line, column = self.entry_position(name)
        first = errs[0]
        mine = sum(1 for d in errs if d.path and d.path[0] == name
                   and d.file == str(self.manifest_path))
        where = "in its entry" if mine == len(errs) else \
            "in its entry or in what it depends on" if mine else "in what it depends on"
        return ManifestError(
            f"dataset {name!r} refused: {len(errs)} error(s) {where}, the first: "
            f"{first.code} {first.message}", code="DM091", file=str(self.manifest_path),
            line=line, column=column, diagnostics=list(errs),
            hint="fix the error(s) (`datamanifest check`); datasets without errors in what "
                 "they depend on are not affected")

    def dataset_names(self) -> list[str]:
        """Every dataset name in document order, refused ones included (MAN-002)."""
        from .spec.policy import dataset_names

        return dataset_names(self.check.data or {})

    # -- lookup -----------------------------------------------------------------------------
    def resolve(self, ident: str) -> str:
        """The dataset name ``ident`` identifies by name, alias or doi (MAN-050, MAN-051)."""
        found = self.manifest.candidates(ident)
        if not found and ident in self.refused:  # a refused dataset without a model
            return ident
        if not found:
            close = __import__("difflib").get_close_matches(ident, self.dataset_names(), n=1)
            raise LookupFailed(f"no dataset named {ident!r} (by name, alias or doi)", code="DM076",
                               file=str(self.manifest_path),
                               hint=f"did you mean {close[0]!r}?" if close else
                               "`datamanifest status` lists the datasets")
        if len(found) > 1:
            raise LookupFailed(f"{ident!r} matches several datasets: {', '.join(found)}",
                               code="DM077", file=str(self.manifest_path),
                               hint="use the dataset's name")
        return found[0]

    def dataset(self, name: str) -> Dataset:
        """The model of dataset ``name``. Raises the DM091 refusal (MAN-012) for a refused
        dataset that has no model (its entry has errors)."""
        try:
            return self.manifest.datasets[name]
        except KeyError:
            refusal = self.refusal(name)
            if refusal is not None:
                raise refusal from None
            raise

    # -- storage ----------------------------------------------------------------------------
    def storage_key(self, name: str) -> str:
        return self.dataset(name).derived_key

    def target(self, name: str) -> Target:
        """Where dataset ``name`` lives (STO-001, STO-002)."""
        from .spec.keys import UnsafeKey
        from .spec.resolution import ResolutionError, storage_path

        ds = self.dataset(name)
        try:
            path, _ = storage_path(name, ds, self.storage.resolved, self.storage.platform)
        except ResolutionError as e:
            raise ManifestError(f"dataset {name!r}: {e}", code=e.code, file=str(self.manifest_path),
                                hint="define the symbol in [_STORAGE] or set the variable") from e
        except UnsafeKey as e:  # no source to derive a key from (DM079), or an unsafe one
            none = not (ds.uri or ds.uris or ds.key)
            line, column = self.entry_position(name)
            raise ManifestError(f"dataset {name!r}: {e}", code="DM079" if none else "DM031",
                                file=str(self.manifest_path), line=line, column=column,
                                hint="add uri, or a key for a fetcher's output" if none else
                                "set an explicit key = \"...\"") from e
        # the control files (STO-005) add up to 9 characters to the last name
        if any(len(part.encode("utf-8", "surrogateescape")) > 246 for part in Path(path).parts):
            line, column = self.entry_position(name)
            raise ManifestError(f"dataset {name!r}: its location {path[:80]}... has a name "
                                "longer than file systems allow (255 bytes)", code="DM031",
                                file=str(self.manifest_path), line=line, column=column,
                                hint="set a shorter explicit key = \"...\"")
        # a fetcher may have written a folder (LAD-020): the bytes on disk tell
        folder = ds.is_folder
        return Target(Path(path), folder or os.path.isdir(path))

    def status(self, names: list[str] | None = None) -> list[dict]:
        """What ``datamanifest status`` prints: one row per dataset (identifiers; all when
        None), reading markers and the state file, never the data.

        Returns
        -------
        list of dict
            ``name``; ``status``: ``present``, ``present (state)``/``(pool)``/``(in-place)``
            (found elsewhere, verified by its marker), ``outdated`` (present, but its marker
            records another checksum than the manifest's), ``missing``, ``incomplete``,
            ``external`` (``skip_download``/``lazy_access``: used where it is), ``refused``
            (its entry or one it requires has errors, MAN-012) or ``no location`` (with
            ``errors``: the diagnostics); ``path``;
            ``checksum`` (declared, else the marker's); ``size`` in bytes (the marker's;
            None when unknown).

        Raises
        ------
        LookupFailed
            DM076/DM077 for an identifier that names no dataset or several (MAN-051).
        """
        from .presence import status_rows

        return status_rows(self, names)

    # -- operations (Python API) -------------------------------------------------------------------
    def fetch(self, names: "str | list[str] | None" = None, *, jobs: int = 4,
              per_host: int = 4, force: "bool | set[str]" = False,
              lock_timeout: float | None = None, offline: bool = False, progress=None,
              raise_on_error: bool = True, trusted: bool = False, move_aside: bool = False):
        """Fetch datasets with their requirements, verified and atomically (SCHEMA.md §11).

        Parameters
        ----------
        names : str or list of str, optional
            Identifiers (name, alias or doi); all datasets when None.
        jobs : int
            Datasets fetched at once.
        per_host : int
            Downloads from any one host at once (FET-007).
        force : bool or set of str
            Download again even when present: every dataset (True) or these names.
        lock_timeout : float, optional
            Seconds to wait for another process's lock (None: while it heartbeats).
        offline : bool
            Resolve only what is present; download nothing (FET-006).
        progress : datamanifest.progress.Progress, optional
            Where progress is drawn (``datamanifest.progress.RichProgress()`` on a
            terminal); none by default.
        raise_on_error : bool
            Raise the first failure (default), after every other dataset was attempted;
            with False, failures are only in the report.
        trusted : bool
            Vouch for the manifest, as ``--trust`` does (SCHEMA.md §27.1): run the code it
            names and use the locations it sets outside the project.
        move_aside : bool
            Rename a file or folder in the way that this tool did not publish to
            ``<name>.~<n>~`` (STO-016) instead of failing that dataset with DM182.

        Returns
        -------
        FetchReport
            A mapping from each dataset's name to its
            :class:`~datamanifest.fetch.report.Outcome` (``status``: fetched, present,
            skipped, failed, blocked, refused, missing; ``path``; ``checksum``; ``size`` in
            bytes; ``error``). ``report.paths`` maps each name to its path.

        Raises
        ------
        DataManifestError
            The first failure (DM070 checksum mismatch, DM071 download failed, DM074 not
            found, DM081 blocked, DM091 refused, ...), located at the dataset's entry in the
            manifest; ``err.report`` is the whole report. LookupFailed (DM076/DM077) for an
            identifier that names no dataset or several. TrustError (DM180) before anything
            runs, when the run would run the manifest's code or write outside the project
            and the manifest is not trusted.
        """
        from .fetch import run

        report = run(self, names, jobs=jobs, per_host=per_host, force=force,
                     lock_timeout=lock_timeout, offline=offline, progress=progress,
                     trusted=trusted, move_aside=move_aside)
        self._state_cache = None  # the run may have recorded new locations
        failures = [o for o in report.outcomes if o.error is not None]
        if failures and raise_on_error:
            err = failures[0].error
            err.report = report  # type: ignore[union-attr]
            raise err  # type: ignore[misc]
        return report

    def load(self, ident: str, *, offline: bool = False, trusted: bool = False):
        """The loaded dataset (load ladder, SCHEMA.md §15), fetched first when absent.

        Parameters
        ----------
        ident : str
            The dataset's name, alias or doi.
        offline : bool
            Never fetch; DM078 when absent.
        trusted : bool
            Vouch for the manifest's loader bindings (SCHEMA.md §27.1); otherwise a binding
            the manifest names is DM180 until the manifest is trusted.

        Returns
        -------
        object
            What its loader returns: a pandas DataFrame (csv, parquet), an xarray Dataset
            (nc, zarr, a virtual dataset), parsed JSON/TOML/YAML, text, or the folder's
            :class:`~pathlib.Path` for a folder dataset without a loader (an extracted
            archive, ``uris``; LAD-025).

        Raises
        ------
        DataManifestError
            DM078 absent offline, DM082 a binding cannot be imported, DM086 a loader's
            library is missing, DM087 no loader, DM091 the dataset is refused, or the
            fetch's error. See :func:`datamanifest.load.load`.
        """
        from .load import load

        return load(self, ident, offline=offline, trusted=trusted)

    def list(self, *terms: str, kind: str | None = None,
             format: "str | tuple[str, ...]" = (), state: "str | tuple[str, ...]" = (),
             present: bool | None = None, older_than: "str | float | None" = None,
             newer_than: "str | float | None" = None, by_access: bool = False,
             larger_than: "str | int | None" = None, unreferenced: bool = False,
             outside: bool = False, verify: bool = False) -> list:
        """The objects of the project's stores, as ``datamanifest list`` prints them
        (SCHEMA.md §22, MNT-001, MNT-010).

        Parameters
        ----------
        *terms : str
            Select objects whose id, name or key equals a term, artifacts whose hash
            starts with one (6+ characters), or that a glob (``*``, ``?``, ``[``) matches.
        kind : {"data", "cached"}, optional
            Only datasets or only produced artifacts.
        format, state : str or tuple of str
            Only these formats, or these states (clean, missing, relocated, untracked,
            modified).
        present : bool, optional
            Only present (True) or only missing (False) objects.
        older_than, newer_than : str or float, optional
            An age: ``"30d"``, ``"12h"``, ``"2w"``, or seconds.
        by_access : bool
            Ages use the last access time instead of the creation time.
        larger_than : str or int, optional
            A size: ``"500M"``, ``"2G"``, or bytes.
        unreferenced, outside : bool
            Artifacts the state file does not record; objects outside the store roots.
        verify : bool
            Re-hash present objects to find modified ones (reads the data).

        Returns
        -------
        list of Obj
            Each with ``kind``, ``id``, ``name``, ``key``, ``location``, ``state``, ``size``
            (bytes), ``created`` and ``last_access`` (seconds since the epoch), ``format``,
            ``referenced``, ``protected``; ``obj.as_json()`` is the ``list --json`` row.

        Raises
        ------
        MaintenanceError
            DM136 for a malformed age or size.
        """
        from .maintain.inventory import listing, selection

        return listing(self, selection(
            terms, kind=kind, formats=format, states=state, present=present,
            older_than=older_than, newer_than=newer_than, by_access=by_access,
            larger_than=larger_than, unreferenced=unreferenced, outside=outside), verify=verify)

    def add(self, uri: str, *, name: str | None = None, extract: bool = False,
            version: str = "", fetch: bool = True, lock_timeout: float | None = None):
        """Declare a dataset of ``uri``, fetch it verified and write its entry with its
        checksum into the manifest, comments kept (SCHEMA.md §24, AUT-005), as
        ``datamanifest add`` does. This project then reads the new manifest.

        Parameters
        ----------
        uri : str
            A URL (``https://``, ``s3://``, ...) or a local path.
        name : str, optional
            The dataset's name (default: derived from the URI, AUT-004).
        extract : bool
            Unpack a zip, tar or tar.gz archive into a folder.
        version : str
            A version label (part of the key).
        fetch : bool
            Download first (default); False declares only (the next fetch downloads it
            and fills the checksum).
        lock_timeout : float, optional
            Seconds to wait for another process's lock.

        Returns
        -------
        AddResult
            ``name``, ``uri``, ``key``, ``checksum``, ``path``, ``fetched``, ``entry``.

        Raises
        ------
        DataManifestError
            DM141 name taken, DM033 the key is declared already, DM091 the entry would be
            invalid, or the fetch's error (DM070, DM071, DM074, ...); the manifest and the
            store are then left as they were.
        """
        from .author import add

        result = add(self, uri, name=name, extract=extract, version=version, fetch=fetch,
                     lock_timeout=lock_timeout)
        fresh = type(self).open(self.manifest_path)
        self.__dict__.update(fresh.__dict__)
        return result

    def path(self, ident: str) -> Path:
        """The verified local path of a dataset (POOL-005).

        Raises
        ------
        LookupFailed
            DM076/DM077: ``ident`` names no dataset, or several.
        ManifestError
            DM091: the dataset is refused (MAN-012).
        DataManifestError
            DM078: it is not present (STO-010).
        """
        name = self.resolve(ident)
        refusal = self.refusal(name)
        if refusal is not None:
            raise refusal
        found = self.locate(name)
        if found is None:
            raise self.not_present(name)
        return found[0]

    def not_present(self, name: str) -> "DataManifestError":
        """The DM078 error for a dataset that is not present (STO-010)."""
        t = self.target(name)
        line, column = self.entry_position(name)
        return DataManifestError(f"dataset {name!r} is {t.status()} at {t.path}", code="DM078",
                                 file=str(self.manifest_path), line=line, column=column,
                                 hint=f"run `datamanifest fetch {name}`")

    def entry_position(self, name: str, field: str | None = None) -> tuple[int | None, int | None]:
        """1-based (line, column) of dataset ``name``'s header (or of its ``field``'s value)
        in the manifest file (DIAG-004); (None, None) when the file cannot be read."""
        from .spec._locate import Locator

        try:
            text = self.manifest_path.read_text(encoding="utf-8")
        except OSError:
            return None, None
        if field is None:
            return Locator(text).find((name,), value=False)
        return Locator(text).find((name, field))

    def state_records(self) -> dict:
        """The state file's records, read once per project (reset by :meth:`fetch`).

        An unreadable state file counts as empty here: it is regenerable (STA-006).
        """
        if self._state_cache is None:
            from .store.state import StateError, read_state

            try:
                self._state_cache = read_state(self.state_file).datasets
            except StateError:
                self._state_cache = {}
        return self._state_cache

    def pool_candidates(self, name: str) -> list[Target]:
        """The read-pool candidates of a dataset (POOL-001, POOL-002)."""
        from .presence import pool_candidates

        return pool_candidates(self, name)

    def locate(self, name: str) -> tuple[Path, str] | None:
        """Where dataset ``name`` is, verified (POOL-005): ``(path, "target" | "state" | "pool")``.

        None when it is not present anywhere. Never writes.
        """
        from .presence import locate

        return locate(self, name)

    @property
    def state_file(self) -> Path:
        return state_path(self.root)

    # -- edits of the user's manifest (MAN-004) ----------------------------------------------
    def fill_checksums(self, values: dict[str, str]) -> list[str]:
        """Write ``checksum = "<algo>:<hex>"`` for datasets whose checksum is still empty.

        Edits the manifest in place with tomlkit (comments, order and layout
        kept), atomically, under ``.datamanifest/manifest.lock``; re-reads the
        file under the lock so concurrent edits are not lost. Returns the names
        filled.
        """
        if not values:
            return []
        from .migrate import fill_checksums_text

        return self.edit_manifest(lambda text: fill_checksums_text(text, values))

    def edit_manifest(self, edit):
        """Apply ``edit(text) -> (new text, result)`` to the manifest and return the result.

        Under ``.datamanifest/manifest.lock``, the file is re-read (so concurrent edits
        are not lost) and written atomically only when the text changed (MAN-004).
        """
        lock_path = self.root / STATE_DIR / "manifest.lock"
        with Lock(lock_path, stale_age=self.storage.lock_stale_age, timeout=60):
            text = self.manifest_path.read_text(encoding="utf-8")
            new, result = edit(text)
            if new != text:
                write_text(self.manifest_path, new)
        return result

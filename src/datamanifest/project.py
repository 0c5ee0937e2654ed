"""A manifest on disk: discovery, storage resolution, targets and edits (SCHEMA.md §2, §7).

This is the I/O edge around the pure :mod:`datamanifest.spec` modules.
"""

from __future__ import annotations

from pathlib import Path

from .check import CheckResult, check_path
from .errors import DataManifestError, Diagnostic, LookupFailed, ManifestError
from .spec.manifest import Dataset, Manifest
from .store.atomic import write_text
from .store.layout import Target
from .store.lock import Lock
from .store.layout import STATE_DIR, state_path
from .config import discover, resolve_storage
from .operations import Operations


class Project(Operations):
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
        """A project whose manifest is ``text`` instead of the file's bytes (SCHEMA.md AUT-005).

        Parameters
        ----------
        manifest_path : str or Path
            Where the manifest is (or would be); the project is rooted at its folder.
        text : str
            A whole manifest document (TOML).

        Returns
        -------
        Project

        Raises
        ------
        ManifestError
            DM091 when ``text`` cannot be read as a whole (MAN-012), as :meth:`open`.
        """
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
        from .presence import checked

        return checked(cls, mpath, result)

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
        """What a run would do that needs this manifest trusted (SCHEMA.md §27.1, TRU-004).

        Paths are judged where they really lead (symbolic links resolved).

        Parameters
        ----------
        fetch, load : list of str
            Names of the datasets the run fetches or loads: their code runs, their targets are
            written, their pools are read.
        roots : bool
            The run writes in the store roots (maintenance).
        datacache : bool
            The run writes in ``datacache_dir`` (produced datasets).

        Returns
        -------
        list of Need
            :class:`~datamanifest.spec.trust.Need` items; empty when no trust is needed.
        """
        from .trust import needs

        return needs(self, fetch=fetch, load=load, roots=roots, datacache=datacache)

    def require_trust(self, action: str, **uses) -> None:
        """Refuse a run that needs trust this manifest does not have (TRU-005).

        Nothing has run or been written when it raises.

        Parameters
        ----------
        action : str
            The command, for the message (``fetch``, ``load``, ...).
        **uses
            What the run does: the keyword arguments of :meth:`trust_needs`.

        Raises
        ------
        TrustError
            DM180, naming each entry that needs trust and where it is written.
        """
        needs = self.trust_needs(**uses)
        if needs:
            from .trust import require

            require(self, needs, action=action)

    def refusal(self, name: str) -> ManifestError | None:
        """The DM091 error refusing dataset ``name``, or None when its closure is clean (MAN-012).

        Parameters
        ----------
        name : str
            A dataset name.

        Returns
        -------
        ManifestError or None
            DM091 located at the dataset's entry; ``err.diagnostics`` lists the errors of its
            closure (its table, what it requires, the structural tables, the configuration files).
        """
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
        """Every dataset name in document order, refused ones included (MAN-002).

        Returns
        -------
        list of str
        """
        from .spec.policy import dataset_names

        return dataset_names(self.check.data or {})

    # -- lookup -----------------------------------------------------------------------------
    def resolve(self, ident: str) -> str:
        """The dataset name ``ident`` identifies by name, alias or doi (MAN-050, MAN-051).

        Parameters
        ----------
        ident : str
            A dataset's name, one of its aliases, or its doi.

        Returns
        -------
        str
            The dataset's name.

        Raises
        ------
        LookupFailed
            DM076 when no dataset has that identifier (with the closest name as a hint), DM077
            when several do.
        """
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
        """The model of dataset ``name`` (SCHEMA.md §5).

        Parameters
        ----------
        name : str
            A dataset name (see :meth:`resolve` for aliases and dois).

        Returns
        -------
        Dataset
            The :class:`~datamanifest.spec.manifest.Dataset` model of its entry.

        Raises
        ------
        ManifestError
            DM091, the refusal (MAN-012), for a refused dataset whose entry has no model.
        KeyError
            When the manifest has no dataset of that name.
        """
        try:
            return self.manifest.datasets[name]
        except KeyError:
            refusal = self.refusal(name)
            if refusal is not None:
                raise refusal from None
            raise

    # -- storage ----------------------------------------------------------------------------
    def storage_key(self, name: str) -> str:
        """The storage key of dataset ``name``: its ``key``, or one derived from its URI (KEY-002).

        Parameters
        ----------
        name : str
            A dataset name.

        Returns
        -------
        str
            A relative ``/``-separated path.

        Raises
        ------
        UnsafeKey
            When no safe key can be derived (DM031 in ``check``).
        """
        return self.dataset(name).derived_key

    def target(self, name: str) -> Target:
        """Where dataset ``name`` lives: its location and whether it is a folder (STO-001, STO-002).

        Parameters
        ----------
        name : str
            A dataset name.

        Returns
        -------
        Target
            :class:`~datamanifest.store.layout.Target` with ``path`` and ``is_dir``.

        Raises
        ------
        ManifestError
            DM060/DM061 a storage symbol or setting that does not resolve, DM079 no source to
            derive a key from, DM031 an unsafe key or a name longer than 255 bytes, each located
            at the dataset's entry.
        """
        from .presence import target

        return target(self, name)

    def not_present(self, name: str) -> "DataManifestError":
        """The DM078 error for dataset ``name``, which is not present (STO-010).

        Parameters
        ----------
        name : str
            A dataset name.

        Returns
        -------
        DataManifestError
            DM078 located at the dataset's entry, with its target's state and path.
        """
        t = self.target(name)
        line, column = self.entry_position(name)
        return DataManifestError(f"dataset {name!r} is {t.status()} at {t.path}", code="DM078",
                                 file=str(self.manifest_path), line=line, column=column,
                                 hint=f"run `datamanifest fetch {name}`")

    def entry_position(self, name: str, field: str | None = None) -> tuple[int | None, int | None]:
        """Where dataset ``name``'s entry (or one of its fields) is in the manifest (DIAG-004).

        Parameters
        ----------
        name : str
            A dataset name.
        field : str, optional
            A field of the entry: the position of its value; the table's header when None.

        Returns
        -------
        tuple of (int or None, int or None)
            1-based line and column; (None, None) when the file cannot be read.
        """
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

        Returns
        -------
        dict
            The state document as read (SCHEMA.md §8); empty when there is none.
        """
        if self._state_cache is None:
            from .store.state import StateError, read_state

            try:
                self._state_cache = read_state(self.state_file).datasets
            except StateError:
                self._state_cache = {}
        return self._state_cache

    def pool_candidates(self, name: str) -> list[Target]:
        """The read-pool candidates of dataset ``name``, in the order they are tried (POOL-002).

        Parameters
        ----------
        name : str
            A dataset name.

        Returns
        -------
        list of Target
            One :class:`~datamanifest.store.layout.Target` per pool root.
        """
        from .presence import pool_candidates

        return pool_candidates(self, name)

    def locate(self, name: str) -> tuple[Path, str] | None:
        """Where dataset ``name`` is present, verified by its marker (POOL-005); never writes.

        Parameters
        ----------
        name : str
            A dataset name.

        Returns
        -------
        tuple of (Path, str) or None
            The path and where it was found: ``"target"``, ``"state"`` (the state file's
            record), ``"pool"`` (a read pool) or ``"in-place"`` (``lazy_access``/``skip_download``
            on a local path); None when it is not present anywhere.

        Raises
        ------
        ManifestError
            As :meth:`target`.
        """
        from .presence import locate

        return locate(self, name)

    @property
    def state_file(self) -> Path:
        """The project's state file, ``.datamanifest/state.toml`` beside the manifest (§14)."""
        return state_path(self.root)

    # -- edits of the user's manifest (MAN-004) ----------------------------------------------
    def fill_checksums(self, values: dict[str, str]) -> list[str]:
        """Write ``checksum = "<algo>:<hex>"`` for datasets whose checksum is empty (MAN-004).

        The manifest is edited in place with tomlkit (comments, order and layout kept), atomically,
        under ``.datamanifest/manifest.lock``, re-read under the lock so concurrent edits are not
        lost.

        Parameters
        ----------
        values : dict of str to str
            Dataset name -> the checksum to write.

        Returns
        -------
        list of str
            The names whose checksum was filled.
        """
        if not values:
            return []
        from .migrate import fill_checksums_text

        return self.edit_manifest(lambda text: fill_checksums_text(text, values))

    def edit_manifest(self, edit):
        """Apply ``edit`` to the manifest's text and return its result (MAN-004).

        Under ``.datamanifest/manifest.lock`` the file is re-read (so concurrent edits are not lost)
        and written atomically only when the text changed.

        Parameters
        ----------
        edit : callable
            ``edit(text) -> (new_text, result)``.

        Returns
        -------
        object
            ``result`` as ``edit`` returned it.

        Raises
        ------
        LockTimeout
            DM075 when another process holds the manifest's lock for over 60 seconds.
        """
        lock_path = self.root / STATE_DIR / "manifest.lock"
        with Lock(lock_path, stale_age=self.storage.lock_stale_age, timeout=60):
            text = self.manifest_path.read_text(encoding="utf-8")
            new, result = edit(text)
            if new != text:
                write_text(self.manifest_path, new)
        return result

"""A manifest on disk: discovery, storage resolution, targets and edits (SCHEMA.md §2, §7).

This is the I/O edge around the pure :mod:`datamanifest.spec` modules.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .check import CheckResult, check_path
from .errors import DataManifestError, Diagnostic, LookupFailed, ManifestError
from .spec.manifest import Dataset, Manifest
from .store.atomic import write_text
from .store.layout import Target
from .store.lock import Lock
from .store.state import STATE_DIR, state_path



def discover(start: Path | None = None) -> Path:
    """Find the manifest (DISC-001, DISC-002).

    ``$DATAMANIFEST_TOML`` wins when set; otherwise each folder from ``start``
    (default: the working directory) up to the file-system root is searched
    for the names of :data:`datamanifest.spec.discovery.MANIFEST_NAMES`, in that order.
    Raises :class:`ManifestError` (DM003) when none is found.
    """
    from .spec.discovery import discover as _discover

    here = (start or Path.cwd()).resolve()
    found = _discover(here.as_posix(), os.path.isfile, os.environ)
    if found is not None:
        return Path(found)
    raise ManifestError(
        f"no manifest found in {here} or its parents", code="DM003",
        hint="create datamanifest.toml, or pass its path",
    )


@dataclass(frozen=True)
class StorageConfig:
    """The resolved storage settings of a project (STO-006). Paths are absolute."""

    datasets_dir: Path
    datasets_dir_source: str  # the ladder rung that set it (SCHEMA.md RES-001)
    lock_stale_age: float  # seconds
    symbols: dict[str, str]
    resolved: object = None  # datamanifest.spec.resolution.Resolved
    platform: object = None  # datamanifest.spec.resolution.Platform


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

    @classmethod
    def _checked(cls, mpath: Path, result: CheckResult) -> "Project":
        from .spec.manifest import Dataset
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
            datasets = {}
            for name, table in data.items():
                if name.startswith("_") or not isinstance(table, dict):
                    continue
                try:  # lenient: unknown fields kept (MAN-003); refused ones may lack a model
                    datasets[name] = Dataset.model_validate(table)
                except ValueError:
                    continue
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

    @property
    def warnings(self) -> list[Diagnostic]:
        """The warnings of the manifest and the configuration files (errors refuse datasets,
        see :meth:`refusal`)."""
        return [d for d in self.check.diagnostics + self.config_diagnostics
                if d.severity != "error"]

    def refusal(self, name: str) -> ManifestError | None:
        """The DM091 error refusing dataset ``name`` (MAN-012), or None when its closure is
        clean. ``err.diagnostics`` lists the errors of its closure."""
        errs = self.refused.get(name)
        if not errs:
            return None
        from .spec._locate import Locator

        line = column = None
        try:
            line, column = Locator(self.manifest_path.read_text(encoding="utf-8")).find(
                (name,), value=False)
        except OSError:
            pass
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
            raise LookupFailed(f"no dataset named {ident!r} (by name, alias or doi)", code="DM076",
                               hint="`datamanifest status` lists the datasets")
        if len(found) > 1:
            raise LookupFailed(f"{ident!r} matches several datasets: {', '.join(found)}",
                               code="DM077", hint="use the dataset's name")
        return found[0]

    def dataset(self, name: str) -> Dataset:
        return self.manifest.datasets[name]

    # -- storage ----------------------------------------------------------------------------
    def storage_key(self, name: str) -> str:
        return self.dataset(name).derived_key

    def target(self, name: str) -> Target:
        """Where dataset ``name`` lives (STO-001, STO-002)."""
        from .spec.resolution import ResolutionError, storage_path

        ds = self.dataset(name)
        try:
            path, _ = storage_path(name, ds, self.storage.resolved, self.storage.platform)
        except ResolutionError as e:
            raise ManifestError(f"dataset {name!r}: {e}", code=e.code, file=str(self.manifest_path),
                                hint="define the symbol in [_STORAGE] or set the variable") from None
        # a fetcher may have written a folder (LAD-020): the bytes on disk tell

        folder = ds.is_folder
        return Target(Path(path), folder or Path(path).is_dir())

    # -- operations (Python API) -------------------------------------------------------------------
    def fetch(self, names: list[str] | None = None, *, jobs: int = 4, force: bool = False,
              lock_timeout: float | None = None):
        """Fetch datasets (identifiers; all when None) with their requirements (SCHEMA.md §11).

        Returns a :class:`~datamanifest.fetch.engine.FetchReport`; raises
        :class:`~datamanifest.errors.FetchError` with the first failure when
        any dataset failed, after every other dataset was attempted.
        """
        from .fetch.engine import Fetcher

        report = Fetcher(self, jobs=jobs, force=force, lock_timeout=lock_timeout).run(names)
        self._state_cache = None  # the run may have recorded new locations
        failures = [o for o in report.outcomes if o.error is not None]
        if failures:
            raise failures[0].error  # type: ignore[misc]
        return report

    def load(self, ident: str, *, offline: bool = False):
        """The loaded dataset (load ladder, SCHEMA.md §15); see :func:`datamanifest.load.load`."""
        from .load import load

        return load(self, ident, offline=offline)

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
        return DataManifestError(f"dataset {name!r} is {t.status()} at {t.path}", code="DM078",
                                 hint=f"run `datamanifest fetch {name}`")

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
        from .spec.resolution import pool_candidates

        ds = self.dataset(name)
        is_dir = ds.is_folder
        return [Target(Path(p), is_dir) for p in pool_candidates(ds, self.storage.resolved,
                                                                 self.storage.platform)]

    def locate(self, name: str) -> tuple[Path, str] | None:
        """Where dataset ``name`` is, verified (POOL-005): ``(path, "target" | "state" | "pool")``.

        None when it is not present anywhere. Never writes.
        """
        from .store.layout import is_current, pool_hit

        ds = self.dataset(name)
        if ds.lazy_access or ds.skip_download:  # LAD-024, RES-006: used in place
            from .fetch.sources import local_path, scheme_of

            if ds.uri and scheme_of(ds.uri) == "file":
                where = local_path(ds.uri, self.root) if not ds.storage_path else \
                    self.target(name).path
                return (where, "in-place") if where.exists() else None
            return None
        target = self.target(name)
        declared = ds.effective_checksum
        status = target.status()
        if is_current(status, declared, target.read_marker() if status == "present" else {}):
            return target.path, "target"
        if declared:
            rec = self.state_records().get(ds.derived_key)
            if rec is not None and rec.checksum == declared:
                where = Path(rec.storage_path)
                where = where if where.is_absolute() else self.root / where
                if where.exists() and where != target.path:
                    return where, "state"
        for candidate in self.pool_candidates(name):
            if pool_hit(candidate, declared):
                return candidate.path, "pool"
        return None

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


def user_config_path() -> Path:
    """The user configuration file ``<user config dir>/datamanifest/config.toml`` (CFG-001)."""
    import platformdirs

    return Path(platformdirs.user_config_dir()) / "datamanifest" / "config.toml"


def checkout_config_path(root: Path) -> Path:
    """The checkout configuration file ``<root>/.datamanifest/config.toml`` (CFG-001)."""
    return root / STATE_DIR / "config.toml"


def read_config(path: Path) -> dict:
    """A configuration document as a dict ({} when absent). Raises ManifestError on bad TOML."""
    import tomllib

    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise ManifestError(f"cannot read configuration {path}: {e}", code="DM001",
                            file=str(path), hint="run `datamanifest check` on it") from None


def check_configs(root: Path) -> list[Diagnostic]:
    """The diagnostics of the configuration files a run reads (CFG-001, CFG-003): the
    checkout file of the project at ``root`` and the user file, when they exist."""
    from .check import check_text

    out: list[Diagnostic] = []
    for path in (checkout_config_path(root), user_config_path()):
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            continue
        except (OSError, UnicodeDecodeError):
            continue  # read_config reports it when storage is resolved
        out.extend(check_text(text, str(path), "config").diagnostics)
    return out


def current_platform(root: Path):
    """The :class:`~datamanifest.spec.resolution.Platform` of this machine and process."""
    import socket

    import platformdirs

    from .spec.resolution import Platform

    return Platform(root=str(root), hostname=socket.gethostname(), home=str(Path.home()),
                    user_data_dir=platformdirs.user_data_dir(),
                    user_cache_dir=platformdirs.user_cache_dir(), env=dict(os.environ))


def resolve_storage(manifest: Manifest, root: Path) -> StorageConfig:
    """Resolve storage with the full ladder of SCHEMA.md §14 on this machine.

    Raises :class:`ManifestError` (DM060 unknown symbol, DM061 bad setting).
    """
    from .spec.resolution import ResolutionError
    from .spec.resolution import resolve_storage as _resolve

    platform = current_platform(root)
    checkout = read_config(checkout_config_path(root))
    user = read_config(user_config_path())
    try:
        resolved = _resolve(manifest, checkout, user, platform)
    except ResolutionError as e:
        raise ManifestError(f"storage: {e}", code=e.code,
                            hint="see `datamanifest check` and your configuration files") from None
    return StorageConfig(
        datasets_dir=Path(resolved.get("datasets_dir")),
        datasets_dir_source=resolved.settings["datasets_dir"].rung,
        lock_stale_age=resolved.get("lock_stale_age"),
        symbols=resolved.symbols,
        resolved=resolved,
        platform=platform,
    )

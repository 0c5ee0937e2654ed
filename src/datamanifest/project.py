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

    Open with :meth:`Project.open`; raises :class:`ManifestError` (DM091)
    carrying every diagnostic when the manifest has errors.
    """

    def __init__(self, manifest_path: Path, result: CheckResult) -> None:
        self.manifest_path = manifest_path
        self.root = manifest_path.parent
        self.check = result
        assert result.manifest is not None
        self.manifest: Manifest = result.manifest
        self.storage = resolve_storage(self.manifest, self.root)
        self._state_cache: dict | None = None  # state records, read lazily

    # -- opening ----------------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | Path | None = None) -> "Project":
        """Open the manifest at ``path`` (a file or a folder), or discover it."""
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
        # MAN-011: unknown fields are typos to `check`, but readers keep and ignore them.
        errors = [d for d in result.errors if d.code != "DM010"]
        if errors:
            raise ManifestError(
                f"{mpath} has {len(errors)} error(s)", code="DM091", file=str(mpath),
                hint="run `datamanifest check` for details", diagnostics=result.diagnostics,
            )
        if result.manifest is None and result.data is not None:
            try:
                result.manifest = Manifest.from_dict(result.data)
            except ValueError as e:  # a form only the unknown-field diagnostics hid
                raise ManifestError(f"{mpath}: {e}", code="DM091", file=str(mpath),
                                    hint="run `datamanifest check` for details",
                                    diagnostics=result.diagnostics) from None
        return cls(mpath, result)

    def __repr__(self) -> str:
        from .display import project_repr

        return project_repr(self)

    def _repr_html_(self) -> str:
        """The datasets with their states, sizes and paths as HTML (SCHEMA.md INT-030)."""
        from .display import project_html

        return project_html(self)

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.check.diagnostics if d.severity != "error" or d.code == "DM010"]

    # -- lookup -----------------------------------------------------------------------------
    def resolve(self, ident: str) -> str:
        """The dataset name ``ident`` identifies by name, alias or doi (MAN-050, MAN-051)."""
        found = self.manifest.candidates(ident)
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

    def status(self, names: list[str] | None = None) -> list[dict]:
        """What ``datamanifest status`` prints: one row per dataset (identifiers; all when
        None), reading markers and the state file, never the data.

        Returns
        -------
        list of dict
            ``name``; ``status``: ``present``, ``present (state)``/``(pool)``/``(in-place)``
            (found elsewhere, verified by its marker), ``outdated`` (present, but its marker
            records another checksum than the manifest's), ``missing``, ``incomplete``, or
            ``external`` (``skip_download``/``lazy_access``: used where it is); ``path``;
            ``checksum`` (declared, else the marker's); ``size`` in bytes (the marker's;
            None when unknown).

        Raises
        ------
        LookupFailed
            DM076/DM077 for an identifier that names no dataset or several (MAN-051).
        """
        selected = [self.resolve(n) for n in names] if names else list(self.manifest.datasets)
        rows = []
        for n in selected:
            ds = self.dataset(n)
            if ds.skip_download or ds.lazy_access:
                rows.append({"name": n, "status": "external", "path": ds.uri or None,
                             "checksum": ds.effective_checksum, "size": None})
                continue
            t = self.target(n)
            st = t.status()
            marker = t.read_marker() if st == "present" else {}
            declared = ds.effective_checksum
            found = self.locate(n)
            where = str(t.path)
            if found is not None and found[1] != "target":
                st, where = f"present ({found[1]})", str(found[0])
            elif st == "present" and declared and marker.get("checksum", declared) != declared:
                st = "outdated"
            rows.append({"name": n, "status": st, "path": where,
                         "checksum": declared or marker.get("checksum", ""),
                         "size": marker.get("size")})
        return rows

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
        """The verified local path of a dataset. Raises DM078 when it is not present (STO-010)."""
        name = self.resolve(ident)
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

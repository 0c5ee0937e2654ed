"""A manifest on disk: discovery, storage resolution, targets and edits (SCHEMA.md §2, §7).

This is the I/O edge around the pure :mod:`datamanifest.spec` modules.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .check import PREDEFINED_SYMBOLS, STORAGE_FIELDS, CheckResult, check_path
from .errors import Diagnostic, LookupFailed, ManifestError
from .spec import keys as _keys
from .spec import storage as _storage
from .spec.manifest import Dataset, Manifest
from .store.atomic import write_text
from .store.layout import Target
from .store.lock import DEFAULT_STALE_AGE, Lock
from .store.state import STATE_DIR, state_path

#: DISC-001: file names tried in each folder, first existing wins.
MANIFEST_NAMES = ("datamanifest.toml", "DataManifest.toml", "datasets.toml", "Datasets.toml")


def discover(start: Path | None = None) -> Path:
    """Find the manifest (DISC-001, DISC-002).

    ``$DATAMANIFEST_TOML`` wins when set; otherwise each folder from ``start``
    (default: the working directory) up to the file-system root is searched
    for the names of :data:`MANIFEST_NAMES`, in that order.
    Raises :class:`ManifestError` (DM003) when none is found.
    """
    env = os.environ.get("DATAMANIFEST_TOML")
    if env:
        return Path(env)
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        for name in MANIFEST_NAMES:
            candidate = folder / name
            if candidate.is_file():
                return candidate
    raise ManifestError(
        f"no manifest found in {here} or its parents", code="DM003",
        hint="create datamanifest.toml, or pass its path",
    )


@dataclass(frozen=True)
class StorageConfig:
    """The resolved storage settings of a project (STO-006). Paths are absolute."""

    datasets_dir: Path
    datasets_dir_source: str  # which rung set it: "environment", "manifest" or "default"
    lock_stale_age: float
    symbols: dict[str, str]


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
        result = check_path(mpath)
        # MAN-011: unknown fields are typos to `check`, but readers keep and ignore them.
        errors = [d for d in result.errors if d.code != "DM010"]
        if errors:
            raise ManifestError(
                f"{mpath} has {len(errors)} error(s)", code="DM091", file=str(mpath),
                hint="run `datamanifest check` for details", diagnostics=result.diagnostics,
            )
        if result.manifest is None and result.data is not None:
            result.manifest = Manifest.from_dict(result.data)
        return cls(mpath, result)

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
        ds = self.dataset(name)
        key = ds.derived_key
        is_dir = ds.extract or bool(ds.uris)
        if ds.extract:
            key = _keys.extracted_key(key)
        expr = ds.storage_path or ds.local_path or "$datasets_dir/$key"
        symbols = dict(self.storage.symbols, key=key)
        try:
            expanded = expand_path(expr, symbols)
        except _storage.SymbolError as e:
            raise ManifestError(f"dataset {name!r}: {e}", code="DM060", file=str(self.manifest_path),
                                hint="define the symbol in [_STORAGE] or set the variable") from None
        path = Path(expanded)
        if not path.is_absolute():
            path = self.root / path
        return Target(path, is_dir)

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
        failures = [o for o in report.outcomes if o.error is not None]
        if failures:
            raise failures[0].error  # type: ignore[misc]
        return report

    def path(self, ident: str) -> Path:
        """The verified local path of a dataset. Raises DM078 when it is not present (STO-010)."""
        from .errors import DataManifestError

        name = self.resolve(ident)
        t = self.target(name)
        if t.status() != "present":
            raise DataManifestError(f"dataset {name!r} is {t.status()} at {t.path}", code="DM078",
                                    hint=f"run `datamanifest fetch {name}`")
        return t.path

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
        import tomlkit

        filled = []
        lock_path = self.root / STATE_DIR / "manifest.lock"
        with Lock(lock_path, stale_age=self.storage.lock_stale_age, timeout=60):
            text = self.manifest_path.read_text(encoding="utf-8")
            doc = tomlkit.parse(text)
            for name, value in values.items():
                table = doc.get(name)
                if table is None or not hasattr(table, "get"):
                    continue
                if table.get("checksum", "") or table.get("sha256", ""):
                    continue  # someone filled it meanwhile
                if "checksum" in table:
                    table["checksum"] = value
                elif "uri" in table and hasattr(table, "value"):
                    _insert_after(table, "uri", "checksum", value)
                else:
                    table["checksum"] = value
                filled.append(name)
            new = tomlkit.dumps(doc)
            if new != text:
                write_text(self.manifest_path, new)
        return filled


def _insert_after(table, after: str, key: str, value: str) -> None:
    """Insert ``key = value`` right after ``after`` in a tomlkit table, else append."""
    import tomlkit

    keys = list(table.keys())
    try:
        idx = keys.index(after)
    except ValueError:
        table[key] = value
        return
    container = table.value
    if idx + 1 < len(keys):
        container._insert_after(after, key, tomlkit.item(value))  # noqa: SLF001 - tomlkit API
    else:
        table[key] = value


def expand_path(expr: str, symbols: dict[str, str]) -> str:
    """Expand a path expression (STO-003): symbols, upper-case environment variables, ``~``."""
    env_symbols = dict(symbols)
    for name in _storage.symbols_in(expr):
        if name not in env_symbols and _storage.is_env_name(name) and name in os.environ:
            env_symbols[name] = os.environ[name].replace("$", "$$")
    out = _storage.expand(expr, env_symbols)
    return os.path.expanduser(out)


def resolve_storage(manifest: Manifest, root: Path) -> StorageConfig:
    """Resolve ``datasets_dir`` and symbols (STO-006 ladder: environment, manifest, default).

    The full ladder of checkout, host and user configuration files is
    specified for a later version (ROADMAP); this resolves the environment
    variable ``DATAMANIFEST_DATASETS_DIR``, then ``[_STORAGE].datasets_dir``,
    then the default ``$user_data_dir/datamanifest/shared/datasets``.
    """
    import platformdirs

    st = manifest.storage
    symbols: dict[str, str] = {
        "repo": str(root).replace("$", "$$"),
        "project": str(st.get("project") or root.name).replace("$", "$$"),
        "user_data_dir": platformdirs.user_data_dir().replace("$", "$$"),
        "user_cache_dir": platformdirs.user_cache_dir().replace("$", "$$"),
    }
    for k, v in st.items():
        if not k.startswith("_") and k not in STORAGE_FIELDS and isinstance(v, str):
            symbols[k] = v
    env = os.environ.get("DATAMANIFEST_DATASETS_DIR")
    if env:
        expr, source = env.replace("$", "$$") if "$" not in env else env, "environment"
    elif isinstance(st.get("datasets_dir"), str):
        expr, source = st["datasets_dir"], "manifest"
    else:
        expr, source = "$user_data_dir/datamanifest/shared/datasets", "default"
    try:
        expanded = expand_path(expr, symbols)
    except _storage.SymbolError as e:
        raise ManifestError(f"datasets_dir: {e}", code="DM060",
                            hint="define the symbol in [_STORAGE]") from None
    path = Path(expanded)
    if not path.is_absolute():
        path = root / path
    symbols["datasets_dir"] = str(path).replace("$", "$$")
    symbols.setdefault("datacache_dir", "$user_cache_dir/datamanifest/projects/$project/cached")
    stale = st.get("lock_stale_age", DEFAULT_STALE_AGE)
    try:
        stale = float(stale)
    except (TypeError, ValueError):
        stale = DEFAULT_STALE_AGE
    if stale <= 0:
        stale = DEFAULT_STALE_AGE
    env_stale = os.environ.get("DATAMANIFEST_LOCK_STALE_AGE")
    if env_stale:
        try:
            stale = float(env_stale) if float(env_stale) > 0 else stale
        except ValueError:
            pass
    assert set(PREDEFINED_SYMBOLS) - {"key"} <= set(symbols)
    return StorageConfig(path, source, stale, symbols)

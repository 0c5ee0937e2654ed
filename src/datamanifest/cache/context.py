"""Which project a producer belongs to, and where its store is (SCHEMA.md PRD-029).

The manifest is discovered from the working directory (DISC-001) and its storage
settings resolved with the ladder of §14; without a manifest the working
directory is the project root. Resolution is remembered per process and
recomputed when the working directory, a ``DATAMANIFEST_<FIELD>`` or platform
variable, or one of the files it read (manifest, checkout and user configuration)
changes: a cache hit costs a few ``stat`` calls here, never a parse. (An environment
variable named inside a path expression is read when the context is resolved.)
"""

from __future__ import annotations

import os
import threading
import tomllib
from dataclasses import dataclass
from pathlib import Path

from ..errors import ManifestError

#: variables besides DATAMANIFEST_* that change the platform folders
_PLATFORM_VARS = ("HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME")


@dataclass(frozen=True)
class Context:
    """The resolved storage of a producer's project. Paths are absolute.

    ``root``: the project root; ``manifest``: its manifest, or None (PRD-029);
    ``datacache_dir``: where artifacts are published; ``pools``: ``datacache_pools``
    (read only, PRD-023); ``stale_age``: ``lock_stale_age`` in seconds;
    ``state_file``: ``<root>/.datamanifest/state.toml``; ``needs``: what producing and
    loading here needs trust for (TRU-004: a ``datacache_dir`` or a pool the project's
    documents put outside the project), with the documents to judge it (``documents``:
    the parsed manifest and checkout configuration).
    """

    root: Path
    manifest: Path | None
    datacache_dir: Path
    pools: tuple[Path, ...]
    stale_age: float
    state_file: Path
    needs: tuple = ()
    documents: tuple = ({}, {})


_lock = threading.Lock()
_memo: dict[tuple, tuple[tuple, Context]] = {}


def _mtime(path: str) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return -1


#: the variables that decide a producer's store: the ladder's (RES-001) for the fields it
#: uses, and those behind the platform folders; an environment variable named inside a
#: path expression is read when the context is resolved
_WATCHED = ("DATAMANIFEST_TOML", "DATAMANIFEST_DATACACHE_DIR", "DATAMANIFEST_DATACACHE_POOLS",
            "DATAMANIFEST_DATASETS_DIR", "DATAMANIFEST_PROJECT", "DATAMANIFEST_LOCK_STALE_AGE",
            *_PLATFORM_VARS)
_RAW_ENV = getattr(os.environ, "_data", None)  # CPython's mapping under os.environ: no decoding
_WATCHED_RAW = tuple(os.fsencode(k) for k in _WATCHED) if os.name == "posix" else ()


def _env_key() -> tuple:
    if isinstance(_RAW_ENV, dict) and _WATCHED_RAW:
        get = _RAW_ENV.get
        return tuple(get(k) for k in _WATCHED_RAW)
    env_get = os.environ.get
    return tuple(env_get(k) for k in _WATCHED)


def current() -> Context:
    """The context of the working directory (memoized; see the module docstring).

    Raises :class:`~datamanifest.errors.ManifestError` when the manifest or a
    configuration file cannot be read, or a storage setting is invalid (DM060, DM061).
    """
    key = (os.getcwd(), _env_key())
    memo = _memo.get(key)  # one dict read: atomic, no lock needed
    if memo is not None:
        files, ctx = memo
        if [_mtime(p) for p in files[0]] == files[1]:
            return _trusted(ctx)
    ctx, paths = _resolve()
    files = (paths, [_mtime(p) for p in paths])
    with _lock:
        _memo[key] = (files, ctx)
    return _trusted(ctx)


def _trusted(ctx: Context) -> Context:
    """TRU-005: a store the project's documents put outside the project is used only for a
    trusted manifest (DM180); nothing is asked when there is no such store."""
    if ctx.needs and ctx.manifest is not None:
        from ..trust import require_for

        require_for(ctx.manifest.resolve(), ctx.documents[0], ctx.documents[1],
                    list(ctx.needs), action="produce")
    return ctx


def _resolve() -> tuple[Context, tuple[str, ...]]:
    from ..config import checkout_config_path, current_platform, read_config, user_config_path
    from ..spec.manifest import Manifest
    from ..spec.resolution import ResolutionError, resolve_storage
    from ..store.layout import state_path

    try:
        from ..config import discover

        manifest_path: Path | None = discover()
    except ManifestError:
        manifest_path = None
    data: dict = {}
    if manifest_path is not None:
        root = manifest_path.resolve().parent
        try:
            data = tomllib.loads(manifest_path.read_text(encoding="utf-8"))
            manifest = Manifest.from_dict(data)
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, ValueError) as e:
            raise ManifestError(f"cannot read {manifest_path}: {e}", file=str(manifest_path),
                                hint="run `datamanifest check` for details") from e
    else:
        root = Path.cwd().resolve()
        manifest = Manifest.from_dict({"_META": {"schema": 1}})
    checkout_path, user_path = checkout_config_path(root), user_config_path()
    platform = current_platform(root)
    checkout, user = read_config(checkout_path), read_config(user_path)
    try:
        resolved = resolve_storage(manifest, checkout, user, platform)
        needs: tuple = ()
        if manifest_path is not None and (manifest.storage or checkout):
            from ..spec.trust import needs as trust_needs

            needs = tuple(trust_needs(manifest, checkout, user, platform, datacache=True,
                                      realpath=os.path.realpath))
    except ResolutionError as e:
        raise ManifestError(f"storage: {e}", code=e.code,
                            hint="see `datamanifest where` and your configuration files") from e
    ctx = Context(root=root, manifest=manifest_path,
                  datacache_dir=Path(resolved.get("datacache_dir")),
                  pools=tuple(Path(p) for p in resolved.get("datacache_pools")),
                  stale_age=float(resolved.get("lock_stale_age")),
                  state_file=state_path(root), needs=needs, documents=(data, checkout))
    # without a manifest, one created later in the working directory is noticed
    first = manifest_path if manifest_path is not None else root / "datamanifest.toml"
    return ctx, tuple(os.fspath(p) for p in (first, checkout_path, user_path))

"""Trust: what in a project's documents is code or directs writes, its digest, and what a run
would need trust for (SCHEMA.md §27.1, TRU-001..TRU-009).

Pure: parsed documents, resolved settings and a platform in; entries, a digest and needs out.
The one file-system question (where a path really leads, through symbolic links) is asked
through a ``realpath`` function the caller passes in (the identity for described paths).

*Project-supplied* documents come with a repository and may be a stranger's: the manifest
and the checkout configuration ``.datamanifest/config.toml``. The user's own are the
environment, the user configuration file and the command line. Like direnv's ``.envrc``,
the project-supplied *trust-relevant entries* (TRU-002) are hashed (TRU-003); a run that would
run one of the code entries, or write or read outside the project and the user's own stores
(TRU-004), needs the manifest trusted for exactly that digest.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import math
import ntpath
import posixpath
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from . import storage as _storage

#: the two project-supplied documents (TRU-001)
MANIFEST, CHECKOUT = "manifest", "checkout"
#: dataset fields that name code (TRU-002)
CODE_FIELDS = ("shell", "fetcher", "loader")
#: dataset fields that say where a dataset is written (TRU-002)
PATH_FIELDS = ("storage_path", "local_path")
#: the dataset keys that can hold a trust-relevant entry
_DATASET_KEYS = frozenset(CODE_FIELDS + PATH_FIELDS + ("_LANG",))
#: symbols that keep a path expression inside the project or the user's stores (TRU-007)
CONTAINED_SYMBOLS = frozenset({"repo", "key", "datasets_dir", "datacache_dir", "project"})
#: storage fields that are path expressions, one or several (RES-002)
PATH_SETTINGS = frozenset({"datasets_dir", "datacache_dir"})
POOL_SETTINGS = frozenset({"datasets_pools", "datacache_pools"})
#: the rungs of RES-001 whose documents are project-supplied
PROJECT_RUNGS = frozenset({"checkout-host", "checkout", "manifest-host", "manifest"})


@dataclass(frozen=True)
class Entry:
    """One trust-relevant entry (TRU-002): the ``document`` it is in (``manifest`` or
    ``checkout``), its ``path`` of keys, its ``value`` as parsed, and its ``kind``:
    ``code`` (a shell template or a binding) or ``storage`` (a storage setting, a user
    symbol, a dataset's ``storage_path``)."""

    document: str
    path: tuple[str, ...]
    value: Any
    kind: str

    def label(self) -> str:
        """``dataset 'x' shell`` / ``[_STORAGE] datasets_dir`` / ``.datamanifest/config.toml
        datasets_dir``: how a message names the entry."""
        if self.document == CHECKOUT:
            return ".datamanifest/config.toml " + ".".join(self.path)
        head = self.path[0]
        if head.startswith("_"):
            return f"[{head}] " + ".".join(self.path[1:])
        return f"dataset {head!r} " + ".".join(self.path[1:])

    def as_json(self) -> dict[str, Any]:
        return {"document": self.document, "path": list(self.path),
                "value": canonical_value(self.value), "kind": self.kind}

    def show(self, width: int = 72) -> str:
        """``label = value`` on one line, the value as JSON, shortened to ``width``."""
        import json

        text = json.dumps(canonical_value(self.value), ensure_ascii=False)
        if len(text) > width:
            text = text[:width - 3] + "..."
        return f"{self.label()} = {text}"


def _leaves(table: Mapping[str, Any], prefix: tuple[str, ...]) -> Iterable[tuple[tuple[str, ...], Any]]:
    for k, v in table.items():
        if isinstance(v, Mapping):
            yield from _leaves(v, (*prefix, k))
        else:
            yield (*prefix, k), v


def _storage_leaves(table: Mapping[str, Any], prefix: tuple[str, ...]) -> Iterable[tuple[tuple[str, ...], Any]]:
    """Every setting and user symbol of a storage table: its non-``_`` keys and its
    ``_HOST`` sections (other ``_`` keys are foreign and ignored, CFG-002)."""
    for k, v in table.items():
        if k == "_HOST" and isinstance(v, Mapping):
            yield from _leaves(v, (*prefix, "_HOST"))
        elif not k.startswith("_"):
            if isinstance(v, Mapping):
                yield from _leaves(v, (*prefix, k))
            else:
                yield (*prefix, k), v


def entries(manifest: Mapping[str, Any], checkout: Mapping[str, Any] | None = None) -> list[Entry]:
    """The trust-relevant entries of a manifest and a checkout configuration (TRU-002),
    sorted by document and path (code point order).

    Parameters
    ----------
    manifest : Mapping
        The parsed manifest (TOML as a dict).
    checkout : Mapping, optional
        The parsed checkout configuration ``.datamanifest/config.toml`` ({} or None when
        absent).

    Returns
    -------
    list of Entry
        Code entries: each dataset's ``shell`` (when not empty), ``fetcher`` and
        ``loader``, the ``fetcher`` and ``loader`` of each of its ``_LANG.<lang>`` tables,
        each value of ``[_LOADERS]`` and of ``[_LANG.<lang>.loaders]``, whole. Storage
        entries: each leaf of ``[_STORAGE]`` (its non-``_`` keys and ``_HOST`` sections),
        each dataset's ``storage_path`` and ``local_path`` (when not empty), and each leaf
        of the checkout configuration likewise.
    """
    out: list[Entry] = []
    for name, table in manifest.items():
        if not isinstance(table, Mapping):
            continue
        if name == "_LOADERS":
            out += [Entry(MANIFEST, ("_LOADERS", fmt), v, "code") for fmt, v in table.items()]
        elif name == "_LANG":
            for lang, t in table.items():
                loaders = t.get("loaders") if isinstance(t, Mapping) else None
                if isinstance(loaders, Mapping):
                    out += [Entry(MANIFEST, ("_LANG", lang, "loaders", fmt), v, "code")
                            for fmt, v in loaders.items()]
        elif name == "_STORAGE":
            out += [Entry(MANIFEST, p, v, "storage") for p, v in _storage_leaves(table, ("_STORAGE",))]
        elif not name.startswith("_"):
            if table.keys().isdisjoint(_DATASET_KEYS):
                continue  # most datasets: one set test
            for f in CODE_FIELDS:
                if f in table and table[f] != "" and table[f] is not None:
                    out.append(Entry(MANIFEST, (name, f), table[f], "code"))
            lang_tables = table.get("_LANG")
            if isinstance(lang_tables, Mapping):
                for lang, t in lang_tables.items():
                    if isinstance(t, Mapping):
                        out += [Entry(MANIFEST, (name, "_LANG", lang, role), t[role], "code")
                                for role in ("fetcher", "loader") if role in t]
            for f in PATH_FIELDS:
                if table.get(f):
                    out.append(Entry(MANIFEST, (name, f), table[f], "storage"))
    if checkout:
        out += [Entry(CHECKOUT, p, v, "storage") for p, v in _storage_leaves(checkout, ())]
    return sorted(out, key=lambda e: (e.document, e.path))


def canonical_value(value: Any) -> Any:
    """A parsed TOML value in the canonical JSON domain (TRU-003): a date-time, date or time
    becomes its ISO 8601 string (``YYYY-MM-DDTHH:MM:SS[.ffffff][±HH:MM]``), NaN and the
    infinities the strings ``nan``, ``inf`` and ``-inf``; arrays and tables recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, list):
        return [canonical_value(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): canonical_value(v) for k, v in value.items()}
    return value


def digest(manifest_path: str, items: Sequence[Entry]) -> str:
    """The trust digest (TRU-003): ``sha256:`` and the lowercase hex SHA-256 of the UTF-8
    canonical JSON (PAR-002) of ``{"manifest": <manifest_path>, "entries": [{"document",
    "path", "value"}, ...]}``, the entries sorted by document, then path element by
    element, in code point order.

    Parameters
    ----------
    manifest_path : str
        The manifest's absolute path, ``/``-separated: a trust is for one file in one
        place, as direnv's is, since relative paths mean other places elsewhere.
    items : sequence of Entry
        The entries of :func:`entries`.
    """
    from .paramhash import canonical_json

    doc = {"manifest": manifest_path,
           "entries": [{"document": e.document, "path": list(e.path),
                        "value": canonical_value(e.value)}
                       for e in sorted(items, key=lambda e: (e.document, e.path))]}
    return "sha256:" + hashlib.sha256(canonical_json(doc).encode("utf-8")).hexdigest()


# -- what check reports (TRU-007) ------------------------------------------------------------
def _expression_may_leave(expr: Any) -> bool:
    if not isinstance(expr, str):
        return False
    if expr.startswith(("/", "\\", "~")) or (len(expr) > 1 and expr[1] == ":"):
        return True
    if ".." in expr.replace("\\", "/").split("/"):
        return True
    return any(s not in CONTAINED_SYMBOLS for s in _storage.symbols_in(expr))


def _default_max_extract() -> int:
    from .resolution import DEFAULTS

    return DEFAULTS["max_extract_bytes"]


def reason(entry: Entry) -> str | None:
    """Why ``check`` reports an entry as needing trust (TRU-007), or None when it cannot
    lead a run to run code or to leave the project.

    Code entries always. A path expression (``datasets_dir``, ``datacache_dir``, a pool,
    ``storage_path``, ``local_path``, a user symbol) that is absolute, starts with ``~``,
    has a ``..`` segment, or uses a symbol other than ``repo``, ``key``, ``datasets_dir``,
    ``datacache_dir`` and ``project`` (an environment variable or a user symbol may lead
    anywhere). A ``project`` name holding ``/`` or ``\\``, or equal to ``.`` or ``..`` (it
    is a folder of the default ``datacache_dir``). A ``max_extract_bytes`` above the
    default (FET-022).
    """
    if entry.kind == "code":
        if entry.path[0] in ("_LOADERS", "_LANG"):
            return f"a loader run when a dataset of format {entry.path[-1]!r} is loaded"
        if entry.path[-1] == "shell" or entry.path[-2:] == ("shell", "fetcher"):
            return "a command run when the dataset is fetched"
        if entry.path[-1] == "fetcher":
            return "a fetcher run when the dataset is fetched"
        return "a loader run when the dataset is loaded"
    field = entry.path[-1]
    value = entry.value
    if field == "project":
        if isinstance(value, str) and ("/" in value or "\\" in value or value in (".", "..")):
            return "a project name with a path in it moves the default datacache_dir"
        return None
    if field == "max_extract_bytes":
        try:
            big = int(value) > _default_max_extract()
        except (TypeError, ValueError, OverflowError):  # inf, nan: DM061 for check
            return None
        return "a bound on extracted bytes above the default" if big else None
    if field in ("lock_stale_age", "canonical", "default_remote"):
        return None
    values = value if isinstance(value, list) else [value]
    if any(_expression_may_leave(v) for v in values):
        return "a location that may lie outside the project"
    return None


# -- what a run needs (TRU-004) -----------------------------------------------------------------
@dataclass(frozen=True)
class Need:
    """One thing a run would do that needs trust (TRU-004): ``kind`` is ``code`` (run an
    entry), ``write`` (write outside the project and the user's stores), ``read`` (read
    a pool there) or ``limit`` (extract more than the user's bound); ``dataset`` (or
    None), ``what`` (a sentence), the ``entry`` (document, path) responsible and, for a
    write or a read, the ``location`` (where the path really leads)."""

    kind: str
    dataset: str | None
    what: str
    entry: tuple[str, tuple[str, ...]] | None = None
    location: str | None = None  # a write or read: the path, where it really leads

    def as_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "dataset": self.dataset, "what": self.what,
                "entry": None if self.entry is None else
                {"document": self.entry[0], "path": list(self.entry[1])},
                "location": self.location}


def normalize_path(path: str) -> str:
    """A path with ``.``/``..`` segments and repeated separators resolved lexically."""
    if len(path) > 1 and path[1] == ":" or path.startswith("\\\\"):
        return ntpath.normpath(path)
    return posixpath.normpath(path) if path else path


def inside(path: str, folder: str) -> bool:
    """Is ``path`` ``folder`` or below it (both normalized, absolute)?"""
    folder = folder.rstrip("/\\") or folder
    return path == folder or path.startswith(folder + ("\\" if "\\" in folder and "/" not in
                                                       folder else "/"))


def outside(path: str, root: str, stores: Iterable[str]) -> bool:
    """TRU-004: does ``path`` lie outside the project (``root``, less its ``.git`` folder)
    and outside every one of the user's ``stores``? Paths as :func:`normalize_path` gives
    them (the caller resolves symbolic links first)."""
    return _judge(root, stores)(path)


def _judge(root: str, stores: Iterable[str]) -> Callable[[str], bool]:
    """:func:`outside` with its folders prepared once (a run judges thousands of paths)."""
    sep = "\\" if "\\" in root and "/" not in root else "/"

    def norm(folder: str) -> tuple[str, str]:
        folder = folder.rstrip("/\\") or folder
        return folder, folder + sep

    own = norm(root)
    git = norm(own[0] + sep + ".git")
    mine = [norm(s) for s in stores]

    def judge(path: str) -> bool:
        if (path == own[0] or path.startswith(own[1])) and not (
                path == git[0] or path.startswith(git[1])):
            return False
        return not any(path == f or path.startswith(fs) for f, fs in mine)

    return judge


def _setting_entry(resolved: Any, field: str, hostname: str, manifest: Any,
                   checkout: Mapping[str, Any]) -> tuple[str, tuple[str, ...]] | None:
    """The entry that set a storage field (RES-001), when a project document did."""
    from .resolution import host_section

    rung = resolved.settings[field].rung
    if rung == "manifest":
        return MANIFEST, ("_STORAGE", field)
    if rung == "manifest-host":
        return MANIFEST, ("_STORAGE", "_HOST", host_section(manifest.storage, hostname)[1] or "",
                          field)
    if rung == "checkout":
        return CHECKOUT, (field,)
    if rung == "checkout-host":
        return CHECKOUT, ("_HOST", host_section(checkout, hostname)[1] or "", field)
    return None


def user_stores(user: Mapping[str, Any], platform: Any) -> tuple[list[str], list[str]]:
    """The user's own stores (TRU-004): (written, read). Written: ``datasets_dir`` and
    ``datacache_dir`` as the environment, the user configuration and the defaults resolve
    them, and the tool's own user folders ``<user_data_dir>/datamanifest`` and
    ``<user_cache_dir>/datamanifest``. Read: those and the pools resolved the same way."""
    from .manifest import Manifest
    from .resolution import resolve_storage

    own = resolve_storage(Manifest.from_dict({}), {}, user, platform)
    written = [own.get("datasets_dir"), own.get("datacache_dir"),
               platform.user_data_dir.rstrip("/") + "/datamanifest",
               platform.user_cache_dir.rstrip("/") + "/datamanifest"]
    read = written + list(own.get("datasets_pools")) + list(own.get("datacache_pools"))
    return written, read


def needs(manifest: Any, checkout: Mapping[str, Any], user: Mapping[str, Any], platform: Any,
          *, lang: str = "python", fetch: Sequence[str] = (), load: Sequence[str] = (),
          builtin_formats: Sequence[str] = (), roots: bool = False, datacache: bool = False,
          realpath: Callable[[str], str] = normalize_path) -> list[Need]:
    """What a run would do that needs trust (TRU-004), in a stable order.

    Parameters
    ----------
    manifest : Manifest
        The manifest model.
    checkout, user : Mapping
        The checkout and user configuration documents ({} when absent).
    platform : Platform
        This machine (resolution's inputs).
    lang : str
        The reader's language (LAD-001).
    fetch : sequence of str
        Datasets the run fetches (those not current): their fetch rungs run code
        (own-fetcher, shell, delegation), their targets are written, their pool candidates
        read, their archives extracted.
    load : sequence of str
        Datasets the run loads: their load rungs run code (per-dataset,
        manifest-format-default).
    builtin_formats : sequence of str
        The formats the reader loads itself (LAD-012).
    roots : bool
        The run writes or deletes in the store roots ``datasets_dir`` and
        ``datacache_dir`` (maintenance, sync).
    datacache : bool
        The run writes produced datasets into ``datacache_dir``.
    realpath : callable
        Where a path really leads (symbolic links resolved); lexical by default.

    Returns
    -------
    list of Need
        Empty when the run needs no trust.

    Raises
    ------
    ResolutionError
        When the settings cannot be resolved (DM060, DM061).
    """
    from .resolution import fetch_rung, load_rung, pool_candidates, resolve_storage, storage_path

    resolved = resolve_storage(manifest, checkout, user, platform)
    written, read = user_stores(user, platform)
    root = realpath(platform.root)
    writes_out = _judge(root, [realpath(s) for s in written])
    reads_out = _judge(root, [realpath(s) for s in read])
    pools_read = False
    out: list[Need] = []
    seen: set[tuple] = set()

    def add(need: Need) -> None:
        k = (need.kind, need.dataset, need.what)
        if k not in seen:
            seen.add(k)
            out.append(need)

    def setting(field: str) -> tuple[str, tuple[str, ...]] | None:
        return _setting_entry(resolved, field, platform.hostname, manifest, checkout)

    def where(path: str) -> str:
        real = realpath(path)
        return path if real == normalize_path(path) else f"{path} (which leads to {real})"

    for name in fetch:
        ds = manifest.datasets[name]
        if ds.skip_download or ds.lazy_access:
            continue
        rung = fetch_rung(ds, lang)
        if rung["rung"] == "own-fetcher":
            own = isinstance(ds.lang.get(lang), Mapping) and "fetcher" in ds.lang[lang]
            add(Need("code", name, f"runs the fetcher {rung['ref']!r}", (MANIFEST, (
                name, "_LANG", lang, "fetcher") if own else (name, "fetcher"))))
        elif rung["rung"] == "shell":
            add(Need("code", name, f"runs the command {rung['ref']!r}", (MANIFEST, (
                name, "shell") if ds.shell else (name, "_LANG", "shell", "fetcher"))))
        elif rung["rung"] == "delegation":
            other = rung["language"]
            add(Need("code", name, f"runs a {other} peer tool with the {other} fetcher "
                     f"{rung['ref']!r}", (MANIFEST, (name, "_LANG", other, "fetcher"))))
        try:
            path, _ = storage_path(name, ds, resolved, platform)
        except Exception:  # an unsafe key or symbol: check reports it; nothing is written
            path = None
        if path is not None and writes_out(realpath(path)):
            entry = next(((MANIFEST, (name, f)) for f in PATH_FIELDS if getattr(ds, f)), None) \
                or setting("datasets_dir")
            add(Need("write", name, f"writes {where(path)}", entry, realpath(path)))
        if not pools_read:  # the pools are judged once, as folders (POOL-002)
            try:
                pools_read = bool(pool_candidates(ds, resolved, platform))
            except Exception:
                pools_read = False
        if ds.extract and resolved.settings["max_extract_bytes"].rung in PROJECT_RUNGS:
            mine = resolve_storage(type(manifest).from_dict({}), {}, user, platform
                                   ).get("max_extract_bytes")
            value = resolved.get("max_extract_bytes")
            if value > mine:
                add(Need("limit", name, f"extracts up to {value} bytes (max_extract_bytes; "
                         f"your own bound is {mine})", setting("max_extract_bytes")))
    if pools_read:
        for pool in resolved.get("datasets_pools"):
            if pool.rstrip("/") != resolved.get("datasets_dir").rstrip("/") and \
                    reads_out(realpath(pool)):
                add(Need("read", None, f"reads the pool {where(pool)}",
                         setting("datasets_pools"), realpath(pool)))
    for name in load:
        ds = manifest.datasets[name]
        rung = load_rung(manifest, ds, lang, builtin_formats)
        if rung["rung"] == "per-dataset":
            own = isinstance(ds.lang.get(lang), Mapping) and "loader" in ds.lang[lang]
            add(Need("code", name, f"runs the loader {rung['ref']!r}", (MANIFEST, (
                name, "_LANG", lang, "loader") if own else (name, "loader"))))
        elif rung["rung"] == "manifest-format-default":
            fmt = ds.effective_format
            top = manifest.structural.get("_LANG", {})
            top = top.get(lang, {}) if isinstance(top, Mapping) else {}
            in_lang = isinstance(top, Mapping) and isinstance(top.get("loaders"), Mapping) \
                and fmt in top["loaders"]
            add(Need("code", name, f"runs the loader {rung['ref']!r}", (MANIFEST, (
                "_LANG", lang, "loaders", fmt) if in_lang else ("_LOADERS", fmt))))
    folders = (["datasets_dir", "datacache_dir"] if roots else []) + \
        (["datacache_dir"] if datacache and not roots else [])
    for field in folders:
        path = resolved.get(field)
        if writes_out(realpath(path)):
            # the default datacache_dir holds $project: a project name may be what moved it
            entry = setting(field) or (setting("project") if field == "datacache_dir" else None)
            add(Need("write", None, f"writes in {field} {where(path)}", entry, realpath(path)))
    if datacache:  # produced datasets are read, and unpickled, from the pools (PRD-021)
        for pool in resolved.get("datacache_pools"):
            if reads_out(realpath(pool)):
                add(Need("read", None, f"reads the pool {where(pool)}",
                         setting("datacache_pools"), realpath(pool)))
    return out

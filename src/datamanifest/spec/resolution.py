"""Resolution: storage settings, the fetch ladder and the load ladder (SCHEMA.md §14–§15).

Pure: the caller supplies the manifest, the configuration documents, the
environment, the host name and the platform folders; nothing is read here.

Storage ladder (RES-001), first hit wins per field:

    environment   DATAMANIFEST_<FIELD>
    checkout-host .datamanifest/config.toml  [_HOST."<glob>"]
    checkout      .datamanifest/config.toml  root
    manifest-host datamanifest.toml          [_STORAGE._HOST."<glob>"]
    manifest      datamanifest.toml          [_STORAGE]
    user-host     <user config>/config.toml  [_HOST."<glob>"]
    user          <user config>/config.toml  root
    default       built-in
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import keys as _keys
from . import storage as _storage
from .manifest import Binding, Dataset, Manifest

#: Storage fields and their types (RES-002).
FIELDS: dict[str, str] = {
    "datasets_dir": "path",
    "datacache_dir": "path",
    "datasets_pools": "paths",
    "datacache_pools": "paths",
    "project": "string",
    "canonical": "bool",
    "lock_stale_age": "seconds",
    "default_remote": "string",
    "max_extract_bytes": "bytes",
}
DEFAULTS: dict[str, Any] = {
    "datasets_dir": "$user_data_dir/datamanifest/shared/datasets",
    "datacache_dir": "$user_cache_dir/datamanifest/projects/$project/cached",
    "datasets_pools": ["$repo/datasets", "$user_data_dir/datamanifest/shared/datasets",
                       "$user_data_dir/datamanifest/datasets", "~/.cache/Datasets"],
    "datacache_pools": [],
    "project": None,  # the project root's folder name
    "canonical": False,
    "lock_stale_age": 30.0,
    "default_remote": "",
    "max_extract_bytes": 256 * 2**30,  # FET-022: 256 GiB
}
RUNGS = ("environment", "checkout-host", "checkout", "manifest-host", "manifest", "user-host",
         "user", "default")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class ResolutionError(ValueError):
    """A setting that cannot be resolved (DM060 symbol, DM061 bad value). ``code`` says which."""

    def __init__(self, message: str, code: str = "DM061") -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Platform:
    """The machine-specific inputs of resolution (all paths absolute, POSIX or native)."""

    root: str                    # the project root (folder of the manifest)
    hostname: str
    home: str
    user_data_dir: str
    user_cache_dir: str
    env: Mapping[str, str] = field(default_factory=dict)
    pathsep: str = os.pathsep


@dataclass
class Setting:
    value: Any
    rung: str

    def as_json(self) -> dict[str, Any]:
        return {"value": self.value, "rung": self.rung}


@dataclass
class Resolved:
    """Resolved storage: every field with the rung that set it, and the symbol table."""

    settings: dict[str, Setting]
    symbols: dict[str, str]

    def get(self, name: str) -> Any:
        return self.settings[name].value


def host_section(table: Mapping[str, Any], hostname: str) -> tuple[dict[str, Any], str | None]:
    """The ``_HOST."<glob>"`` sub-table matching ``hostname`` (RES-003).

    Globs use ``*``, ``?`` and ``[...]`` (fnmatch, case-sensitive). When several
    match, the one with the most literal (non-wildcard) characters wins; ties go
    to the pattern first in code point order. Returns ({}, None) when none match.
    """
    hosts = table.get("_HOST")
    if not isinstance(hosts, Mapping):
        return {}, None
    matches = [g for g, t in hosts.items() if isinstance(t, Mapping)
               and fnmatch.fnmatchcase(hostname, g)]
    if not matches:
        return {}, None
    literal = lambda g: sum(1 for c in g if c not in "*?[]")  # noqa: E731
    best = sorted(matches, key=lambda g: (-literal(g), g))[0]
    return dict(hosts[best]), best


def _layers(manifest: Manifest, checkout: Mapping[str, Any], user: Mapping[str, Any],
            platform: Platform) -> list[tuple[str, Mapping[str, Any]]]:
    env = {name: platform.env[f"DATAMANIFEST_{name.upper()}"] for name in FIELDS
           if f"DATAMANIFEST_{name.upper()}" in platform.env}
    st = manifest.storage
    return [
        ("environment", env),
        ("checkout-host", host_section(checkout, platform.hostname)[0]),
        ("checkout", checkout),
        ("manifest-host", host_section(st, platform.hostname)[0]),
        ("manifest", st),
        ("user-host", host_section(user, platform.hostname)[0]),
        ("user", user),
    ]


def _coerce(name: str, value: Any, rung: str, pathsep: str) -> Any:
    kind = FIELDS[name]
    where = f"{name} (from {rung})"
    if kind in ("path", "string"):
        if not isinstance(value, str):
            raise ResolutionError(f"{where} must be a string, not {type(value).__name__}")
        return value
    if kind == "paths":
        if isinstance(value, str):  # environment: separated by the platform's path separator
            return [p for p in value.split(pathsep) if p]
        if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
            raise ResolutionError(f"{where} must be an array of strings")
        return list(value)
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise ResolutionError(f"{where} must be a boolean or one of 1/true/yes/on/0/false/no/off")
    if kind == "bytes":  # a positive integer or a string of digits (FET-022)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
        if isinstance(value, str) and value.strip().isdigit() and int(value) > 0:
            return int(value)
        raise ResolutionError(f"{where} must be a positive whole number of bytes")
    # seconds: positive number or numeric string; anything else means the default (RES-002)
    try:
        seconds = float(value) if not isinstance(value, bool) else -1.0
    except (TypeError, ValueError):
        return None
    return seconds if seconds > 0 else None


def resolve_storage(manifest: Manifest, checkout: Mapping[str, Any], user: Mapping[str, Any],
                    platform: Platform) -> Resolved:
    """Resolve every storage field and the symbol table (RES-001..RES-006).

    Path fields come back expanded and absolute (relative ones are relative to
    the project root). Raises ResolutionError (DM060 for symbols, DM061 values).
    """
    layers = _layers(manifest, checkout, user, platform)
    settings: dict[str, Setting] = {}
    for name in FIELDS:
        for rung, table in layers:
            if name in table:
                value = _coerce(name, table[name], rung, platform.pathsep)
                if value is not None:
                    settings[name] = Setting(value, rung)
                    break
        else:
            settings[name] = Setting(DEFAULTS[name], "default")
    if settings["project"].value is None:
        settings["project"].value = os.path.basename(platform.root.rstrip("/\\")) or "project"
    # user symbols: bare keys that are not fields, first hit over the same ladder (RES-004)
    symbols: dict[str, str] = {}
    for rung, table in layers[1:]:
        for k, v in table.items():
            if not k.startswith("_") and k not in FIELDS and k not in symbols:
                if not isinstance(v, str):
                    raise ResolutionError(f"symbol {k} (from {rung}) must be a string")
                symbols[k] = v
    esc = lambda s: s.replace("$", "$$")  # noqa: E731 - platform values are literal text
    symbols.update({
        "repo": esc(platform.root),
        "project": esc(settings["project"].value),
        "user_data_dir": esc(platform.user_data_dir),
        "user_cache_dir": esc(platform.user_cache_dir),
    })
    for name in ("datasets_dir", "datacache_dir"):
        settings[name].value = expand_path(settings[name].value, symbols, platform)
        symbols[name] = esc(settings[name].value)
    for name in ("datasets_pools", "datacache_pools"):
        settings[name].value = [expand_path(p, symbols, platform) for p in settings[name].value]
    return Resolved(settings, symbols)


def expand_path(expr: str, symbols: Mapping[str, str], platform: Platform) -> str:
    """Expand a path expression (STO-003) to an absolute path on ``platform``.

    Upper-case names that are not symbols read the environment; ``~`` is the
    home folder; a relative result is joined to the project root.
    """
    table = dict(symbols)
    for name in _storage.symbols_in(expr):
        if name not in table and _storage.is_env_name(name):
            if name not in platform.env:
                raise ResolutionError(f"environment variable ${name} is not set", "DM060")
            table[name] = platform.env[name].replace("$", "$$")
    try:
        out = _storage.expand(expr, table)
    except _storage.SymbolError as e:
        raise ResolutionError(str(e), "DM060") from e
    if out == "~" or out.startswith("~/"):
        out = platform.home.rstrip("/") + out[1:]
    if not (out.startswith("/") or (len(out) > 2 and out[1] == ":" and out[2] in "/\\")):
        out = platform.root.rstrip("/") + "/" + out
    return _normpath(out)


def _normpath(p: str) -> str:
    parts: list[str] = []
    lead = "/" if p.startswith("/") else ""
    for seg in p.split("/"):
        if seg in ("", "."):
            continue
        parts.append(seg)
    return lead + "/".join(parts)


def storage_path(name: str, ds: Dataset, resolved: Resolved, platform: Platform) -> tuple[str, str]:
    """(absolute path, ``"keyed"`` or ``"exact"``) of a dataset (RES-006, STO-001, STO-002).

    A ``skip_download`` dataset without ``storage_path`` lives at its ``uri``
    (exact). Raises ResolutionError; ``lazy_access`` datasets have no location
    (callers check first).
    """
    if ds.skip_download and not (ds.storage_path or ds.local_path) and ds.uri:
        from urllib.parse import unquote, urlsplit

        where = unquote(urlsplit(ds.uri).path) if ds.uri.startswith("file://") else ds.uri
        return expand_path(where.replace("$", "$$"), resolved.symbols, platform), "exact"
    key = ds.target_key
    expr = ds.storage_path or ds.local_path or DEFAULT_STORAGE_PATH
    if expr == DEFAULT_STORAGE_PATH:
        # the common case, without the expansion machinery: datasets_dir is already an
        # absolute, normalized path, and a key has no empty, "." or ".." segment (KEY-004)
        return resolved.settings["datasets_dir"].value.rstrip("/") + "/" + key, "keyed"
    # a key is literal text: a "$" in a URL's path is not a symbol (STO-003)
    symbols = dict(resolved.symbols, key=key.replace("$", "$$"))
    return expand_path(expr, symbols, platform), ("keyed" if _storage.is_keyed(expr) else "exact")


#: The storage path of a dataset that declares none (STO-001).
DEFAULT_STORAGE_PATH = "$datasets_dir/$key"


# -- ladders ---------------------------------------------------------------------------------------
def _ref(binding: str | Binding | dict | None) -> str | None:
    if binding is None:
        return None
    if isinstance(binding, str):
        return binding
    if isinstance(binding, Binding):
        return binding.ref
    return binding.get("ref") if isinstance(binding, Mapping) else None


def _lang_table(ds: Dataset, lang: str) -> Mapping[str, Any]:
    t = ds.lang.get(lang)
    return t if isinstance(t, Mapping) else {}


def fetch_rung(ds: Dataset, lang: str) -> dict[str, Any]:
    """The fetch ladder for reader language ``lang`` (LAD-001..LAD-004).

    ``{"rung": "own-fetcher"|"shell"|"delegation"|"uri"|"none"|"error", "ref": str|None}``;
    for delegation ``ref`` is the foreign language's binding and ``language`` names it.
    """
    if ds.skip_download or ds.lazy_access:
        return {"rung": "none", "ref": None}
    own = _ref(_lang_table(ds, lang).get("fetcher")) or _ref(ds.fetcher)
    if own:
        return {"rung": "own-fetcher", "ref": own}
    template = ds.shell or _legacy_shell(ds)
    if template:
        return {"rung": "shell", "ref": template}
    if not (ds.uri or ds.uris) and ds.delegate is not False:
        for other in sorted(ds.lang):
            if other in (lang, "shell"):
                continue
            ref = _ref(_lang_table(ds, other).get("fetcher"))
            if ref:
                return {"rung": "delegation", "ref": ref, "language": other}
    if ds.uri or ds.uris:
        return {"rung": "uri", "ref": None}
    return {"rung": "error", "ref": None}


def _legacy_shell(ds: Dataset) -> str:
    """MAN-063: the legacy ``[<ds>._LANG.shell] fetcher = "<template>"`` reads as ``shell``."""
    value = _lang_table(ds, "shell").get("fetcher")
    return value if isinstance(value, str) else ""


def load_rung(manifest: Manifest, ds: Dataset, lang: str,
              builtin_formats: Sequence[str]) -> dict[str, Any]:
    """The load ladder for ``lang`` (LAD-010..LAD-013); it never delegates.

    ``{"rung": "per-dataset"|"manifest-format-default"|"built-in"|"error", "ref": str|None}``.
    """
    own = _ref(_lang_table(ds, lang).get("loader")) or _ref(ds.loader)
    if own:
        return {"rung": "per-dataset", "ref": own}
    fmt = ds.effective_format
    lang_top = manifest.structural.get("_LANG", {})
    lang_top = lang_top.get(lang, {}) if isinstance(lang_top, Mapping) else {}
    loaders = lang_top.get("loaders", {}) if isinstance(lang_top, Mapping) else {}
    ref = _ref(loaders.get(fmt)) if isinstance(loaders, Mapping) and fmt else None
    if ref is None and fmt:
        implicit = manifest.structural.get("_LOADERS", {})
        ref = _ref(implicit.get(fmt)) if isinstance(implicit, Mapping) else None
    if ref:
        return {"rung": "manifest-format-default", "ref": ref}
    if fmt and fmt in builtin_formats:
        return {"rung": "built-in", "ref": None}
    return {"rung": "error", "ref": None}


def pool_candidates(ds: Dataset, resolved: Resolved, platform: Platform) -> list[str]:
    """The read-pool candidates of a dataset, in order (POOL-001, POOL-002)."""
    if not ds.effective_checksum or ds.skip_download or ds.lazy_access:
        return []
    expr = ds.storage_path or ds.local_path or "$datasets_dir/$key"
    if not _storage.is_keyed(expr):
        return []
    key = ds.target_key
    own = resolved.get("datasets_dir")
    return [f"{pool.rstrip('/')}/{key}" for pool in resolved.get("datasets_pools")
            if pool.rstrip("/") != own.rstrip("/")]

"""Layer 3 of checking a manifest: the rules the JSON Schema cannot express (SCHEMA.md §9):
misspelt structural tables and fields (MAN-006..MAN-008), legacy fields, keys, symbols,
identifiers, requirements and their cycles, trust and secrets."""

from __future__ import annotations

import difflib
import re
from typing import Any

from ..spec import checksum as _checksum
from ..spec import keys as _keys
from ..spec import names as _names
from ..spec import storage as _storage
from ..spec.manifest import (
    ARCHIVE_FORMATS,
    DERIVED_FIELDS,
    LEGACY_FIELDS,
    LEGACY_TABLES,
    META_FIELDS,
    STRUCTURAL_TABLES,
    Dataset,
)
from ..spec.resolution import FIELDS as _RESOLUTION_FIELDS
from .result import Collector

#: Symbols every storage expression may use (STO-003).
PREDEFINED_SYMBOLS = (
    "datasets_dir", "datacache_dir", "key", "repo", "project", "user_data_dir", "user_cache_dir",
)
#: Known `[_STORAGE]` fields; any other bare key is a user symbol (RES-002).
STORAGE_FIELDS = tuple(_RESOLUTION_FIELDS)

_CONTROL = re.compile(r"[\x00-\x1f]")



# -- the structural tables (MAN-006..MAN-008, CFG-003) -----------------------------------------
def meta_typos(meta: Any, col: Collector, *, label: str = "") -> None:
    """MAN-006: DM010 for a key of ``[_META]`` that resembles ``schema`` (MAN-008). Other
    keys are preserved (MAN-003)."""
    if not isinstance(meta, dict):
        return
    for k in meta:
        if k in META_FIELDS or k.startswith("_"):
            continue
        close = _names.closest(k, META_FIELDS)
        if close is not None:
            col.add("DM010", ("_META", k), f"{label}unknown field '_META.{k}'",
                    f"did you mean {close!r}?", at_key=True)


def referenced_symbols(data: Any) -> set[str]:
    """The names every string of a document refers to as ``$name`` or ``${name}`` (STO-003)."""
    out: set[str] = set()
    stack = [data]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            if "$" in v:
                out.update(_storage.symbols_in(v))
        elif isinstance(v, dict):
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
    return out


def storage_typos(table: Any, path: tuple, referenced: set[str], col: Collector, *,
                  label: str = "") -> None:
    """MAN-006: a bare key of a storage table (``[_STORAGE]``, a ``_HOST`` section, a
    configuration document) that is not a storage field, resembles one (MAN-008) and is
    never referred to as a symbol is a misspelt field: DM010 at the key, naming the field."""
    if not isinstance(table, dict):
        return
    for k in table:
        if k.startswith("_") or k in STORAGE_FIELDS or k in referenced:
            continue
        close = _names.closest(k, STORAGE_FIELDS)
        if close is None:
            continue
        where = ".".join(map(str, (*path, k)))
        col.add("DM010", (*path, k), f"{label}unknown field {where!r}",
                f"did you mean {close!r}? A user symbol this close to a storage field must "
                f"be used somewhere as ${k}", at_key=True)
    hosts = table.get("_HOST")
    if isinstance(hosts, dict):
        for glob, section in hosts.items():
            storage_typos(section, (*path, "_HOST", glob), referenced, col, label=label)


def structural_tables(data: dict[str, Any], col: Collector) -> None:
    """MAN-006 (misspelt storage fields) and MAN-007 (misspelt reserved tables)."""
    meta_typos(data.get("_META"), col)
    storage = data.get("_STORAGE")
    if isinstance(storage, dict):
        storage_typos(storage, ("_STORAGE",), referenced_symbols(data), col)
    for k in data:
        if not k.startswith("_") or k in STRUCTURAL_TABLES or k in LEGACY_TABLES:
            continue
        close = _names.closest(k, STRUCTURAL_TABLES)
        if close is not None:
            col.add("DM175", (k,), f"unknown table [{k}] resembles the reserved table "
                    f"[{close}]; it is kept but not read", f"did you mean [{close}]?",
                    at_key=True)



_UNUSUAL_FIELDS = frozenset(LEGACY_FIELDS) | frozenset(DERIVED_FIELDS)


def semantic_layer(data: dict[str, Any], datasets: dict[str, Dataset], col: Collector) -> None:
    storage = data.get("_STORAGE") if isinstance(data.get("_STORAGE"), dict) else {}
    user_symbols = {k for k in storage if not k.startswith("_") and k not in STORAGE_FIELDS}
    symbols = set(PREDEFINED_SYMBOLS) | user_symbols
    all_names = [n for n in data if not n.startswith("_")]
    keys_seen: dict[str, str] = {}
    ids_seen: dict[str, tuple[str, tuple]] = {n: (n, (n,)) for n in all_names}

    unusual = _UNUSUAL_FIELDS
    for name, ds in datasets.items():
        raw = data[name]
        # MAN-060 / MAN-061 legacy and derived fields (rare: one set intersection finds them)
        if not unusual.isdisjoint(raw):
            for f, hint in LEGACY_FIELDS.items():
                if f in raw and f != "sha256":
                    col.add("DM050", (name, f), f"dataset {name!r}: {f!r} is deprecated", hint,
                            at_key=True)
            for f in DERIVED_FIELDS:
                if f in raw:
                    col.add("DM050", (name, f), f"dataset {name!r}: {f!r} is derived and "
                            "ignored", "remove it; it is computed from uri", at_key=True)
        # SUM-004..SUM-006
        if "sha256" in raw:
            col.add("DM022", (name, "sha256"), f"dataset {name!r}: the sha256 field is legacy",
                    f"write checksum = \"sha256:{ds.sha256 or '<hex>'}\" instead", at_key=True)
            declared = _checksum.parse(ds.checksum) if ds.checksum else None
            if declared and ds.sha256 and str(declared) != f"sha256:{ds.sha256}":
                col.add("DM023", (name, "sha256"), f"dataset {name!r}: checksum and sha256 "
                        "disagree", "keep checksum and remove sha256")
        if ds.checksum and ":" not in ds.checksum:
            col.add("DM024", (name, "checksum"), f"dataset {name!r}: bare hex checksum reads as "
                    "sha256", f"write checksum = \"sha256:{ds.checksum}\"")
        # MAN-023 URIs
        for i, u in enumerate([ds.uri] if ds.uri else ds.uris):
            p = (name, "uri") if ds.uri else (name, "uris", i)
            if u != u.strip() or _CONTROL.search(u):
                col.add("DM015", p, f"dataset {name!r}: URI {u!r} has surrounding whitespace or "
                        "control characters", "remove them")
            elif not u.strip():
                col.add("DM015", p, f"dataset {name!r}: empty URI", "remove it or fill it in")
        # MAN-022 a source
        has_fetcher = ds.fetcher or ds.shell or any(
            isinstance(t, dict) and t.get("fetcher") for t in ds.lang.values())
        if not (ds.uri or ds.uris or has_fetcher or ds.skip_download or ds.lazy_access
                or ds.local_path or ds.downloads):
            col.add("DM013", (name,), f"dataset {name!r} has no uri, uris or fetcher",
                    "add uri = \"...\", or skip_download = true for data managed elsewhere",
                    at_key=True)
        # KEY-002..KEY-006
        key = ""
        if not ds.key and (ds.uri or ds.uris):
            try:
                key = ds.derived_key  # cached: fetch reuses it
            except _keys.UnsafeKey as e:
                where = (name, "uri") if ds.uri else (name, "uris")
                col.add("DM031", where, f"dataset {name!r}: {e}",
                        "set an explicit key = \"...\" for this dataset")
        elif ds.key:
            key = ds.key
        if key:
            other = keys_seen.get(key)
            if other is not None and _source(datasets[other]) != _source(ds):
                col.add("DM033", (name, "key") if ds.key else (name,),
                        f"datasets {other!r} and {name!r} share the key {key!r} but have "
                        "different sources", "give one of them an explicit key",
                        at_key=not ds.key)
            keys_seen.setdefault(key, name)
        # TREE-007 checksum kind vs dataset kind
        if ds.checksum and _checksum.is_valid(ds.checksum):
            tree_sum = _checksum.is_tree(ds.checksum)
            by_fetcher = bool(ds.fetcher or ds.shell or ds.lang)  # may write a file or a folder
            folder = bool(ds.uri) and _keys.is_folder_uri(ds.uri)  # FET-014, FET-015
            if tree_sum and ds.virtual:
                col.add("DM121", (name, "checksum"), f"dataset {name!r} is virtual: it is one "
                        "file, its chunk manifest, so its checksum is a file checksum",
                        "use sha256:<hex>, or \"\" to auto-fill it")
            elif ds.virtual:
                pass
            elif tree_sum and ds.uri and not ds.extract and not by_fetcher and not folder:
                col.add("DM121", (name, "checksum"), f"dataset {name!r} is a file: a tree "
                        "checksum applies to folder datasets (extract = true or uris)",
                        "use a file checksum such as sha256:<hex>")
            elif ds.uris and not tree_sum:
                col.add("DM121", (name, "checksum"), f"dataset {name!r} is a folder of several "
                        "files: its checksum is a tree checksum", 'use tree-sha256:<hex>, or "" to '
                        "auto-fill it")
        # MAN-027 virtual datasets
        if ds.virtual:
            why = ("it has no uri or uris to index" if not (ds.uri or ds.uris) else
                   "it cannot also be extracted" if ds.extract else
                   "it cannot be skip_download" if ds.skip_download else
                   "it cannot be lazy_access" if ds.lazy_access else
                   "its uris need concat_dim, the dimension they are concatenated along"
                   if ds.uris and not ds.concat_dim else "")
            if why:
                col.add("DM016", (name, "virtual"), f"dataset {name!r} is virtual, but {why}",
                        "see SCHEMA.md MAN-027")
        elif ds.concat_dim:
            col.add("DM016", (name, "concat_dim"), f"dataset {name!r}: concat_dim applies only "
                    "to a virtual dataset with uris", "add virtual = true, or remove concat_dim")
        # MAN-026 extract (a virtual dataset is not extracted: DM016 above)
        if ds.extract and not ds.virtual:
            fmt = ds.effective_format
            fmt = "tar.gz" if fmt == "tgz" else fmt
            if fmt not in ARCHIVE_FORMATS:
                col.add("DM051", (name, "extract"), f"dataset {name!r}: extract = true needs a "
                        f"zip, tar or tar.gz archive, got format {fmt or 'unknown'!r}",
                        "set format = \"zip\", \"tar\" or \"tar.gz\"")
        # STO-017: a storage path that would be another dataset's control file (STO-005)
        path_value = ds.storage_path or ds.local_path
        if path_value and path_value.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1] \
                .endswith(_keys.RESERVED_SUFFIXES):
            fld = "storage_path" if ds.storage_path else "local_path"
            col.add("DM032", (name, fld), f"dataset {name!r}: {fld} {path_value!r} ends in a "
                    "control-file suffix (.tmp, .lock, .complete, .part): it would be the "
                    "staging area, lock or completion marker of another dataset",
                    "choose a name without that suffix")
        # STO-003 symbols
        if ds.storage_path:
            for sym in _storage.symbols_in(ds.storage_path):
                if sym not in symbols and not _storage.is_env_name(sym):
                    close = difflib.get_close_matches(sym, sorted(symbols), n=1)
                    col.add("DM060", (name, "storage_path"), f"dataset {name!r}: unknown symbol "
                            f"${sym} in storage_path",
                            f"did you mean ${close[0]}?" if close else
                            "define it in [_STORAGE] or use $datasets_dir, $key, $repo")
        # MAN-050 identifiers
        for i, alias in enumerate(ds.aliases):
            prev = ids_seen.get(alias)
            if prev is not None and prev[0] != name:
                col.add("DM042", (name, "aliases", i), f"dataset {name!r}: alias {alias!r} is "
                        f"already {'the name' if prev[1] == (alias,) else 'an identifier'} of "
                        f"dataset {prev[0]!r}", "identifiers must match exactly one dataset")
            elif prev is not None and prev[1] != (name, "aliases", i):
                col.add("DM042", (name, "aliases", i), f"dataset {name!r}: alias {alias!r} is "
                        "listed twice or equals the name", "remove the repetition")
            ids_seen.setdefault(alias, (name, (name, "aliases", i)))
        if ds.doi:
            prev = ids_seen.get(ds.doi)
            if prev is not None and prev[0] != name:
                col.add("DM042", (name, "doi"), f"dataset {name!r}: doi {ds.doi!r} also "
                        f"identifies dataset {prev[0]!r}", "identifiers must match exactly one "
                        "dataset")
            ids_seen.setdefault(ds.doi, (name, (name, "doi")))
        # MAN-031 requirements
        for i, req in enumerate(ds.requires):
            if req not in data or req.startswith("_"):
                close = difflib.get_close_matches(req, all_names, n=1)
                col.add("DM040", (name, "requires", i), f"dataset {name!r} requires unknown "
                        f"dataset {req!r}", f"did you mean {close[0]!r}?" if close else
                        "requires lists dataset names of this manifest")
    _cycles(datasets, col)
    _trust_and_secrets(data, datasets, col)


def secret_warning(col: Collector, path: tuple, value: str, what: str) -> None:
    """SEC-003: a password or token written into a document (DM183)."""
    from ..spec.secrets import redact_uri, secret_of, where_credentials_go

    kind = secret_of(value)
    if kind is not None:
        col.add("DM183", path, f"{what} {redact_uri(value)!r} holds a {kind}; a committed "
                "manifest or configuration shares it with everyone who reads it",
                where_credentials_go(value))


def _trust_and_secrets(data: dict[str, Any], datasets: dict[str, Dataset],
                       col: Collector) -> None:
    """TRU-007: each trust-relevant entry that can run code or lead outside the project, as
    information (DM181); SEC-003: credentials in URIs and storage settings (DM183)."""
    from ..spec import trust as _trust
    from ..spec.secrets import redact_text

    for e in _trust.entries(data):
        why = _trust.reason(e)
        if why:
            col.add("DM181", e.path, f"{redact_text(e.show())}: {why}",
                    "a run that uses it needs this manifest trusted: `datamanifest trust "
                    "--show`", severity="info")
        if e.kind == "storage" and isinstance(e.value, str):
            secret_warning(col, e.path, e.value, f"{e.label()}:")
    for name, ds in datasets.items():
        if ds.uri and ("@" in ds.uri or "=" in ds.uri):  # SEC-003 (one test per URI)
            secret_warning(col, (name, "uri"), ds.uri, f"dataset {name!r}: URI")
        for i, u in enumerate(ds.uris):
            if "@" in u or "=" in u:
                secret_warning(col, (name, "uris", i), u, f"dataset {name!r}: URI")


def _source(ds: Dataset) -> tuple:
    return (ds.uri, tuple(ds.uris), ds.version, ds.branch)


def _cycles(datasets: dict[str, Dataset], col: Collector) -> None:
    """MAN-032: report each requires cycle once, at the edge that closes it (iterative DFS)."""
    WHITE, GREY, BLACK = 0, 1, 2
    state = dict.fromkeys(datasets, WHITE)
    for root in datasets:
        if state[root] != WHITE:
            continue
        state[root] = GREY
        path = [root]
        stack = [(root, 0)]
        while stack:
            node, i = stack[-1]
            reqs = datasets[node].requires
            if i >= len(reqs):
                stack.pop()
                path.pop()
                state[node] = BLACK
                continue
            stack[-1] = (node, i + 1)
            r = reqs[i]
            if r not in datasets:
                continue
            if state[r] == GREY:
                cycle = path[path.index(r):] + [r]
                col.add("DM041", (node, "requires", i), "requires forms a cycle: "
                        + " -> ".join(cycle), "remove one of these requirements")
            elif state[r] == WHITE:
                state[r] = GREY
                path.append(r)
                stack.append((r, 0))



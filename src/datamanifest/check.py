"""Documents -> diagnostics (SCHEMA.md §9; every rule cited by ID below).

:func:`check_text` validates a manifest in three layers and returns every
problem as a :class:`~datamanifest.errors.Diagnostic` located at the line and
column of the offending key or value:

1. TOML syntax (DM001, DIAG-002);
2. structure and types per the JSON Schema ``schemas/manifest.v1.json``: the
   pydantic models, which agree with the schema on every fixture and property
   test (VAL-002), accept most documents quickly; when they reject one, the
   JSON Schema itself is run and each of its errors is mapped to a stable code;
3. the semantic rules the schema cannot express (requirements, cycles,
   identifiers, keys, symbols, legacy fields).

It never raises for bad input: every fault is a diagnostic.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import Diagnostic
from .spec import checksum as _checksum
from .spec import keys as _keys
from .spec import names as _names
from .spec import storage as _storage
from .spec import tomlparse
from .spec._locate import Locator, decode_error_position
from .spec.resolution import FIELDS as _RESOLUTION_FIELDS
from .spec.manifest import (
    ARCHIVE_FORMATS,
    DATASET_FIELDS,
    DERIVED_FIELDS,
    LEGACY_FIELDS,
    LEGACY_TABLES,
    META_FIELDS,
    STRUCTURAL_TABLES,
    SUPPORTED_SCHEMAS,
    Dataset,
    Manifest,
    validate_structure,
)

#: Symbols every storage expression may use (STO-003).
PREDEFINED_SYMBOLS = (
    "datasets_dir", "datacache_dir", "key", "repo", "project", "user_data_dir", "user_cache_dir",
)
#: Known `[_STORAGE]` fields; any other bare key is a user symbol (RES-002).
STORAGE_FIELDS = tuple(_RESOLUTION_FIELDS)

_TOML_TYPES = {
    str: "a string", int: "an integer", float: "a float", bool: "a boolean",
    list: "an array", dict: "a table",
}
_SCHEMA_TYPES = {
    "string": "a string", "integer": "an integer", "number": "a number", "boolean": "a boolean",
    "array": "an array", "object": "a table",
}

_CONTROL = re.compile(r"[\x00-\x1f]")


def _is_binding_path(path: tuple) -> bool:
    """Does a schema error's path point at a binding a Python reader runs (MAN-040, MAN-042)?
    ``(ds, "loader")``, ``(ds, "_LANG", "python", "fetcher")``, ``("_LOADERS", fmt)``,
    ``("_LANG", "python", "loaders", fmt)``."""
    path = tuple(path)
    if len(path) == 2 and (path[0] == "_LOADERS" or path[1] in ("fetcher", "loader")):
        return True
    if len(path) >= 3 and path[-3:-1] == ("_LANG", "python"):
        return path[-1] in ("fetcher", "loader")
    return len(path) >= 4 and path[-4:-1] == ("_LANG", "python", "loaders")


def _wanted(err: Any) -> str:
    """The TOML type names a JSON Schema ``type`` error asked for: "a string or a table"."""
    want = err.validator_value
    return " or ".join(_SCHEMA_TYPES.get(w, w) for w in ([want] if isinstance(want, str) else want))


def _toml_type(value: Any) -> str:
    for t, name in _TOML_TYPES.items():
        if type(value) is t:
            return name
    return "a date-time" if hasattr(value, "isoformat") else type(value).__name__


@dataclass
class CheckResult:
    """The outcome of checking one document.

    ``data`` is the parsed TOML (``None`` on a syntax error); ``manifest`` the
    model (``None`` when any error was found); ``diagnostics`` sorted by position.
    """

    file: str | None
    data: dict[str, Any] | None = None
    manifest: Manifest | None = None
    diagnostics: list[Diagnostic] = field(default_factory=list)
    doc_type: str = "manifest"

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "error"]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors


class _Collector:
    def __init__(self, file: str | None, text: str | None) -> None:
        self.file = file
        self.loc = Locator(text)
        self.items: dict[tuple[str, tuple], Diagnostic] = {}

    def add(self, code: str, path: tuple, message: str, hint: str | None = None,
            *, at_key: bool = False, severity: str = "") -> None:
        if (code, path) in self.items:
            return
        line, col = self.loc.find(path, value=not at_key)
        self.items[(code, path)] = Diagnostic(
            code, message, self.file, line, col, path, hint, severity
        )

    def sorted(self) -> list[Diagnostic]:
        return sorted(self.items.values(), key=lambda d: (d.line or 0, d.column or 0, d.code))


def _is_chunk_manifest(file: str | None, text: str) -> bool:
    """CHK-009: by the name suffix ``.chunks.json``, or a JSON object with
    ``chunk_manifest`` near its start."""
    from .spec.virtual import SUFFIX

    if file and file.endswith(SUFFIX):
        return True
    head = text.lstrip()[:4096]
    return head.startswith("{") and '"chunk_manifest"' in head


def check_chunk_manifest(text: str, file: str | None = None) -> CheckResult:
    """Check a chunk manifest (CHK-009): JSON, then ``schemas/chunk-manifest.v1.json``
    (DM150), then the rules of §25 (DM151 references, DM155 checksum), each diagnostic at
    the line and column of the offending value."""
    import json

    from . import schemas
    from .spec import virtual
    from .spec._jsonlocate import locate

    result = CheckResult(file, doc_type="chunk-manifest")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        result.diagnostics = [Diagnostic("DM150", f"not JSON: {e.msg}", file, e.lineno, e.colno,
                                         (), "a chunk manifest is a JSON document")]
        return result
    result.data = data

    def diag(code: str, path: tuple, message: str, hint: str | None = None) -> Diagnostic:
        line, column = locate(text, path)
        return Diagnostic(code, message, file, line, column, path, hint)

    errors = sorted(schemas.validator("chunk-manifest").iter_errors(data),
                    key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path))))
    if errors:
        seen = set()
        for err in errors:
            path = tuple(err.absolute_path)
            if path in seen:
                continue
            seen.add(path)
            result.diagnostics.append(diag("DM150", path, err.message,
                                           "see `datamanifest schema chunk-manifest`"))
        result.diagnostics.sort(key=lambda d: (d.line or 0, d.column or 0))
        return result
    try:
        virtual.parse(data)
    except virtual.ChunkManifestError as e:
        result.diagnostics = [diag(e.code, e.path, e.message,
                                   "rebuild it with `datamanifest virtualize`"
                                   if e.code == "DM155" else None)]
    return result


def check_path(path: str | Path, doc_type: str | None = None) -> CheckResult:
    """Check the document at ``path`` (DM002 when it cannot be read).

    ``doc_type`` is one of :data:`datamanifest.spec.documents.DOC_TYPES`; by
    default it is detected from the file name and ``_META`` (DOC-001).
    """
    p = Path(path)
    try:
        text = p.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) else "not UTF-8 text"
        return CheckResult(str(p), diagnostics=[Diagnostic(
            "DM002", f"cannot read {p}: {reason}", str(p), hint="check the path and permissions",
        )])
    return check_text(text, str(p), doc_type)


def check_text(text: str, file: str | None = None, doc_type: str | None = None) -> CheckResult:
    """Check document source ``text`` (SCHEMA.md §9). Never raises for bad input.

    ``result.doc_type`` tells which document type it was checked as.
    """
    if doc_type == "chunk-manifest" or (doc_type is None and _is_chunk_manifest(file, text)):
        return check_chunk_manifest(text, file)
    result = CheckResult(file)
    col = _Collector(file, text)
    try:
        data = tomlparse.loads(text)
    except tomllib.TOMLDecodeError as e:
        line, column, msg = decode_error_position(e, text)
        result.diagnostics = [Diagnostic(
            "DM001", f"TOML syntax error: {msg}", file, line, column, (),
            "see https://toml.io/en/v1.0.0 for the syntax",
        )]
        return result
    result.data = data
    from .spec.documents import detect

    result.doc_type = doc_type or detect(data, file)
    if result.doc_type != "manifest":
        _check_other(result.doc_type, data, col)
        result.diagnostics = col.sorted()
        return result
    manifest = check_data(data, col)
    result.diagnostics = col.sorted()
    if result.ok:
        result.manifest = manifest
    return result


def check_data(data: dict[str, Any], col: _Collector) -> Manifest | None:
    """Run the structural and semantic layers on a parsed manifest, into ``col``.

    Returns the model when the document is structurally valid, else None.
    """
    meta = data.get("_META")
    if isinstance(meta, dict):
        schema = meta.get("schema", 0)
        if type(schema) is int and schema not in SUPPORTED_SCHEMAS:
            col.add("DM004", ("_META", "schema"),
                    f"manifest schema {schema} is not supported (this tool reads schemas "
                    f"{', '.join(map(str, SUPPORTED_SCHEMAS))})",
                    "upgrade datamanifest, or use a tool that reads this schema")
            return None  # a newer document is not judged by older rules (VER-003)
    if "_META" not in data and any(not k.startswith("_") for k in data):
        first = next(k for k in data if not k.startswith("_"))
        col.add("DM007", (first,), "no [_META] schema: the manifest reads as schema 0",
                "run `datamanifest migrate` to add [_META] schema = 1", at_key=True)
    _structural_tables(data, col)
    try:
        manifest: Manifest | None = validate_structure(data)
    except ValueError:
        manifest = None
    if manifest is not None:
        _semantic_layer(data, manifest.datasets, col)
        return manifest
    bad = _schema_layer(data, col)
    _semantic_layer(data, _lenient_datasets(data, bad), col)
    return None


# -- the structural tables (MAN-006..MAN-008, CFG-003) -----------------------------------------
def meta_typos(meta: Any, col: _Collector, *, label: str = "") -> None:
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


def storage_typos(table: Any, path: tuple, referenced: set[str], col: _Collector, *,
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


def _structural_tables(data: dict[str, Any], col: _Collector) -> None:
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


# -- layer 2: JSON Schema --------------------------------------------------------------
def _schema_layer(data: dict[str, Any], col: _Collector) -> dict[str, set[str] | None]:
    """Validate against the JSON Schema; return the faulty fields per dataset (None: all)."""
    from . import schemas

    bad: dict[str, set[str] | None] = {}
    for err in schemas.validator("manifest").iter_errors(data):
        path = tuple(err.absolute_path)
        if path and isinstance(path[0], str) and not path[0].startswith("_"):
            name = path[0]
            if len(path) == 1 and err.validator == "additionalProperties":
                known = err.schema.get("properties", {})
                fields = {k for k in err.instance if not k.startswith("_") and k not in known}
            elif len(path) == 1 and err.validator == "not":
                fields = {"uris"}
            elif len(path) >= 2:
                fields = {path[1]}
            else:
                fields = None
            if fields is None or bad.get(name, set()) is None:
                bad[name] = None
            else:
                bad.setdefault(name, set()).update(fields)  # type: ignore[union-attr]
        _map_schema_error(err, path, data, col)
    return bad


def _map_schema_error(err: Any, path: tuple, data: dict[str, Any], col: _Collector) -> None:
    kind = err.validator
    inst = err.instance
    if path == ("_META", "schema"):
        col.add("DM004", path, f"_META.schema must be an integer among "
                f"{', '.join(map(str, SUPPORTED_SCHEMAS))}, got {inst!r}", "write schema = 1")
        return
    if len(path) == 1 and not str(path[0]).startswith("_") and kind == "type":
        col.add("DM005", path, f"top-level key {path[0]!r} is not a table; every dataset is a "
                "table", f"write [{path[0]}] with fields below it, or prefix structural keys with _",
                at_key=True)
        return
    if len(path) == 1 and kind == "additionalProperties":
        known = set(err.schema.get("properties", {}))
        for k in inst:
            if k in known or k.startswith("_"):
                continue
            close = difflib.get_close_matches(k, DATASET_FIELDS, n=1, cutoff=0.6)
            hint = f"did you mean {close[0]!r}?" if close else (
                "known fields: " + ", ".join(DATASET_FIELDS) + "; prefix private fields with _")
            col.add("DM010", (*path, k), f"dataset {path[0]!r}: unknown field {k!r}", hint,
                    at_key=True)
        return
    if len(path) == 1 and kind == "not":
        col.add("DM012", (*path, "uris"), f"dataset {path[0]!r}: uri and uris are mutually "
                "exclusive", "keep uri for one source or uris for several", at_key=True)
        return
    if path and path[0] == "_STORAGE":
        where = ".".join(map(str, path))
        want = _wanted(err) if kind == "type" else "valid"
        col.add("DM061", path, f"{where} must be {want}, not {_toml_type(inst)}",
                "see SCHEMA.md RES-002 for the storage fields and their types")
        return
    name = path[0] if path else ""
    fld = path[1] if len(path) > 1 else ""
    if _is_binding_path(path):
        if isinstance(inst, dict):
            extra = [k for k in inst if k not in ("ref", "args", "kwargs")]
            if extra:
                col.add("DM014", (*path, extra[0]), _binding_message(inst),
                        "a binding table has ref, args and kwargs only", at_key=True)
                return
        col.add("DM014", path, _binding_message(inst),
                "write \"module:function\" or {ref = \"module:function\", args = [...], "
                "kwargs = {...}}")
        return
    if kind == "type":
        want = _wanted(err)
        where = f"dataset {name!r}: " if path and not str(name).startswith("_") else ""
        label = ".".join(str(p) for p in path[1:]) if where else ".".join(map(str, path))
        col.add("DM011", path, f"{where}{label or 'value'} must be {want}, not {_toml_type(inst)}",
                _type_hint(fld))
        return
    if kind == "pattern" and fld == "checksum":
        code, msg, hint = _checksum.explain_invalid(inst)
        col.add(code, path, f"dataset {name!r}: {msg}", hint)
        return
    if kind == "pattern" and fld == "sha256":
        col.add("DM020", path, f"dataset {name!r}: sha256 must be 64 lowercase hex digits",
                "better: checksum = \"sha256:<hex>\"")
        return
    if kind == "pattern" and fld == "key":
        try:
            _keys.check_key(inst)
            why = f"the key {inst!r} is not a safe relative path"
        except _keys.UnsafeKey as e:
            why = str(e)
        col.add("DM030", path, f"dataset {name!r}: {why}",
                "a key is a relative path of non-empty segments without '.' or '..'")
        return
    if kind == "pattern" and fld == "storage_path":
        col.add("DM032", path, f"dataset {name!r}: storage_path {inst!r} has a '..' segment",
                "point storage_path at the final location without '..'")
        return
    if kind == "minLength" and fld == "uris":
        col.add("DM015", path, f"dataset {name!r}: empty string in uris", "remove it")
        return
    col.add("DM011", path, f"{'.'.join(map(str, path)) or 'document'}: {err.message}")


def _type_hint(fld: Any) -> str | None:
    if fld in ("aliases", "requires", "uris"):
        return f'write {fld} = ["..."]'
    if fld in ("skip_checksum", "skip_download", "lazy_access", "delegate", "extract"):
        return f"write {fld} = true or false (unquoted)"
    if fld in ("version",):
        return 'quote it: version = "1.0"'
    return None


def _binding_message(inst: Any) -> str:
    if isinstance(inst, str):
        return f"binding {inst!r} is not of the form module:function"
    if isinstance(inst, dict):
        extra = [k for k in inst if k not in ("ref", "args", "kwargs")]
        if extra:
            return f"binding table has unknown key(s) {', '.join(extra)}; allowed: ref, args, kwargs"
        if "ref" not in inst:
            return "binding table needs ref = \"module:function\""
        return "binding table has a malformed ref, args (array) or kwargs (table)"
    return f"a binding must be a string or a table, not {_toml_type(inst)}"


# -- layer 3: semantic rules ------------------------------------------------------------------
def _lenient_datasets(data: dict[str, Any], bad: dict[str, set[str] | None]) -> dict[str, Dataset]:
    """Models of the datasets, leaving out the fields the JSON Schema rejected."""
    datasets: dict[str, Dataset] = {}
    for name, table in data.items():
        if name.startswith("_") or not isinstance(table, dict):
            continue
        if name in bad:
            faulty = bad[name]
            if faulty is None:
                continue
            # judge the rest of the dataset without the fields layer 2 rejected
            table = {k: v for k, v in table.items() if k not in faulty}
        try:
            datasets[name] = Dataset.model_validate(table)
        except Exception:  # structural faults are reported by layer 2
            continue
    return datasets


_UNUSUAL_FIELDS = frozenset(LEGACY_FIELDS) | frozenset(DERIVED_FIELDS)


def _semantic_layer(data: dict[str, Any], datasets: dict[str, Dataset], col: _Collector) -> None:
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


def _secret_warning(col: _Collector, path: tuple, value: str, what: str) -> None:
    """SEC-003: a password or token written into a document (DM183)."""
    from .spec.secrets import redact_uri, secret_of, where_credentials_go

    kind = secret_of(value)
    if kind is not None:
        col.add("DM183", path, f"{what} {redact_uri(value)!r} holds a {kind}; a committed "
                "manifest or configuration shares it with everyone who reads it",
                where_credentials_go(value))


def _trust_and_secrets(data: dict[str, Any], datasets: dict[str, Dataset],
                       col: _Collector) -> None:
    """TRU-007: each trust-relevant entry that can run code or lead outside the project, as
    information (DM181); SEC-003: credentials in URIs and storage settings (DM183)."""
    from .spec import trust as _trust
    from .spec.secrets import redact_text

    for e in _trust.entries(data):
        why = _trust.reason(e)
        if why:
            col.add("DM181", e.path, f"{redact_text(e.show())}: {why}",
                    "a run that uses it needs this manifest trusted: `datamanifest trust "
                    "--show`", severity="info")
        if e.kind == "storage" and isinstance(e.value, str):
            _secret_warning(col, e.path, e.value, f"{e.label()}:")
    for name, ds in datasets.items():
        if ds.uri and ("@" in ds.uri or "=" in ds.uri):  # SEC-003 (one test per URI)
            _secret_warning(col, (name, "uri"), ds.uri, f"dataset {name!r}: URI")
        for i, u in enumerate(ds.uris):
            if "@" in u or "=" in u:
                _secret_warning(col, (name, "uris", i), u, f"dataset {name!r}: URI")


def _source(ds: Dataset) -> tuple:
    return (ds.uri, tuple(ds.uris), ds.version, ds.branch)


def _cycles(datasets: dict[str, Dataset], col: _Collector) -> None:
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


# -- the other documents (§8, §14, §16) -----------------------------------------------------------
#: document type -> (code of a structural fault, what the document is called)
_OTHER = {
    "config": ("DM061", "configuration"),
    "state": ("DM092", "state file"),
    "config-sidecar": ("DM110", "config sidecar"),
    "metadata-sidecar": ("DM112", "metadata sidecar"),
    "append-config": ("DM160", "append configuration"),
}


def _describe(err: Any, where: str) -> str:
    """A readable sentence for a JSON Schema error (no regular expressions shown)."""
    kind, inst = err.validator, err.instance
    if kind == "type":
        want = _wanted(err)
        return f"{where} must be {want}, not {_toml_type(inst)}"
    if kind == "pattern":
        return f"{where} has an invalid form: {inst!r}"
    if kind == "required":
        missing = [p for p in err.validator_value if p not in inst]
        return f"{where} lacks {', '.join(missing)}"
    if kind in ("minLength", "minimum"):
        return f"{where} is too small: {inst!r}"
    if kind in ("const", "enum"):
        return f"{where} must be {err.validator_value!r}, not {inst!r}"
    if kind in ("anyOf", "oneOf"):
        return f"{where}: {_toml_type(inst)} is not allowed here"
    return f"{where}: {err.message}"


def _check_other(doc_type: str, data: dict[str, Any], col: _Collector) -> None:
    """Structure (models first, JSON Schema on rejection) and the rules of each document."""
    from . import schemas
    from .spec import documents, paramhash

    code, label = _OTHER[doc_type]
    meta = data.get("_META")
    if doc_type == "state":
        version = meta.get("schema") if isinstance(meta, dict) else None
        if meta is None:  # PRD-032: a state file without _META is the legacy schema 1
            col.add("DM093", (), "a state file without _META is the legacy schema 1; it is "
                    "read and rewritten as schema 5 on the next write",
                    "run `datamanifest fetch` to upgrade it")
            return
        if type(version) is int and 1 <= version <= 4:
            col.add("DM093", ("_META", "schema"), f"state schema {version} is a legacy shape; "
                    "it is read and rewritten as schema 5 on the next write",
                    "run `datamanifest fetch` to upgrade it")
            return
        if type(version) is int and version > 5:
            col.add("DM004", ("_META", "schema"), f"state schema {version} is newer than this tool "
                    "reads (5)", "upgrade datamanifest")
            return
    if doc_type == "config":  # CFG-003: misspelt storage fields (MAN-006)
        storage_typos(data, (), referenced_symbols(data), col, label="configuration: ")
        meta_typos(data.get("_META"), col, label="configuration: ")
    found = len(col.items)
    try:
        documents.MODELS[doc_type].model_validate(data)
        structural_ok = True
    except ValueError:
        structural_ok = False
    if not structural_ok:
        for err in schemas.validator(doc_type).iter_errors(data):
            path = tuple(err.absolute_path)
            if path == ("_META", "schema") or (path == ("_META",) and err.validator == "required"
                                               and "schema" in err.message):
                col.add("DM004", path, f"{label}: {_describe(err, '_META.schema')}",
                        "write schema = 1" if
                        doc_type != "state" else "write schema = 5")
                continue
            if err.validator == "additionalProperties" and isinstance(err.instance, dict):
                known = set(err.schema.get("properties", {}))
                extra = [k for k in err.instance if k not in known]
                if extra:  # point at the unknown key itself
                    import difflib

                    close = difflib.get_close_matches(extra[0], sorted(known), n=1)
                    where = ".".join(map(str, (*path, extra[0])))
                    col.add(code, (*path, extra[0]), f"{label}: unknown field {where!r}",
                            f"did you mean {close[0]!r}?" if close else
                            f"see SCHEMA.md for the {label}", at_key=True)
                    continue
            where = ".".join(map(str, path)) or "document"
            col.add(code, path, f"{label}: {_describe(err, where)}",
                    f"see SCHEMA.md for the {label}", at_key=err.validator == "required")
        if len(col.items) == found:  # the models reject what the schema accepts: never hide it
            col.add(code, (), f"{label}: structurally invalid")
        return
    if doc_type == "append-config":  # APP-001: the step's grammar, beyond the schema
        from .spec.appends import AppendSpecError, parse_step

        try:
            parse_step(data.get("append_step"))
        except AppendSpecError as e:
            col.add("DM160", ("append_step",), f"append configuration: {e.message}",
                    "append_step is +, -, a number or a duration like 1D, 12h, -30m")
    if doc_type == "config":
        from .spec import trust as _trust
        from .spec.secrets import redact_text

        checkout = bool(col.file) and Path(col.file).parent.name == ".datamanifest"
        for e in _trust.entries({}, data):
            why = _trust.reason(e) if checkout else None
            if why:  # TRU-007: a project-supplied configuration (CFG-001)
                col.add("DM181", e.path, f"{redact_text(e.show())}: {why}",
                        "a run that uses it needs the project's manifest trusted: "
                        "`datamanifest trust --show`", severity="info")
            if isinstance(e.value, str):
                _secret_warning(col, e.path, e.value, f"{'.'.join(e.path)}:")
    if doc_type == "config-sidecar":
        table = {k: v for k, v in data.items() if k != "_META"}
        try:
            actual = paramhash.parameter_hash(table)
        except paramhash.ParameterError as e:
            col.add("DM100", e.path, f"config sidecar: {e}", "parameters are strings, numbers, "
                    "booleans, arrays and tables")
            return
        if actual != meta["hash"]:
            col.add("DM111", ("_META", "hash"), f"config sidecar: _META.hash {meta['hash']} does "
                    f"not match the key table, which hashes to {actual}",
                    "the artifact is not a cache hit; recompute it or fix the key table")
    if doc_type == "state":
        for key, rec in (data.get("datasets") or {}).items():
            sha, chk = rec.get("sha256"), rec.get("checksum")
            if sha and chk and chk.startswith("sha256:") and chk != f"sha256:{sha}":
                col.add("DM023", ("datasets", key, "sha256"), f"state record {key!r}: sha256 "
                        "and checksum disagree", "the state file is regenerable: fetch again")

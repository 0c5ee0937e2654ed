"""The manifest document ``datamanifest.toml`` (SCHEMA.md §3–§4, rules MAN-001..MAN-062).

Pure: models, normalization and identifier lookup. Reading files and
discovery live in :mod:`datamanifest.project`; validation with diagnostics in
:mod:`datamanifest.check`.

Shape of a parsed manifest (``dict`` from tomllib)::

    {"_META": {"schema": 1}, "_STORAGE": {...}, "<dataset name>": {<fields>}, ...}

Round-trip (MAN-003): :meth:`Manifest.to_dict` returns a dict equal to the
one the manifest was built from: unknown ``_`` tables, other languages'
``_LANG`` tables and unknown future fields are kept verbatim.
"""

from __future__ import annotations

import functools

import re
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, model_validator

from . import checksum as _checksum
from . import keys as _keys
from . import storage as _storage

#: Current ``_META.schema`` of the manifest (VER-002).
SCHEMA_VERSION = 1
SUPPORTED_SCHEMAS = (0, 1)

#: A binding reference ``module:function`` (MAN-040); schemas carry this pattern verbatim.
BINDING_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$"
_BINDING_RE = re.compile(BINDING_PATTERN)

#: Fields a current writer may write (MAN-020), in canonical order of description.
DATASET_FIELDS = (
    "uri", "uris", "version", "branch", "doi", "aliases", "description", "key",
    "storage_path", "checksum", "skip_checksum", "skip_download", "lazy_access",
    "delegate", "extract", "virtual", "concat_dim", "format", "requires", "fetcher", "loader",
    "shell",
)
#: Legacy fields: read, reported as deprecated, never written (MAN-060).
LEGACY_FIELDS = {
    "sha256": "write `checksum = \"sha256:<hex>\"` instead",
    "local_path": "use `storage_path` instead",
    "store": "use `storage_path` or [_STORAGE] instead",
    "python": "use `fetcher`/`loader` or [<name>._LANG.python] instead",
    "julia": "use [<name>._LANG.julia] instead",
    "callable": "use `fetcher`/`loader` instead",
    "julia_modules": "use [<name>._LANG.julia] instead",
    "python_includes": "use [<name>._LANG.python] instead",
    "downloads": "use `uris` instead",
}
#: Derived fields older writers emitted; read and ignored (MAN-061).
DERIVED_FIELDS = ("host", "path", "scheme")
KNOWN_FIELDS = frozenset(DATASET_FIELDS) | frozenset(LEGACY_FIELDS) | frozenset(DERIVED_FIELDS) | {"_LANG"}
#: The fields of a manifest's ``[_META]`` (MAN-006); another key that resembles one is DM010.
META_FIELDS = ("schema",)
#: The structural top-level tables (MAN-001); ``_loaders`` is their legacy spelling (MIG-007).
STRUCTURAL_TABLES = ("_META", "_STORAGE", "_LANG", "_LOADERS")
LEGACY_TABLES = ("_loaders",)
#: Archive formats ``extract`` understands (MAN-026).
ARCHIVE_FORMATS = ("zip", "tar", "tar.gz")



@functools.lru_cache(maxsize=65536)
def _derive_key_cached(uri: str, uris: tuple[str, ...], version: str) -> str:
    """KEY-002/KEY-003 for one source, computed once per process (derivation is pure)."""
    return _keys.derive_key(uri, uris, version)

class Binding(BaseModel):
    """A fetcher or loader binding in table form ``{ref, args, kwargs}`` (MAN-040)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    ref: StrictStr
    args: list[Any] = Field(default_factory=list)
    kwargs: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _ref_form(self) -> "Binding":
        if not _BINDING_RE.match(self.ref):
            raise ValueError(f"binding ref {self.ref!r} is not of the form module:function")
        return self


def _binding(value: Any) -> Any:
    if isinstance(value, str) and not _BINDING_RE.match(value):
        raise ValueError(f"binding {value!r} is not of the form module:function")
    return value


class StorageHost(BaseModel):
    """A ``_HOST."<glob>"`` section: storage fields and user symbols (RES-002, RES-003)."""

    model_config = ConfigDict(extra="allow", strict=True)
    datasets_dir: StrictStr | None = None
    datacache_dir: StrictStr | None = None
    datasets_pools: list[StrictStr] | None = None
    datacache_pools: list[StrictStr] | None = None
    project: StrictStr | None = None
    canonical: StrictBool | StrictStr | None = None
    lock_stale_age: float | int | StrictStr | None = None
    default_remote: StrictStr | None = None
    max_extract_bytes: StrictInt | StrictStr | None = None

    @model_validator(mode="after")
    def _symbols_are_strings(self) -> "StorageHost":
        for k, v in (self.__pydantic_extra__ or {}).items():
            if not k.startswith("_") and not isinstance(v, str):
                raise ValueError(f"user symbol {k} must be a string")
        return self


class StorageTable(StorageHost):
    """``[_STORAGE]`` and the configuration documents (RES-002, CFG-002)."""

    host: dict[str, StorageHost] | None = Field(default=None, alias="_HOST")


class Dataset(BaseModel):
    """One dataset table (MAN-020). Unset fields take their defaults; extras are kept."""

    model_config = ConfigDict(
        extra="allow", strict=True, populate_by_name=True, regex_engine="python-re"
    )

    uri: StrictStr = ""
    uris: list[Annotated[StrictStr, Field(min_length=1)]] = Field(default_factory=list)
    version: StrictStr = ""
    branch: StrictStr = ""
    doi: StrictStr = ""
    aliases: list[StrictStr] = Field(default_factory=list)
    description: StrictStr = ""
    key: StrictStr = Field(default="", pattern=_keys.KEY_PATTERN)
    storage_path: StrictStr = Field(default="", pattern=_storage.STORAGE_PATH_PATTERN)
    checksum: StrictStr = Field(default="", pattern=_checksum.CHECKSUM_PATTERN)
    sha256: StrictStr = Field(default="", pattern=_checksum.SHA256_PATTERN)
    skip_checksum: StrictBool = False
    skip_download: StrictBool = False
    lazy_access: StrictBool = False
    delegate: StrictBool | None = None
    extract: StrictBool = False
    virtual: StrictBool = False
    concat_dim: StrictStr = ""
    format: StrictStr = ""
    requires: list[StrictStr] = Field(default_factory=list)
    fetcher: StrictStr | Binding | None = None
    loader: StrictStr | Binding | None = None
    shell: StrictStr = ""
    lang: dict[str, dict[str, Any]] = Field(default_factory=dict, alias="_LANG")
    # legacy, read-only
    local_path: StrictStr = ""
    store: StrictStr = ""
    python: StrictStr = ""
    julia: StrictStr = ""
    callable: StrictStr = ""
    julia_modules: list[StrictStr] = Field(default_factory=list)
    python_includes: list[StrictStr] = Field(default_factory=list)
    downloads: Any = None
    host: StrictStr = ""
    path: StrictStr = ""
    scheme: StrictStr = ""

    @model_validator(mode="before")
    @classmethod
    def _strict_fields(cls, data: Any, info: Any) -> Any:
        # In strict mode (check), unknown non-`_` fields are rejected like the
        # JSON Schema does (MAN-011); in reading mode they are kept (MAN-003).
        ctx = info.context or {}
        if ctx.get("strict_fields") and isinstance(data, dict):
            unknown = [k for k in data if k not in KNOWN_FIELDS and not k.startswith("_")]
            if unknown:
                raise ValueError(f"unknown field(s): {', '.join(unknown)}")
        if isinstance(data, dict):
            for role in ("fetcher", "loader"):
                if role in data:
                    _binding(data[role])
        return data

    @model_validator(mode="after")
    def _exclusive(self) -> "Dataset":
        if self.uri and self.uris:
            raise ValueError("uri and uris are mutually exclusive")
        return self

    # -- derived views -------------------------------------------------------------
    @property
    def effective_checksum(self) -> str:
        """``"<algo>:<hex>"`` from ``checksum`` or legacy ``sha256``; ``""`` when none (SUM-005)."""
        return _checksum.effective(self.checksum, self.sha256)

    @property
    def is_folder(self) -> bool:
        """A folder dataset (STO-002): extracted, several ``uris``, or a git or ssh folder
        source. A virtual dataset is a file, its chunk manifest (CHK-030)."""
        if self.virtual:
            return False
        return self.extract or bool(self.uris) or bool(self.uri and _keys.is_folder_uri(self.uri))

    @property
    def target_key(self) -> str:
        """The key of the dataset's target: its key, with an archive suffix removed for an
        extracted dataset (STO-002) or ``.chunks.json`` appended for a virtual one
        (CHK-030). May raise UnsafeKey."""
        key = self.derived_key
        if self.extract:
            return _keys.extracted_key(key)
        if self.virtual:
            return key + ".chunks.json"
        return key

    @property
    def effective_format(self) -> str:
        """Declared ``format``, else inferred from the URI (MAN-025); ``chunk-manifest`` for
        a virtual dataset (MAN-027)."""
        if self.virtual and not self.format:
            return "chunk-manifest"
        if self.format:
            return self.format.lower()
        if self.uri:
            return _keys.infer_format(self.uri)
        return ""

    @property
    def derived_key(self) -> str:
        """The storage key: explicit ``key`` or derived (KEY-001..KEY-003). May raise UnsafeKey."""
        if self.key:
            _keys.check_key(self.key)
            return self.key
        return _derive_key_cached(self.uri, tuple(self.uris), self.version)

    @property
    def extra_fields(self) -> dict[str, Any]:
        return dict(self.__pydantic_extra__ or {})


class Manifest(BaseModel):
    """A whole manifest: ``_META``, other structural ``_`` tables, and datasets by name."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    meta: dict[str, Any] = Field(default_factory=dict)
    structural: dict[str, Any] = Field(default_factory=dict)
    datasets: dict[str, Dataset] = Field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, strict_fields: bool = False) -> "Manifest":
        """Build from a parsed TOML document (MAN-001, MAN-002).

        Raises ``pydantic.ValidationError`` on a structural fault (the
        :mod:`datamanifest.check` module turns these into diagnostics).
        ``strict_fields=True`` also rejects unknown dataset fields (MAN-011).
        """
        meta = data.get("_META", {})
        structural = {k: v for k, v in data.items() if k.startswith("_") and k != "_META"}
        ctx = {"strict_fields": strict_fields}
        datasets = {}
        for name, table in data.items():
            if name.startswith("_"):
                continue
            if not isinstance(table, dict):
                raise ValueError(f"top-level key {name!r} is not a table")
            datasets[name] = Dataset.model_validate(table, context=ctx)
        return cls(meta=meta, structural=structural, datasets=datasets)

    @property
    def schema_version(self) -> int:
        """``_META.schema``; 0 when absent (VER-001)."""
        value = self.meta.get("schema", 0)
        return value if isinstance(value, int) else 0

    @property
    def storage(self) -> dict[str, Any]:
        """The manifest's ``[_STORAGE]`` table (STO-006), ``{}`` when absent."""
        value = self.structural.get("_STORAGE", {})
        return value if isinstance(value, dict) else {}

    def to_dict(self) -> dict[str, Any]:
        """The TOML document as a dict: ``_META`` and structural tables first, then datasets."""
        out: dict[str, Any] = {}
        if self.meta:
            out["_META"] = self.meta
        out.update(self.structural)
        for name, ds in self.datasets.items():
            out[name] = ds.model_dump(by_alias=True, exclude_unset=True, mode="python")
            _restore_bindings(out[name], ds)
        return out

    # -- identifier lookup (MAN-050, MAN-051) -----------------------------------------
    def candidates(self, ident: str) -> list[str]:
        """Names of the datasets ``ident`` matches exactly, by name, alias or doi."""
        if ident in self.datasets:
            return [ident]
        return [
            name
            for name, ds in self.datasets.items()
            if ident in ds.aliases or (ds.doi and ds.doi == ident)
        ]

    def order(self, names: list[str] | None = None) -> list[str]:
        """Names in a dependency order (``requires`` first), closed over requirements.

        Ties keep document order. Assumes the manifest passed ``check`` (no
        cycles, no unknown names: MAN-031, MAN-032).
        """
        wanted = list(self.datasets) if names is None else names
        seen: set[str] = set()
        out: list[str] = []
        for root in wanted:
            if root in seen or root not in self.datasets:
                continue
            seen.add(root)
            stack = [(root, iter(self.datasets[root].requires))]
            while stack:  # iterative post-order: requirements first
                node, it = stack[-1]
                for r in it:
                    if r not in seen and r in self.datasets:
                        seen.add(r)
                        stack.append((r, iter(self.datasets[r].requires)))
                        break
                else:
                    stack.pop()
                    out.append(node)
        return out


def _restore_bindings(out: dict[str, Any], ds: Dataset) -> None:
    # A binding written as a string stays a string (MAN-041); a table stays a
    # table with only the keys it had.
    for role in ("fetcher", "loader"):
        value = getattr(ds, role)
        if isinstance(value, Binding):
            out[role] = value.model_dump(exclude_unset=True)


def _normalize_binding(value: str | Binding | None) -> dict[str, Any] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return {"ref": value, "args": [], "kwargs": {}}
    return {"ref": value.ref, "args": list(value.args), "kwargs": dict(value.kwargs)}


def normalized_record(name: str, ds: Dataset) -> dict[str, Any]:
    """The normalized record of one dataset (SCHEMA.md §4.9, MAN-070).

    Every field present with its default; ``checksum`` folded to
    ``<algo>:<hex>`` (legacy ``sha256`` and bare hex included); ``key``
    derived; ``format`` inferred; bindings in table form. The fixtures'
    ``*.expected.json`` files hold exactly these records.
    """
    return {
        "name": name,
        "uri": ds.uri,
        "uris": list(ds.uris),
        "version": ds.version,
        "branch": ds.branch,
        "doi": ds.doi,
        "aliases": list(ds.aliases),
        "description": ds.description,
        "key": ds.derived_key if (ds.key or ds.uri or ds.uris) else "",
        "storage_path": ds.storage_path or "$datasets_dir/$key",
        "checksum": ds.effective_checksum,
        "skip_checksum": ds.skip_checksum,
        "skip_download": ds.skip_download,
        "lazy_access": ds.lazy_access,
        "delegate": ds.delegate,
        "extract": ds.extract,
        "virtual": ds.virtual,
        "concat_dim": ds.concat_dim,
        "format": ds.effective_format,
        "requires": list(ds.requires),
        "fetcher": _normalize_binding(ds.fetcher),
        "loader": _normalize_binding(ds.loader),
        "shell": ds.shell,
        "languages": sorted(ds.lang),
    }


def normalize(manifest: Manifest) -> dict[str, Any]:
    """The normalized form of a manifest: ``{"schema": int, "datasets": [record, ...]}``.

    Records are sorted by name (code point order; MAN-070).
    """
    return {
        "schema": manifest.schema_version,
        "datasets": [normalized_record(n, manifest.datasets[n]) for n in sorted(manifest.datasets)],
    }



def validate_structure(data: dict[str, Any]) -> "Manifest":
    """Structural validation with the models alone, mirroring ``schemas/manifest.v1.json``.

    Returns the model. Raises ``ValueError`` (or ``pydantic.ValidationError``,
    a subclass) on the first fault. The conformance tests assert this verdict equals the JSON
    Schema's on every fixture (SCHEMA.md §10, VAL-002).
    """
    from pydantic import TypeAdapter

    meta = data.get("_META", {})
    if not isinstance(meta, dict):
        raise ValueError("_META must be a table")
    schema = meta.get("schema", 0)
    if type(schema) is not int or schema not in SUPPORTED_SCHEMAS:
        raise ValueError(f"unsupported _META.schema {schema!r}")
    for name in ("_STORAGE", "_LANG", "_LOADERS"):
        if name in data and not isinstance(data[name], dict):
            raise ValueError(f"{name} must be a table")
    if "_STORAGE" in data:
        StorageTable.model_validate(data["_STORAGE"])
    for lang, table in data.get("_LANG", {}).items():
        if not isinstance(table, dict):
            raise ValueError(f"_LANG.{lang} must be a table")
    adapter = TypeAdapter(StrictStr | Binding)
    for fmt, value in data.get("_LOADERS", {}).items():
        _binding(adapter.validate_python(value))
    _python_bindings(data.get("_LANG", {}), adapter)
    for name, table in data.items():
        if not name.startswith("_") and isinstance(table, dict):
            lang = table.get("_LANG", {})
            if not isinstance(lang, dict) or any(not isinstance(t, dict) for t in lang.values()):
                raise ValueError(f"{name}._LANG must be a table of tables")
            _python_bindings(lang, adapter)
    return Manifest.from_dict(data, strict_fields=True)


def _python_bindings(lang: dict[str, Any], adapter: Any) -> None:
    """MAN-042: the bindings of a ``_LANG.python`` table (fetcher, loader, loaders) are
    MAN-040 bindings; other languages' tables are not judged. Raises ValueError."""
    table = lang.get("python")
    if not isinstance(table, dict):
        return
    for field in ("fetcher", "loader"):
        if field in table:
            _binding(adapter.validate_python(table[field]))
    loaders = table.get("loaders", {})
    if not isinstance(loaders, dict):
        raise ValueError("_LANG.python.loaders must be a table")
    for value in loaders.values():
        _binding(adapter.validate_python(value))

"""The other TOML documents of the family and how to tell them apart (SCHEMA.md §16–§17).

* configuration files (``.datamanifest/config.toml``, user config): §14, model
  :class:`~datamanifest.spec.manifest.StorageTable`;
* the state file (``.datamanifest/state.toml``): §8;
* the produced-dataset sidecars ``config.toml`` (identity and key table) and
  ``metadata.toml`` (provenance): §16.

Pure: models, normalization and detection; no I/O.
"""

from __future__ import annotations

import re
from pathlib import PurePath
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, model_validator

from . import paramhash
from .checksum import CHECKSUM_PATTERN
from .manifest import StorageTable
from .cache import LEGACY_INDEX_NAMES

DOC_TYPES = ("manifest", "config", "state", "config-sidecar", "metadata-sidecar",
             "append-config")
HEX64 = "^[0-9a-f]{64}$"
_HEX64 = re.compile(HEX64)
#: RFC 3339 date-time in UTC with a Z (SC-010)
RFC3339_UTC = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$"


class ConfigDocument(StorageTable):
    """A configuration file (CFG-002): a storage table with an optional ``_META.schema = 1``."""

    @model_validator(mode="after")
    def _meta(self) -> "ConfigDocument":
        meta = (self.__pydantic_extra__ or {}).get("_META")
        if meta is not None and (not isinstance(meta, dict) or meta.get("schema", 1) != 1
                                 or type(meta.get("schema", 1)) is not int):
            raise ValueError("configuration _META.schema must be 1")
        return self


# -- the state file (§8) ---------------------------------------------------------------------------
class StateRecord(BaseModel):
    """One ``[datasets."<key>"]`` record (STA-002); unknown fields kept (STA-008)."""

    model_config = ConfigDict(extra="allow", strict=True)
    storage_path: StrictStr = Field(min_length=1)
    sha256: StrictStr | None = Field(default=None, pattern=HEX64)
    checksum: StrictStr | None = Field(default=None, pattern=CHECKSUM_PATTERN.replace("^(|", "^("))
    size: StrictInt | None = Field(default=None, ge=0)
    uri: StrictStr | None = None
    fetched: StrictStr | None = None
    tree: StrictStr | None = None


class StateMeta(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)
    schema_: StrictInt = Field(alias="schema")


class StateDocument(BaseModel):
    """The state document: ``_META``, ``datasets`` and other tables kept verbatim."""

    model_config = ConfigDict(extra="allow", strict=True, populate_by_name=True)
    meta: StateMeta = Field(alias="_META")
    datasets: dict[str, StateRecord] = Field(default_factory=dict)
    datacache: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _current(self) -> "StateDocument":
        if self.meta.schema_ != 5:
            raise ValueError(f"state schema {self.meta.schema_}: this model reads schema 5")
        return self


# -- produced-dataset sidecars (§16) -------------------------------------------------------------------
class SidecarMeta(BaseModel):
    """``[_META]`` of a config sidecar (SC-001)."""

    model_config = ConfigDict(extra="allow", strict=True)
    schema_: StrictInt = Field(alias="schema")
    cachetype: StrictStr = Field(min_length=1, pattern=r"^[^@/\\\x00-\x1f]+$")
    version: StrictStr | None = Field(default=None, pattern=r"^[^@/\\\x00-\x1f]*$")
    hash: StrictStr = Field(pattern=HEX64)

    @model_validator(mode="after")
    def _schema_one(self) -> "SidecarMeta":
        if self.schema_ != 1:
            raise ValueError("config sidecar _META.schema must be 1")
        if self.cachetype in (".", ".."):
            raise ValueError("cachetype must not be . or ..")
        return self


class ConfigSidecar(BaseModel):
    """A produced dataset's ``config.toml``: the key table at the root plus ``[_META]`` (SC-001)."""

    model_config = ConfigDict(extra="allow", strict=True, populate_by_name=True)
    meta: SidecarMeta = Field(alias="_META")

    @model_validator(mode="after")
    def _plain_values(self) -> "ConfigSidecar":
        def ok(v: Any) -> bool:
            if isinstance(v, (str, int, float, bool)):
                return True
            if isinstance(v, list):
                return all(ok(x) for x in v)
            if isinstance(v, dict):
                return all(ok(x) for x in v.values())
            return False

        for k, v in (self.__pydantic_extra__ or {}).items():
            if not ok(v):
                raise ValueError(f"key table value {k!r} is not a string, number, boolean, "
                                 "array or table")
        return self

    @property
    def key_table(self) -> dict[str, Any]:
        """All root keys except ``_META`` (SC-002)."""
        return dict(self.__pydantic_extra__ or {})


class GitInfo(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)
    commit: StrictStr | None = None
    branch: StrictStr | None = None
    dirty: StrictBool | None = None


class MetadataMeta(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)
    schema_: StrictInt = Field(alias="schema")
    created: StrictStr | None = Field(default=None, pattern=RFC3339_UTC)
    tool: StrictStr | None = None
    host: StrictStr | None = None
    user: StrictStr | None = None

    @model_validator(mode="after")
    def _schema_one(self) -> "MetadataMeta":
        if self.schema_ != 1:
            raise ValueError("metadata sidecar _META.schema must be 1")
        return self


class Origin(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)
    state_file: StrictStr | None = None
    cached_toml: StrictStr | None = None  # the older name (SC-012)


class MetadataSidecar(BaseModel):
    """A produced dataset's ``metadata.toml``: provenance only, never hashed (SC-010)."""

    model_config = ConfigDict(extra="allow", strict=True, populate_by_name=True)
    meta: MetadataMeta = Field(alias="_META")
    git: GitInfo | None = None
    origin: Origin | None = None


# -- detection and normalization ------------------------------------------------------------------------
def detect(data: dict[str, Any] | None, path: str | None) -> str:
    """The document type of a parsed document (DOC-001).

    File names first: the manifest names; ``state.toml`` and ``config.toml`` inside a
    ``.datamanifest`` folder; the legacy state names ``cached.toml`` and
    ``.datamanifest-state.toml``; ``metadata.toml``. Then ``_META``: a ``cachetype``
    means a config sidecar, ``created`` or ``tool`` a metadata sidecar; a document
    whose only non-``_`` tables are ``datasets`` / ``datacache`` is a state file.
    Otherwise a manifest.
    """
    from .discovery import MANIFEST_NAMES

    if path:
        p = PurePath(path)
        parent = p.parent.name
        if p.name in MANIFEST_NAMES:
            return "manifest"
        if parent == ".datamanifest" and p.name == "state.toml":
            return "state"
        if p.name in LEGACY_INDEX_NAMES:  # legacy state files (PRD-032)
            return "state"
        if p.name == "metadata.toml":
            return "metadata-sidecar"
        if p.name == "append.toml" or p.name.endswith(".append.toml"):
            return "append-config"
        if p.name == "config.toml" and (parent == ".datamanifest" or parent == "datamanifest"):
            return "config"
    meta = (data or {}).get("_META")
    if isinstance(meta, dict):
        if "cachetype" in meta or "hash" in meta:
            return "config-sidecar"
        if "created" in meta or "tool" in meta:
            return "metadata-sidecar"
    body = {k for k in (data or {}) if not k.startswith("_")}
    if any(not isinstance((data or {})[k], dict) for k in body & _APPEND_SCALARS):
        return "append-config"  # APP-001: a manifest has no such top-level values
    if body and body <= {"datasets", "datacache"}:
        return "state"
    if path and PurePath(path).name == "config.toml":
        return "config"
    return "manifest"


def normalize_config(data: dict[str, Any]) -> dict[str, Any]:
    """Normalized configuration document: fields, user symbols and host sections (CFG-002)."""
    StorageTable.model_validate(data)
    from .resolution import FIELDS

    def split(t: dict[str, Any]) -> dict[str, Any]:
        fields = {k: v for k, v in t.items() if k in FIELDS}
        symbols = {k: v for k, v in t.items() if k not in FIELDS and not k.startswith("_")}
        return {"fields": fields, "symbols": symbols}

    out = split(data)
    out["hosts"] = {g: split(dict(h)) for g, h in sorted((data.get("_HOST") or {}).items())}
    return out


def normalize_state(data: dict[str, Any]) -> dict[str, Any]:
    doc = StateDocument.model_validate(data)
    return {"schema": doc.meta.schema_,
            "datasets": {k: r.model_dump(exclude_none=True) for k, r in sorted(doc.datasets.items())},
            "other_tables": sorted(k for k in data if k not in ("_META", "datasets"))}


def normalize_config_sidecar(data: dict[str, Any]) -> dict[str, Any]:
    doc = ConfigSidecar.model_validate(data)
    table = doc.key_table
    return {"cachetype": doc.meta.cachetype, "version": doc.meta.version or "",
            "hash": doc.meta.hash, "computed_hash": paramhash.parameter_hash(table),
            "cache_key": paramhash.cache_key(doc.meta.cachetype, table, doc.meta.version or ""),
            "key_table": sorted(table)}


def normalize_metadata_sidecar(data: dict[str, Any]) -> dict[str, Any]:
    doc = MetadataSidecar.model_validate(data)
    m = doc.meta
    return {"created": m.created, "tool": m.tool, "host": m.host, "user": m.user,
            "git": doc.git.model_dump(exclude_none=True) if doc.git else {},
            "state_file": (doc.origin.state_file or doc.origin.cached_toml) if doc.origin else None}


_APPEND_SCALARS = {"append_dim", "append_step", "target", "attrs_update_mode", "zarr_format",
                   "included_variables", "excluded_variables", "dry_run"}


def normalize_append_config(data: dict[str, Any]) -> dict[str, Any]:
    from .appends import normalize_config as _normalize

    return _normalize(data)


def _append_model():
    from .appends import AppendConfig

    return AppendConfig


NORMALIZERS = {
    "config": normalize_config,
    "state": normalize_state,
    "config-sidecar": normalize_config_sidecar,
    "metadata-sidecar": normalize_metadata_sidecar,
    "append-config": normalize_append_config,
}
MODELS = {
    "config": ConfigDocument,
    "state": StateDocument,
    "config-sidecar": ConfigSidecar,
    "metadata-sidecar": MetadataSidecar,
    "append-config": _append_model(),
}

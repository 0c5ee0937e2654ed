"""Appending to Zarr stores: the configuration, the committed view, the plan of one append
and the recovery decision (SCHEMA.md §26, APP-001..APP-030).

Pure: documents in, decisions out; no file system. :mod:`datamanifest.appends` does the I/O.

* :class:`AppendConfig` -- APP-001 (the TOML document), :func:`merge` -- APP-002;
* :class:`CommittedView` -- the committed view read from a root metadata document (APP-010), for
  Zarr v3 (``zarr.json`` with consolidated metadata) and v2 (``.zmetadata``);
* :func:`parse_step`, :func:`check_labels` -- append steps and labels (APP-012);
* :func:`plan` -- the keys one append creates and replaces (APP-021, APP-022);
* :func:`recovery` -- what the next start does with a journal (APP-024).
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    field_validator,
)

from . import virtual
from ..optional import APPEND, need

JOURNAL_VERSION = 1


class AppendSpecError(ValueError):
    """A violation of §26: ``code`` (DM160..DM167), ``message``, and where known the
    ``variable`` and the JSON ``path``."""

    def __init__(self, code: str, message: str, *, variable: str | None = None,
                 path: tuple = ()) -> None:
        super().__init__(message)
        self.code, self.message, self.variable, self.path = code, message, variable, path


# -- the configuration (APP-001, APP-002) ---------------------------------------------------------
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True)


class Encoding(_Strict):
    dtype: StrictStr | None = None
    chunks: list[StrictInt | StrictBool] | StrictInt | StrictBool | None = None
    fill_value: StrictInt | StrictFloat | StrictStr | StrictBool | None = None
    scale_factor: StrictFloat | StrictInt | None = None
    add_offset: StrictFloat | StrictInt | None = None
    units: StrictStr | None = None
    calendar: StrictStr | None = None
    compressor: dict[str, Any] | StrictBool | None = None

    @field_validator("compressor")
    @classmethod
    def _compressor(cls, v: Any) -> Any:
        if v is True:
            raise ValueError("compressor is a table with a name, or false")
        if isinstance(v, dict) and v.get("name") not in COMPRESSORS:
            raise ValueError(f"compressor name must be one of {', '.join(COMPRESSORS)}")
        return v


COMPRESSORS = ("zstd", "gzip", "blosc")


class VariableSpec(_Strict):
    dims: list[StrictStr] | None = None
    encoding: Encoding = Field(default_factory=Encoding)
    attrs: dict[str, Any] = Field(default_factory=dict)


class LockOptions(_Strict):
    wait: StrictBool = True
    timeout: StrictFloat | StrictInt | None = None
    stale_age: StrictFloat | StrictInt = 30
    poll: StrictFloat | StrictInt = 0.1


class Polling(_Strict):
    """APP-040: how a slice that is not there yet is waited for (seconds)."""

    interval: StrictFloat | StrictInt = Field(default=2, gt=0)
    timeout: StrictFloat | StrictInt = Field(default=60, ge=0)
    marker: StrictStr | None = None

    @field_validator("marker")
    @classmethod
    def _marker(cls, v: Any) -> Any:
        if v is not None and "{slice}" not in v:
            raise ValueError("marker must contain {slice} (the slice's path), e.g. "
                             "\"{slice}.done\"")
        return v


_SOURCE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


class Meta(_Strict):
    model_config = ConfigDict(extra="allow", strict=True, populate_by_name=True)
    schema_: Literal[1] = Field(alias="schema")


class AppendConfig(_Strict):
    """An append configuration (APP-001). Build with :func:`config_from_dict`."""

    meta: Meta | None = Field(default=None, alias="_META")
    target: StrictStr | None = None
    target_storage_options: dict[str, Any] = Field(default_factory=dict)
    append_dim: StrictStr = "time"
    append_step: StrictStr | StrictInt | StrictFloat | None = None
    fixed_dims: dict[str, StrictInt] = Field(default_factory=dict)
    included_variables: list[StrictStr] = Field(default_factory=list)
    excluded_variables: list[StrictStr] = Field(default_factory=list)
    variables: dict[str, VariableSpec] = Field(default_factory=dict)
    attrs: dict[str, Any] = Field(default_factory=dict)
    attrs_update_mode: Literal["keep", "replace", "update", "ignore"] = "keep"
    zarr_format: Literal[2, 3] = 3
    lock: LockOptions = Field(default_factory=LockOptions)
    durable: StrictBool = True
    keep_versions: int = Field(default=0, ge=0, strict=True)
    dry_run: StrictBool = False
    slice_polling: StrictBool | Polling = False
    slice_source: StrictStr | None = None
    slice_source_kwargs: dict[str, Any] = Field(default_factory=dict)

    @field_validator("slice_source")
    @classmethod
    def _source(cls, v: Any) -> Any:
        if v is not None and not _SOURCE.match(v):
            raise ValueError("slice_source is \"module:function\" (a Python function to "
                             "call with each slice argument)")
        return v

    def polling(self) -> Polling | None:
        """APP-040: the polling settings, or None when slices are not waited for."""
        if self.slice_polling is True:
            return Polling()
        return self.slice_polling or None

    @field_validator("append_step")
    @classmethod
    def _step(cls, v: Any) -> Any:
        try:
            parse_step(v)
        except AppendSpecError as e:
            raise ValueError(e.message) from e
        return v

    def variable(self, name: str) -> VariableSpec:
        """The settings of a variable: ``variables."*"`` merged under its own."""
        base = self.variables.get("*")
        own = self.variables.get(name)
        if base is None:
            return own or VariableSpec()
        if own is None:
            return base
        merged = merge([base.model_dump(exclude_none=True), own.model_dump(exclude_none=True)])
        return VariableSpec.model_validate(merged)

    def selects(self, name: str) -> bool:
        if self.included_variables and name not in self.included_variables:
            return False
        return name not in self.excluded_variables


def merge(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """APP-002: tables merge key by key; every other value replaces the earlier one."""
    out: dict[str, Any] = {}
    for d in docs:
        _merge_into(out, d)
    return out


def _merge_into(out: dict[str, Any], d: dict[str, Any]) -> None:
    for k, v in d.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            _merge_into(out[k], v)
        else:
            out[k] = copy.deepcopy(v)


def config_from_dict(data: dict[str, Any]) -> AppendConfig:
    """Validate an append configuration (APP-001). Raises :class:`AppendSpecError` (DM160)
    at the first problem, with its path."""
    from pydantic import ValidationError

    try:
        cfg = AppendConfig.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        path = tuple(err["loc"])
        if path and path[0] == "meta":
            path = ("_META", *path[1:])
        where = ".".join(map(str, path)) or "document"
        raise AppendSpecError("DM160", f"append configuration: {where}: {err['msg']}",
                              path=path) from e
    if cfg.append_step is not None:
        try:
            parse_step(cfg.append_step)
        except AppendSpecError as e:
            raise AppendSpecError("DM160", e.message, path=("append_step",)) from e
    return cfg


def normalize_config(data: dict[str, Any]) -> dict[str, Any]:
    """The normalized form of an append configuration (the conformance fixtures): every
    field with its default."""
    cfg = config_from_dict(data)
    out = cfg.model_dump(by_alias=True, exclude={"meta"}, mode="json")
    out["append_step"] = describe_step(cfg.append_step)
    polling = cfg.polling()
    out["slice_polling"] = None if polling is None else polling.model_dump(mode="json")
    return out


# -- steps and labels (APP-012) ----------------------------------------------------------------------
_DURATION = re.compile(r"^(-?)(\d+(?:\.\d+)?)\s*(s|m|min|h|D|d|W|w)$")
_UNIT_NS = {"s": 10**9, "m": 60 * 10**9, "min": 60 * 10**9, "h": 3600 * 10**9,
            "D": 86400 * 10**9, "d": 86400 * 10**9, "W": 7 * 86400 * 10**9,
            "w": 7 * 86400 * 10**9}


@dataclass(frozen=True)
class AppendStep:
    """``kind``: ``"+"``, ``"-"``, ``"number"`` or ``"duration"`` (``value``: the step, in
    label units, or nanoseconds for a duration); None: no constraint."""

    kind: str | None
    value: float = 0.0


def parse_step(value: Any) -> AppendStep:
    """An ``append_step`` (APP-001). Raises :class:`AppendSpecError` (DM160)."""
    if value is None:
        return AppendStep(None)
    if value in ("+", "-"):
        return AppendStep(value)
    if isinstance(value, bool):
        raise AppendSpecError("DM160", "append_step must be +, -, a number or a duration")
    if isinstance(value, (int, float)):
        if value == 0 or not math.isfinite(value):
            raise AppendSpecError("DM160", "a numeric append_step must be finite and not 0")
        return AppendStep("number", float(value))
    m = _DURATION.match(str(value).strip())
    if not m:
        raise AppendSpecError("DM160", f"append_step {value!r} is not +, -, a number or a "
                              "duration like 1D, 12h, -30m")
    ns = float(m.group(2)) * _UNIT_NS[m.group(3)]
    if ns == 0:
        raise AppendSpecError("DM160", "a duration append_step must not be 0")
    return AppendStep("duration", -ns if m.group(1) else ns)


def describe_step(value: Any) -> dict[str, Any] | None:
    s = parse_step(value)
    return None if s.kind is None else {"kind": s.kind, "value": s.value}


def check_labels(last: float | None, labels: list[float], step: AppendStep, *,
                 what: str = "label", times: bool = False,
                 texts: list[str] | None = None, last_text: str | None = None) -> None:
    """APP-012: ``labels`` (numbers; times as nanoseconds) continue ``last`` (None for a new
    target). Strictly monotonic, no repeat; increasing unless the step is ``-`` or negative;
    a number or a duration fixes every difference exactly. ``times``: the labels are nanoseconds since
    1970 (shown as dates). Raises :class:`AppendSpecError` (DM164)."""
    _fmt_d = _fmt_duration if times else _fmt_number
    seq = ([last] if last is not None else []) + list(labels)
    shown = dict(zip(seq, ([last_text] if last is not None else []) + list(texts or [])))

    def _fmt(v: float) -> str:  # as the labels were written, where known
        text = shown.get(v)
        return text if text else (_fmt_time(v) if times else _fmt_number(v))
    if len(seq) < 2:
        return
    direction = 1  # absent or "+": labels increase (APP-001)
    if step.kind == "+":
        direction = 1
    elif step.kind == "-":
        direction = -1
    elif step.kind in ("number", "duration"):
        direction = 1 if step.value > 0 else -1
    for i in range(1, len(seq)):
        a, b = seq[i - 1], seq[i]
        d = b - a
        at = i - (1 if last is not None else 0)
        against = "the target's last label" if (i == 1 and last is not None) else \
            "the label before it"
        if d == 0:
            raise AppendSpecError("DM164", f"{what} {_fmt(b)} (slice position {at}) repeats "
                                  f"{against}")
        sign = 1 if d > 0 else -1
        if direction == 0:
            direction = sign
        if sign != direction:
            raise AppendSpecError("DM164", f"{what} {_fmt(b)} (slice position {at}) goes "
                                  f"{'down' if sign < 0 else 'up'} from {against} {_fmt(a)}: "
                                  "labels must keep one direction")
        if step.kind in ("number", "duration") and not math.isclose(d, step.value,
                                                                    rel_tol=1e-9):
            raise AppendSpecError("DM164", f"{what} {_fmt(b)} (slice position {at}) follows "
                                  f"{against} {_fmt(a)} by {_fmt_d(d)}, not the append_step "
                                  f"{_fmt_d(step.value)}")


def _fmt_number(v: float) -> str:
    return f"{v:.15g}" if isinstance(v, float) else str(v)


def _fmt_time(v: float) -> str:
    np = need("numpy", **APPEND)

    return str(np.datetime64(int(v), "ns")).replace(".000000000", "").removesuffix("T00:00:00")


def _fmt_duration(v: float) -> str:
    for unit, ns in (("W", 7 * 86400e9), ("D", 86400e9), ("h", 3600e9), ("m", 60e9), ("s", 1e9)):
        if v and abs(v) % ns == 0:
            return f"{v / ns:g}{unit}"
    return f"{v:g}ns"


# -- the committed view (APP-010) ---------------------------------------------------------------------
@dataclass
class ArrayMeta:
    """One array of the committed view: its Zarr metadata document(s) and what they say."""

    name: str
    shape: list[int]
    chunks: list[int]
    dims: list[str]
    dtype: str  # numpy dtype string (e.g. "<f4")
    fill_value: Any
    attrs: dict[str, Any]
    metadata: dict[str, Any]  # v3: the zarr.json; v2: the .zarray
    zarr_format: int = 3


@dataclass
class CommittedView:
    """The committed view of a target (APP-010): ``attrs`` of the group and its ``arrays``;
    ``zarr_format`` 3 or 2; ``root`` the raw root document."""

    zarr_format: int
    attrs: dict[str, Any]
    arrays: dict[str, ArrayMeta]
    root: dict[str, Any]

    def length(self, dim: str) -> int | None:
        for a in self.arrays.values():
            if dim in a.dims:
                return a.shape[a.dims.index(dim)]
        return None


V3_ROOT = "zarr.json"
V2_ROOT = ".zmetadata"


def root_key(zarr_format: int) -> str:
    return V3_ROOT if zarr_format == 3 else V2_ROOT


#: names at the top of a folder that make it a Zarr store (v3, v2 group, v2 array)
ZARR_MARKERS = (V3_ROOT, V2_ROOT, ".zgroup", ".zarray")


def classify_target(kind: str, names: list[str] | tuple[str, ...] = (),
                    pending: bool = False) -> str:
    """APP-015: may an append write at a target that is ``kind`` (``"absent"``, ``"file"``,
    ``"folder"`` holding the entries ``names``)? ``pending``: a journal lies beside it (a
    transaction of ours to recover, APP-024). Returns ``"zarr"`` (a Zarr store: a root
    metadata name at its top, or a pending transaction) or ``"new"`` (absent, or an empty
    folder: the first slice creates the store there). Raises :class:`AppendSpecError` DM171
    for anything else: a regular file (or other non-folder), a folder holding other
    entries."""
    if kind == "absent":
        return "new"
    if kind != "folder":
        raise AppendSpecError("DM171", "is not a folder: an append target is a Zarr store, "
                              "an empty folder, or a path where nothing exists yet")
    if any(n in ZARR_MARKERS for n in names) or pending:
        return "zarr"
    if not names:
        return "new"
    shown = ", ".join(sorted(names)[:3]) + (", ..." if len(names) > 3 else "")
    raise AppendSpecError("DM171", f"is a folder that is not a Zarr store (it holds {shown}); "
                          "an append would write its arrays among them")


def _np_dtype_v3(data_type: Any, codecs: list[dict[str, Any]]) -> str:
    names = {"bool": "|b1", "int8": "|i1", "uint8": "|u1"}
    if isinstance(data_type, str):
        if data_type in names:
            return names[data_type]
        endian = "<"
        for c in codecs:
            if c.get("name") == "bytes" and (c.get("configuration") or {}).get("endian") == "big":
                endian = ">"
        table = {"int16": "i2", "int32": "i4", "int64": "i8", "uint16": "u2", "uint32": "u4",
                 "uint64": "u8", "float16": "f2", "float32": "f4", "float64": "f8",
                 "complex64": "c8", "complex128": "c16"}
        if data_type in table:
            return endian + table[data_type]
    raise AppendSpecError("DM167", f"the data type {data_type!r} cannot be appended to here")


def view_from_root(doc: dict[str, Any], zarr_format: int) -> CommittedView:
    """The committed view from the root metadata document (APP-010). Raises
    :class:`AppendSpecError` (DM167) when it is not a consolidated Zarr group."""
    arrays: dict[str, ArrayMeta] = {}
    if zarr_format == 3:
        if doc.get("node_type") != "group" or doc.get("zarr_format") != 3:
            raise AppendSpecError("DM167", "the root zarr.json is not a Zarr v3 group")
        cons = doc.get("consolidated_metadata")
        if not isinstance(cons, dict) or not isinstance(cons.get("metadata"), dict):
            raise AppendSpecError("DM167", "the root zarr.json has no consolidated metadata, "
                                  "which is the committed view an append needs (APP-010)")
        for name, meta in cons["metadata"].items():
            if meta.get("node_type") != "array":
                continue
            grid = meta.get("chunk_grid") or {}
            if grid.get("name") != "regular":
                raise AppendSpecError("DM167", f"array {name!r} has no regular chunk grid",
                                      variable=name)
            arrays[name] = ArrayMeta(
                name, list(meta["shape"]), list(grid["configuration"]["chunk_shape"]),
                list(meta.get("dimension_names") or [f"dim_{i}" for i in
                                                     range(len(meta["shape"]))]),
                _np_dtype_v3(meta["data_type"], meta.get("codecs") or []), meta.get("fill_value"),
                dict(meta.get("attributes") or {}), meta, 3)
        return CommittedView(3, dict(doc.get("attributes") or {}), arrays, doc)
    meta = doc.get("metadata")
    if not isinstance(meta, dict) or ".zgroup" not in meta:
        raise AppendSpecError("DM167", "the .zmetadata is not a consolidated Zarr v2 group")
    for key, zarray in meta.items():
        if not key.endswith("/.zarray"):
            continue
        name = key[: -len("/.zarray")]
        attrs = dict(meta.get(f"{name}/.zattrs") or {})
        dims = attrs.pop("_ARRAY_DIMENSIONS", None) or [f"dim_{i}" for i in
                                                         range(len(zarray["shape"]))]
        arrays[name] = ArrayMeta(name, list(zarray["shape"]), list(zarray["chunks"]), list(dims),
                                 zarray["dtype"], zarray.get("fill_value"), attrs, zarray, 2)
    return CommittedView(2, dict(meta.get(".zattrs") or {}), arrays, doc)


def array_keys(a: ArrayMeta) -> list[str]:
    """The per-array metadata keys of an array (APP-022 step 8)."""
    return [f"{a.name}/zarr.json"] if a.zarr_format == 3 else \
        [f"{a.name}/.zarray", f"{a.name}/.zattrs"]


def chunk_key(a: ArrayMeta, index: tuple[int, ...]) -> str:
    """The store key of chunk ``index`` of array ``a``."""
    if a.zarr_format == 3:
        return f"{a.name}/{virtual.chunk_key(a.metadata, index)}"
    sep = a.metadata.get("dimension_separator") or "."
    return f"{a.name}/{sep.join(map(str, index)) if index else '0'}"


def with_length(view: CommittedView, dim: str, length: int) -> CommittedView:
    """The view with every array along ``dim`` at ``length`` (the new committed view)."""
    root = json.loads(json.dumps(view.root))
    if view.zarr_format == 3:
        metas = root["consolidated_metadata"]["metadata"].items()
    else:
        metas = ((k[: -len("/.zarray")], v) for k, v in root["metadata"].items()
                 if k.endswith("/.zarray"))
    for name, meta in metas:
        a = view.arrays.get(name)
        if a is not None and dim in a.dims:
            meta["shape"][a.dims.index(dim)] = length
    return view_from_root(root, view.zarr_format)


def root_bytes(view: CommittedView) -> bytes:
    """The root metadata document of a view, as written (deterministic)."""
    return (json.dumps(view.root, allow_nan=False) + "\n").encode()


def digest(data: bytes | None) -> str | None:
    return None if data is None else "sha256:" + hashlib.sha256(data).hexdigest()


def array_document(a: ArrayMeta) -> dict[str, bytes]:
    """Per-array metadata key -> bytes, as the committed view has it."""
    if a.zarr_format == 3:
        return {f"{a.name}/zarr.json": (json.dumps(a.metadata) + "\n").encode()}
    attrs = dict(a.attrs)
    attrs["_ARRAY_DIMENSIONS"] = a.dims
    return {f"{a.name}/.zarray": (json.dumps(a.metadata) + "\n").encode(),
            f"{a.name}/.zattrs": (json.dumps(attrs) + "\n").encode()}


# -- the plan of one append (APP-021, APP-022) ------------------------------------------------------------
@dataclass
class AppendPlan:
    """What one append writes: for each array along the dimension, the chunk indices it
    writes, split into ``creates`` (new keys) and ``replaces`` (a partial last chunk that
    grows); ``old_length`` and ``new_length`` along the dimension."""

    old_length: int
    new_length: int
    writes: dict[str, list[tuple[int, ...]]] = field(default_factory=dict)
    creates: list[str] = field(default_factory=list)
    replaces: list[str] = field(default_factory=list)


def plan(view: CommittedView, dim: str, count: int) -> AppendPlan:
    """The chunks an append of ``count`` steps along ``dim`` writes (APP-022 step 5)."""
    old = view.length(dim)
    if old is None:
        raise AppendSpecError("DM162", f"no array of the target has the dimension {dim!r}")
    p = AppendPlan(old, old + count)
    for a in view.arrays.values():
        if dim not in a.dims:
            continue
        axis = a.dims.index(dim)
        c = a.chunks[axis]
        first, last = old // c, (old + count - 1) // c
        others = [range(-(-n // ch)) if n else range(1) for k, (n, ch) in
                  enumerate(zip(a.shape, a.chunks)) if k != axis]
        import itertools

        indices = []
        for g in range(first, last + 1):
            for rest in itertools.product(*others):
                index = list(rest)
                index.insert(axis, g)
                indices.append(tuple(index))
        p.writes[a.name] = indices
        for index in indices:
            key = chunk_key(a, index)
            (p.replaces if index[axis] * c < old else p.creates).append(key)
    return p


# -- recovery (APP-024) -----------------------------------------------------------------------------------
@dataclass
class Recovery:
    """What the next start does: ``action`` ``roll-forward`` or ``roll-back``; the keys to
    ``delete``, the ``(key, backup)`` pairs to ``restore``, the per-array metadata keys
    to ``rewrite`` from the committed view."""

    action: str
    delete: list[str] = field(default_factory=list)
    restore: list[tuple[str, str]] = field(default_factory=list)
    rewrite: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"action": self.action, "delete": self.delete,
                "restore": [list(r) for r in self.restore], "rewrite": self.rewrite}


def recovery(journal: dict[str, Any], root_digest: str | None, present: set[str],
             backups: set[str]) -> Recovery:
    """APP-024 from the journal, the digest of the root metadata now (None: absent), the
    keys present in the target and the backups present. Raises :class:`AppendSpecError`
    (DM166) when the root is neither the committed nor the new one."""
    committed = (journal.get("committed") or {}).get("digest")
    new = (journal.get("new") or {}).get("digest")
    metadata = list(journal.get("metadata") or [])
    if root_digest is not None and root_digest == new:
        return Recovery("roll-forward", rewrite=metadata)
    if root_digest == committed:
        return Recovery("roll-back",
                        delete=[k for k in journal.get("creates") or [] if k in present],
                        restore=[(r["key"], r["backup"]) for r in journal.get("replaces") or []
                                 if r["backup"] in backups],
                        rewrite=metadata if committed is not None else [])
    raise AppendSpecError("DM166", "the target's root metadata is neither the one the pending "
                          "transaction started from nor the one it was writing: something "
                          "else changed the target; nothing was touched")


def metadata_documents(view: CommittedView) -> dict[str, bytes]:
    """Every per-array metadata key of a view and its bytes, plus Zarr v2's group ``.zgroup``
    and ``.zattrs`` (APP-011: brought in line with the committed view)."""
    out: dict[str, bytes] = {}
    if view.zarr_format == 2:
        out[".zgroup"] = b'{\n "zarr_format": 2\n}\n'
        out[".zattrs"] = (json.dumps(view.attrs) + "\n").encode()
    for a in view.arrays.values():
        out.update(array_document(a))
    return out


def is_metadata_key(key: str, zarr_format: int) -> bool:
    """A metadata key (not a chunk) of a store: ``zarr.json`` (v3) or ``.z*`` (v2)."""
    name = key.rsplit("/", 1)[-1]
    if zarr_format == 3:
        return name == "zarr.json"
    return name in (".zarray", ".zattrs", ".zgroup", ".zmetadata")


# -- the checks of a slice described as data (APP-012) -----------------------------------------------
_TIME_UNITS = re.compile(r"^\s*\w+\s+since\s+", re.I)


def decoded_kind(a: ArrayMeta) -> str:
    """What a reader decodes an array to (APP-012): ``"datetime"`` for CF time units,
    ``"float"`` for packed or masked integers, else the stored numpy dtype's name."""
    attrs = a.attrs
    units = attrs.get("units")
    if isinstance(units, str) and _TIME_UNITS.match(units):
        return "datetime"
    np = need("numpy", **APPEND)

    dt = np.dtype(a.dtype)
    if "scale_factor" in attrs or "add_offset" in attrs:
        return "float"
    if dt.kind in "iu" and ("_FillValue" in attrs or "missing_value" in attrs):
        return "float"
    return dt.name


def dtype_fits(slice_dtype: str, kind: str) -> bool:
    """APP-012: may values of ``slice_dtype`` (a numpy dtype name, ``datetime64[..]`` or
    ``object`` for cftime dates) go into an array decoded as ``kind``?"""
    np = need("numpy", **APPEND)

    if kind == "datetime":
        return slice_dtype.startswith("datetime64") or slice_dtype == "object"
    try:
        s = np.dtype(slice_dtype)
    except TypeError:
        return False
    if kind == "float":
        return s.kind in "biuf"
    t = np.dtype(kind)
    if s.kind in "Mm" or t.kind in "Mm" or s.kind == "O" or t.kind == "O":
        return s.kind == t.kind
    return s == t or bool(np.can_cast(s, t, "safe"))


def check_slice(view: CommittedView, cfg: AppendConfig, desc: dict[str, Any],
                last_label: float | None) -> int:
    """APP-012 on a slice described as data: ``desc`` = ``{"variables": {name: {"dims",
    "shape", "dtype", "units"?}}, "labels": [numbers] | None}`` (labels: times in
    nanoseconds since 1970). Returns the slice's length along the append dimension; raises
    :class:`AppendSpecError` (DM161..DM165) naming the variable and the difference."""
    dim = cfg.append_dim
    if view.length(dim) is None:
        raise AppendSpecError("DM162", f"no array of the target has the append dimension "
                              f"{dim!r}")
    variables = desc.get("variables") or {}
    names = set(view.arrays)
    have = {n for n in variables if cfg.selects(n) or n in names}
    missing, extra = sorted(names - have), sorted(have - names)
    if missing:
        raise AppendSpecError("DM161", f"the slice lacks the variable(s) {', '.join(missing)} "
                              "of the target", variable=missing[0])
    if extra:
        raise AppendSpecError("DM161", f"the slice has the variable(s) {', '.join(extra)} the "
                              "target does not (exclude them with excluded_variables)",
                              variable=extra[0])
    count = None
    for name in sorted(names):
        a, v = view.arrays[name], variables[name]
        dims, shape = list(v.get("dims") or []), list(v.get("shape") or [])
        if dims != a.dims:
            raise AppendSpecError("DM162", f"variable {name!r} has the dimensions {dims}, the "
                                  f"target's are {a.dims}", variable=name)
        for d, n, want in zip(dims, shape, a.shape):
            fixed = cfg.fixed_dims.get(d)
            if fixed is not None and n != fixed:
                raise AppendSpecError("DM162", f"variable {name!r}: dimension {d!r} has length "
                                      f"{n}, fixed_dims says {fixed}", variable=name)
            if d == dim:
                if count is not None and n != count:
                    raise AppendSpecError("DM162", f"variable {name!r} has {n} steps along "
                                          f"{dim!r}, another variable {count}", variable=name)
                count = n
            elif n != want:
                raise AppendSpecError("DM162", f"variable {name!r}: dimension {d!r} has length "
                                      f"{n}, the target's is {want}", variable=name)
        kind = decoded_kind(a)
        if not dtype_fits(str(v.get("dtype")), kind):
            raise AppendSpecError("DM163", f"variable {name!r} holds {v.get('dtype')}, the "
                                  f"target {kind} (a cast would lose values)", variable=name)
        su, tu = v.get("units"), a.attrs.get("units")
        if kind != "datetime" and su is not None and tu is not None and su != tu:
            raise AppendSpecError("DM163", f"variable {name!r} is in {su!r}, the target's in "
                                  f"{tu!r}", variable=name)
        enc = cfg.variable(name).encoding
        if enc.chunks is not None:
            chunks = enc.chunks if isinstance(enc.chunks, list) else [enc.chunks] * len(a.dims)
            want_chunks = [n if isinstance(c, bool) else int(c)
                           for c, n in zip(chunks, a.shape)]
            if want_chunks != a.chunks:
                raise AppendSpecError("DM165", f"variable {name!r}: the configured chunks "
                                      f"{want_chunks} differ from the target's {a.chunks}",
                                      variable=name)
    if not count:
        raise AppendSpecError("DM162", f"the slice has no steps along {dim!r}")
    labels = desc.get("labels")
    if labels is not None:
        check_labels(last_label, [float(x) for x in labels], parse_step(cfg.append_step),
                     what=f"{dim} label", times=desc.get("label_unit") == "ns",
                     texts=desc.get("label_text"), last_text=desc.get("last_label_text"))
    return count

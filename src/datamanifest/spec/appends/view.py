"""The committed view of a Zarr target, the plan of one append and the recovery decision
(SCHEMA.md §26.2-§26.4, APP-010, APP-012, APP-021, APP-022, APP-024).

Pure: root metadata documents in (Zarr v3 ``zarr.json`` with consolidated metadata, v2
``.zmetadata``), decisions out.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from .. import virtual
from ...optional import APPEND, need
from .config import AppendConfig, AppendSpecError, check_labels, parse_step


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

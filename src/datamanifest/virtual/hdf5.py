"""HDF5 and NetCDF4 files as chunk manifests, through h5py (SCHEMA.md CHK-020, CHK-021).

The chunk index of each dataset is listed in one ``chunk_iter`` pass (one HDF5 call per
dataset, not one per chunk). Only metadata is read: a remote file is opened through a
block-caching file object over a :class:`~datamanifest.io.base.RangeReader`, so the
bytes fetched are the file's header, B-trees and attributes, never its chunks.
"""

from __future__ import annotations

import gc
import math
from itertools import chain
from operator import itemgetter
from typing import Any

import numpy as np

from ..errors import VirtualError
from ..spec import virtual
from . import codecs as zc
from ..optional import VIRTUAL, need

#: netCDF-4's bookkeeping attributes, not attributes of the data (CHK-020)
NETCDF_INTERNAL = frozenset({"DIMENSION_LIST", "REFERENCE_LIST", "CLASS", "NAME",
                             "_Netcdf4Dimid", "_Netcdf4Coordinates", "_NCProperties",
                             "_nc3_strict", "_Netcdf4Coordinates"})
_NOT_A_VARIABLE = b"This is a netCDF dimension but not a netCDF variable"

#: HDF5 filter ids (H5Zpublic.h) and their names for errors
FILTERS = {1: "deflate", 2: "shuffle", 3: "fletcher32", 4: "szip", 5: "nbit", 6: "scaleoffset",
           307: "bzip2", 32000: "lzf", 32001: "blosc", 32004: "lz4", 32008: "bitshuffle",
           32015: "zstd", 32026: "blosc2"}


def parse(file: Any, url: str, *, size: int, split_contiguous: int | None = None,
          inline_unsupported: bool = False, inline_max_bytes: int = 0) -> virtual.ChunkManifest:
    """A chunk manifest of one HDF5/NetCDF4 file (CHK-020).

    ``file``: a path or a binary file object h5py can read; ``url`` is written as the one
    source (its ``size`` in bytes). ``split_contiguous``: cut contiguous datasets into
    chunks of at most this many bytes along their first axis (None: one chunk each).
    ``inline_unsupported``: load variables whose filters have no codec (CHK-021) and
    write them inline instead of failing. ``inline_max_bytes``: also inline datasets up to
    this many bytes (small coordinates). Raises :class:`VirtualError` (DM153).
    """
    h5py = need("h5py", **VIRTUAL)

    nodes: dict[str, virtual.Node] = {}
    try:
        opened = h5py.File(file, "r")
    except OSError as e:  # truncated or damaged behind an HDF5 signature (CHK-020)
        raise VirtualError(f"not a readable HDF5 file: {e}", code="DM153",
                           hint="the file may be truncated or damaged; fetch it again") from None
    with opened as f:
        nodes[""] = virtual.Node("", _group_meta(f))
        phony = _Phony()
        dims = _NetCDFDims()

        def visit(name: str, obj: Any) -> None:
            if isinstance(obj, h5py.Group):
                nodes[name] = virtual.Node(name, _group_meta(obj))
            elif isinstance(obj, h5py.Dataset):
                names = list(obj.attrs)
                dims.see(name, obj, names)
                if "NAME" in names and _hidden_dimension(obj):
                    return
                nodes[name] = _array(name, obj, phony, split_contiguous, inline_unsupported,
                                     inline_max_bytes, dims, names)

        f.visititems(visit)
        dims.finish(f, nodes, phony)
        for name, node in nodes.items():  # small arrays: read now, while the file is open
            if node.is_array and node.values is None and _small(node):
                try:
                    node.values = np.asarray(f[name][()])
                except (OSError, TypeError, ValueError):
                    pass
    return virtual.ChunkManifest([virtual.Source(url, size)], nodes)


#: arrays up to this many bytes keep their values from parsing (for concatenation checks
#: and the concatenated coordinate, which would otherwise reopen every file)
SMALL_VALUES = 64 * 1024


def _small(node: virtual.Node) -> bool:
    from .store import native_dtype

    return math.prod(node.metadata["shape"]) * native_dtype(
        node.metadata["data_type"]).itemsize <= SMALL_VALUES


class _NetCDFDims:
    """Dimension names from netCDF-4's own bookkeeping, read with the attributes anyway:
    each dimension scale's ``_Netcdf4Dimid`` and each variable's ``_Netcdf4Coordinates``.
    Where either is missing the attached scales are asked (slower: one HDF5 call per
    dimension)."""

    def __init__(self) -> None:
        self.by_id: dict[tuple[str, int], str] = {}
        self.wanted: dict[str, tuple[str, list[int] | None]] = {}

    def see(self, name: str, ds: Any, attr_names: Any) -> None:
        h5py = need("h5py", **VIRTUAL)

        # netCDF-C leaves _Netcdf4Dimid on some variables too: only scales name dimensions
        if "_Netcdf4Dimid" in attr_names and h5py.h5ds.is_scale(ds.id):
            group = name.rpartition("/")[0]
            try:
                self.by_id[(group, int(ds.attrs["_Netcdf4Dimid"]))] = name.rsplit("/", 1)[-1]
            except (TypeError, ValueError, OSError):
                pass
        coords = None
        if "_Netcdf4Coordinates" in attr_names:
            try:
                coords = [int(i) for i in np.atleast_1d(ds.attrs["_Netcdf4Coordinates"])]
            except (TypeError, ValueError, OSError):
                coords = None
        self.wanted[name] = (name.rpartition("/")[0], coords)

    def finish(self, f: Any, nodes: dict[str, virtual.Node], phony: "_Phony") -> None:
        for name, node in nodes.items():
            if not node.is_array or node.metadata.get("dimension_names") is not None:
                continue
            group, coords = self.wanted.get(name, ("", None))
            names = None
            if coords is not None and len(coords) == len(node.metadata["shape"]):
                names = [self._lookup(group, i) for i in coords]
                if any(n is None for n in names):
                    names = None
            node.metadata["dimension_names"] = names or _dimension_names(f[name], phony)

    def _lookup(self, group: str, dimid: int) -> str | None:
        while True:  # a dimension may be defined in an enclosing group
            hit = self.by_id.get((group, dimid))
            if hit is not None or not group:
                return hit
            group = group.rpartition("/")[0]


def _group_meta(group: Any) -> dict[str, Any]:
    attrs, types = _attributes(group)
    meta = {"zarr_format": 3, "node_type": "group", "attributes": attrs}
    if types:
        meta["attribute_types"] = types
    return meta


def _attributes(obj: Any, names: Any = None, dtype: np.dtype | None = None
                ) -> tuple[dict[str, Any], dict[str, str]]:
    """The attributes (JSON) and the numpy types JSON loses (CHK-003); ``names``: the
    attribute names when the caller has listed them already; ``dtype``: the variable's."""
    out: dict[str, Any] = {}
    types: dict[str, str] = {}
    for k in (obj.attrs if names is None else names):
        if k in NETCDF_INTERNAL:
            continue
        try:
            v = obj.attrs[k]
        except (OSError, TypeError):  # a type h5py cannot read (references of other kinds)
            continue
        out[k], typ = zc.attribute(v, k, dtype)
        if typ:
            types[k] = typ
    return out, types


def _hidden_dimension(ds: Any) -> bool:
    """A netCDF dimension without a variable (CHK-020): a scale whose NAME says so."""
    name = ds.attrs.get("NAME") if "NAME" in ds.attrs else None
    return isinstance(name, (bytes, np.bytes_)) and bytes(name).startswith(_NOT_A_VARIABLE)


class _Phony:
    """``phony_dim_<n>`` names for dimensions without a scale, numbered in order of first
    use, one per distinct (dataset, axis) size as h5netcdf's "sort" mode does per length."""

    def __init__(self) -> None:
        self.by_size: dict[int, str] = {}

    def name(self, size: int) -> str:
        if size not in self.by_size:
            self.by_size[size] = f"phony_dim_{len(self.by_size)}"
        return self.by_size[size]


def _dimension_names(ds: Any, phony: _Phony) -> list[str]:
    h5py = need("h5py", **VIRTUAL)

    names = []
    is_scale = h5py.h5ds.is_scale(ds.id)
    for axis, size in enumerate(ds.shape):
        scales = list(ds.dims[axis].values()) if ds.ndim else []
        if scales:
            names.append(scales[0].name.rsplit("/", 1)[-1])
        elif is_scale and axis == 0:
            names.append(ds.name.rsplit("/", 1)[-1])
        else:
            names.append(phony.name(size))
    return names


def _codecs(ds: Any, name: str, dtype: np.dtype, plist: Any
            ) -> tuple[list[dict[str, Any]], list[str]]:
    """The codecs of a dataset's filter pipeline, and the filters that have none."""
    out = [zc.bytes_codec(dtype)]
    missing = []
    for i in range(plist.get_nfilters()):
        code, _flags, values, _fname = plist.get_filter(i)[:4]
        if code == 2:
            out.append({"name": "numcodecs.shuffle",
                        "configuration": {"elementsize": int(values[0]) if values else
                                          dtype.itemsize}})
        elif code == 1:
            out.append({"name": "numcodecs.zlib",
                        "configuration": {"level": int(values[0]) if values else 6}})
        elif code == 3:  # zarr-python requires a configuration member, even empty
            out.append({"name": "numcodecs.fletcher32", "configuration": {}})
        else:
            missing.append(FILTERS.get(code, f"HDF5 filter {code}"))
    return out, missing


def _array(name: str, ds: Any, phony: _Phony, split: int | None, inline_unsupported: bool,
           inline_max_bytes: int, dims: "_NetCDFDims", attr_names: Any) -> virtual.Node:
    h5py = need("h5py", **VIRTUAL)

    dtype = ds.dtype
    shape = tuple(int(s) for s in ds.shape)
    if dtype.kind == "O":
        return _vlen(name, ds, attr_names)
    fill = ds.fillvalue
    meta: dict[str, Any] = {
        "zarr_format": 3, "node_type": "array", "shape": list(shape),
        "data_type": zc.data_type(dtype, f"variable {name!r}"),
        "chunk_grid": None, "chunk_key_encoding": {"name": "default",
                                                   "configuration": {"separator": "/"}},
        "fill_value": zc.fill_value(dtype, fill),
        "codecs": None, "attributes": None,
        "dimension_names": None,  # filled in at the end, when every scale is known
    }
    meta["attributes"], types = _attributes(ds, attr_names, dtype)
    if types:
        meta["attribute_types"] = types
    plist = ds.id.get_create_plist()
    codecs, missing = _codecs(ds, name, dtype, plist)
    layout = plist.get_layout()
    nbytes = math.prod(shape) * dtype.itemsize
    if missing and not inline_unsupported:
        raise VirtualError(f"variable {name!r} is compressed with {', '.join(missing)}, which "
                           "has no codec in a chunk manifest", code="DM153",
                           hint="pass inline_unsupported=True (--inline-unsupported) to load "
                           "its values into the manifest instead")
    if missing or layout == h5py.h5d.COMPACT or _masked_chunks(ds, layout, inline_unsupported) \
            or (inline_max_bytes and nbytes <= inline_max_bytes):
        return _inline(name, ds, meta)
    meta["codecs"] = codecs
    if layout == h5py.h5d.CHUNKED:
        cshape = tuple(int(c) for c in ds.chunks)
        meta["chunk_grid"] = {"name": "regular", "configuration": {"chunk_shape": list(cshape)}}
        grid = virtual.grid_shape(meta)
        count = math.prod(grid)
        src, off, ln = _chunk_index(name, ds, cshape, grid, count)
        return virtual.Node(name, meta, virtual.Refs(grid, src, off, ln))
    # contiguous: one chunk, or rows of at most `split` bytes (a divisor of the rows, so
    # that every chunk is whole); missing when unallocated
    offset = ds.id.get_offset()
    rows = shape[0] if shape else 1
    row_bytes = nbytes // rows if rows else 0
    per = rows
    if split and shape and row_bytes and nbytes > split:
        target = max(1, split // row_bytes)
        per = max(d for d in range(1, min(target, rows) + 1) if rows % d == 0)
    cshape = (per, *shape[1:]) if shape else ()
    meta["chunk_grid"] = {"name": "regular", "configuration": {"chunk_shape": list(cshape)}}
    meta["codecs"] = [zc.bytes_codec(dtype)]
    grid = virtual.grid_shape(meta)
    count = math.prod(grid)
    if offset is None or nbytes == 0:
        return virtual.Node(name, meta, virtual.Refs(grid, [virtual.MISSING] * count, [0] * count,
                                               [0] * count))
    chunk_bytes = per * row_bytes if shape else nbytes
    return virtual.Node(name, meta, virtual.Refs(grid, [0] * count,
                                           [int(offset) + i * chunk_bytes for i in range(count)],
                                           [chunk_bytes] * count))


def _chunk_index(name: str, ds: Any, cshape: tuple[int, ...], grid: tuple[int, ...],
                 count: int) -> tuple[list[int], list[int], list[int]]:
    """The ``source``/``offset``/``length`` columns of a chunked dataset, C order, from one
    ``chunk_iter`` pass (the whole index in one HDF5 call). The cyclic garbage collector
    is paused meanwhile: each chunk's record is a new tuple it would otherwise scan again
    and again (a third of the time for 23,360 chunks in a process that imported xarray)."""
    if not count:
        return [], [], []
    infos: list = []
    paused = gc.isenabled()
    if paused:
        gc.disable()
    try:
        ds.id.chunk_iter(infos.append)
        n = len(infos)
        if any(map(itemgetter(1), infos)):  # filter_mask
            masked = [i.chunk_offset for i in infos if i.filter_mask]
            raise VirtualError(f"variable {name!r}: {len(masked)} chunk(s) were stored "
                               f"without some of the dataset's filters (first at "
                               f"{tuple(masked[0])}), which one codec list cannot "
                               "describe", code="DM153",
                               hint="pass inline_unsupported=True (--inline-unsupported) "
                               "to load its values into the manifest instead")
        if not n:
            return [virtual.MISSING] * count, [0] * count, [0] * count
        ndim = len(cshape)
        where = np.fromiter(chain.from_iterable(map(itemgetter(0), infos)), np.int64,
                            n * ndim).reshape(n, ndim) // np.array(cshape, dtype=np.int64)
        pos = np.ravel_multi_index(tuple(where.T), grid) if grid else np.zeros(1, int)
        if n == count and (n == 1 or bool((pos[1:] > pos[:-1]).all())):
            # every chunk, listed in C order already: the columns as they come
            return [0] * n, list(map(itemgetter(2), infos)), list(map(itemgetter(3), infos))
        src = np.full(count, virtual.MISSING, dtype=np.int64)
        off = np.zeros(count, dtype=np.int64)
        ln = np.zeros(count, dtype=np.int64)
        src[pos] = 0
        off[pos] = np.fromiter(map(itemgetter(2), infos), np.int64, n)
        ln[pos] = np.fromiter(map(itemgetter(3), infos), np.int64, n)
        return src.tolist(), off.tolist(), ln.tolist()
    finally:
        if paused:
            gc.enable()


def _inline(name: str, ds: Any, meta: dict[str, Any]) -> virtual.Node:
    """The whole variable as one inline chunk, encoded with the ``bytes`` codec only."""
    dtype = ds.dtype
    shape = tuple(meta["shape"])
    try:
        values = ds[()]
    except OSError as e:  # a filter plugin h5py does not have either
        raise VirtualError(f"variable {name!r} cannot be loaded to be inlined: {e}",
                           code="DM153", hint="install hdf5plugin for its filter") from e
    meta["chunk_grid"] = {"name": "regular",
                          "configuration": {"chunk_shape": [max(1, s) for s in shape]}}
    meta["codecs"] = [zc.bytes_codec(dtype)]
    grid = virtual.grid_shape(meta)
    count = math.prod(grid)
    refs = virtual.Refs(grid, [virtual.MISSING] * count, [0] * count, [0] * count)
    if count:
        data = np.asarray(values, dtype=dtype)
        refs.inline[virtual.index_key((0,) * len(shape))] = np.ascontiguousarray(data).tobytes()
    return virtual.Node(name, meta, refs)


def _masked_chunks(ds: Any, layout: int, inline: bool) -> bool:
    """Whether ``inline`` is asked and some chunk was stored without some of the
    dataset's filters (then the variable is loaded and inlined, CHK-021)."""
    h5py = need("h5py", **VIRTUAL)

    if not inline or layout != h5py.h5d.CHUNKED or not ds.id.get_num_chunks():
        return False
    masked: list = []
    ds.id.chunk_iter(lambda i: masked.append(i) if i.filter_mask else None)
    return bool(masked)


def _vlen(name: str, ds: Any, attr_names: Any) -> virtual.Node:
    """A variable-length string variable: its values loaded and written inline as one
    chunk with the ``vlen-utf8`` codec (data type ``string``), as kerchunk's scanner does
    (CHK-020). Other variable-length types are DM153."""
    h5py = need("h5py", **VIRTUAL)

    info = h5py.check_string_dtype(ds.dtype)
    if info is None or info.length is not None:
        base = h5py.check_vlen_dtype(ds.dtype)
        raise VirtualError(f"variable {name!r} holds variable-length sequences of "
                           f"{base if base is not None else ds.dtype}, which have no Zarr "
                           "form here", code="DM153",
                           hint="only variable-length strings are loaded into a chunk "
                           "manifest (inline)")
    try:
        values = ds.asstr(errors="surrogateescape")[()]
    except (OSError, TypeError, ValueError) as e:
        raise VirtualError(f"variable {name!r}: its strings cannot be read: {e}",
                           code="DM153") from e
    values = np.asarray(values, dtype=object)
    shape = [int(n) for n in ds.shape]
    meta: dict[str, Any] = {
        "zarr_format": 3, "node_type": "array", "shape": shape, "data_type": "string",
        "chunk_grid": {"name": "regular",
                       "configuration": {"chunk_shape": [max(1, n) for n in shape]}},
        "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
        "fill_value": "", "codecs": [zc.VLEN_UTF8], "attributes": None,
        "dimension_names": None}
    meta["attributes"], types = _attributes(ds, attr_names)
    if types:
        meta["attribute_types"] = types
    grid = virtual.grid_shape(meta)
    count = math.prod(grid)
    refs = virtual.Refs(grid, [virtual.MISSING] * count, [0] * count, [0] * count)
    if count:
        refs.inline[virtual.index_key((0,) * len(shape))] = zc.encode_strings(values)
    node = virtual.Node(name, meta, refs)
    node.values = values
    return node

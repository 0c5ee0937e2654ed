"""NetCDF classic (CDF-1), 64-bit offset (CDF-2) and 64-bit data (CDF-5) files as chunk
manifests, from their header (SCHEMA.md CHK-022).

The header is parsed as the public NetCDF classic format specification describes it; no
data is read. A fixed-size variable is one big-endian chunk at its ``begin``; a record
variable has one chunk per record, at ``begin + r * recsize``.
"""

from __future__ import annotations

import math
import struct
from typing import Any, BinaryIO

import numpy as np

from ..errors import VirtualError
from ..spec import virtual
from . import codecs as zc

_TYPES = {1: ">i1", 2: "S1", 3: ">i2", 4: ">i4", 5: ">f4", 6: ">f8",
          7: ">u1", 8: ">u2", 9: ">u4", 10: ">i8", 11: ">u8"}
#: the default fill values of the format (NC_FILL_*), by type
_FILLS = {1: -127, 2: b"\x00", 3: -32767, 4: -2147483647, 5: 9.969209968386869e36,
          6: 9.969209968386869e36, 7: 255, 8: 65535, 9: 4294967295,
          10: -9223372036854775806, 11: 18446744073709551614}
_DIMENSION, _VARIABLE, _ATTRIBUTE = 10, 11, 12
STREAMING = 0xFFFFFFFF


class _Header:
    def __init__(self, f: BinaryIO) -> None:
        self.f = f
        magic = f.read(4)
        if magic[:3] != b"CDF" or magic[3] not in (1, 2, 5):
            raise VirtualError("not a NetCDF classic file (no CDF magic number)", code="DM153")
        self.version = magic[3]
        self.size_fmt = ">Q" if self.version == 5 else ">I"
        self.offset_fmt = ">Q" if self.version in (2, 5) else ">I"

    def _unpack(self, fmt: str) -> int:
        n = struct.calcsize(fmt)
        data = self.f.read(n)
        if len(data) != n:
            raise VirtualError("the NetCDF header is truncated", code="DM153")
        return struct.unpack(fmt, data)[0]

    def count(self) -> int:
        return self._unpack(self.size_fmt)

    def int32(self) -> int:
        return self._unpack(">i")

    def offset(self) -> int:
        return self._unpack(self.offset_fmt)

    def name(self) -> str:
        n = self.count()
        raw = self.f.read(n)
        self.f.read((-n) % 4)
        return raw.decode("utf-8")

    def values(self, nc_type: int, n: int) -> Any:
        dtype = np.dtype(_TYPES.get(nc_type, ""))
        nbytes = dtype.itemsize * n
        raw = self.f.read(nbytes)
        self.f.read((-nbytes) % 4)
        if nc_type == 2:
            return raw.rstrip(b"\x00").decode("utf-8", errors="replace")
        return np.frombuffer(raw, dtype=dtype).astype(dtype.newbyteorder("="))

    def tag_list(self, expected: int) -> int:
        tag = self.int32()
        n = self.count()
        if tag == 0 and n == 0:
            return 0
        if tag != expected:
            raise VirtualError(f"malformed NetCDF header: tag {tag}, expected {expected}",
                               code="DM153")
        return n

    def attributes(self) -> dict[str, Any]:
        out = {}
        for _ in range(self.tag_list(_ATTRIBUTE)):
            name = self.name()
            nc_type = self.int32()
            if nc_type not in _TYPES:
                raise VirtualError(f"attribute {name!r} has an unknown type {nc_type}",
                                   code="DM153")
            out[name] = self.values(nc_type, self.count())
        return out


def parse(f: BinaryIO, url: str, *, size: int,
          split_contiguous: int | None = None) -> virtual.ChunkManifest:
    """A chunk manifest of one NetCDF classic / 64-bit-offset / CDF-5 file (CHK-022).

    ``f``: a binary file object positioned at the start; ``size``: the file's size in bytes
    (for a streaming file, it decides the number of records). Raises
    :class:`VirtualError` (DM153) for what is not such a file.
    """
    h = _Header(f)
    numrecs = h.count()
    dims: list[tuple[str, int]] = []
    for _ in range(h.tag_list(_DIMENSION)):
        name = h.name()
        dims.append((name, h.count()))
    gattrs = h.attributes()
    variables = []
    for _ in range(h.tag_list(_VARIABLE)):
        name = h.name()
        dimids = [h.count() for _ in range(h.count())]
        attrs = h.attributes()
        nc_type = h.int32()
        vsize = h.count()
        begin = h.offset()
        if nc_type not in _TYPES:
            raise VirtualError(f"variable {name!r} has an unknown type {nc_type}", code="DM153")
        variables.append((name, dimids, attrs, nc_type, vsize, begin))
    record_dim = next((i for i, (_, n) in enumerate(dims) if n == 0), None)

    def is_record(v) -> bool:
        return bool(v[1]) and v[1][0] == record_dim

    records = [v for v in variables if is_record(v)]

    def slab(v) -> int:  # bytes of one record (or of the whole fixed variable), unpadded
        shape = [dims[d][1] for d in v[1][1 if is_record(v) else 0:]]
        return math.prod(shape) * np.dtype(_TYPES[v[3]]).itemsize

    recsize = slab(records[0]) if len(records) == 1 else sum(
        slab(v) + (-slab(v)) % 4 for v in records)
    if numrecs == STREAMING and records:
        first = min(v[5] for v in records)
        numrecs = max(0, (size - first) // recsize) if recsize else 0
    elif numrecs == STREAMING:
        numrecs = 0
    nodes: dict[str, virtual.Node] = {"": virtual.Node("", _meta_group(gattrs))}
    for v in variables:
        name, dimids, attrs, nc_type, _vsize, begin = v
        dtype = np.dtype(_TYPES[nc_type])
        shape = [numrecs if d == record_dim else dims[d][1] for d in dimids]
        fill = attrs.get("_FillValue")
        fill = fill[0] if isinstance(fill, np.ndarray) and fill.size else \
            (fill if fill is not None else _FILLS[nc_type])
        if nc_type == 2:
            fill = b"\x00"
        meta = {"zarr_format": 3, "node_type": "array", "shape": shape,
                "data_type": zc.data_type(dtype, f"variable {name!r}"),
                "chunk_grid": None,
                "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
                "fill_value": zc.fill_value(dtype, fill),
                "codecs": [zc.bytes_codec(dtype)], "attributes": {},
                "dimension_names": [dims[d][0] for d in dimids]}
        types = {}
        for k, value in attrs.items():
            meta["attributes"][k], typ = zc.attribute(value, k, dtype)
            if typ:
                types[k] = typ
        if is_record(v):
            cshape = [1, *shape[1:]]
            meta["chunk_grid"] = _grid(cshape)
            grid = virtual.grid_shape(meta)
            n, per = math.prod(grid), slab(v)
            refs = virtual.Refs(grid, [0] * n, [begin + r * recsize for r in range(n)],
                             [per] * n) if per else _missing(grid)
        else:
            nbytes = slab(v)
            rows = shape[0] if shape else 1
            per = rows
            if split_contiguous and shape and nbytes > split_contiguous and rows:
                target = max(1, split_contiguous // max(1, nbytes // rows))
                per = max(d for d in range(1, min(target, rows) + 1) if rows % d == 0)
            cshape = [per, *shape[1:]] if shape else []
            meta["chunk_grid"] = _grid([max(1, c) for c in cshape])
            grid = virtual.grid_shape(meta)
            n = math.prod(grid)
            chunk_bytes = nbytes // (rows // per) if shape and rows else nbytes
            refs = virtual.Refs(grid, [0] * n, [begin + i * chunk_bytes for i in range(n)],
                             [chunk_bytes] * n) if chunk_bytes else _missing(grid)
        nodes[name] = virtual.Node(name, meta, refs, types)
    return virtual.ChunkManifest([virtual.Source(url, size)], nodes)


def _grid(chunk_shape: list[int]) -> dict[str, Any]:
    return {"name": "regular", "configuration": {"chunk_shape": chunk_shape}}


def _missing(grid: tuple[int, ...]) -> virtual.Refs:
    n = math.prod(grid)
    return virtual.Refs(grid, [virtual.MISSING] * n, [0] * n, [0] * n)


def _meta_group(attrs: dict[str, Any]) -> dict[str, Any]:
    out, types = {}, {}
    for k, v in attrs.items():
        out[k], typ = zc.attribute(v)
        if typ:
            types[k] = typ
    meta: dict[str, Any] = {"zarr_format": 3, "node_type": "group", "attributes": out}
    if types:
        meta["attribute_types"] = types
    return meta

"""Existing Zarr v2 and v3 stores as chunk manifests: every chunk object by reference
(SCHEMA.md CHK-023), and the Zarr v2 to v3 metadata conversion kerchunk imports share.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import VirtualError
from ..spec import virtual
from . import codecs as zc


#: numcodecs filters that are array-to-array codecs in Zarr v3
ARRAY_TO_ARRAY = frozenset({"delta", "fixedscaleoffset", "quantize", "bitround", "packbits",
                            "categorize", "astype"})


def v2_to_v3(zarray: dict[str, Any], zattrs: dict[str, Any] | None) -> tuple[dict[str, Any],
                                                                             dict[str, str]]:
    """Zarr v3 array metadata (and attribute types) for a Zarr v2 ``.zarray`` and its
    ``.zattrs`` (CHK-023): ``filters`` and ``compressor`` become ``numcodecs.<id>``
    codecs, ``order = "F"`` a ``transpose``, ``_ARRAY_DIMENSIONS`` the dimension names."""
    dtype = np.dtype(zarray["dtype"]) if not isinstance(zarray["dtype"], list) else None
    if dtype is None:
        raise VirtualError("structured Zarr v2 dtypes have no Zarr v3 form here", code="DM153")
    attrs, types = _json_attrs(zattrs or {})
    dims = attrs.pop("_ARRAY_DIMENSIONS", None)
    shape = list(zarray["shape"])
    codecs: list[dict[str, Any]] = []
    filters = list(zarray.get("filters") or [])
    string = dtype.kind == "O"
    if string:  # variable-length strings: the vlen-utf8 filter is the array's serializer
        if not any(f.get("id") == "vlen-utf8" for f in filters):
            raise VirtualError("object arrays other than vlen-utf8 strings have no Zarr v3 "
                               "form here", code="DM153")
        filters = [f for f in filters if f.get("id") != "vlen-utf8"]
    if zarray.get("order", "C") == "F" and len(shape) > 1:
        codecs.append({"name": "transpose",
                       "configuration": {"order": list(range(len(shape)))[::-1]}})
    # numcodecs filters that change the array run before ``bytes``; those on bytes after it
    codecs += [_numcodec(f) for f in filters if f.get("id") in ARRAY_TO_ARRAY]
    codecs.append(dict(zc.VLEN_UTF8) if string else zc.bytes_codec(dtype))
    codecs += [_numcodec(f) for f in filters if f.get("id") not in ARRAY_TO_ARRAY]
    if zarray.get("compressor"):
        codecs.append(_numcodec(zarray["compressor"]))
    fill = zarray.get("fill_value")
    sep = zarray.get("dimension_separator", ".")
    if fill is not None and not string and "_FillValue" not in attrs:
        # xarray reads a Zarr v2 array's fill_value as its _FillValue (it masks): so is it
        # imported, typed as the array (CHK-023)
        value = _v2_fill(fill, dtype)
        if dtype.kind in "biuf":
            attrs["_FillValue"] = zc.json_value(dtype.type(value))
            if dtype.newbyteorder("=").name not in ("int64", "float64", "bool"):
                types["_FillValue"] = dtype.newbyteorder("=").name
            elif dtype.kind == "f" and isinstance(attrs["_FillValue"], str):
                types["_FillValue"] = "float64"
        elif dtype.kind == "S":
            raw = bytes(np.asarray(value, dtype=dtype).reshape(()).item())
            attrs["_FillValue"] = raw.decode("latin-1")
            types["_FillValue"] = f"S{dtype.itemsize}"
    meta = {"zarr_format": 3, "node_type": "array", "shape": shape,
            "data_type": "string" if string else zc.data_type(dtype, "array"),
            "chunk_grid": {"name": "regular",
                           "configuration": {"chunk_shape": list(zarray["chunks"])}},
            "chunk_key_encoding": {"name": "v2", "configuration": {"separator": sep}},
            "fill_value": "" if string else zc.fill_value(dtype, _v2_fill(fill, dtype)),
            "codecs": codecs, "attributes": attrs,
            "dimension_names": dims if isinstance(dims, list) else None}
    return meta, types


def _json_attrs(attrs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """Attributes as strict JSON: a non-finite float becomes its string, typed float64
    (CHK-003), since Zarr v2 JSON (Python's) may hold NaN literals."""
    out, types = {}, {}
    for k, v in attrs.items():
        out[k] = zc.json_value(v)
        if isinstance(v, float) and out[k] != v:
            types[k] = "float64"
    return out, types


def _v2_fill(fill: Any, dtype: np.dtype) -> Any:
    if fill is None:
        return None
    if isinstance(fill, str) and dtype.kind == "f":
        return {"NaN": np.nan, "Infinity": np.inf, "-Infinity": -np.inf}.get(fill, fill)
    if isinstance(fill, str) and dtype.kind in "SV":
        import base64

        return base64.b64decode(fill)
    return fill


def _numcodec(config: dict[str, Any]) -> dict[str, Any]:
    c = dict(config)
    name = c.pop("id")
    # zarr-python requires the configuration member, even empty
    return {"name": f"numcodecs.{name}", "configuration": c}


def parse(folder: Path, url: str) -> virtual.ChunkManifest:
    """A chunk manifest of a Zarr v2 or v3 store in ``folder``; each chunk file is a
    source. ``url`` is the store's URL (chunk URLs are below it). Raises
    :class:`VirtualError` (DM153) for a folder that is not a Zarr store."""
    url = url.rstrip("/")
    if (folder / "zarr.json").is_file():
        return _parse_v3(folder, url)
    if (folder / ".zgroup").is_file() or (folder / ".zarray").is_file():
        return _parse_v2(folder, url)
    raise VirtualError(f"{folder} is not a Zarr store (no zarr.json, .zgroup or .zarray)",
                       code="DM153")


class _Sources:
    def __init__(self, folder: Path, url: str) -> None:
        self.folder, self.url = folder, url
        self.sources: list[virtual.Source] = []

    def add(self, rel: str) -> tuple[int, int] | None:
        p = self.folder / rel
        try:
            st = os.stat(p)
        except FileNotFoundError:
            return None
        from ..io.base import rfc3339

        self.sources.append(virtual.Source(f"{self.url}/{rel}", st.st_size, None,
                                        rfc3339(st.st_mtime_ns / 1e9)))
        return len(self.sources) - 1, st.st_size


def _array_refs(meta: dict[str, Any], prefix: str, sources: _Sources) -> virtual.Refs:
    grid = virtual.grid_shape(meta)
    n = math.prod(grid)
    src, off, ln = [virtual.MISSING] * n, [0] * n, [0] * n
    for pos in range(n):
        index = tuple(int(i) for i in np.unravel_index(pos, grid)) if grid else ()
        found = sources.add(prefix + virtual.chunk_key(meta, index))
        if found is not None and found[1] > 0:
            src[pos], ln[pos] = found[0], found[1]
    return virtual.Refs(grid, src, off, ln)


def _parse_v3(folder: Path, url: str) -> virtual.ChunkManifest:
    sources = _Sources(folder, url)
    nodes: dict[str, virtual.Node] = {}
    for meta_file in sorted(folder.rglob("zarr.json")):
        rel = meta_file.parent.relative_to(folder).as_posix()
        path = "" if rel == "." else rel
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
        if meta.get("node_type") == "array":
            prefix = path + "/" if path else ""
            nodes[path] = virtual.Node(path, meta, _array_refs(meta, prefix, sources))
        else:
            nodes[path] = virtual.Node(path, {"zarr_format": 3, "node_type": "group",
                                           "attributes": meta.get("attributes", {})})
    if "" not in nodes or nodes[""].is_array:
        nodes[""] = virtual.Node("", {"zarr_format": 3, "node_type": "group", "attributes": {}})
    return virtual.ChunkManifest(sources.sources, nodes)


def _read(p: Path) -> dict[str, Any] | None:
    return json.loads(p.read_text(encoding="utf-8")) if p.is_file() else None


def _parse_v2(folder: Path, url: str) -> virtual.ChunkManifest:
    sources = _Sources(folder, url)
    nodes: dict[str, virtual.Node] = {}
    for meta_file in sorted([*folder.rglob(".zgroup"), *folder.rglob(".zarray")]):
        rel = meta_file.parent.relative_to(folder).as_posix()
        path = "" if rel == "." else rel
        attrs = _read(meta_file.parent / ".zattrs") or {}
        if meta_file.name == ".zgroup":
            nodes[path] = virtual.Node(path, {"zarr_format": 3, "node_type": "group",
                                           "attributes": attrs})
            continue
        meta, types = v2_to_v3(_read(meta_file), attrs)
        prefix = path + "/" if path else ""
        nodes[path] = virtual.Node(path, meta, _array_refs(meta, prefix, sources), types)
    if "" not in nodes or nodes[""].is_array:
        nodes[""] = virtual.Node("", {"zarr_format": 3, "node_type": "group", "attributes": {}})
    for path in list(nodes):  # parents of nodes that had no .zgroup of their own
        parent = path.rpartition("/")[0]
        while path and parent not in nodes:
            nodes[parent] = virtual.Node(parent, {"zarr_format": 3, "node_type": "group",
                                               "attributes": {}})
            path, parent = parent, parent.rpartition("/")[0]
    return virtual.ChunkManifest(sources.sources, dict(sorted(nodes.items())))

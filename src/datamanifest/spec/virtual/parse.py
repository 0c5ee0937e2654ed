"""Parsing and validating a chunk manifest (SCHEMA.md §25, CHK-001..CHK-008): a JSON document
in, a :class:`~datamanifest.spec.virtual.model.ChunkManifest` out, or the first violation as a
:class:`~datamanifest.spec.virtual.model.ChunkManifestError` with its path and code.
"""

from __future__ import annotations

import base64
import binascii
import math
from typing import Any

from ...optional import VIRTUAL, need
from .model import (
    _BYTES_TYPE,
    _SCHEME,
    MISSING,
    NUMERIC_TYPES,
    SPEC_VERSION,
    ChunkManifest,
    ChunkManifestError,
    Node,
    Refs,
    Source,
    document_checksum,
    grid_shape,
    index_key,
    parse_index_key,
)


# -- parsing and validation (CHK-001..CHK-008) ---------------------------------------------------------
def _require(cond: bool, message: str, path: tuple, code: str = "DM150") -> None:
    if not cond:
        raise ChunkManifestError(message, path, code)


def _int(v: Any) -> bool:
    return type(v) is int


def parse(doc: Any, *, verify_checksum: bool = True) -> ChunkManifest:
    """Validate and read a chunk manifest document (CHK-001..CHK-008).

    Raises :class:`ChunkManifestError` with the JSON path of the first fault.
    """
    _require(isinstance(doc, dict), "a chunk manifest is a JSON object", ())
    _require(doc.get("chunk_manifest") == SPEC_VERSION and _int(doc.get("chunk_manifest")),
             f"chunk_manifest must be {SPEC_VERSION} (this reader knows version "
             f"{SPEC_VERSION})", ("chunk_manifest",))
    base = doc.get("base")
    _require(base is None or (isinstance(base, str) and bool(_SCHEME.match(base) or
                                                                 base.startswith("/"))),
             "base must be an absolute URL or path", ("base",))
    raw_sources = doc.get("sources")
    _require(isinstance(raw_sources, list), "sources must be an array", ("sources",))
    sources = []
    for i, s in enumerate(raw_sources):
        where = ("sources", i)
        _require(isinstance(s, dict), "a source is an object", where)
        _require(isinstance(s.get("url"), str) and s["url"] != "", "a source needs a url",
                 (*where, "url"))
        _require(_int(s.get("size")) and s["size"] >= 0, "a source needs its size in bytes",
                 (*where, "size"))
        for k in ("etag", "last_modified", "checksum"):
            _require(s.get(k) is None or isinstance(s[k], str), f"{k} must be a string",
                     (*where, k))
        known = ("url", "size", "etag", "last_modified", "checksum")
        sources.append(Source(s["url"], s["size"], s.get("etag"), s.get("last_modified"),
                              s.get("checksum"), {k: v for k, v in s.items() if k not in known}))
    raw_nodes = doc.get("nodes")
    _require(isinstance(raw_nodes, dict), "nodes must be an object", ("nodes",))
    _require(isinstance(raw_nodes.get(""), dict) and raw_nodes[""].get("node_type") == "group",
             "the root node \"\" must be a group", ("nodes",))
    nodes: dict[str, Node] = {}
    for path, meta in raw_nodes.items():
        nodes[path] = _node(path, meta, raw_nodes, len(sources), sources)
    checksum = doc.get("checksum")
    _require(checksum is None or isinstance(checksum, str), "checksum must be a string",
             ("checksum",))
    if checksum is not None and verify_checksum:
        actual = document_checksum(doc)
        if actual != checksum:
            raise ChunkManifestError(f"the document's checksum is {actual}, not the {checksum} "
                                     "it records: it was changed after it was written",
                                     ("checksum",), "DM155")
    known = ("chunk_manifest", "base", "sources", "nodes", "checksum")
    return ChunkManifest(sources, nodes, base, checksum,
                         {k: v for k, v in doc.items() if k not in known})


def _node(path: str, meta: Any, raw_nodes: dict, nsources: int,
          sources: list[Source]) -> Node:
    where = ("nodes", path)
    _require(isinstance(meta, dict), "a node is a Zarr v3 metadata object", where)
    _require(path == "" or (not path.startswith("/") and not path.endswith("/") and
                            all(p not in ("", ".", "..") for p in path.split("/"))),
             f"node path {path!r} is not a/b/c", where)
    if path:
        parent = path.rpartition("/")[0]
        p = raw_nodes.get(parent)
        _require(isinstance(p, dict) and p.get("node_type") == "group",
                 f"the parent {parent!r} of {path!r} is not a group node", where)
    _require(meta.get("zarr_format") == 3, "zarr_format must be 3", (*where, "zarr_format"))
    kind = meta.get("node_type")
    _require(kind in ("group", "array"), "node_type must be group or array",
             (*where, "node_type"))
    attrs = meta.get("attributes", {})
    _require(isinstance(attrs, dict), "attributes must be an object", (*where, "attributes"))
    types = meta.get("attribute_types", {})
    _require(isinstance(types, dict) and all(isinstance(t, str) and (
        t in NUMERIC_TYPES or _BYTES_TYPE.match(t)) for t in types.values()),
             f"attribute_types maps attribute names to one of {', '.join(NUMERIC_TYPES)} "
             "or S<n>",
             (*where, "attribute_types"))
    metadata = {k: v for k, v in meta.items() if k not in ("refs", "attribute_types")}
    if kind == "group":
        _require("refs" not in meta, "a group has no refs", (*where, "refs"))
        return Node(path, metadata, None, dict(types))
    shape = meta.get("shape")
    _require(isinstance(shape, list) and all(_int(s) and s >= 0 for s in shape),
             "shape must be an array of non-negative integers", (*where, "shape"))
    grid_def = meta.get("chunk_grid")
    _require(isinstance(grid_def, dict) and grid_def.get("name") == "regular",
             "the chunk grid must be regular (CHK-004)", (*where, "chunk_grid"))
    cs = (grid_def.get("configuration") or {}).get("chunk_shape")
    _require(isinstance(cs, list) and len(cs) == len(shape) and
             all(_int(c) and c >= 1 for c in cs),
             "chunk_shape must have one positive integer per dimension",
             (*where, "chunk_grid", "configuration", "chunk_shape"))
    _require(isinstance(meta.get("data_type"), (str, dict)), "data_type is required",
             (*where, "data_type"))
    _require(isinstance(meta.get("codecs"), list) and meta["codecs"], "codecs are required",
             (*where, "codecs"))
    _require("fill_value" in meta, "fill_value is required", (*where, "fill_value"))
    names = meta.get("dimension_names")
    _require(names is None or (isinstance(names, list) and len(names) == len(shape) and
                               all(n is None or isinstance(n, str) for n in names)),
             "dimension_names must name each dimension", (*where, "dimension_names"))
    raw = meta.get("refs")
    _require(isinstance(raw, dict), "an array node needs refs (CHK-005)", (*where, "refs"))
    refs = _refs(raw, grid_shape(metadata), (*where, "refs"), nsources, sources)
    return Node(path, metadata, refs, dict(types))


def _refs(raw: dict, grid: tuple[int, ...], where: tuple, nsources: int,
          sources: list[Source]) -> Refs:
    count = math.prod(grid)
    inline: dict[str, bytes] = {}
    for k, v in (raw.get("inline") or {}).items():
        try:
            parse_index_key(k, len(grid))
        except ValueError as e:
            raise ChunkManifestError(str(e), (*where, "inline", k), "DM151") from e
        _check_in_grid(parse_index_key(k, len(grid)), grid, (*where, "inline", k))
        _require(isinstance(v, str), "an inline chunk is a base64 string",
                 (*where, "inline", k))
        try:
            inline[k] = base64.b64decode(v, validate=True)
        except (binascii.Error, ValueError) as e:
            raise ChunkManifestError("an inline chunk is not base64 (RFC 4648)",
                                     (*where, "inline", k)) from e
    if "chunks" in raw:
        _require(not {"source", "offset", "length"} & raw.keys(),
                 "refs are either columns or chunks, not both", where)
        chunks = raw["chunks"]
        _require(isinstance(chunks, dict), "chunks maps index keys to [source, offset, length]",
                 (*where, "chunks"))
        out: dict[str, list[int]] = {}
        for k, ref in chunks.items():
            at = (*where, "chunks", k)
            try:
                index = parse_index_key(k, len(grid))
            except ValueError as e:
                raise ChunkManifestError(str(e), at, "DM151") from e
            _check_in_grid(index, grid, at)
            _require(isinstance(ref, list) and len(ref) == 3 and all(_int(x) for x in ref),
                     "a reference is [source, offset, length]", at)
            _check_ref(ref[0], ref[1], ref[2], at, nsources, sources)
            out[k] = ref
        return Refs(grid, chunks=out, inline=inline)
    cols = {}
    for name in ("source", "offset", "length"):
        col = raw.get(name)
        _require(isinstance(col, list), f"refs needs the column {name} (or chunks)",
                 (*where, name))
        _require(len(col) == count, f"{name} has {len(col)} elements; the grid "
                 f"{list(grid)} has {count} chunks", (*where, name), "DM151")
        cols[name] = col
    src, off, ln = cols["source"], cols["offset"], cols["length"]
    bad = _first_bad_column_ref(src, off, ln, sources) if count > 256 else 0
    for i in range(bad or 0, count) if bad is not None else ():
        s = src[i]
        if s == MISSING and _int(s):
            continue
        _check_ref(s, off[i], ln[i], (*where, "source", i), nsources, sources)
    return Refs(grid, src, off, ln, inline=inline)


def _first_bad_column_ref(src: list, off: list, ln: list, sources: list[Source]) -> int | None:
    """The first position where a column reference may break CHK-006, found with numpy in
    one pass (None: all are good); the caller checks from there one by one, for the
    message and path."""
    np = need("numpy", **VIRTUAL)

    try:
        if set(map(type, src)) | set(map(type, off)) | set(map(type, ln)) != {int}:
            return 0
        s = np.asarray(src, dtype=np.int64)
        o = np.asarray(off, dtype=np.int64)
        n = np.asarray(ln, dtype=np.int64)
    except (OverflowError, ValueError):
        return 0
    used = s != MISSING
    sizes = np.asarray([x.size for x in sources] + [0], dtype=np.int64)
    ok = ~used | ((s >= 0) & (s < len(sources)) & (o >= 0) & (n >= 1) &
                  (o + n <= sizes[np.where((s >= 0) & (s < len(sources)), s, len(sources))]))
    bad = np.flatnonzero(~ok)
    return int(bad[0]) if bad.size else None


def _check_in_grid(index: tuple[int, ...], grid: tuple[int, ...], at: tuple) -> None:
    _require(all(i < g for i, g in zip(index, grid)),
             f"index {index_key(index)!r} is outside the chunk grid {list(grid)}", at, "DM151")


def _check_ref(s: Any, o: Any, n: Any, at: tuple, nsources: int, sources: list[Source]) -> None:
    _require(_int(s) and _int(o) and _int(n), "a reference is three integers", at, "DM151")
    _require(0 <= s < nsources, f"source {s} is not in the sources table ({nsources} "
             "sources)", at, "DM151")
    _require(o >= 0 and n >= 1, f"offset {o} and length {n}: a chunk has offset >= 0 and "
             "length >= 1", at, "DM151")
    _require(o + n <= sources[s].size, f"bytes {o}..{o + n} lie beyond the end of source {s} "
             f"({sources[s].size} bytes)", at, "DM151")

"""Chunk manifests: a Zarr v3 hierarchy whose chunks are byte ranges of other files
(SCHEMA.md §25, CHK-001..CHK-012).

Pure: the document model, its validation, chunk keys, URL resolution and the document's
own checksum. No I/O: reading byte ranges is :mod:`datamanifest.io`.

A document::

    {"chunk_manifest": 1,
     "sources": [{"url": "tas_1950.nc", "size": 1234567, "last_modified": "..."}],
     "nodes": {
       "": {"zarr_format": 3, "node_type": "group", "attributes": {}},
       "tas": {"zarr_format": 3, "node_type": "array", "shape": [12, 90, 180], ...,
               "refs": {"source": [0, 0], "offset": [4096, 9000], "length": [4904, 5100]}}}}
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator
from urllib.parse import urljoin

from .paramhash import _string, format_float
from ..optional import VIRTUAL, need

SPEC_VERSION = 1
#: A document's name suffix (CHK-009).
SUFFIX = ".chunks.json"
MISSING = -1
#: the types ``attribute_types`` may name (CHK-003)
NUMERIC_TYPES = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
                 "float16", "float32", "float64", "bool", "complex64", "complex128")
#: ``S<n>``: the bytes of a character variable's fill value (CHK-003)
_BYTES_TYPE = re.compile(r"^S[1-9][0-9]*$")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_INDEX_PART = re.compile(r"0|[1-9][0-9]*")


class ChunkManifestError(ValueError):
    """A document that breaks CHK-001..CHK-008: ``code`` (DM150 structure, DM151 a
    reference, DM155 checksum) and ``path``, the JSON path of the offending value."""

    def __init__(self, message: str, path: tuple[str | int, ...] = (), code: str = "DM150"):
        super().__init__(message)
        self.message, self.path, self.code = message, tuple(path), code


# -- the model -----------------------------------------------------------------------------------
@dataclass
class Source:
    """One referenced file (CHK-002): ``url`` as written, ``size`` in bytes, and where known
    its ``etag``, ``last_modified`` (RFC 3339) and whole-file ``checksum``."""

    url: str
    size: int
    etag: str | None = None
    last_modified: str | None = None
    checksum: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"url": self.url, "size": self.size}
        for k in ("etag", "last_modified", "checksum"):
            if getattr(self, k) is not None:
                out[k] = getattr(self, k)
        out.update(self.extra)
        return out


@dataclass
class Refs:
    """An array's chunk references (CHK-005) over a chunk grid of shape ``grid``.

    Columns (``source``/``offset``/``length``, C order) or keys (``chunks``: index key ->
    ``[source, offset, length]``); ``inline``: index key -> encoded chunk bytes.
    """

    grid: tuple[int, ...]
    source: list[int] | None = None
    offset: list[int] | None = None
    length: list[int] | None = None
    chunks: dict[str, list[int]] | None = None
    inline: dict[str, bytes] = field(default_factory=dict)

    @property
    def count(self) -> int:
        """Chunks in the grid."""
        return math.prod(self.grid)

    def linear(self, index: tuple[int, ...]) -> int:
        """The C-order position of a grid index."""
        n = 0
        for i, g in zip(index, self.grid):
            n = n * g + i
        return n

    def lookup(self, index: tuple[int, ...]) -> tuple[str, Any]:
        """``("inline", bytes)``, ``("missing", None)`` or ``("ref", (source, offset,
        length))`` for a grid index inside the grid."""
        if self.inline:
            key = index_key(index)
            if key in self.inline:
                return "inline", self.inline[key]
        if self.chunks is not None:
            ref = self.chunks.get(index_key(index))
            return ("missing", None) if ref is None else ("ref", (ref[0], ref[1], ref[2]))
        n = self.linear(index)
        s = self.source[n]
        return ("missing", None) if s < 0 else ("ref", (s, self.offset[n], self.length[n]))

    def references(self) -> Iterator[tuple[tuple[int, ...], int, int, int]]:
        """Every referenced (not missing, not inline) chunk: (index, source, offset, length)."""
        if self.chunks is not None:
            for key, (s, o, n) in self.chunks.items():
                if key not in self.inline:
                    yield parse_index_key(key, len(self.grid)), s, o, n
            return
        for pos, s in enumerate(self.source):
            if s >= 0:
                index = _unravel(pos, self.grid)
                if not self.inline or index_key(index) not in self.inline:
                    yield index, s, self.offset[pos], self.length[pos]

    def as_json(self) -> dict[str, Any]:
        if self.chunks is not None:
            out: dict[str, Any] = {"chunks": {k: list(v) for k, v in self.chunks.items()}}
        else:
            out = {"source": list(self.source), "offset": list(self.offset),
                   "length": list(self.length)}
        if self.inline:
            out["inline"] = {k: base64.b64encode(v).decode("ascii")
                             for k, v in self.inline.items()}
        return out


@dataclass
class Node:
    """A group or an array: its Zarr v3 ``metadata`` (the ``zarr.json`` document) and, for
    an array, its ``refs``."""

    path: str
    metadata: dict[str, Any]
    refs: Refs | None = None
    attribute_types: dict[str, str] = field(default_factory=dict)
    #: the array's values when a parser read them anyway (small arrays); never written
    values: Any = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if "attribute_types" in self.metadata:  # given with the metadata: kept beside it
            self.metadata = dict(self.metadata)
            self.attribute_types = {**self.metadata.pop("attribute_types"),
                                    **self.attribute_types}

    @property
    def is_array(self) -> bool:
        return self.metadata.get("node_type") == "array"

    def as_json(self) -> dict[str, Any]:
        out = dict(self.metadata)
        types = self.attribute_types
        if types:
            out["attribute_types"] = dict(types)
        if self.refs is not None:
            out["refs"] = self.refs.as_json()
        return out


#: renders a :class:`ChunkManifest` as HTML for notebooks (SCHEMA.md INT-030). The I/O edge
#: (:mod:`datamanifest.virtual.document`) sets it when imported: its rendering reads each
#: source's identity (CHK-011), which this pure module may not do. None: a plain summary.
HTML_RENDERER: "Callable[[ChunkManifest], str] | None" = None


@dataclass
class ChunkManifest:
    """A parsed chunk manifest (CHK-001): ``sources``, ``nodes`` by path, ``base``,
    ``checksum`` as written (None when absent) and unknown top-level members (``extra``)."""

    sources: list[Source]
    nodes: dict[str, Node]
    base: str | None = None
    checksum: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: where the document was read from, when known (relative source URLs resolve against
    #: it, CHK-007); never written into the document
    document_url: str | None = field(default=None, compare=False, repr=False)

    def __repr__(self) -> str:
        arrays = sum(1 for _ in self.arrays())
        return (f"<ChunkManifest: {arrays} array{'s' if arrays != 1 else ''}, "
                f"{len(self.sources)} source{'s' if len(self.sources) != 1 else ''}"
                f"{', ' + self.checksum if self.checksum else ''}>")

    def _repr_html_(self) -> str:
        """Arrays, shapes, chunks and sources, each source checked against its recorded
        identity (CHK-011), as HTML for notebooks (SCHEMA.md INT-030). The check is the
        I/O edge's: this pure module only hands the model over."""
        if HTML_RENDERER is None:  # datamanifest.virtual.document not imported
            import html

            return f"<pre>{html.escape(repr(self))}</pre>"
        return HTML_RENDERER(self)

    def arrays(self) -> Iterator[Node]:
        return (n for n in self.nodes.values() if n.is_array)

    def as_json(self, *, with_checksum: bool = True) -> dict[str, Any]:
        """The document (CHK-001); ``with_checksum`` computes and adds ``checksum``."""
        doc: dict[str, Any] = {"chunk_manifest": SPEC_VERSION}
        if self.base is not None:
            doc["base"] = self.base
        doc["sources"] = [s.as_json() for s in self.sources]
        doc["nodes"] = {p: n.as_json() for p, n in self.nodes.items()}
        doc.update(self.extra)
        if with_checksum:
            doc["checksum"] = document_checksum(doc)
        return doc

    def url_of(self, source: int, document_url: str | None = None) -> str:
        """The absolute URL of source number ``source`` (CHK-007)."""
        return resolve_url(self.sources[source].url, self.base, document_url)


# -- keys (CHK-004, CHK-010) ----------------------------------------------------------------------
def index_key(index: tuple[int, ...]) -> str:
    """The index key of a grid index: ``"3.0.1"``; ``""`` for a 0-dimensional array."""
    return ".".join(map(str, index))


def parse_index_key(key: str, ndim: int) -> tuple[int, ...]:
    """The grid index of an index key. Raises ValueError when it is not one of ``ndim``."""
    if ndim == 0:
        if key != "":
            raise ValueError(f"a 0-dimensional array has only the index key '', not {key!r}")
        return ()
    parts = key.split(".")
    if len(parts) != ndim or not all(_INDEX_PART.fullmatch(p) for p in parts):
        raise ValueError(f"{key!r} is not an index key of {ndim} dimension(s) "
                         "(decimal indices joined by '.', no leading zeros)")
    return tuple(int(p) for p in parts)


def _unravel(pos: int, grid: tuple[int, ...]) -> tuple[int, ...]:
    out = []
    for g in reversed(grid):
        pos, i = divmod(pos, g)
        out.append(i)
    return tuple(reversed(out))


def chunk_shape(metadata: dict[str, Any]) -> tuple[int, ...]:
    return tuple(metadata["chunk_grid"]["configuration"]["chunk_shape"])


def grid_shape(metadata: dict[str, Any]) -> tuple[int, ...]:
    """The chunk grid's shape: ``ceil(shape / chunk_shape)`` per dimension (CHK-004)."""
    return tuple(-(-s // c) if c else 0 for s, c in zip(metadata["shape"], chunk_shape(metadata)))


def _encoding(metadata: dict[str, Any]) -> tuple[str, str]:
    enc = metadata.get("chunk_key_encoding") or {"name": "default"}
    name = enc.get("name", "default")
    sep = (enc.get("configuration") or {}).get("separator", "/" if name == "default" else ".")
    return name, sep


def chunk_key(metadata: dict[str, Any], index: tuple[int, ...]) -> str:
    """The Zarr chunk key of a grid index under the array's ``chunk_key_encoding`` (CHK-010)."""
    name, sep = _encoding(metadata)
    if name == "default":
        return sep.join(("c", *map(str, index)))
    return sep.join(map(str, index)) if index else "0"


def index_of_chunk_key(metadata: dict[str, Any], key: str) -> tuple[int, ...] | None:
    """The grid index a Zarr chunk key names (CHK-010), or None when it names no chunk of
    the grid."""
    name, sep = _encoding(metadata)
    grid = grid_shape(metadata)
    if name == "default":
        if key == "c" and not grid:
            return ()
        if not key.startswith("c" + sep):
            return None
        parts = key[2:].split(sep)
    else:
        parts = key.split(sep)
        if not grid:
            return () if key == "0" else None
    if len(parts) != len(grid) or not all(p.isdigit() for p in parts):
        return None
    index = tuple(int(p) for p in parts)
    return index if all(i < g for i, g in zip(index, grid)) else None


# -- URLs (CHK-007) ----------------------------------------------------------------------------------
def resolve_url(url: str, base: str | None, document_url: str | None = None) -> str:
    """The absolute URL of a source ``url`` (CHK-007): as is with a scheme, ``file://`` for
    a path from ``/``, else joined to ``base`` (read as a folder), else to the document's
    own location. Raises ValueError for a relative URL with neither."""
    if _SCHEME.match(url):
        return url
    if url.startswith("/"):
        return "file://" + url
    against = base if base is not None else document_url
    if against is None:
        raise ValueError(f"the relative source URL {url!r} has no base: the document has no "
                         "'base' and its own location is not known")
    if base is not None and not base.endswith("/"):
        against = base + "/"
    if against.startswith("/"):
        against = "file://" + against
    return urljoin(against, url)


# -- the document's checksum (CHK-008) ----------------------------------------------------------------
def document_json(value: Any) -> str:
    """Canonical JSON of a document value (PAR-002, PAR-004, PAR-005; ``null`` allowed)."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    t = type(value)
    if t is int:
        return str(value)
    if t is float:
        return format_float(value)
    if t is str:
        return _string(value)
    if t is list or t is tuple:
        if len(value) > 16 and set(map(type, value)) == {int}:  # reference columns: one join
            return "[" + ",".join(map(str, value)) + "]"
        return "[" + ",".join(document_json(v) for v in value) + "]"
    if t is dict:
        return "{" + ",".join(_string(k) + ":" + document_json(v)
                              for k, v in sorted(value.items())) + "}"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        return format_float(float(value))
    raise TypeError(f"{type(value).__name__} is not a JSON value")


def document_checksum(doc: dict[str, Any]) -> str:
    """``sha256:<hex>`` of the canonical JSON of ``doc`` without ``checksum`` (CHK-008).

    The text is made by the standard library's C encoder, whose output for JSON values
    (sorted keys, no spaces, raw UTF-8, the shortest round-trip floats laid out at the
    same thresholds) is exactly :func:`document_json`'s; a property test holds them equal.
    """
    import json

    body = {k: v for k, v in doc.items() if k != "checksum"}
    try:
        text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                          allow_nan=False)
    except (TypeError, ValueError):
        text = document_json(body)  # raises the precise error
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


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


# -- resolution (CHK-010) -----------------------------------------------------------------------------
def resolve_key(manifest: ChunkManifest, key: str,
                document_url: str | None = None) -> dict[str, Any]:
    """What a store key names (CHK-010): ``{"metadata": {...}}`` for a ``zarr.json``,
    ``{"inline": <base64>}``, ``{"missing": true}``, ``{"url", "offset", "length",
    "source"}``, or ``{"absent": true}`` for a key that names nothing."""
    node_path, _, leaf = key.rpartition("/") if key != "zarr.json" else ("", "", key)
    if leaf == "zarr.json" and node_path in manifest.nodes:
        return {"metadata": manifest.nodes[node_path].metadata}
    for path, node in manifest.nodes.items():
        if not node.is_array:
            continue
        prefix = path + "/" if path else ""
        if not key.startswith(prefix):
            continue
        index = index_of_chunk_key(node.metadata, key[len(prefix):])
        if index is None:
            continue
        kind, value = node.refs.lookup(index)
        if kind == "inline":
            return {"inline": base64.b64encode(value).decode("ascii")}
        if kind == "missing":
            return {"missing": True}
        s, o, n = value
        return {"source": s, "url": manifest.url_of(s, document_url), "offset": o, "length": n}
    return {"absent": True}

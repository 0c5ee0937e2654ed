"""The chunk-manifest model (SCHEMA.md §25): sources, nodes, references; chunk keys
(CHK-004, CHK-010), URL resolution (CHK-007), the document's checksum (CHK-008) and the
resolution of a key to its bytes (CHK-010). Pure; :mod:`.parse` builds the model from a document.
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
from dataclasses import dataclass, field
from typing import Any, Iterator
from urllib.parse import urljoin

from ..paramhash import _string, format_float

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

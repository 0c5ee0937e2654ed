"""Kerchunk references in and out (SCHEMA.md CHK-023; exports for fsspec and VirtualiZarr).

* :func:`expand` reads kerchunk JSON of version 0 or 1: ``templates`` substituted into
  URLs, ``gen`` expanded over the product of its dimensions (Jinja-style ``{{ expr }}``
  with names, numbers and arithmetic, evaluated without ``eval``).
* :func:`import_references` turns JSON or Parquet references into a chunk manifest.
* :func:`to_json` and :func:`write_parquet` export a chunk manifest in kerchunk's
  version-1 JSON and its Parquet layout (``fsspec``'s ``LazyReferenceMapper``), both Zarr
  v2 so that ``ReferenceFileSystem`` and VirtualiZarr's kerchunk parsers read them.
"""

from __future__ import annotations

import ast
import base64
import itertools
import json
import math
import operator
import re
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import VirtualError
from ..spec import virtual
from .zarrsrc import v2_to_v3
from ..optional import VIRTUAL, need

_EXPR = re.compile(r"{{(.*?)}}")
_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
        ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Div: operator.truediv,
        ast.Pow: operator.pow}


def _eval(expr: str, names: dict[str, Any]) -> Any:
    """A Jinja-style expression of names, numbers, strings and + - * / // % ** ( )."""
    def ev(node: ast.AST) -> Any:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str)):
            return node.value
        if isinstance(node, ast.Name):
            if node.id not in names:
                raise VirtualError(f"kerchunk template: unknown name {node.id!r}", code="DM150")
            return names[node.id]
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](ev(node.left), ev(node.right))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -ev(node.operand)
        raise VirtualError(f"kerchunk template: {expr!r} is not a simple expression",
                           code="DM150", hint="names, numbers and arithmetic only")
    try:
        return ev(ast.parse(expr.strip(), mode="eval"))
    except SyntaxError as e:
        raise VirtualError(f"kerchunk template: {expr!r} does not parse", code="DM150") from e


def _render(text: str, names: dict[str, Any]) -> str:
    return _EXPR.sub(lambda m: str(_eval(m.group(1), names)), text)


def expand(doc: dict[str, Any]) -> dict[str, Any]:
    """The flat references of kerchunk JSON (version 0 or 1): key -> metadata (JSON text or
    object), inline data (str), or ``[url]`` / ``[url, offset, length]``."""
    if "version" not in doc:
        return dict(doc)
    refs = dict(doc.get("refs", {}))
    templates = doc.get("templates") or {}
    for g in doc.get("gen") or []:
        dims = g.get("dimensions") or {}
        axes = []
        for name, spec_ in dims.items():
            if isinstance(spec_, dict):
                axes.append([(name, v) for v in range(spec_.get("start", 0), spec_["stop"],
                                                       spec_.get("step", 1))])
            else:
                axes.append([(name, v) for v in spec_])
        for combo in itertools.product(*axes):
            names = {**templates, **dict(combo)}
            key = _render(g["key"], names)
            url = _render(g["url"], names)
            if "offset" in g and "length" in g:
                refs[key] = [url, int(_render(str(g["offset"]), names)),
                             int(_render(str(g["length"]), names))]
            else:
                refs[key] = [url]
    if templates:
        for k, v in refs.items():
            if isinstance(v, list) and v and isinstance(v[0], str) and "{{" in v[0]:
                refs[k] = [_render(v[0], templates), *v[1:]]
    return refs


def _json_value(v: Any, key: str = "") -> dict[str, Any]:
    """A metadata member's object; DM150 naming ``key`` when it is not one (CHK-023)."""
    try:
        out = json.loads(v) if isinstance(v, (str, bytes)) else v
    except ValueError as e:
        raise VirtualError(f"kerchunk reference {key!r} is not JSON: {e}", code="DM150") from None
    if not isinstance(out, dict):
        raise VirtualError(f"kerchunk reference {key!r} is not a JSON object", code="DM150")
    return out


def _inline_bytes(v: str | bytes) -> bytes:
    if isinstance(v, bytes):
        return v
    if v.startswith("base64:"):
        return base64.b64decode(v[len("base64:"):])
    return v.encode("utf-8")


def _chunk_index(meta: dict[str, Any], rest: str) -> tuple[int, ...] | None:
    sep = (meta.get("chunk_key_encoding") or {}).get("configuration", {}).get("separator", ".")
    grid = virtual.grid_shape(meta)
    if not grid:
        return () if rest in ("0", "") else None
    parts = rest.split(sep)
    if len(parts) != len(grid) or not all(p.isdigit() for p in parts):
        return None
    return tuple(int(p) for p in parts)


def from_refs(refs: dict[str, Any], *, sizes: dict[str, int] | None = None
              ) -> virtual.ChunkManifest:
    """A chunk manifest of flat references (Zarr v2 metadata keys). ``sizes``: each URL's
    size in bytes; a URL without one gets the end of its last referenced byte and
    ``size_from_references`` (CHK-002)."""
    sizes = sizes or {}
    nodes: dict[str, virtual.Node] = {}
    metas: dict[str, tuple[str, dict]] = {}
    for key, v in refs.items():
        base, _, leaf = key.rpartition("/")
        if leaf == ".zgroup":
            _json_value(v, key)
            metas.setdefault(base, ("group", {}))
        elif leaf == ".zarray":
            metas[base] = ("array", _json_value(v, key))
        elif leaf == "zarr.json":
            raise VirtualError("kerchunk references of Zarr v3 metadata are not imported here",
                               code="DM153")
    for path, (kind, zarray) in sorted(metas.items()):
        zattrs = f"{path}/.zattrs" if path else ".zattrs"
        attrs = _json_value(refs[zattrs], zattrs) if zattrs in refs else {}
        if kind == "group":
            nodes[path] = virtual.Node(path, {"zarr_format": 3, "node_type": "group",
                                           "attributes": attrs})
        else:
            meta, types = v2_to_v3(zarray, attrs)
            nodes[path] = virtual.Node(path, meta, None, types)
    if "" not in nodes:
        nodes[""] = virtual.Node("", {"zarr_format": 3, "node_type": "group", "attributes": {}})
    urls: dict[str, int] = {}
    ends: dict[str, int] = {}
    per_array: dict[str, dict[str, list]] = {p: {} for p, n in nodes.items() if n.is_array}
    inline: dict[str, dict[str, bytes]] = {p: {} for p in per_array}
    for key, v in refs.items():
        base, _, rest = key.rpartition("/")
        if base not in per_array or rest.startswith(".z"):
            continue
        index = _chunk_index(nodes[base].metadata, rest)
        if index is None:
            continue
        ikey = virtual.index_key(index)
        if isinstance(v, list):
            url = v[0]
            if url not in urls:
                urls[url] = len(urls)
            if len(v) >= 3:
                off, n = int(v[1]), int(v[2])
            else:
                off, n = 0, sizes.get(url, 0)
            ends[url] = max(ends.get(url, 0), off + n)
            per_array[base][ikey] = [urls[url], off, n]
        else:
            inline[base][ikey] = _inline_bytes(v)
    sources = []
    for url in urls:
        if url in sizes:
            sources.append(virtual.Source(url, sizes[url]))
        else:
            sources.append(virtual.Source(url, ends.get(url, 0),
                                       extra={"size_from_references": True}))
    for path, chunks in per_array.items():
        grid = virtual.grid_shape(nodes[path].metadata)
        nodes[path].refs = virtual.Refs(grid, chunks=chunks, inline=inline[path])
    return virtual.ChunkManifest(sources, dict(sorted(nodes.items())))


def import_references(location: str, *, resolve_sizes: bool = True) -> virtual.ChunkManifest:
    """A chunk manifest of kerchunk references at ``location`` (JSON of version 0 or 1, or
    a Parquet reference folder). With ``resolve_sizes`` each referenced URL's size and
    identity are read (CHK-002); unreachable ones keep the size the references imply."""
    from ..io.places import local_path, open_ranges

    path = Path(local_path(location))
    if path.is_dir() and (path / ".zmetadata").is_file():
        refs = read_parquet(path)
        top = json.loads((path / ".zmetadata").read_text(encoding="utf-8"))
    else:
        try:
            top = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise VirtualError(f"no kerchunk references at {path}", code="DM074",
                               file=str(path)) from None
        except ValueError as e:
            raise VirtualError(f"kerchunk references that are not JSON: {e}", code="DM150",
                               file=str(path)) from e
        if isinstance(top, list):
            raise VirtualError(f"{location} holds {len(top)} reference sets; import them one "
                               "at a time", code="DM150", file=str(path))
        refs = expand(top)
    sizes: dict[str, int] = {}
    idents = {}
    if resolve_sizes:
        for url in {v[0] for v in refs.values() if isinstance(v, list) and v}:
            try:
                r = open_ranges(url if "://" in url else Path(url).resolve().as_uri(), VirtualError)
                try:
                    idents[url] = r.identity()
                finally:
                    r.close()
                sizes[url] = idents[url].size
            except VirtualError:
                continue
    m = from_refs(refs, sizes=sizes)
    restore_types(m, top)
    for s in m.sources:
        ident = idents.get(s.url)
        if ident is not None:
            s.etag, s.last_modified = ident.etag, ident.last_modified
    return m


def restore_types(m: virtual.ChunkManifest, top: Any) -> None:
    """Give the nodes of an imported manifest the attribute types our export carried in
    its ``datamanifest`` member (CHK-025), for attributes the node has."""
    carried = (top.get(MEMBER) or {}).get("attribute_types") if isinstance(top, dict) else None
    for node_path, types in (carried or {}).items():
        node = m.nodes.get(node_path)
        if node is not None and isinstance(types, dict):
            attrs = node.metadata.get("attributes") or {}
            node.attribute_types.update({k: v for k, v in types.items()
                                         if k in attrs and isinstance(v, str)})


def read_parquet(folder: Path) -> dict[str, Any]:
    """Flat references of a kerchunk Parquet folder (``.zmetadata`` + ``<var>/refs.N.parq``)."""
    pq = need("pyarrow.parquet", extra="parquet", feature="chunk manifests")

    meta = json.loads((folder / ".zmetadata").read_text(encoding="utf-8"))
    record_size = int(meta["record_size"])
    refs: dict[str, Any] = {k: v for k, v in meta["metadata"].items()}
    for key, zarray in list(refs.items()):
        if not key.endswith(".zarray"):
            continue
        var = key[: -len("/.zarray")] if "/" in key else ""
        z = _json_value(zarray, key)
        grid = [math.ceil(s / c) for s, c in zip(z["shape"], z["chunks"])]
        sep = z.get("dimension_separator", ".")
        for file in sorted((folder / var).glob("refs.*.parq"),
                           key=lambda p: int(p.name.split(".")[1])):
            rec = int(file.name.split(".")[1])
            table = pq.read_table(file).to_pydict()
            for row, (p, off, size, raw) in enumerate(zip(table["path"], table["offset"],
                                                          table["size"], table["raw"])):
                n = rec * record_size + row
                if n >= math.prod(grid):
                    break
                index = np.unravel_index(n, grid) if grid else ()
                ck = sep.join(str(int(i)) for i in index) if grid else "0"
                k = f"{var}/{ck}" if var else ck
                if raw is not None:
                    refs[k] = raw
                elif p is not None:
                    refs[k] = [p] if not size else [p, int(off), int(size)]
    return refs


# -- export -------------------------------------------------------------------------------------
def _v2_metadata(node: virtual.Node) -> tuple[dict[str, Any], dict[str, Any]]:
    """(.zarray, .zattrs) of an array node, for kerchunk's Zarr v2 references (CHK-025).

    The layout is kerchunk's own, which every reader accepts: every codec after ``bytes``
    (and any array-to-array codec before it) in ``filters``, ``compressor`` null.
    Variable-length strings are ``|O`` with the ``vlen-utf8`` filter. Attributes keep
    their recorded types where JSON can (complex values cannot: see CHK-025)."""
    meta = node.metadata
    string = meta["data_type"] == "string"
    if string:
        dtype = np.dtype(object)
    else:
        get_data_type_from_json = need("zarr.core.dtype", **VIRTUAL).get_data_type_from_json
        dtype = get_data_type_from_json(meta["data_type"], zarr_format=3).to_native_dtype()
    order = "C"
    filters: list[dict[str, Any]] = []
    for c in meta["codecs"]:
        name = c["name"]
        if name == "bytes":
            endian = (c.get("configuration") or {}).get("endian", "little")
            if dtype.itemsize > 1 and dtype.kind not in "SUVO":
                dtype = dtype.newbyteorder(">" if endian == "big" else "<")
        elif name == "transpose":
            order = "F"
        elif name == "vlen-utf8":
            filters.append({"id": "vlen-utf8"})
        elif name.startswith("numcodecs."):
            filters.append({"id": name[len("numcodecs."):], **(c.get("configuration") or {})})
        else:
            raise VirtualError(f"array {node.path!r}: the codec {name!r} has no Zarr v2 form "
                               "for kerchunk", code="DM153")
    attrs = _restored_attrs(node)
    # xarray's Zarr v2 convention: the array's fill_value is its _FillValue (and masks), so
    # _FillValue moves there and an array without one gets none (nothing is masked)
    cf_fill = attrs.pop("_FillValue", None)
    fill = None
    if cf_fill is not None and not string:
        z = need("zarr.core.dtype", **VIRTUAL).get_data_type_from_json(meta["data_type"],
                                                                       zarr_format=3)
        fill = z.to_json_scalar(z.cast_scalar(cf_fill), zarr_format=2)
    sep = (meta.get("chunk_key_encoding") or {}).get("configuration", {}).get("separator")
    zarray = {"zarr_format": 2, "shape": meta["shape"], "chunks": list(virtual.chunk_shape(meta)),
              "dtype": dtype.str, "compressor": None, "filters": filters or None,
              "fill_value": fill, "order": order}
    if sep == "/" and (meta.get("chunk_key_encoding") or {}).get("name") == "v2":
        zarray["dimension_separator"] = "/"
    if meta.get("dimension_names") is not None:  # [] for a scalar: readers require it
        attrs["_ARRAY_DIMENSIONS"] = list(meta["dimension_names"])
    return zarray, attrs


def _restored_attrs(node: virtual.Node) -> dict[str, Any]:
    """Attributes as JSON numbers again ("NaN" strings of float attributes as NaN), the
    bytes of a character variable's fill value as its text."""
    out = {}
    types = node.attribute_types
    for k, v in (node.metadata.get("attributes") or {}).items():
        if types.get(k, "").startswith("float") and v in ("NaN", "Infinity", "-Infinity"):
            v = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}[v]
        out[k] = v
    return out


def _v2_key(node: virtual.Node, index: tuple[int, ...]) -> str:
    sep = "/" if (node.metadata.get("chunk_key_encoding") or {}).get("name") == "v2" and \
        (node.metadata.get("chunk_key_encoding") or {}).get("configuration", {}).get(
            "separator") == "/" else "."
    return sep.join(map(str, index)) if index else "0"


def _fill_chunk(node: virtual.Node, zarray: dict[str, Any]) -> bytes | None:
    """The encoded bytes of a chunk of the array's own fill value (what a missing chunk
    reads as, CHK-005), when a Zarr v2 reader of ``zarray`` would read a missing chunk as
    something else (its ``fill_value``, or 0 when null); None when it reads the same."""
    from .store import Decoder, fill_scalar

    meta = node.metadata
    if meta["data_type"] == "string":
        return None  # strings are always inline: no chunk is missing
    dtype = Decoder(meta).dtype
    want = fill_scalar(meta["data_type"], meta["fill_value"], dtype)
    v2 = zarray["fill_value"]
    if v2 is None:
        have = dtype.type(0) if dtype.kind != "S" else dtype.type(b"")
    else:
        have = fill_scalar(meta["data_type"], _v2_fill_json(v2, dtype), dtype)
    if np.array_equal(np.asarray(want), np.asarray(have), equal_nan=dtype.kind in "fc"):
        return None
    chunk = np.full(tuple(zarray["chunks"]), want, dtype=np.dtype(zarray["dtype"]))
    return _encode_v2(zarray, chunk)


def _v2_fill_json(v2: Any, dtype: np.dtype) -> Any:
    """A Zarr v2 fill value as the Zarr v3 JSON :func:`fill_scalar` reads."""
    return v2  # numbers and the special strings agree; byte strings are base64 in both


def _encode_v2(zarray: dict[str, Any], chunk: np.ndarray) -> bytes:
    """A chunk encoded as a Zarr v2 reader of ``zarray`` decodes it."""
    numcodecs = need("numcodecs", **VIRTUAL)
    data: Any = np.asfortranarray(chunk) if zarray["order"] == "F" else \
        np.ascontiguousarray(chunk)
    codecs = list(zarray["filters"] or []) + ([zarray["compressor"]] if zarray["compressor"]
                                              else [])
    if not codecs:
        return data.tobytes(order="A")
    for c in codecs:
        data = numcodecs.get_codec(dict(c)).encode(data)
    return bytes(data)


def export_refs(manifest: virtual.ChunkManifest, node: virtual.Node, document_url: str | None
                ) -> tuple[dict[str, Any], dict[str, Any], list[tuple[tuple[int, ...], Any]]]:
    """(.zarray, .zattrs, chunks) of an array as kerchunk references (CHK-025): each chunk
    ``(index, [url, offset, length] or bytes)``; a missing chunk that a Zarr v2 reader would
    read as another value than the array's fill value becomes an inline chunk of it."""
    zarray, zattrs = _v2_metadata(node)
    refs = node.refs
    chunks: list[tuple[tuple[int, ...], Any]] = []
    seen: set[str] = set()
    for index, s, off, n in refs.references():
        chunks.append((index, [manifest.url_of(s, document_url), off, n]))
        seen.add(virtual.index_key(index))
    for k, data in refs.inline.items():
        chunks.append((virtual.parse_index_key(k, len(refs.grid)), data))
        seen.add(k)
    if len(seen) < refs.count:
        fill = _fill_chunk(node, zarray)
        if fill is not None:
            import itertools

            for index in itertools.product(*(range(g) for g in refs.grid)):
                if virtual.index_key(index) not in seen:
                    chunks.append((tuple(index), fill))
    return zarray, zattrs, chunks


def to_json(manifest: virtual.ChunkManifest, document_url: str | None = None) -> dict[str, Any]:
    """Kerchunk version-1 JSON references of a chunk manifest (absolute URLs, CHK-025)."""
    refs: dict[str, Any] = {}
    for path, node in manifest.nodes.items():
        prefix = path + "/" if path else ""
        if not node.is_array:
            refs[prefix + ".zgroup"] = json.dumps({"zarr_format": 2})
            refs[prefix + ".zattrs"] = json.dumps(_restored_attrs(node))
            continue
        zarray, zattrs, chunks = export_refs(manifest, node, document_url)
        refs[prefix + ".zarray"] = json.dumps(zarray)
        refs[prefix + ".zattrs"] = json.dumps(zattrs)
        for index, value in chunks:
            refs[prefix + _v2_key(node, index)] = value if isinstance(value, list) else \
                "base64:" + base64.b64encode(value).decode()
    out: dict[str, Any] = {"version": 1, "refs": refs}
    types = attribute_types(manifest)
    if types:
        out[MEMBER] = {"attribute_types": types}
    return out


#: the top-level member of kerchunk references that carries what JSON loses (CHK-025);
#: kerchunk's readers ignore members they do not know
MEMBER = "datamanifest"


def attribute_types(manifest: virtual.ChunkManifest) -> dict[str, dict[str, str]]:
    """Node path -> the recorded attribute types (CHK-003) of every node that has some."""
    return {p: dict(n.attribute_types) for p, n in manifest.nodes.items()
            if n.attribute_types}


def write_parquet(manifest: virtual.ChunkManifest, folder: str | Path, *,
                  record_size: int = 10_000, document_url: str | None = None) -> Path:
    """Write kerchunk Parquet references of a chunk manifest into ``folder`` (fsspec's
    ``LazyReferenceMapper`` layout: ``.zmetadata`` and ``<var>/refs.<n>.parq``)."""
    pd = need("pandas", extra="parquet", feature="chunk manifests")
    pa = need("pyarrow", extra="parquet", feature="chunk manifests")

    # typed columns: a column of nothing but nulls must still read back as text / bytes
    schema = pa.schema([("path", pa.string()), ("offset", pa.int64()), ("size", pa.int64()),
                        ("raw", pa.binary())])
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    metadata: dict[str, Any] = {}
    for path, node in manifest.nodes.items():
        prefix = path + "/" if path else ""
        if not node.is_array:
            metadata[prefix + ".zgroup"] = {"zarr_format": 2}
            metadata[prefix + ".zattrs"] = _restored_attrs(node)
            continue
        zarray, zattrs, chunks = export_refs(manifest, node, document_url)
        metadata[prefix + ".zarray"] = zarray
        metadata[prefix + ".zattrs"] = zattrs
        refs = node.refs
        count = refs.count
        if count == 0:
            continue
        paths: list[str | None] = [None] * count
        offsets = [0] * count
        sizes = [0] * count
        raws: list[bytes | None] = [None] * count
        for index, value in chunks:
            pos = refs.linear(index)
            if isinstance(value, list):
                paths[pos], offsets[pos], sizes[pos] = value
            else:
                raws[pos] = value
        (folder / path).mkdir(parents=True, exist_ok=True) if path else None
        for rec in range(math.ceil(count / record_size)):
            lo, hi = rec * record_size, min(count, (rec + 1) * record_size)
            pad = record_size - (hi - lo)
            frame = pd.DataFrame({
                "path": np.array(paths[lo:hi] + [None] * pad, dtype=object),
                "offset": np.array(offsets[lo:hi] + [0] * pad, dtype=np.int64),
                "size": np.array(sizes[lo:hi] + [0] * pad, dtype=np.int64),
                "raw": np.array(raws[lo:hi] + [None] * pad, dtype=object)})
            # through pandas, as fsspec writes them: its metadata tells every reader (pyarrow,
            # fastparquet) that offsets and sizes are integers
            frame.to_parquet(folder / path / f"refs.{rec}.parq", engine="pyarrow",
                             compression="zstd", index=False, write_statistics=False,
                             schema=schema)
    top: dict[str, Any] = {"metadata": metadata, "record_size": record_size}
    types = attribute_types(manifest)
    if types:
        top[MEMBER] = {"attribute_types": types}
    (folder / ".zmetadata").write_text(json.dumps(top), encoding="utf-8")
    return folder

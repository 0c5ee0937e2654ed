"""Reading a chunk manifest: sources verified once, chunks read in coalesced ranges and
decoded in parallel (SCHEMA.md CHK-010..CHK-012).

* :class:`Session` holds one open chunk manifest: a reader per source, each source's
  identity compared with the recorded one before its first chunk is served (CHK-011).
* :class:`VirtualArray` reads any rectangular selection of one array: the chunks it
  touches are read with one ``read_ranges`` call per source (coalesced, CHK-012), decoded
  on a thread pool (zlib releases the GIL) and copied into the result.
* :class:`~datamanifest.virtual.zarrstore.ChunkStore` is a read-only zarr-python 3
  ``Store`` over the same session, for ``zarr.open_group`` and ``xarray.open_zarr``.
"""

from __future__ import annotations

import base64
import json
import math
import os
import threading
import zlib
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from ..errors import VirtualError
from ..spec import virtual
from ..io.base import Identity, RangeReader
from ..io.places import open_ranges
from ..optional import VIRTUAL, need

#: chunks decoded per batch: bounds the memory held by compressed and decoded chunks
BATCH_BYTES = 8 * 1024 * 1024
#: below this many compressed bytes, chunks are decoded in the calling thread: handing
#: them to the pool costs more than it saves
INLINE_DECODE = 4 * 1024 * 1024
_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max(2, os.cpu_count() or 2),
                                       thread_name_prefix="dm-decode")
        return _POOL


class Session:
    """An open chunk manifest: ``manifest``, the ``document_url`` its relative source URLs
    resolve against (CHK-007), one reader per source, opened and verified on first use."""

    def __init__(self, manifest: virtual.ChunkManifest, document_url: str | None = None,
                 *, verify: bool = True, credentials: dict[str, str] | None = None) -> None:
        self.manifest = manifest
        self.document_url = document_url
        self.verify = verify
        # SEC-002: a source URL stored redacted -> the URL with its credential, to read it
        self.credentials = credentials or {}
        self._readers: dict[int, RangeReader] = {}
        self._lock = threading.Lock()

    def reader(self, source: int) -> RangeReader:
        """The reader of source number ``source``, its identity checked (CHK-011). Raises
        :class:`VirtualError` (DM152 changed, DM074 absent)."""
        r = self._readers.get(source)
        if r is not None:
            return r
        with self._lock:
            r = self._readers.get(source)
            if r is None:
                url = self.manifest.url_of(source, self.document_url)
                r = open_ranges(self.credentials.get(url, url), VirtualError)
                if self.verify:
                    try:
                        check_identity(self.manifest.sources[source], r.identity(), url)
                    except BaseException:
                        r.close()
                        raise
                self._readers[source] = r
        return r

    def read(self, refs: list[tuple[int, int, int]]) -> list:
        """The bytes of ``(source, offset, length)`` references, in order: one coalesced
        ``read_ranges`` per source, the sources read concurrently."""
        by_source: dict[int, list[int]] = {}
        for i, (s, _, _) in enumerate(refs):
            by_source.setdefault(s, []).append(i)
        out: list = [None] * len(refs)

        def one(s: int) -> None:
            idx = by_source[s]
            for i, data in zip(idx, self.reader(s).read_ranges([refs[i][1:] for i in idx])):
                out[i] = data
        if len(by_source) == 1:
            one(next(iter(by_source)))
        else:
            list(_pool().map(one, by_source))
        return out

    def close(self) -> None:
        for r in self._readers.values():
            r.close()
        self._readers.clear()

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def check_identity(recorded: virtual.Source, now: Identity, url: str) -> None:
    """CHK-011: the source's size always; its ETag and last-modified time when both sides
    know them. Raises :class:`VirtualError` (DM152) naming the difference."""
    diffs = []
    if recorded.extra.get("size_from_references"):  # a lower bound (CHK-002)
        if now.size < recorded.size:
            diffs.append(f"size {now.size} bytes, shorter than its references ({recorded.size})")
    elif now.size != recorded.size:
        diffs.append(f"size {now.size} bytes, recorded {recorded.size}")
    if recorded.etag and now.etag and now.etag.strip('"') != recorded.etag.strip('"'):
        diffs.append(f"ETag {now.etag}, recorded {recorded.etag}")
    if recorded.last_modified and now.last_modified and \
            _same_time(now.last_modified, recorded.last_modified) is False:
        diffs.append(f"modified {now.last_modified}, recorded {recorded.last_modified}")
    if diffs:
        raise VirtualError(f"source {url} changed since the chunk manifest was written: "
                           + "; ".join(diffs), code="DM152",
                           hint="its chunks would be read from other bytes; build the chunk "
                           "manifest again (`datamanifest virtualize`)")


def _same_time(a: str, b: str) -> bool | None:
    """Whether two RFC 3339 times are the same instant at the precision both have."""
    import datetime as _dt

    def parse(t: str):
        try:
            return _dt.datetime.fromisoformat(t.replace("Z", "+00:00"))
        except ValueError:
            return None
    x, y = parse(a), parse(b)
    if x is None or y is None:
        return None
    if x.microsecond == 0 or y.microsecond == 0:  # one side has seconds only (HTTP dates)
        return x.replace(microsecond=0) == y.replace(microsecond=0)
    return x == y


# -- decoding -------------------------------------------------------------------------------------
_NUMERIC = {"bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
            "float16", "float32", "float64", "complex64", "complex128"}


def native_dtype(data_type: Any) -> np.dtype:
    """The numpy dtype of a Zarr v3 ``data_type``: the core names and fixed-length byte
    strings directly, anything else through zarr."""
    if isinstance(data_type, str) and data_type in _NUMERIC:
        return np.dtype(data_type)
    if data_type == "string":  # variable-length strings: Python str objects, as netCDF4 gives
        return np.dtype(object)
    if isinstance(data_type, dict) and data_type.get("name") == "null_terminated_bytes":
        return np.dtype(f"S{data_type['configuration']['length_bytes']}")
    get_data_type_from_json = need("zarr.core.dtype", **VIRTUAL).get_data_type_from_json

    return get_data_type_from_json(data_type, zarr_format=3).to_native_dtype()


def fill_scalar(data_type: Any, value: Any, dtype: np.dtype) -> Any:
    """The fill value of an array as a numpy scalar (Zarr v3 JSON: numbers, booleans, the
    strings "NaN", "Infinity", "-Infinity", hex floats; base64 for byte strings)."""
    if dtype.kind in "biuf" and not isinstance(value, (list, dict)):
        if isinstance(value, str):
            special = {"NaN": np.nan, "Infinity": np.inf, "-Infinity": -np.inf}
            if value in special:
                return dtype.type(special[value])
        else:
            return dtype.type(value)
    if dtype.kind == "S" and isinstance(value, str):
        return dtype.type(base64.b64decode(value))
    get_data_type_from_json = need("zarr.core.dtype", **VIRTUAL).get_data_type_from_json

    z = get_data_type_from_json(data_type, zarr_format=3)
    return z.from_json_scalar(value, zarr_format=3)


class Decoder:
    """The codecs of one array, applied in reverse (CHK-010). ``bytes`` and the numcodecs
    codecs are applied here directly; any other codec goes through zarr's own pipeline."""

    def __init__(self, metadata: dict[str, Any]) -> None:
        self.shape = virtual.chunk_shape(metadata)
        self.dtype = native_dtype(metadata["data_type"])
        codecs = metadata["codecs"]
        self.fast = bool(codecs) and codecs[0].get("name") == "bytes" and all(
            c.get("name", "").startswith("numcodecs.") for c in codecs[1:])
        if not self.fast:
            return
        endian = (codecs[0].get("configuration") or {}).get("endian", "little")
        self.stored = self.dtype.newbyteorder(">" if endian == "big" else "<") \
            if self.dtype.itemsize > 1 and self.dtype.kind not in "SUV" else self.dtype
        self.filters = []
        for c in reversed(codecs[1:]):
            config = dict(c.get("configuration") or {})
            name = c["name"][len("numcodecs."):]
            if name == "zlib":  # the standard library's, without numcodecs' wrapping
                self.filters.append(zlib.decompress)
                continue
            numcodecs = need("numcodecs", **VIRTUAL)

            self.filters.append(numcodecs.get_codec({"id": name, **config}).decode)

    def decode(self, data: Any) -> np.ndarray:
        for decode in self.filters:
            data = decode(data)
        arr = np.frombuffer(data, dtype=self.stored)
        if arr.size != math.prod(self.shape):
            raise VirtualError(f"a chunk decoded to {arr.size} values, not the "
                               f"{math.prod(self.shape)} of its shape {self.shape}",
                               code="DM151", hint="the reference or codecs are wrong")
        arr = arr.reshape(self.shape)
        return arr if self.stored == self.dtype else arr.astype(self.dtype)


class VirtualArray:
    """One array of a chunk manifest, read by selection. ``shape``, ``dtype``,
    ``fill_value`` as numpy sees them."""

    def __init__(self, session: Session, node: virtual.Node) -> None:
        self.session, self.node = session, node
        meta = node.metadata
        self.shape = tuple(meta["shape"])
        self.chunks = virtual.chunk_shape(meta)
        self.decoder = Decoder(meta)
        self.dtype = self.decoder.dtype
        self.fill_value = fill_scalar(meta["data_type"], meta["fill_value"], self.dtype)
        self._zarr = None

    def __getitem__(self, key: Any) -> np.ndarray:
        key = _normalize(key, self.shape)
        return self.read(key)

    def read(self, key: tuple[slice | int, ...]) -> np.ndarray:
        """The values at ``key`` (one slice with step or an int per dimension)."""
        flips = []
        fixed = []
        for i, (k, n) in enumerate(zip(key, self.shape)):
            if isinstance(k, slice) and (k.step or 1) < 0:
                start, stop, step = k.indices(n)
                idx = range(start, stop, step)
                fixed.append(slice(idx[-1], idx[0] + 1, -step) if len(idx) else slice(0, 0))
                flips.append(sum(1 for kk in key[:i] if not isinstance(kk, int)))
            else:
                fixed.append(k)
        if flips:
            out = self.read(tuple(fixed))
            return out[tuple(slice(None, None, -1) if a in flips else slice(None)
                             for a in range(out.ndim))]
        if not self.decoder.fast:
            return self._via_zarr(key)
        bounds = [(k, k + 1, 1) if isinstance(k, int) else k.indices(n)
                  for k, n in zip(key, self.shape)]
        out_shape = tuple(len(range(*b)) for b in bounds)
        out = np.empty(out_shape, dtype=self.dtype)
        if 0 in out_shape:
            return _squeeze(out, key)
        # per axis, once: each chunk touched, the part of it selected, where that goes
        axes = []
        for (start, stop, step), c in zip(bounds, self.chunks):
            idx = range(start, stop, step)
            entries = []
            for g in range(idx[0] // c, idx[-1] // c + 1):
                lo, hi = max(start, g * c), min(stop, (g + 1) * c)
                if step != 1:
                    lo = start + -(-(lo - start) // step) * step
                if lo >= hi:
                    continue
                d = (lo - start) // step
                entries.append((g, slice(lo - g * c, hi - g * c, step),
                                slice(d, d + len(range(lo, hi, step)))))
            axes.append(entries)
        tasks = [(tuple(e[0] for e in combo), tuple(e[1] for e in combo),
                  tuple(e[2] for e in combo)) for combo in _product(axes)]
        self._fill(out, tasks)
        return _squeeze(out, key)

    def _fill(self, out: np.ndarray, tasks: list) -> None:
        refs = self.node.refs
        pending: list[tuple] = []
        size = 0
        for index, src, dst in tasks:
            kind, value = refs.lookup(index)
            if kind == "missing":
                out[dst] = self.fill_value
            elif kind == "inline":
                out[dst] = self.decoder.decode(value)[src]
            else:
                pending.append((value, src, dst))
                size += value[2]
                if size >= BATCH_BYTES:
                    self._decode_into(out, pending)
                    pending, size = [], 0
        if pending:
            self._decode_into(out, pending)

    def _decode_into(self, out: np.ndarray, pending: list) -> None:
        raw = self.session.read([p[0] for p in pending])
        decode = self.decoder.decode

        def work(lo: int, hi: int) -> None:
            for i in range(lo, hi):
                _, src, dst = pending[i]
                out[dst] = decode(raw[i])[src]
        n = len(pending)
        parts = min(n, 4 * (os.cpu_count() or 2))  # a few tasks per thread, not one per chunk
        if parts <= 1 or sum(p[0][2] for p in pending) < INLINE_DECODE:
            work(0, n)
            return
        bounds = [n * k // parts for k in range(parts + 1)]
        for f in [_pool().submit(work, a, b) for a, b in zip(bounds, bounds[1:])]:
            f.result()

    def _via_zarr(self, key: tuple) -> np.ndarray:
        if self._zarr is None:
            zarr = need("zarr", **VIRTUAL)

            from .zarrstore import ChunkStore

            group = zarr.open_group(store=ChunkStore(self.session), mode="r")
            self._zarr = group[self.node.path]
        out = np.asarray(self._zarr[key])
        return out.astype(object) if self.dtype.kind == "O" and out.dtype.kind != "O" else out


def _normalize(key: Any, shape: tuple[int, ...]) -> tuple:
    if not isinstance(key, tuple):
        key = (key,)
    if any(k is Ellipsis for k in key):
        i = key.index(Ellipsis)
        key = key[:i] + (slice(None),) * (len(shape) - len(key) + 1) + key[i + 1:]
    key = key + (slice(None),) * (len(shape) - len(key))
    out = []
    for k, n in zip(key, shape):
        if isinstance(k, (int, np.integer)):
            k = int(k)
            if k < 0:
                k += n
            if not 0 <= k < n:
                raise IndexError(f"index {k} is out of bounds for a dimension of {n}")
        elif not isinstance(k, slice):
            raise TypeError(f"only ints and slices select here, not {type(k).__name__}")
        out.append(k)
    return tuple(out)


def _squeeze(out: np.ndarray, key: tuple) -> np.ndarray:
    drop = tuple(i for i, k in enumerate(key) if isinstance(k, int))
    return out.squeeze(axis=drop) if drop else out


def _product(axes: list[list]) -> Iterable[tuple]:
    import itertools

    return itertools.product(*axes)


# -- xarray -----------------------------------------------------------------------------------------
def _xr_array(va: VirtualArray):
    BackendArray = need("xarray.backends", **VIRTUAL).BackendArray
    indexing = need("xarray.core.indexing", **VIRTUAL)

    class _Backend(BackendArray):
        def __init__(self) -> None:
            self.shape, self.dtype = va.shape, va.dtype

        def __getitem__(self, key):
            return indexing.explicit_indexing_adapter(
                key, self.shape, indexing.IndexingSupport.BASIC, va.read)

    return indexing.LazilyIndexedArray(_Backend())


def dataset(session: Session, group: str = "", *, decode: bool = True, **decode_options):
    """The group ``group`` of an open session as an ``xarray.Dataset``: one lazily read
    variable per array child, attributes with their recorded types (CHK-003), CF-decoded
    as ``xarray.open_dataset`` decodes the source (``decode=False``: raw)."""
    xr = need("xarray", **VIRTUAL)

    nodes = session.manifest.nodes
    if group not in nodes or nodes[group].is_array:
        raise VirtualError(f"no group {group!r} in the chunk manifest", code="DM151")
    prefix = group + "/" if group else ""
    from .codecs import restore

    def attrs_of(node: virtual.Node) -> dict:
        types = node.attribute_types
        return {k: restore(v, types.get(k)) for k, v in
                (node.metadata.get("attributes") or {}).items()}

    variables = {}
    for path, node in nodes.items():
        if not node.is_array or not path.startswith(prefix) or "/" in path[len(prefix):]:
            continue
        name = path[len(prefix):]
        va = VirtualArray(session, node)
        dims = node.metadata.get("dimension_names") or [f"dim_{i}" for i in range(len(va.shape))]
        variables[name] = xr.Variable(dims, _xr_array(va), attrs_of(node))
    ds = xr.Dataset(variables, attrs=attrs_of(nodes[group]))
    if not decode:
        return ds
    ds = xr.decode_cf(ds, **decode_options)
    # what open_dataset makes coordinates: the variables named like a dimension
    coords = [n for n in ds.data_vars if n in ds.dims]
    return ds.set_coords(coords) if coords else ds


def open_virtual(source: Any, *, group: str = "", document_url: str | None = None,
                 verify: bool = True, decode: bool = True,
                 credentials: dict[str, str] | None = None, **decode_options):
    """Open a chunk manifest as an ``xarray.Dataset`` (SCHEMA.md §25).

    Sources are checked against their recorded identity before their first chunk is read.

    Parameters
    ----------
    source : str, PathLike, dict or ChunkManifest
        A path or URL of a ``.chunks.json`` document, its parsed dict, or a
        :class:`~datamanifest.spec.virtual.ChunkManifest`.
    group : str
        The group to open (``""``: the root).
    document_url : str, optional
        What relative source URLs resolve against (default: the document's own location,
        CHK-007).
    verify : bool
        Check each source's size and identity before its first read (CHK-011).
    decode : bool
        Decode CF conventions (times, scale/offset) as ``xarray.open_zarr`` does.
    credentials : dict of str to str, optional
        A source URL as the document records it (redacted, SEC-002) -> the URL to read it with.
    **decode_options
        Passed to ``xarray.open_zarr`` (``chunks=``, ``decode_times=``, ...).

    Returns
    -------
    xarray.Dataset
        Lazily read: each chunk is one byte range of its source.

    Raises
    ------
    VirtualError
        DM150/DM151 a malformed document, DM152 a source that changed, DM155 the document's
        checksum does not match; DM002/DM074 when it cannot be read.
    """
    manifest, doc_url = load_manifest(source, document_url)
    return dataset(Session(manifest, doc_url, verify=verify, credentials=credentials), group,
                   decode=decode, **decode_options)


def load_manifest(source: Any, document_url: str | None = None
                  ) -> tuple[virtual.ChunkManifest, str | None]:
    """(parsed manifest, the URL its relative sources resolve against) of a path, URL,
    dict or :class:`~datamanifest.spec.virtual.ChunkManifest`."""
    if isinstance(source, virtual.ChunkManifest):
        return source, document_url or source.document_url
    if isinstance(source, dict):
        doc = source
    else:
        text, url = _read_document(os.fspath(source))
        try:
            doc = json.loads(text)
        except ValueError as e:
            raise VirtualError(f"not a chunk manifest: not JSON ({e.msg})",
                               code="DM150", file=os.fspath(source),
                               line=getattr(e, "lineno", None), column=getattr(e, "colno", None),
                               hint="a chunk manifest is the JSON document `datamanifest "
                                    "virtualize` writes (SCHEMA.md §25.1)") from e
        if not isinstance(doc, dict):
            raise VirtualError("not a chunk manifest: not a JSON object",
                               code="DM150", file=os.fspath(source))
        document_url = document_url or url
    try:
        manifest = virtual.parse(doc)
    except virtual.ChunkManifestError as e:
        where = "/" + "/".join(map(str, e.path))
        shown = None
        if document_url:
            from ..io.places import local_path

            shown = str(local_path(document_url)) if document_url.startswith("file://") else \
                document_url
        raise VirtualError(f"chunk manifest: {e.message} (at {where})", code=e.code,
                           file=shown, hint="run `datamanifest check` on it") from e
    manifest.document_url = document_url
    return manifest, document_url


def _read_document(location: str) -> tuple[str, str]:
    from pathlib import Path

    if "://" not in location or location.startswith("file://"):
        from ..io.places import local_path

        p = Path(local_path(location)).resolve()
        try:
            return p.read_text(encoding="utf-8"), p.as_uri()
        except FileNotFoundError:
            raise VirtualError("no chunk manifest here", code="DM074", file=str(p)) from None
        except (OSError, UnicodeDecodeError) as e:
            why = e.strerror if isinstance(e, OSError) else "not UTF-8 text"
            raise VirtualError(f"cannot be read: {why}", code="DM002", file=str(p),
                               hint="give the path or URL of a chunk manifest (.chunks.json)"
                               ) from e
    r = open_ranges(location, VirtualError)
    try:
        size = r.identity().size
        return bytes(r.read_ranges([(0, size)])[0]).decode("utf-8"), location
    finally:
        r.close()


def decode_inline(b64: str) -> bytes:
    return base64.b64decode(b64)

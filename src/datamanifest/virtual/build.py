"""Building chunk manifests: one source by its format, many along a dimension
(SCHEMA.md CHK-020..CHK-024).

:func:`parse_source` detects a source's format (HDF5/NetCDF4, NetCDF classic, a Zarr
store, kerchunk references) and runs its parser, recording the source's identity
(CHK-002). :func:`virtualize` does that for many sources, through any
``concurrent.futures.Executor`` (a ``dask.distributed`` client's included), and
concatenates the results after checking that they agree (CHK-024).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import VirtualError
from ..spec import chunks as spec
from .readers import BlockFile, open_reader

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


@dataclass(frozen=True)
class Options:
    """How sources are parsed: ``split_contiguous`` (bytes; cut contiguous variables into
    chunks of at most this size), ``inline_unsupported`` (load variables whose filters have
    no codec, CHK-021), ``inline_max_bytes`` (inline arrays up to this size)."""

    split_contiguous: int | None = None
    inline_unsupported: bool = False
    inline_max_bytes: int = 0


def absolute_url(source: str | os.PathLike) -> str:
    """A source as an absolute URL: local paths become ``file://`` URLs."""
    text = os.fspath(source)
    if "://" in text:
        return text
    return Path(text).resolve().as_uri()


def parse_source(source: str | os.PathLike, options: Options = Options(), *,
                 url: str | None = None) -> spec.ChunkManifest:
    """The chunk manifest of one source (CHK-020..CHK-023), its identity recorded.

    ``url``: what the sources table says (default: the source's absolute URL).
    Raises :class:`VirtualError` (DM153 unsupported format or filter, DM074 absent).
    """
    absolute = absolute_url(source)
    written = url or absolute
    local = absolute.startswith("file://")
    path = Path(absolute[len("file://"):]) if local else None
    if absolute.endswith((".json", ".json.gz")) or (local and path.is_dir() and (
            path.suffix in (".parq", ".parquet") or _kerchunk_parquet(path))):
        from . import kerchunk  # a Parquet folder first: its .zmetadata is not a Zarr store's

        return kerchunk.import_references(absolute)
    if local and path.is_dir():
        from . import zarrsrc

        return zarrsrc.parse(path, written)
    reader = open_reader(absolute)
    try:
        ident = reader.identity()
        head = bytes(reader.read_ranges([(0, min(8, ident.size))])[0]) if ident.size else b""
        if head[:3] == b"CDF":
            from . import netcdf3

            f = open(path, "rb") if local else BlockFile(reader, ident.size, 64 * 1024)
            try:
                m = netcdf3.parse(f, written, size=ident.size,
                                  split_contiguous=options.split_contiguous)
            finally:
                f.close()
        elif head == HDF5_SIGNATURE or _hdf5_later(reader, ident.size):
            from . import hdf5

            target = str(path) if local else BlockFile(reader, ident.size)
            m = hdf5.parse(target, written, size=ident.size,
                           split_contiguous=options.split_contiguous,
                           inline_unsupported=options.inline_unsupported,
                           inline_max_bytes=options.inline_max_bytes)
        else:
            raise VirtualError(f"{absolute}: not an HDF5, NetCDF4 or NetCDF classic file",
                               code="DM153", hint="chunk manifests are built from NetCDF/HDF5 "
                               "files, Zarr stores and kerchunk references")
    finally:
        reader.close()
    src = m.sources[0]
    src.etag, src.last_modified = ident.etag, ident.last_modified
    return m


def _kerchunk_parquet(folder: Path) -> bool:
    """A kerchunk Parquet reference folder: a ``.zmetadata`` with ``record_size`` (a Zarr
    v2 store's consolidated metadata has none)."""
    import json

    meta = folder / ".zmetadata"
    if not meta.is_file():
        return False
    try:
        return "record_size" in json.loads(meta.read_text(encoding="utf-8"))
    except (OSError, ValueError, TypeError):
        return False


def _hdf5_later(reader, size: int) -> bool:
    """HDF5 files may start after a user block of 512, 1024, 2048, ... bytes."""
    at = 512
    while at + 8 <= min(size, 1 << 20):
        if bytes(reader.read_ranges([(at, 8)])[0]) == HDF5_SIGNATURE:
            return True
        at *= 2
    return False


#: from this many sources on, ``virtualize`` parses in forked worker processes by default
#: (HDF5 serializes its calls inside one process, so threads would not help)
PROCESS_MIN = 16


def virtualize(sources: Sequence[str | os.PathLike] | str | os.PathLike, *,
               concat_dim: str | None = None, executor: Executor | None = None,
               options: Options = Options(), base: str | None = None,
               progress: Callable[[int], None] | None = None,
               jobs: int | None = None) -> spec.ChunkManifest:
    """One chunk manifest over ``sources`` (SCHEMA.md §25).

    Several sources are concatenated along ``concat_dim`` after the checks of CHK-024;
    they are parsed through ``executor`` when given (``Client.get_executor()`` of
    dask.distributed works), else by ``jobs`` forked processes (default: one per core
    from :data:`PROCESS_MIN` sources on; 1: in this process). ``base``: write source URLs
    relative to this URL where they lie under it (CHK-007). ``progress(n)`` is called as
    sources finish. Raises :class:`VirtualError` (DM154 when they disagree, naming both
    files).
    """
    if isinstance(sources, (str, os.PathLike)):
        sources = [sources]
    sources = list(sources)
    if not sources:
        raise VirtualError("nothing to virtualize: no sources given", code="DM150")
    if len(sources) > 1 and not concat_dim:
        raise VirtualError(f"{len(sources)} sources need a dimension to be concatenated along",
                           code="DM154", hint="give concat_dim (--concat-dim), e.g. time")
    parts: list[spec.ChunkManifest] = []
    workers = jobs if jobs is not None else (
        min(8, os.cpu_count() or 1) if len(sources) >= PROCESS_MIN else 1)
    own = None
    if executor is None and workers > 1 and len(sources) > 1 and hasattr(os, "fork"):
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        executor = own = ProcessPoolExecutor(workers,
                                             mp_context=multiprocessing.get_context("fork"))
    if executor is not None and len(sources) > 1:
        try:
            if own is not None:  # our own processes: a few batches each, not a task per file
                step = max(1, len(sources) // (workers * 3))
                batches = [sources[i:i + step] for i in range(0, len(sources), step)]
                futures = [executor.submit(_parse_batch, b, options) for b in batches]
                for f, b in zip(futures, batches):
                    parts.extend(f.result())
                    if progress:
                        progress(len(b))
            else:
                futures = [executor.submit(parse_source, s, options) for s in sources]
                for f in futures:
                    parts.append(f.result())
                    if progress:
                        progress(1)
        finally:
            if own is not None:
                own.shutdown()
    else:
        for s in sources:
            parts.append(parse_source(s, options))
            if progress:
                progress(1)
    result = parts[0] if len(parts) == 1 else concatenate(parts, concat_dim)
    if base is not None:
        rebase(result, base)
    return result


def _parse_batch(sources: list, options: Options) -> list[spec.ChunkManifest]:
    return [parse_source(s, options) for s in sources]


def rebase(manifest: spec.ChunkManifest, base: str) -> None:
    """Write source URLs under ``base`` relative to it, and set the document's ``base``."""
    folder = base if base.endswith("/") else base + "/"
    for s in manifest.sources:
        if s.url.startswith(folder):
            s.url = s.url[len(folder):]
    manifest.base = folder


# -- concatenation (CHK-024) -------------------------------------------------------------------
_PACKING = ("scale_factor", "add_offset", "_FillValue", "missing_value")


def _disagree(what: str, a: spec.ChunkManifest, b: spec.ChunkManifest, detail: str) -> VirtualError:
    return VirtualError(f"{a.sources[0].url} and {b.sources[0].url} cannot be concatenated: "
                        f"{what}: {detail}", code="DM154",
                        hint="concatenate files written alike (same codecs, chunks, packing)")


def concatenate(parts: list[spec.ChunkManifest], dim: str) -> spec.ChunkManifest:
    """Concatenate single-source manifests along ``dim`` (CHK-024). Raises
    :class:`VirtualError` (DM154) naming both files and the difference."""
    first = parts[0]
    for p in parts[1:]:
        if set(p.nodes) != set(first.nodes):
            diff = sorted(set(p.nodes) ^ set(first.nodes))
            raise _disagree("variables differ", first, p, ", ".join(diff[:5]))
    sources: list[spec.Source] = []
    offsets: list[int] = []
    for p in parts:
        offsets.append(len(sources))
        sources.extend(p.sources)
    nodes: dict[str, spec.Node] = {}
    found_dim = False
    for path, node in first.nodes.items():
        if not node.is_array:
            nodes[path] = node
            continue
        names = node.metadata.get("dimension_names") or []
        if dim not in names:
            _same_everywhere(path, parts, offsets)
            nodes[path] = node
            continue
        found_dim = True
        axis = names.index(dim)
        if path.rsplit("/", 1)[-1] == dim:  # the coordinate itself: loaded and inlined
            _check_units(path, parts)
            nodes[path] = _inline_concatenated(path, axis, parts)
            continue
        try:
            nodes[path] = _concat_array(path, axis, parts, offsets)
        except _Misaligned:
            if _nbytes(parts, path) > INLINE_MISALIGNED:
                raise
            nodes[path] = _inline_concatenated(path, axis, parts)
    if not found_dim:
        raise VirtualError(f"no variable has the dimension {dim!r}", code="DM154",
                           hint="name a dimension the files share, e.g. time")
    return spec.ChunkManifest(sources, nodes, first.base, None, dict(first.extra))


#: an array along the dimension whose chunks do not align with the files' boundaries is
#: loaded and inlined when all its values take at most this many bytes (CHK-024)
INLINE_MISALIGNED = 1024 * 1024


class _Misaligned(VirtualError):
    pass


def _nbytes(parts: list[spec.ChunkManifest], path: str) -> int:
    return sum(math.prod(p.nodes[path].metadata["shape"]) * _itemsize(p.nodes[path])
               for p in parts)


def _compare_meta(path: str, node: spec.Node, other: spec.Node, a, b, skip_axis: int | None,
                  *, chunks: bool = True):
    m1, m2 = node.metadata, other.metadata
    for key in (("data_type", "codecs", "fill_value", "dimension_names") if chunks else
                ("data_type", "fill_value", "dimension_names")):
        if m1.get(key) != m2.get(key):
            raise _disagree(f"{path}: {key}", a, b, f"{m1.get(key)} vs {m2.get(key)}")
    c1, c2 = spec.chunk_shape(m1), spec.chunk_shape(m2)
    s1, s2 = m1["shape"], m2["shape"]
    for k in range(len(s1)):
        if k == skip_axis:
            continue
        if s1[k] != s2[k]:
            raise _disagree(f"{path}: shape", a, b, f"{s1} vs {s2}")
    if chunks and c1 != c2:
        raise _disagree(f"{path}: chunk shape", a, b, f"{list(c1)} vs {list(c2)}")
    at1, at2 = m1.get("attributes") or {}, m2.get("attributes") or {}
    for k in _PACKING:
        v1, v2 = at1.get(k), at2.get(k)
        if v1 != v2 or node.attribute_types.get(k) != other.attribute_types.get(k):
            raise _disagree(f"{path}: CF packing {k}", a, b, f"{v1!r} vs {v2!r}")


def _same_everywhere(path: str, parts: list[spec.ChunkManifest], offsets: list[int]) -> None:
    """An array without the dimension MUST be the same in every source: metadata always;
    values when small (read through the references)."""
    node = parts[0].nodes[path]
    small = math.prod(node.metadata["shape"]) * _itemsize(node) <= 16 * 1024 * 1024
    values = _values(parts[0], node) if small else None
    for p in parts[1:]:
        other = p.nodes[path]
        if not other.is_array:
            raise _disagree(f"{path}: kind", parts[0], p, "array vs group")
        _compare_meta(path, node, other, parts[0], p, None)
        if values is not None:
            v2 = _values(p, other)
            if not np.array_equal(values, v2, equal_nan=values.dtype.kind in "fc"):
                raise _disagree(f"{path}: values", parts[0], p,
                                "the variable does not have the concatenated dimension, so it "
                                "must hold the same values in every file")


def _itemsize(node: spec.Node) -> int:
    from .store import Decoder

    return Decoder(node.metadata).dtype.itemsize


def _values(manifest: spec.ChunkManifest, node: spec.Node) -> np.ndarray:
    """An array's values: those its parser kept (small arrays), else read through the
    references."""
    if node.values is not None:
        return node.values
    from .store import Session, VirtualArray

    with Session(manifest) as s:
        return np.asarray(VirtualArray(s, node)[...])


def _concat_array(path: str, axis: int, parts: list[spec.ChunkManifest],
                  offsets: list[int]) -> spec.Node:
    first = parts[0].nodes[path]
    chunk = spec.chunk_shape(first.metadata)
    total = 0
    for i, p in enumerate(parts):
        node = p.nodes[path]
        _compare_meta(path, first, node, parts[0], p, axis)
        n = node.metadata["shape"][axis]
        if i < len(parts) - 1 and n % chunk[axis]:
            e = _disagree(f"{path}: length along the dimension", parts[0], p,
                          f"{n} is not a multiple of the chunk length {chunk[axis]}, so the "
                          "next file's chunks would not start on a chunk boundary")
            raise _Misaligned(e.message, code="DM154", hint=e.hint)
        total += n
    meta = dict(first.metadata)
    shape = list(meta["shape"])
    shape[axis] = total
    meta["shape"] = shape
    grid = spec.grid_shape(meta)
    src: list[np.ndarray] = []
    off: list[np.ndarray] = []
    ln: list[np.ndarray] = []
    inline: dict[str, bytes] = {}
    done = 0
    for p, base in zip(parts, offsets):
        r = p.nodes[path].refs
        g = r.grid
        if r.chunks is not None:
            cols = _columns(r)
        else:
            cols = (np.asarray(r.source, dtype=np.int64), np.asarray(r.offset, dtype=np.int64),
                    np.asarray(r.length, dtype=np.int64))
        s_, o_, l_ = (c.reshape(g) for c in cols)
        s_ = np.where(s_ >= 0, s_ + base, s_)
        src.append(s_)
        off.append(o_)
        ln.append(l_)
        for k, data in r.inline.items():
            idx = list(spec.parse_index_key(k, len(g)))
            idx[axis] += done
            inline[spec.index_key(tuple(idx))] = data
        done += g[axis]
    s = np.concatenate(src, axis=axis).ravel()
    o = np.concatenate(off, axis=axis).ravel()
    length = np.concatenate(ln, axis=axis).ravel()
    assert s.size == math.prod(grid)
    return spec.Node(path, meta, spec.Refs(grid, s.tolist(), o.tolist(), length.tolist(), None,
                                           inline), dict(first.attribute_types))


def _columns(r: spec.Refs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = r.count
    s = np.full(n, spec.MISSING, dtype=np.int64)
    o = np.zeros(n, dtype=np.int64)
    ln = np.zeros(n, dtype=np.int64)
    for key, (a, b, c) in (r.chunks or {}).items():
        pos = r.linear(spec.parse_index_key(key, len(r.grid)))
        s[pos], o[pos], ln[pos] = a, b, c
    return s, o, ln


def _check_units(path: str, parts: list[spec.ChunkManifest]) -> None:
    a0 = parts[0].nodes[path].metadata.get("attributes") or {}
    for p in parts[1:]:
        a = p.nodes[path].metadata.get("attributes") or {}
        for k in ("units", "calendar"):
            if a.get(k) != a0.get(k):
                raise _disagree(f"{path}: {k} of the concatenated coordinate", parts[0], p,
                                f"{a0.get(k)!r} vs {a.get(k)!r}")


def _inline_concatenated(path: str, axis: int, parts: list[spec.ChunkManifest]) -> spec.Node:
    """An array along the concatenated dimension, loaded from every source, concatenated
    and written inline as one chunk with the ``bytes`` codec (CHK-024)."""
    from . import codecs as zc

    first = parts[0].nodes[path]
    for p in parts[1:]:
        _compare_meta(path, first, p.nodes[path], parts[0], p, axis, chunks=False)
    values = np.concatenate([_values(p, p.nodes[path]) for p in parts], axis=axis)
    meta = dict(first.metadata)
    meta["shape"] = list(values.shape)
    meta["chunk_grid"] = {"name": "regular",
                          "configuration": {"chunk_shape": [max(1, n) for n in values.shape]}}
    meta["codecs"] = [zc.bytes_codec(values.dtype)]
    grid = spec.grid_shape(meta)
    refs = spec.Refs(grid, [spec.MISSING] * math.prod(grid), [0] * math.prod(grid),
                     [0] * math.prod(grid))
    if values.size:
        refs.inline[spec.index_key((0,) * values.ndim)] = np.ascontiguousarray(values).tobytes()
    return spec.Node(path, meta, refs, dict(first.attribute_types))

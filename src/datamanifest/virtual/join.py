"""Joining chunk manifests along a dimension (SCHEMA.md CHK-024).

:func:`split_joined` cuts the contiguous arrays of the sources of a join into chunks of
one length; :func:`concatenate` checks that single-source manifests agree (variables,
codecs, chunks, CF packing, the values of arrays without the dimension, the units of the
concatenated coordinate) and joins their references into one manifest, column-wise.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import VirtualError
from ..spec import virtual
# -- contiguous arrays cut into rows (CHK-020, CHK-024) ---------------------------------------------
def _contiguous(node: virtual.Node) -> tuple[int, int, int] | None:
    """(source, offset, bytes per row) of an array stored as one uncompressed byte range
    (``bytes`` codec only, one chunk covering it), else None."""
    meta = node.metadata
    if not node.is_array or not meta["shape"] or node.refs.count != 1 or \
            [c["name"] for c in meta["codecs"]] != ["bytes"] or \
            list(virtual.chunk_shape(meta)) != list(meta["shape"]) or node.refs.inline:
        return None
    refs = list(node.refs.references())
    if len(refs) != 1 or not meta["shape"][0]:
        return None
    _, src, off, n = refs[0]
    rows = meta["shape"][0]
    return (src, off, n // rows) if n % rows == 0 else None


def split_rows(node: virtual.Node, per: int) -> None:
    """Cut a contiguous array (:func:`_contiguous`) into chunks of ``per`` rows along its
    first axis; the last chunk may be partial (it lies at the end of the range)."""
    src, off, row = _contiguous(node)  # type: ignore[misc]
    meta = node.metadata
    rows = meta["shape"][0]
    meta["chunk_grid"] = {"name": "regular",
                          "configuration": {"chunk_shape": [per, *meta["shape"][1:]]}}
    grid = virtual.grid_shape(meta)
    count = math.prod(grid)
    node.refs = virtual.Refs(grid, [src] * count, [off + i * per * row for i in range(count)],
                          [min(per, rows - i * per) * row for i in range(count)])


def _divisor_at_most(n: int, target: int) -> int:
    return max(d for d in range(1, min(target, n) + 1) if n % d == 0)


def split_joined(parts: list[virtual.ChunkManifest], dim: str | None, size: int) -> None:
    """CHK-024: cut the contiguous arrays of the sources of a join into chunks of at most
    ``size`` bytes with *one* chunk length per array for all of them: a divisor of every
    source's length along the first axis (so every source starts on a chunk boundary and
    every chunk is whole)."""
    for path, node in parts[0].nodes.items():
        if not node.is_array:
            continue
        found = [p.nodes.get(path) for p in parts]
        infos = [_contiguous(n) if n is not None else None for n in found]
        if any(i is None for i in infos):
            continue
        row = infos[0][2]
        rows = [n.metadata["shape"][0] for n in found]
        if not row or (len(set(rows)) == 1 and rows[0] * row <= size):
            continue
        common = 0
        for r in rows:
            common = math.gcd(common, r)
        per = _divisor_at_most(common, max(1, size // row))
        for n in found:
            split_rows(n, per)


def _shown(source: str | os.PathLike) -> str:
    """A source as messages name it: a local path, or the URL."""
    text = os.fspath(source)
    if text.startswith("file://"):
        from ..io.places import local_path

        return str(local_path(text))
    return text if "://" in text else str(Path(text).resolve())



# -- concatenation (CHK-024) -------------------------------------------------------------------
_PACKING = ("scale_factor", "add_offset", "_FillValue", "missing_value")


def _disagree(what: str, a: virtual.ChunkManifest, b: virtual.ChunkManifest, detail: str) -> VirtualError:
    # located at the file that disagrees with the first one; the message names both
    return VirtualError(f"{a.sources[0].url} and {b.sources[0].url} cannot be concatenated: "
                        f"{what}: {detail}", code="DM154", file=_shown(b.sources[0].url),
                        hint="concatenate files written alike (same codecs, chunks, packing)")


def concatenate(parts: list[virtual.ChunkManifest], dim: str) -> virtual.ChunkManifest:
    """Concatenate single-source manifests along ``dim`` (CHK-024). Raises
    :class:`VirtualError` (DM154) naming both files and the difference."""
    first = parts[0]
    for p in parts[1:]:
        if set(p.nodes) != set(first.nodes):
            diff = sorted(set(p.nodes) ^ set(first.nodes))
            raise _disagree("variables differ", first, p, ", ".join(diff[:5]))
    sources: list[virtual.Source] = []
    offsets: list[int] = []
    for p in parts:
        offsets.append(len(sources))
        sources.extend(p.sources)
    nodes: dict[str, virtual.Node] = {}
    found_dim = False
    # the concatenated coordinates (and their bounds) whose units differ only in the
    # reference date: decoded and re-encoded in the first source's units (CHK-024)
    recoded: dict[str, str] = {}
    for path, node in first.nodes.items():
        if node.is_array and path.rsplit("/", 1)[-1] == dim and _check_units(path, parts):
            recoded[path] = path
            bounds = (node.metadata.get("attributes") or {}).get("bounds")
            if isinstance(bounds, str):
                sibling = path.rpartition("/")[0]
                recoded[f"{sibling}/{bounds}" if sibling else bounds] = path
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
        if path.rsplit("/", 1)[-1] == dim or path in recoded:
            # the coordinate itself (and bounds that must follow its units): loaded, inlined
            nodes[path] = _inline_concatenated(path, axis, parts, recoded.get(path))
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
    return virtual.ChunkManifest(sources, nodes, first.base, None, dict(first.extra))


#: an array along the dimension whose chunks do not align with the files' boundaries is
#: loaded and inlined when all its values take at most this many bytes (CHK-024)
INLINE_MISALIGNED = 1024 * 1024


class _Misaligned(VirtualError):
    pass


def _misaligned_hint(path: str, axis: int, parts: list[virtual.ChunkManifest]) -> str:
    """What would join the files: for contiguous arrays, ``--split-contiguous`` with a size
    whose rows divide every file's length but the last one's."""
    lengths = [p.nodes[path].metadata["shape"][axis] for p in parts]
    infos = [_contiguous(p.nodes[path]) for p in parts]
    if axis == 0 and all(i is not None for i in infos):
        common = 0
        for r in lengths:
            common = math.gcd(common, r)
        row = infos[0][2]
        return (f"the files hold {', '.join(map(str, sorted(set(lengths))))} steps along the "
                f"dimension; cut their contiguous variables into chunks whose length "
                f"divides every file's: --split-contiguous {common * row} (bytes: "
                f"{common} step(s) of {row} bytes; split_contiguous= in Python)")
    return ("the files' chunks along the dimension do not line up with their lengths "
            f"({', '.join(map(str, lengths))}); chunked files can only be joined when every "
            "length but the last is a multiple of the chunk length")


def _nbytes(parts: list[virtual.ChunkManifest], path: str) -> int:
    return sum(math.prod(p.nodes[path].metadata["shape"]) * _itemsize(p.nodes[path])
               for p in parts)


def _compare_meta(path: str, node: virtual.Node, other: virtual.Node, a, b, skip_axis: int | None,
                  *, chunks: bool = True):
    m1, m2 = node.metadata, other.metadata
    for key in (("data_type", "codecs", "fill_value", "dimension_names") if chunks else
                ("data_type", "fill_value", "dimension_names")):
        if m1.get(key) != m2.get(key):
            raise _disagree(f"{path}: {key}", a, b, f"{m1.get(key)} vs {m2.get(key)}")
    c1, c2 = virtual.chunk_shape(m1), virtual.chunk_shape(m2)
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


def _same_everywhere(path: str, parts: list[virtual.ChunkManifest], offsets: list[int]) -> None:
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


def _itemsize(node: virtual.Node) -> int:
    from .store import Decoder

    return Decoder(node.metadata).dtype.itemsize


def _values(manifest: virtual.ChunkManifest, node: virtual.Node) -> np.ndarray:
    """An array's values: those its parser kept (small arrays), else read through the
    references."""
    if node.values is not None:
        return node.values
    from .store import Session, VirtualArray

    with Session(manifest) as s:
        return np.asarray(VirtualArray(s, node)[...])


def _concat_array(path: str, axis: int, parts: list[virtual.ChunkManifest],
                  offsets: list[int]) -> virtual.Node:
    first = parts[0].nodes[path]
    chunk = virtual.chunk_shape(first.metadata)
    total = 0
    for i, p in enumerate(parts):
        node = p.nodes[path]
        try:
            _compare_meta(path, first, node, parts[0], p, axis)
        except VirtualError as e:
            if ": chunk shape:" not in e.message:
                raise
            raise VirtualError(e.message, code="DM154",
                               hint=_misaligned_hint(path, axis, parts)) from e
        n = node.metadata["shape"][axis]
        if i < len(parts) - 1 and n % chunk[axis]:
            e = _disagree(f"{path}: length along the dimension", parts[0], p,
                          f"{n} is not a multiple of the chunk length {chunk[axis]}, so the "
                          "next file's chunks would not start on a chunk boundary")
            raise _Misaligned(e.message, code="DM154", hint=_misaligned_hint(path, axis, parts))
        total += n
    meta = dict(first.metadata)
    shape = list(meta["shape"])
    shape[axis] = total
    meta["shape"] = shape
    grid = virtual.grid_shape(meta)
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
            idx = list(virtual.parse_index_key(k, len(g)))
            idx[axis] += done
            inline[virtual.index_key(tuple(idx))] = data
        done += g[axis]
    s = np.concatenate(src, axis=axis).ravel()
    o = np.concatenate(off, axis=axis).ravel()
    length = np.concatenate(ln, axis=axis).ravel()
    assert s.size == math.prod(grid)
    return virtual.Node(path, meta, virtual.Refs(grid, s.tolist(), o.tolist(), length.tolist(), None,
                                           inline), dict(first.attribute_types))


def _columns(r: virtual.Refs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = r.count
    s = np.full(n, virtual.MISSING, dtype=np.int64)
    o = np.zeros(n, dtype=np.int64)
    ln = np.zeros(n, dtype=np.int64)
    for key, (a, b, c) in (r.chunks or {}).items():
        pos = r.linear(virtual.parse_index_key(key, len(r.grid)))
        s[pos], o[pos], ln[pos] = a, b, c
    return s, o, ln


def _check_units(path: str, parts: list[virtual.ChunkManifest]) -> bool:
    """CHK-024: the concatenated coordinate's calendar must be the same in every source;
    its units may differ in their reference date only (``days since 2020-01-01`` and
    ``days since 2020-01-02``, as xarray writes files one by one). Returns whether they
    differ (then the coordinate is re-encoded); raises DM154 for another difference."""
    a0 = parts[0].nodes[path].metadata.get("attributes") or {}
    differ = False
    for p in parts[1:]:
        a = p.nodes[path].metadata.get("attributes") or {}
        if _calendar(a.get("calendar")) != _calendar(a0.get("calendar")):
            raise _disagree(f"{path}: calendar of the concatenated coordinate", parts[0], p,
                            f"{a0.get('calendar')!r} vs {a.get('calendar')!r}")
        u0, u = a0.get("units"), a.get("units")
        if u == u0:
            continue
        s0, s1 = _since(u0), _since(u)
        if s0 is None or s1 is None or s0[0] != s1[0]:
            raise _disagree(f"{path}: units of the concatenated coordinate", parts[0], p,
                            f"{u0!r} vs {u!r}")
        differ = True
    return differ


def _calendar(value: Any) -> str:
    c = (value or "standard").lower()
    return "standard" if c == "gregorian" else c


def _since(units: Any) -> tuple[str, str] | None:
    """(unit, reference) of CF time units ``<unit> since <reference>``."""
    if not isinstance(units, str) or " since " not in units:
        return None
    unit, _, ref = units.partition(" since ")
    return unit.strip().lower(), ref.strip()


def _recode_times(values: np.ndarray, node: virtual.Node, to: virtual.Node, what: str,
                  a: virtual.ChunkManifest, b: virtual.ChunkManifest) -> np.ndarray:
    """Times stored in ``node``'s units, re-encoded exactly in ``to``'s units and data type
    (DM154 when they cannot be: a value that does not fall on a whole unit)."""
    import warnings

    from ..optional import VIRTUAL, need

    times = need("xarray.coding.times", **VIRTUAL)
    decode_cf_datetime, encode_cf_datetime = times.decode_cf_datetime, times.encode_cf_datetime
    attrs, to_attrs = node.metadata.get("attributes") or {}, to.metadata.get("attributes") or {}
    calendar = attrs.get("calendar", "standard")
    flat = np.asarray(values).ravel()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dates = decode_cf_datetime(flat, attrs["units"], calendar)
            out, _, _ = encode_cf_datetime(dates, to_attrs["units"], calendar,
                                           dtype=np.dtype(values.dtype))
            back = decode_cf_datetime(np.asarray(out), to_attrs["units"], calendar)
    except (ValueError, TypeError, OverflowError) as e:
        raise _disagree(f"{what}: times", a, b, f"cannot be re-encoded in "
                        f"{to_attrs['units']!r}: {e}") from e
    if np.asarray(out).dtype != values.dtype or not np.array_equal(back, dates):
        raise _disagree(f"{what}: times", a, b, f"{attrs['units']!r} values do not fall on "
                        f"whole {to_attrs['units']!r} steps of type {values.dtype}")
    return np.asarray(out).reshape(values.shape)


def _inline_concatenated(path: str, axis: int, parts: list[virtual.ChunkManifest],
                         units_of: str | None = None) -> virtual.Node:
    """An array along the concatenated dimension, loaded from every source, concatenated
    and written inline as one chunk with the ``bytes`` codec (CHK-024). ``units_of``: the
    coordinate whose time units each source's values are in; they are re-encoded in the
    first source's."""
    from . import codecs as zc

    first = parts[0].nodes[path]
    for p in parts[1:]:
        _compare_meta(path, first, p.nodes[path], parts[0], p, axis, chunks=False)
    pieces = [_values(p, p.nodes[path]) for p in parts]
    if units_of is not None:
        def holder(p: virtual.ChunkManifest) -> virtual.Node:  # bounds may carry their own units
            own = p.nodes[path]
            return own if "units" in (own.metadata.get("attributes") or {}) else \
                p.nodes[units_of]
        to = holder(parts[0])
        pieces = [pieces[0]] + [_recode_times(v, holder(p), to, path, parts[0], p)
                                for v, p in zip(pieces[1:], parts[1:])]
    values = np.concatenate(pieces, axis=axis)
    meta = dict(first.metadata)
    meta["shape"] = list(values.shape)
    meta["chunk_grid"] = {"name": "regular",
                          "configuration": {"chunk_shape": [max(1, n) for n in values.shape]}}
    meta["codecs"] = [zc.bytes_codec(values.dtype)]
    grid = virtual.grid_shape(meta)
    refs = virtual.Refs(grid, [virtual.MISSING] * math.prod(grid), [0] * math.prod(grid),
                     [0] * math.prod(grid))
    if values.size:
        refs.inline[virtual.index_key((0,) * values.ndim)] = np.ascontiguousarray(values).tobytes()
    return virtual.Node(path, meta, refs, dict(first.attribute_types))

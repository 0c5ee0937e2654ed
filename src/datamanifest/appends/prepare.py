"""Slices: open them, check them against the committed view, encode their chunks
(SCHEMA.md APP-012, APP-022 step 5, APP-023).

Every check runs before a byte is written; a violation is an :class:`AppendError` whose code
(DM161..DM165) and message name the variable and the difference. CF encoding (time units and
calendars, scale/offset packing, fill values) is xarray's own, driven by the encodings the
target's metadata holds, so a slice is stored exactly as ``to_zarr`` would store it.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import AppendError
from ..optional import APPEND, need
from ..spec import appends
from .codecs import ArrayCodec
from .times import (  # noqa: F401 - encode_dates and fast_times are imported from here too
    check_calendar,
    encode_dates,
    fast_times,
    labels_of,
    norm_units,
)

#: arrays without the append dimension are compared with the target's up to this size
COMPARE_LIMIT = 1 << 20  # bytes
_ENCODING_KEYS = ("units", "calendar", "dtype", "_FillValue", "missing_value", "scale_factor",
                  "add_offset")


def open_slice(obj: Any):
    """An ``xarray.Dataset`` from a slice: a Dataset as it is, a Zarr folder or URL ending in
    ``.zarr`` through ``open_zarr``, anything else (NetCDF, HDF5) through ``open_dataset``.
    Raises :class:`AppendError` (DM160) when it cannot be opened."""
    xr = need("xarray", **APPEND)

    if isinstance(obj, xr.Dataset):
        return obj
    if isinstance(obj, xr.DataArray):
        return obj.to_dataset()
    text = os.fspath(obj) if isinstance(obj, (str, os.PathLike)) else None
    if text is None:
        raise AppendError(f"a slice must be a path, a URL or an xarray.Dataset, not "
                          f"{type(obj).__name__}", code="DM160")
    if "://" in text and not text.startswith(("file://", "http://", "https://")):
        from urllib.parse import urlsplit

        try:  # an object-store URL names a bucket and a key (asked before any network call)
            parts = urlsplit(text)
        except ValueError as e:
            raise AppendError(f"the slice {text} is not a valid URL: {e}", code="DM160") from e
        if not parts.netloc or not parts.path.strip("/"):
            raise AppendError(f"the slice {text} names no object", code="DM160",
                              hint=f"{parts.scheme}://bucket/path/slice.nc")
    try:
        p = Path(text)
        if text.rstrip("/").endswith(".zarr") or (p.is_dir() and (
                (p / "zarr.json").exists() or (p / ".zgroup").exists())):
            return xr.open_zarr(text, chunks=None)
        if "://" in text and not text.startswith("file://"):
            from ..io.objects import fsspec_open

            return xr.open_dataset(fsspec_open(text, **APPEND))
        return xr.open_dataset(text)
    except AppendError:
        raise
    except Exception as e:  # noqa: BLE001 - any reader error is the slice's fault
        raise AppendError(f"cannot open the slice {text}: {e}", code="DM160",
                          hint="slices are NetCDF/HDF5 files, Zarr stores or xarray.Datasets"
                          ) from e


def select(ds, cfg: appends.AppendConfig):
    """The slice's variables that the configuration includes (APP-001)."""
    names = [n for n in ds.data_vars if cfg.selects(n)]
    drop = [n for n in ds.data_vars if n not in names]
    return ds.drop_vars(drop) if drop else ds


# -- a new target (APP-023) -----------------------------------------------------------------------------
def _compressor(spec_value: Any, zarr_format: int):
    if spec_value is None:
        return "default"
    if spec_value is False:
        return None
    cfg = dict(spec_value) if isinstance(spec_value, dict) else {"name": spec_value}
    name = cfg.pop("name", None) or cfg.pop("id", None)
    if zarr_format == 3:
        codecs = need("zarr", **APPEND).codecs

        table = {"zstd": codecs.ZstdCodec, "gzip": codecs.GzipCodec, "blosc": codecs.BloscCodec}
        if name not in table:
            raise AppendError(f"compressor {name!r} is not one of zstd, gzip, blosc",
                              code="DM160")
        return table[name](**cfg)
    numcodecs = need("numcodecs", **APPEND)

    return numcodecs.get_codec({"id": name, **cfg})


def create_store(ds, cfg: appends.AppendConfig) -> dict[str, bytes]:
    """Every key of a new target holding the first slice, as ``to_zarr`` writes it
    (consolidated, ``cfg.zarr_format``), with the configured encodings applied."""
    zarr = need("zarr", **APPEND)

    ds = ds.copy()
    encoding: dict[str, dict[str, Any]] = {}
    bounds_of = _bounds(ds)
    for name in list(ds.variables):
        vs = cfg.variable(name)
        e = vs.encoding
        enc: dict[str, Any] = {}
        var = ds[name]
        if vs.dims is not None and list(var.dims) != list(vs.dims):
            raise AppendError(f"variable {name!r} has the dimensions {list(var.dims)}, the "
                              f"configuration says {vs.dims}", code="DM162")
        if e.chunks is not None:
            chunks = e.chunks if isinstance(e.chunks, list) else [e.chunks] * var.ndim
            if len(chunks) != var.ndim:
                raise AppendError(f"variable {name!r}: chunks {e.chunks} do not match its "
                                  f"{var.ndim} dimensions", code="DM165")
            enc["chunks"] = tuple(n if (c is False or c is True) else int(c)
                                  for c, n in zip(chunks, var.shape))
        else:
            src = var.encoding.get("chunks") or var.encoding.get("chunksizes")
            if src and len(src) == var.ndim:
                enc["chunks"] = tuple(min(int(c), max(int(n), 1)) for c, n in zip(src, var.shape))
        for k in ("dtype", "scale_factor", "add_offset", "units", "calendar"):
            v = getattr(e, k)
            if v is not None:
                enc[k] = v
        if e.fill_value is not None:
            enc["_FillValue"] = None if e.fill_value is False else (
                float("nan") if e.fill_value == "NaN" else e.fill_value)
        comp = _compressor(e.compressor, cfg.zarr_format)
        if comp != "default":
            if cfg.zarr_format == 3:
                enc["compressors"] = [comp] if comp is not None else None
            else:
                enc["compressor"] = comp
        # APP-013: the slice's own CF encoding is kept (an explicit encoding given to
        # to_zarr replaces the variable's, so it is carried into it); the source file's
        # codec settings mean nothing to Zarr
        kept = {k: v for k, v in var.encoding.items() if k in _CF_KEYS}
        if _is_time(var) and "_FillValue" not in kept:
            kept["_FillValue"] = None  # no fill value invented for a time coordinate
        enc = {**kept, **enc}
        var.encoding = {}
        if enc:
            encoding[name] = enc
    for bounds, coord in bounds_of.items():  # APP-013: bounds take their coordinate's units
        if bounds in encoding and coord in encoding and not (
                cfg.variable(bounds).encoding.units or cfg.variable(bounds).encoding.calendar):
            for k in ("units", "calendar"):
                if k in encoding[coord]:
                    encoding[bounds][k] = encoding[coord][k]
                else:
                    encoding[bounds].pop(k, None)
        if vs.attrs:
            var.attrs.update(vs.attrs)
    if cfg.attrs and cfg.attrs_update_mode != "ignore":
        ds.attrs.update(cfg.attrs)
    if cfg.attrs_update_mode == "ignore":
        ds.attrs = dict(cfg.attrs)
    store = zarr.storage.MemoryStore()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ds.to_zarr(store, mode="w-", zarr_format=cfg.zarr_format, consolidated=True,
                       encoding=encoding)
        except (ValueError, TypeError) as e:
            raise AppendError(f"the first slice cannot be stored with this encoding: {e}",
                              code="DM163") from e
    return {k: v.to_bytes() for k, v in store._store_dict.items()}


_CF_KEYS = ("units", "calendar", "dtype", "_FillValue", "scale_factor", "add_offset",
            "missing_value")


def _is_time(var) -> bool:
    return var.dtype.kind == "M" or (var.dtype.kind == "O" and var.size > 0 and hasattr(
        np.asarray(var.values).flat[0], "calendar"))


def _bounds(ds) -> dict[str, str]:
    """Bounds variable -> its coordinate (the coordinate's ``bounds`` attribute, or
    encoding after decoding)."""
    out = {}
    for name in ds.variables:
        b = ds[name].attrs.get("bounds") or ds[name].encoding.get("bounds")
        if isinstance(b, str) and b in ds.variables:
            out[b] = name
    return out


# -- an existing target (APP-012) ---------------------------------------------------------------------
@dataclass
class Prepared:
    """A slice checked and encoded: ``count`` steps along the dimension, the encoded values
    of each array along it (``arrays``), the slice's attributes and labels."""

    count: int
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    attrs: dict[str, Any] = field(default_factory=dict)
    labels: list[float] | None = None


_DECODED_CACHE: dict[str, Any] = {}


def _fingerprint(view: appends.CommittedView) -> str:
    """The view without its shapes: what the decoded encodings depend on."""
    parts = []
    for name in sorted(view.arrays):
        meta = dict(view.arrays[name].metadata)
        meta.pop("shape", None)
        parts.append([name, meta])
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def decoded_view(view: appends.CommittedView):
    """The committed view opened by xarray without reading a chunk (its variables'
    ``encoding`` and decoded dtypes); cached by the view's metadata apart from shapes."""
    fp = _fingerprint(view)
    got = _DECODED_CACHE.get(fp)
    if got is not None:
        return got
    xr = need("xarray", **APPEND)
    zarr = need("zarr", **APPEND)
    default_buffer_prototype = need("zarr.core.buffer", **APPEND).default_buffer_prototype

    store = zarr.storage.MemoryStore()
    buf = default_buffer_prototype().buffer
    store._store_dict[appends.root_key(view.zarr_format)] = buf.from_bytes(appends.root_bytes(view))
    if view.zarr_format == 2:
        store._store_dict[".zgroup"] = buf.from_bytes(b'{"zarr_format": 2}')
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # times stay encoded: decoding probes values, and this view has no chunks
        ds = xr.open_zarr(store, consolidated=True, chunks=None, zarr_format=view.zarr_format,
                          decode_times=False, decode_timedelta=False)
    if len(_DECODED_CACHE) > 64:
        _DECODED_CACHE.clear()
    _DECODED_CACHE[fp] = ds
    return ds


_HINTS = {
    "DM161": "select variables with included_variables / excluded_variables",
    "DM162": "slices must share the target's dimensions; only the append dimension grows",
    "DM163": "convert the slice to the target's data type and units first",
    "DM164": "slices must continue the target in order; see append_step",
    "DM165": "the chunks of an existing target cannot change; drop the chunks setting",
}


def describe(ds, cfg: appends.AppendConfig) -> dict[str, Any]:
    """A slice as the data :func:`datamanifest.spec.appends.check_slice` checks."""
    variables = {}
    for name in ds.variables:
        v = ds[name]
        d: dict[str, Any] = {"dims": list(v.dims), "shape": [int(n) for n in v.shape],
                             "dtype": str(v.dtype)}
        if "units" in v.attrs:
            d["units"] = v.attrs["units"]
        variables[name] = d
    labels, unit = None, None
    if cfg.append_dim in ds.variables:
        values = np.asarray(ds[cfg.append_dim].values)
        labels = labels_of(values)
        unit = "ns" if values.dtype.kind in "MO" else None
        if values.dtype.kind == "O" and labels is not None:  # cftime dates: show as written
            return {"variables": variables, "labels": labels, "label_unit": unit,
                    "label_text": [str(v)[:19].replace(" ", "T").removesuffix("T00:00:00")
                                   for v in values.ravel()]}
    return {"variables": variables, "labels": labels, "label_unit": unit}


class TargetModel:
    """What an append needs to know of a committed view: its codecs, decoded encodings and
    the checks of APP-012."""

    def __init__(self, view: appends.CommittedView, cfg: appends.AppendConfig) -> None:
        self.view, self.cfg = view, cfg
        self.dim = cfg.append_dim
        self.step = appends.parse_step(cfg.append_step)
        if view.length(self.dim) is None:
            raise AppendError(f"no array of the target has the append dimension {self.dim!r}",
                              code="DM162", hint="set append_dim (--dim)")
        self.codecs = {n: ArrayCodec(a) for n, a in view.arrays.items()}
        self.decoded = decoded_view(view)
        #: values of arrays without the dimension already found equal to the target's
        self.verified: dict[str, np.ndarray] = {}
        #: (length, last label) once this process has committed (saves a chunk read)
        self.known_last: tuple[int, float] | None = None
        self._last_text: str | None = None  # the last label as written (cftime dates)

    def encoding(self, name: str) -> dict[str, Any]:
        """The CF encoding the target stores ``name`` with (what ``to_zarr`` would use)."""
        var = self.decoded[name]
        out = {k: var.encoding[k] for k in _ENCODING_KEYS if k in var.encoding}
        if self.is_time(name):
            out["units"] = var.attrs["units"]
            out["calendar"] = var.attrs.get("calendar", "standard")
            out.setdefault("dtype", var.dtype)
        return out

    def is_time(self, name: str) -> bool:
        return appends.decoded_kind(self.view.arrays[name]) == "datetime"

    # -- the checks (APP-012) -------------------------------------------------------------------
    def prepare(self, ds, read) -> Prepared:
        """Check ``ds`` against the view and encode it. ``read(key)`` reads committed bytes
        (the last label, the arrays without the dimension). Raises AppendError DM161..DM165."""
        view, dim = self.view, self.dim
        for name in view.arrays:  # APP-014: calendars first, labels are compared in them
            if name in ds.variables and self.is_time(name) and ds[name].dtype.kind in "MO":
                check_calendar(name, ds[name].variable,
                               self.encoding(name).get("calendar", "standard"))
        desc = describe(ds, self.cfg)
        labels = desc.get("labels")
        last = None
        if labels is not None:
            if self.known_last is not None and self.known_last[0] == view.length(dim):
                last = self.known_last[1]
            else:
                last = self._last_label(read)
            if self._last_text is not None:
                desc["last_label_text"] = self._last_text
        try:
            count = appends.check_slice(view, self.cfg, desc, last)
        except appends.AppendSpecError as e:
            raise AppendError(e.message, code=e.code, hint=_HINTS.get(e.code)) from e
        out = Prepared(count, attrs=dict(ds.attrs), labels=labels)
        for name, a in view.arrays.items():
            var = ds[name].variable
            if dim not in a.dims:
                seen = self.verified.get(name)
                if seen is not None and seen.dtype == var.dtype and np.array_equal(
                        seen, var.values, equal_nan=seen.dtype.kind in "fc"):
                    continue
            self._check_dtype(name, var, self.decoded[name])
            encoded = self._encode(name, var)
            if dim in a.dims:
                out.arrays[name] = encoded
            else:
                self._check_fixed(name, a, encoded, read)
                self.verified[name] = np.array(var.values)
        return out

    def _check_dtype(self, name: str, var, target_var) -> None:
        s, t = var.dtype, target_var.dtype
        if self.is_time(name):
            if s.kind not in "MO":
                raise AppendError(f"variable {name!r} holds {s}, the target times",
                                  code="DM163")
            check_calendar(name, var, self.encoding(name).get("calendar", "standard"))
            return
        if s.kind in "Mm" or t.kind in "Mm":
            if s.kind != t.kind and not (s.kind == "O" and t.kind == "O"):
                raise AppendError(f"variable {name!r} holds {s}, the target {t}", code="DM163")
            return
        if s.kind == "O" or t.kind == "O":
            if s.kind != t.kind:
                raise AppendError(f"variable {name!r} holds {s}, the target {t}", code="DM163")
            return
        if s != t and not np.can_cast(s, t, "safe"):
            raise AppendError(f"variable {name!r} has the data type {s}, the target's is {t} "
                              "(a cast would lose values)", code="DM163",
                              hint=f"convert the slice: ds[{name!r}].astype({str(t)!r})")

    def _encode(self, name: str, var) -> np.ndarray:
        xr = need("xarray", **APPEND)
        conventions = need("xarray", **APPEND).conventions

        enc = self.encoding(name)
        if self.is_time(name) and set(enc) <= {"units", "calendar", "dtype"} and \
                var.dtype.kind in "MO":
            return self._encode_times(name, var, enc)
        v = xr.Variable(var.dims, var.values, encoding=enc)
        try:
            with warnings.catch_warnings():
                # xarray falls back to other time units (a UserWarning) rather than fail:
                # the target's units are fixed, so a fallback is a refusal here
                warnings.simplefilter("error", category=UserWarning)
                warnings.simplefilter("ignore", category=RuntimeWarning)
                e = conventions.encode_cf_variable(v, name=name)
        except (ValueError, OverflowError, TypeError, UserWarning) as err:
            raise AppendError(f"variable {name!r} cannot be encoded as the target stores it "
                              f"({', '.join(f'{k}={v}' for k, v in enc.items())}): {err}",
                              code="DM163") from err
        for k in ("units", "calendar"):  # never store values in other units than declared
            want, got = enc.get(k), e.attrs.get(k, e.encoding.get(k))
            if want is not None and got is not None and norm_units(got) != norm_units(want):
                raise AppendError(f"variable {name!r} would be stored with {k} {got!r}, the "
                                  f"target's are {want!r}", code="DM163")
        return self._stored(name, np.asarray(e.values))

    def _encode_times(self, name: str, var, enc: dict[str, Any]) -> np.ndarray:
        """Times through xarray's ``encode_cf_datetime`` directly (the whole variable coder
        pipeline costs ten times more for the same numbers)."""
        encode_cf_datetime = need("xarray.coding.times", **APPEND).encode_cf_datetime

        fast = fast_times(np.asarray(var.values), enc["units"], enc.get("calendar"),
                          enc.get("dtype"))
        if fast is not None:
            return fast.astype(self.codecs[name].dtype.newbyteorder("="), copy=False)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", category=UserWarning)
                warnings.simplefilter("ignore", category=RuntimeWarning)
                values, units, calendar = encode_cf_datetime(
                    np.asarray(var.values), enc["units"], enc.get("calendar"), enc.get("dtype"))
        except (ValueError, OverflowError, TypeError, UserWarning) as err:
            raise AppendError(f"variable {name!r} cannot be encoded as the target stores it "
                              f"(units={enc['units']}, calendar={enc.get('calendar')}): {err}",
                              code="DM163") from err
        if norm_units(units) != norm_units(enc["units"]) or (
                enc.get("calendar") and norm_units(calendar) != norm_units(enc["calendar"])):
            raise AppendError(f"variable {name!r} would be stored with units {units!r}, the "
                              f"target's are {enc['units']!r}", code="DM163")
        return self._stored(name, np.asarray(values))

    def _stored(self, name: str, values: np.ndarray) -> np.ndarray:
        """Encoded values, refused (DM163) when the target's data type cannot hold them."""
        codec = self.codecs[name]
        if values.dtype != codec.dtype and not np.can_cast(values.dtype, codec.dtype,
                                                           "same_kind"):
            raise AppendError(f"variable {name!r} encodes to {values.dtype}, the target stores "
                              f"{codec.dtype}", code="DM163")
        return values

    def _check_fixed(self, name: str, a: appends.ArrayMeta, encoded: np.ndarray, read) -> None:
        """APP-012: an array without the append dimension holds the target's values."""
        codec = self.codecs[name]
        if encoded.nbytes > COMPARE_LIMIT:
            return
        stored = self._read_whole(a, codec, read)
        if stored.shape != encoded.shape or not np.array_equal(
                stored, encoded.astype(stored.dtype, copy=False),
                equal_nan=stored.dtype.kind in "fc"):
            raise AppendError(f"variable {name!r} (without {self.dim!r}) holds other values than "
                              "the target's", code="DM163",
                              hint="every slice must share the target's coordinates")

    def _read_whole(self, a: appends.ArrayMeta, codec: ArrayCodec, read) -> np.ndarray:
        import itertools

        out = np.full(a.shape, codec.fill, dtype=codec.dtype)
        grid = [range(-(-n // c)) if n else range(0) for n, c in zip(a.shape, a.chunks)]
        for index in itertools.product(*grid):
            data = read(appends.chunk_key(a, index))
            chunk = codec.decode(data) if data is not None else codec.empty()
            region = tuple(slice(i * c, min((i + 1) * c, n))
                           for i, c, n in zip(index, a.chunks, a.shape))
            out[region] = chunk[tuple(slice(0, r.stop - r.start) for r in region)]
        return out

    def _last_label(self, read) -> float | None:
        conventions = need("xarray", **APPEND).conventions
        xr = need("xarray", **APPEND)

        dim = self.dim
        a = self.view.arrays.get(dim)
        if a is None or a.dims != [dim] or a.shape[0] == 0:
            return None
        n, c = a.shape[0], a.chunks[0]
        codec = self.codecs[dim]
        data = read(appends.chunk_key(a, ((n - 1) // c,)))
        raw = codec.decode(data)[(n - 1) % c: (n - 1) % c + 1] if data is not None else \
            np.array([codec.fill], dtype=codec.dtype)
        enc = self.encoding(dim)
        attrs = {k: v for k, v in enc.items() if k != "dtype"}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            decoded = conventions.decode_cf_variable(dim, xr.Variable((dim,), raw, attrs=attrs))
        values = np.asarray(decoded.values)
        got = labels_of(values)
        if values.dtype.kind == "O" and values.size:
            self._last_text = str(values.flat[0])[:19].replace(" ", "T").removesuffix("T00:00:00")
        return got[0] if got else None


# -- writing chunks (APP-022 step 5) ------------------------------------------------------------------
def chunk_bytes(a: appends.ArrayMeta, codec: ArrayCodec, values: np.ndarray, dim: str, old: int,
                index: tuple[int, ...], existing: bytes | None) -> bytes:
    """The new bytes of chunk ``index`` of array ``a`` once ``values`` (the slice's encoded
    values, ``count`` steps from ``old`` along ``dim``) are in it. ``existing``: the stored
    chunk when it holds committed values (a partial last chunk)."""
    axis = a.dims.index(dim)
    count = values.shape[axis]
    new_shape = list(a.shape)
    new_shape[axis] = old + count
    starts = [i * c for i, c in zip(index, a.chunks)]
    if old % a.chunks[axis] == 0 and count == a.chunks[axis] and all(
            s == 0 and c == n for k, (s, c, n) in enumerate(zip(starts, a.chunks, new_shape))
            if k != axis) and starts[axis] == old and values.shape == tuple(a.chunks):
        return codec.encode(values)  # the slice is exactly one chunk
    chunk = codec.decode(existing) if existing is not None else codec.empty()
    if chunk.base is not None or not chunk.flags.writeable:
        chunk = chunk.copy()
    dst, src = [], []
    for k, (s, c) in enumerate(zip(starts, a.chunks)):
        if k == axis:
            lo, hi = max(s, old), min(s + c, old + count)
            dst.append(slice(lo - s, hi - s))
            src.append(slice(lo - old, hi - old))
        else:
            hi = min(s + c, new_shape[k])
            dst.append(slice(0, hi - s))
            src.append(slice(s, hi))
    chunk[tuple(dst)] = values[tuple(src)]
    return codec.encode(chunk)


def raw_nbytes(values: dict[str, np.ndarray]) -> int:
    return sum(int(v.nbytes) for v in values.values())


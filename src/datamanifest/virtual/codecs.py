"""Zarr v3 metadata pieces shared by the parsers: data types, fill values, codecs and
attribute values (SCHEMA.md CHK-003, CHK-020).

Data types and fill values are written with zarr-python's own data-type machinery, so
what a parser writes is what zarr reads back.
"""

from __future__ import annotations

import functools
import math
import warnings
from typing import Any

import numpy as np

from ..errors import VirtualError
from ..optional import VIRTUAL, need


@functools.lru_cache(maxsize=256)
def _zdtype(dtype: np.dtype) -> Any:
    """zarr's data type object of a numpy dtype (its byte order aside); memoized, since
    zarr's lookup walks its whole registry (about 0.7 ms a call)."""
    parse_data_type = need("zarr.core.dtype", **VIRTUAL).parse_data_type

    native = dtype.newbyteorder("=") if dtype.byteorder not in ("|", "=") else dtype
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # fixed-length byte strings: an extension type
        return parse_data_type(native, zarr_format=3)


#: the Zarr v3 core data types by numpy kind and size, written without asking zarr (whose
#: registry lookup is slow and whose import costs 0.15 s)
_CORE = {("b", 1): "bool", ("i", 1): "int8", ("i", 2): "int16", ("i", 4): "int32",
         ("i", 8): "int64", ("u", 1): "uint8", ("u", 2): "uint16", ("u", 4): "uint32",
         ("u", 8): "uint64", ("f", 2): "float16", ("f", 4): "float32", ("f", 8): "float64",
         ("c", 8): "complex64", ("c", 16): "complex128"}


def data_type(dtype: np.dtype, what: str) -> Any:
    """The Zarr v3 ``data_type`` of a numpy dtype (native or big-endian alike).

    Raises :class:`VirtualError` (DM153) for a type that zarr cannot describe here.
    """
    core = _CORE.get((dtype.kind, dtype.itemsize))
    if core is not None:
        return core
    if dtype.kind == "S":
        return {"name": "null_terminated_bytes",
                "configuration": {"length_bytes": dtype.itemsize}}
    try:
        z = _zdtype(dtype)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return z.to_json(zarr_format=3)
    except Exception as e:
        kind = "compound (structured)" if dtype.names else \
            "variable-length or object" if dtype.kind == "O" else str(dtype)
        raise VirtualError(f"{what}: the {kind} type {dtype} has no Zarr v3 data type",
                           code="DM153", hint="such a variable cannot be read through a "
                           "chunk manifest (nor read by xarray's Zarr backends)") from e


def fill_value(dtype: np.dtype, value: Any) -> Any:
    """The JSON fill value of a Zarr v3 array of ``dtype`` (CHK-003)."""
    key = (dtype, None if value is None else np.asarray(value).tobytes())
    try:
        return _FILLS[key]
    except (KeyError, TypeError):
        pass
    out = _fill_value(dtype, value)
    if len(_FILLS) < 4096:
        _FILLS[key] = out
    return out


_FILLS: dict[tuple, Any] = {}


def _fill_value(dtype: np.dtype, value: Any) -> Any:
    if (dtype.kind, dtype.itemsize) in _CORE and dtype.kind != "c":
        if value is None:
            value = 0
        v = np.asarray(value).astype(dtype.newbyteorder("=")).reshape(()).item()
        return _float_json(v) if isinstance(v, float) else v
    if dtype.kind == "S":
        import base64

        raw = b"" if value is None else bytes(np.asarray(value, dtype=dtype).reshape(()).item())
        return base64.b64encode(raw).decode("ascii")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        z = _zdtype(dtype)
        if value is None:
            value = z.default_scalar()
        return z.to_json_scalar(z.cast_scalar(value), zarr_format=3)


#: the codec of variable-length strings (Zarr v3 ``string``; numcodecs' VLenUTF8 bytes)
VLEN_UTF8 = {"name": "vlen-utf8", "configuration": {}}


def encode_strings(values: np.ndarray) -> bytes:
    """Strings (an object array, any shape, C order) as ``vlen-utf8`` chunk bytes."""
    numcodecs = need("numcodecs", **VIRTUAL)
    flat = np.array([v if isinstance(v, str) else bytes(v).decode("utf-8", "surrogateescape")
                     for v in np.asarray(values, dtype=object).ravel()], dtype=object)
    return bytes(numcodecs.VLenUTF8().encode(flat))


def bytes_codec(dtype: np.dtype) -> dict[str, Any]:
    """The array-to-bytes codec of a stored type: ``bytes`` with its byte order."""
    if dtype.itemsize <= 1 or dtype.byteorder == "|" or dtype.kind in ("S", "U", "V"):
        return {"name": "bytes"}
    big = dtype.byteorder == ">" or (dtype.byteorder == "=" and np.little_endian is False)
    return {"name": "bytes", "configuration": {"endian": "big" if big else "little"}}


#: attribute types JSON cannot tell apart from its own numbers: recorded beside the value
#: (CHK-003 ``attribute_types``), because CF decoding takes its dtype from them
_PLAIN = {"int64", "float64", "bool"}


def attribute(value: Any, name: str = "", var_dtype: np.dtype | None = None
              ) -> tuple[Any, str | None]:
    """(JSON value, type name or None) of an attribute value (CHK-003): the numpy type
    name is given for numeric values whose type JSON does not keep (``float32``,
    ``int16``, ...); a complex value is ``[real, imag]`` typed ``complex64`` or
    ``complex128``; the ``_FillValue`` or ``missing_value`` of a character variable is
    its bytes, typed ``S<n>`` (CF decoding compares it with the variable's bytes)."""
    typ = None
    if isinstance(value, (np.ndarray, np.generic)) and value.dtype.kind in "biufc":
        typ = value.dtype.name
    elif isinstance(value, complex):
        typ = "complex128"
    if typ is not None and typ.startswith("complex"):
        flat = np.asarray(value).ravel()
        pairs = [[_float_json(float(c.real)), _float_json(float(c.imag))] for c in flat]
        return (pairs[0] if flat.size == 1 else pairs), typ
    if var_dtype is not None and var_dtype.kind == "S" and name in CHAR_FILLS and \
            isinstance(value, (bytes, np.bytes_, str, np.ndarray)):
        raw = bytes(value) if isinstance(value, (bytes, np.bytes_)) else \
            value.encode("utf-8") if isinstance(value, str) else \
            b"".join(bytes(v) for v in np.asarray(value).ravel())
        return raw.decode("latin-1"), f"S{max(1, len(raw))}"
    return json_value(value), (typ if typ not in _PLAIN else None)


#: attributes of a character variable whose value is compared with its bytes
CHAR_FILLS = ("_FillValue", "missing_value")


def restore(value: Any, typ: str | None) -> Any:
    """An attribute value read back: numpy values of its recorded type; the strings
    "NaN", "Infinity", "-Infinity" as floats where the type is a float type; ``[real,
    imag]`` pairs as complex numbers; text typed ``S<n>`` as bytes."""
    if typ is None:
        return value
    if typ.startswith("S") and isinstance(value, str):
        return np.bytes_(value.encode("latin-1"))
    dtype = np.dtype(typ)

    def one(v: Any) -> Any:
        if isinstance(v, str) and dtype.kind in "fc":
            return {"NaN": np.nan, "Infinity": np.inf, "-Infinity": -np.inf}.get(v, v)
        return v
    if dtype.kind == "c":
        def cplx(pair: Any) -> complex:
            return complex(float(one(pair[0])), float(one(pair[1])))
        if value and isinstance(value[0], list):
            return np.array([cplx(p) for p in value], dtype=dtype)
        return dtype.type(cplx(value))
    if isinstance(value, list):
        return np.array([one(v) for v in value], dtype=dtype)
    return dtype.type(one(value))


def _float_json(v: float) -> float | str:
    """A float as JSON: itself, or the string Zarr writes for NaN and the infinities."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "Infinity" if v > 0 else "-Infinity"
    return v


def json_value(value: Any) -> Any:
    """An attribute value as JSON: numpy scalars and arrays as numbers and lists, bytes as
    text, a one-element array as its element (netCDF reads them so), non-finite floats as
    the strings Zarr uses (``"NaN"``, ``"Infinity"``, ``"-Infinity"``)."""
    if isinstance(value, (bytes, np.bytes_)):
        return bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, np.ndarray):
        if value.size == 1 and value.ndim <= 1:
            return json_value(value.reshape(())[()])
        return [json_value(v) for v in value.tolist()] if value.dtype.kind not in "SO" else \
            [json_value(v) for v in value.ravel()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return _float_json(value)
    if isinstance(value, (bool, int, str)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [json_value(v) for v in value]
    return str(value)

"""Chunk encoding for appends: the codecs of a target array applied to one chunk.

An append writes whole chunks (APP-022 step 5) with exactly the codecs the target's metadata
names, so that any Zarr reader decodes them. Supported: Zarr v3 ``transpose``, ``bytes`` and
the bytes-to-bytes codecs ``zstd``, ``gzip``, ``blosc``, ``crc32c`` and ``numcodecs.*``;
Zarr v2 ``order``, ``filters`` and ``compressor`` (any numcodecs codec). Compression is
numcodecs'; the arrangement of bytes is ours. Anything else (sharding, variable-length
strings) is refused with DM167 before a byte is written.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ..spec.appends import AppendSpecError, ArrayMeta
from ..optional import APPEND, need

_BLOSC_SHUFFLE = {"noshuffle": 0, "shuffle": 1, "bitshuffle": 2}


def _numcodec(config: dict[str, Any]):
    numcodecs = need("numcodecs", **APPEND)

    return numcodecs.get_codec(dict(config))


def _bytes_codec(name: str, config: dict[str, Any], itemsize: int):
    """A v3 bytes-to-bytes codec as a numcodecs codec."""
    numcodecs = need("numcodecs", **APPEND)

    if name == "zstd":
        return numcodecs.Zstd(level=config.get("level", 0), checksum=config.get("checksum", False))
    if name == "gzip":
        return numcodecs.GZip(level=config.get("level", 5))
    if name == "blosc":
        shuffle = config.get("shuffle", "noshuffle")
        shuffle = _BLOSC_SHUFFLE.get(shuffle, shuffle) if isinstance(shuffle, str) else shuffle
        return numcodecs.Blosc(cname=config.get("cname", "zstd"), clevel=config.get("clevel", 5),
                               shuffle=shuffle, blocksize=config.get("blocksize", 0) or 0)
    if name == "crc32c":
        return numcodecs.CRC32C()
    if name.startswith("numcodecs."):
        return _numcodec({"id": name[len("numcodecs."):], **config})
    return None


class ArrayCodec:
    """Encode and decode whole chunks of one target array.

    ``dtype``: the stored numpy dtype (byte order as stored); ``chunk_shape``; ``fill``: the
    fill value as a scalar of ``dtype``. Raises :class:`AppendSpecError` (DM167) for a codec
    this module does not write.
    """

    def __init__(self, a: ArrayMeta) -> None:
        self.name = a.name
        self.chunk_shape = tuple(a.chunks)
        meta = a.metadata
        self.order = None  # a transpose permutation (v3) or "F" (v2)
        self.codecs: list = []
        native = np.dtype(a.dtype)
        if native.kind in "OUSV" or native.hasobject:
            raise AppendSpecError("DM167", f"array {a.name!r} has the data type {a.dtype}, which "
                                  "appends do not write", variable=a.name)
        if a.zarr_format == 3:
            seen_bytes = False
            endian = "<"
            for c in meta.get("codecs") or []:
                name, config = c.get("name"), dict(c.get("configuration") or {})
                if name == "transpose" and not seen_bytes:
                    self.order = tuple(config.get("order") or ())
                elif name == "bytes" and not seen_bytes:
                    seen_bytes = True
                    endian = ">" if config.get("endian") == "big" else "<"
                elif seen_bytes and (codec := _bytes_codec(name, config, native.itemsize)):
                    self.codecs.append(codec)
                else:
                    raise AppendSpecError("DM167", f"array {a.name!r} uses the codec {name!r}, "
                                          "which appends do not write (supported: transpose, "
                                          "bytes, zstd, gzip, blosc, crc32c, numcodecs.*)",
                                          variable=a.name)
            if not seen_bytes:
                raise AppendSpecError("DM167", f"array {a.name!r} has no bytes codec",
                                      variable=a.name)
            self.dtype = native.newbyteorder(endian) if native.itemsize > 1 else native
            self.fill = _fill_v3(meta.get("fill_value"), self.dtype)
        else:
            self.dtype = np.dtype(meta["dtype"])
            if meta.get("order", "C") == "F":
                self.order = "F"
            for f in meta.get("filters") or []:
                self.codecs.append(_numcodec(f))
            if meta.get("compressor"):
                self.codecs.append(_numcodec(meta["compressor"]))
            self.fill = _fill_v2(meta.get("fill_value"), self.dtype)
        self.size = math.prod(self.chunk_shape)

    def empty(self) -> np.ndarray:
        """A chunk of fill values."""
        return np.full(self.chunk_shape, self.fill, dtype=self.dtype)

    def encode(self, chunk: np.ndarray) -> bytes:
        """The stored bytes of a chunk (its shape: ``chunk_shape``)."""
        arr = np.asarray(chunk, dtype=self.dtype)
        if isinstance(self.order, tuple) and self.order:
            arr = arr.transpose(self.order)
        if self.order == "F":
            data: Any = arr.tobytes(order="F")
        else:  # numcodecs reads the array's buffer: no copy
            data = np.ascontiguousarray(arr).reshape(-1).view(np.uint8) if self.codecs \
                else arr.tobytes()
        for codec in self.codecs:
            data = codec.encode(data)
        return bytes(data) if not isinstance(data, bytes) else data

    def decode(self, data: bytes) -> np.ndarray:
        """A chunk from its stored bytes."""
        buf: Any = data
        for codec in reversed(self.codecs):
            buf = codec.decode(buf)
        arr = np.frombuffer(buf, dtype=self.dtype)
        if arr.size != self.size:
            raise AppendSpecError("DM167", f"a chunk of {self.name!r} decoded to {arr.size} "
                                  f"values, not {self.size}", variable=self.name)
        if isinstance(self.order, tuple) and self.order:
            shape = tuple(self.chunk_shape[i] for i in self.order)
            return arr.reshape(shape).transpose(np.argsort(self.order))
        return arr.reshape(self.chunk_shape, order="F" if self.order == "F" else "C")


_SPECIAL = {"NaN": np.nan, "Infinity": np.inf, "-Infinity": -np.inf}


def _fill_v3(value: Any, dtype: np.dtype) -> Any:
    """A Zarr v3 ``fill_value`` (numbers, the special strings, ``0x`` hex floats)."""
    if isinstance(value, str) and value.startswith("0x"):
        raw = bytes.fromhex(value[2:])
        return np.frombuffer(raw, dtype=dtype.newbyteorder(">"))[0].astype(dtype)
    return _fill(value, dtype, lambda text: dtype.type(text))


def _fill_v2(value: Any, dtype: np.dtype) -> Any:
    """A Zarr v2 ``fill_value`` (numbers, the special strings, base64 of the bytes)."""
    return _fill(value, dtype, lambda text: np.frombuffer(base64.b64decode(text),
                                                          dtype=dtype)[0])


def _fill(value: Any, dtype: np.dtype, other_text: Callable[[str], Any]) -> Any:
    if value is None:
        return dtype.type(0)
    if isinstance(value, str):
        return dtype.type(_SPECIAL[value]) if value in _SPECIAL else other_text(value)
    return dtype.type(value)


Encoder = Callable[[np.ndarray], bytes]

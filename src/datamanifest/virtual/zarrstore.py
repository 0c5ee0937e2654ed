"""A read-only zarr-python 3 ``Store`` over a chunk manifest (SCHEMA.md CHK-010).

In its own module so that reading through :mod:`datamanifest.virtual.store` does not import
zarr.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Iterable
from typing import TYPE_CHECKING, Any

from zarr.abc.store import Store

from ..spec import virtual

if TYPE_CHECKING:  # the session is handed in; importing it here would be a circle
    from .store import Session

def _served(node: virtual.Node) -> dict[str, Any]:
    """A node's ``zarr.json`` as served (CHK-010). A float ``_FillValue`` attribute is
    written as xarray writes it in Zarr v3 (the base64 of its little-endian binary64
    bytes), so that ``xarray.open_zarr`` reads the store as it reads its own."""
    meta = node.metadata
    if node.is_array and any("configuration" not in c for c in meta.get("codecs") or []):
        # zarr-python requires a configuration member, even empty (documents written
        # before CHK-020 said so have none for numcodecs.fletcher32)
        meta = {**meta, "codecs": [c if "configuration" in c else {**c, "configuration": {}}
                                   for c in meta["codecs"]]}
    attrs = meta.get("attributes") or {}
    fv = attrs.get("_FillValue")
    if fv is None or not node.is_array or not (
            isinstance(fv, float) or node.attribute_types.get("_FillValue", "").startswith("float")
            or fv in ("NaN", "Infinity", "-Infinity")):
        return meta
    import struct

    value = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}.get(
        fv, fv) if isinstance(fv, str) else float(fv)
    return {**meta, "attributes": {
        **attrs, "_FillValue": base64.standard_b64encode(struct.pack("<d", value)).decode()}}


class ChunkStore(Store):
    """A read-only zarr-python 3 store over a chunk manifest (CHK-010).

    ``get`` serves each node's ``zarr.json`` and each chunk key: inline bytes, None for a
    missing chunk, else the byte range read from its source (verified once, CHK-011).
    ``get_partial_values`` reads many keys with one coalesced request per source.
    """

    supports_writes = False
    supports_deletes = False
    supports_partial_writes = False
    supports_listing = True

    def __init__(self, session: Session) -> None:
        super().__init__(read_only=True)
        self.session = session
        self._meta: dict[str, bytes] = {}
        self._arrays = [(n.path + "/" if n.path else "", n)
                        for n in session.manifest.nodes.values() if n.is_array]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ChunkStore) and other.session is self.session

    def _resolve(self, key: str):
        if key == "zarr.json" or key.endswith("/zarr.json"):
            path = key[: -len("/zarr.json")] if key != "zarr.json" else ""
            node = self.session.manifest.nodes.get(path)
            if node is None:
                return "absent", None
            data = self._meta.get(path)
            if data is None:
                data = self._meta[path] = json.dumps(_served(node)).encode("utf-8")
            return "bytes", data
        for prefix, node in self._arrays:
            if key.startswith(prefix):
                index = virtual.index_of_chunk_key(node.metadata, key[len(prefix):])
                if index is not None:
                    return node.refs.lookup(index)
        return "absent", None

    @staticmethod
    def _range(data: Any, byte_range: Any) -> Any:
        if byte_range is None:
            return data
        from zarr.abc.store import OffsetByteRequest, RangeByteRequest, SuffixByteRequest

        if isinstance(byte_range, RangeByteRequest):
            return data[byte_range.start: byte_range.end]
        if isinstance(byte_range, OffsetByteRequest):
            return data[byte_range.offset:]
        if isinstance(byte_range, SuffixByteRequest):
            return data[-byte_range.suffix:]
        raise TypeError(f"unknown byte range {byte_range!r}")

    async def get(self, key: str, prototype: Any, byte_range: Any = None) -> Any:
        """The bytes of ``key``: a node's ``zarr.json``, or a chunk (inline, or its byte range).

        Keys resolve as CHK-010 says; a source is compared with its recorded identity
        before its first chunk is served (CHK-011).

        Parameters
        ----------
        key : str
            A Zarr key.
        prototype : BufferPrototype
            zarr's buffer factory.
        byte_range : ByteRequest, optional
            Part of the value only.

        Returns
        -------
        Buffer or None
            None for a key the manifest does not have (a missing chunk reads as fill value).

        Raises
        ------
        VirtualError
            DM152 when the chunk's source changed since it was indexed.
        """
        kind, value = self._resolve(key)
        if kind in ("absent", "missing"):
            return None
        if kind == "ref":
            import asyncio

            value = (await asyncio.to_thread(self.session.read, [value]))[0]
        return prototype.buffer.from_bytes(bytes(self._range(value, byte_range)))

    async def get_partial_values(self, prototype: Any, key_ranges: Iterable[tuple[str, Any]]):
        """Many keys at once, with one coalesced read per source (CHK-012).

        Parameters
        ----------
        prototype : BufferPrototype
            zarr's buffer factory.
        key_ranges : iterable of (str, ByteRequest or None)
            The keys and the part of each.

        Returns
        -------
        list of Buffer or None
        """
        import asyncio

        key_ranges = list(key_ranges)
        resolved = [self._resolve(k) for k, _ in key_ranges]
        refs = [v for kind, v in resolved if kind == "ref"]
        raw = iter(await asyncio.to_thread(self.session.read, refs)) if refs else iter(())
        out = []
        for (kind, value), (_, br) in zip(resolved, key_ranges):
            if kind in ("absent", "missing"):
                out.append(None)
                continue
            data = next(raw) if kind == "ref" else value
            out.append(prototype.buffer.from_bytes(bytes(self._range(data, br))))
        return out

    async def exists(self, key: str) -> bool:
        """Whether the manifest has ``key`` (CHK-010).

        Parameters
        ----------
        key : str
            A Zarr key.

        Returns
        -------
        bool
        """
        return self._resolve(key)[0] not in ("absent", "missing")

    async def set(self, key: str, value: Any) -> None:
        """Refused: the store is read-only (a chunk manifest is made by building it, §25.3).

        Parameters
        ----------
        key : str
            A Zarr key.
        value : Buffer
            Ignored.

        Raises
        ------
        PermissionError
            Always.
        """
        raise PermissionError("a chunk manifest store is read-only")

    async def delete(self, key: str) -> None:
        """Refused: the store is read-only (a chunk manifest is made by building it, §25.3).

        Parameters
        ----------
        key : str
            A Zarr key.

        Raises
        ------
        PermissionError
            Always.
        """
        raise PermissionError("a chunk manifest store is read-only")

    async def list(self) -> AsyncIterator[str]:
        """Every key: each node's ``zarr.json`` and each chunk key present in the manifest.

        The keys of CHK-010, in the chunk key encoding of each array.

        Returns
        -------
        async iterator of str
        """
        for path, node in self.session.manifest.nodes.items():
            yield (path + "/zarr.json") if path else "zarr.json"
            if node.is_array:
                prefix = path + "/" if path else ""
                for index, *_ in node.refs.references():
                    yield prefix + virtual.chunk_key(node.metadata, index)
                for k in node.refs.inline:
                    yield prefix + virtual.chunk_key(node.metadata,
                                                  virtual.parse_index_key(k, len(node.refs.grid)))

    async def list_prefix(self, prefix: str) -> AsyncIterator[str]:
        """The keys that start with ``prefix`` (CHK-010).

        Parameters
        ----------
        prefix : str
            A key prefix.

        Returns
        -------
        async iterator of str
        """
        async for k in self.list():
            if k.startswith(prefix):
                yield k

    async def list_dir(self, prefix: str) -> AsyncIterator[str]:
        """The keys and child names directly below ``prefix`` (CHK-010).

        Parameters
        ----------
        prefix : str
            A folder-like prefix (``""``: the root).

        Returns
        -------
        async iterator of str
        """
        prefix = prefix.rstrip("/")
        seen = set()
        async for k in self.list():
            if prefix and not k.startswith(prefix + "/"):
                continue
            rest = k[len(prefix) + 1:] if prefix else k
            head = rest.split("/", 1)[0]
            if head not in seen:
                seen.add(head)
                yield head

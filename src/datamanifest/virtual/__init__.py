"""Chunk manifests: NetCDF/HDF5 archives read as one virtual Zarr store (SCHEMA.md §25).

``open_virtual(path_or_document)`` gives an ``xarray.Dataset`` read through the chunk
manifest; ``ChunkStore`` is the same as a zarr-python 3 store; the parsers turn files into
chunk manifests.
"""

from ..optional import VIRTUAL, need

need("numpy", **VIRTUAL)  # every module below uses it (DIAG-020: DM170 naming [virtual])

from .build import Options, parse_source, virtualize  # noqa: E402
from .store import Session, VirtualArray, load_manifest, open_virtual  # noqa: E402
from . import document  # noqa: E402,F401 - a chunk manifest's notebook display (INT-030)


def __getattr__(name: str):
    if name == "ChunkStore":  # imports zarr: only when asked for
        need("zarr", **VIRTUAL)
        from .zarrstore import ChunkStore

        return ChunkStore
    raise AttributeError(name)


__all__ = ["open_virtual", "virtualize", "parse_source", "Options", "ChunkStore", "Session",
           "VirtualArray", "load_manifest"]

"""Chunk manifests: NetCDF/HDF5 archives read as one virtual Zarr store (SCHEMA.md §25).

``open_virtual(path_or_document)`` gives an ``xarray.Dataset`` read through the chunk
manifest; ``ChunkStore`` is the same as a zarr-python 3 store; the parsers turn files into
chunk manifests.
"""

from .store import ChunkStore, Session, VirtualArray, load_manifest, open_virtual

__all__ = ["open_virtual", "ChunkStore", "Session", "VirtualArray", "load_manifest"]

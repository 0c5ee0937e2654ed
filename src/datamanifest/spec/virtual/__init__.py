"""Chunk manifests: a Zarr v3 hierarchy whose chunks are byte ranges of other files
(SCHEMA.md §25, CHK-001..CHK-012).

Pure: the document model, its validation, chunk keys, URL resolution and the document's
own checksum. No I/O: reading byte ranges is :mod:`datamanifest.io`.

A document::

    {"chunk_manifest": 1,
     "sources": [{"url": "tas_1950.nc", "size": 1234567, "last_modified": "..."}],
     "nodes": {
       "": {"zarr_format": 3, "node_type": "group", "attributes": {}},
       "tas": {"zarr_format": 3, "node_type": "array", "shape": [12, 90, 180], ...,
               "refs": {"source": [0, 0], "offset": [4096, 9000], "length": [4904, 5100]}}}}
"""

from __future__ import annotations

from .model import (
    ChunkManifest,
    ChunkManifestError,
    MISSING,
    NUMERIC_TYPES,
    Node,
    Refs,
    SPEC_VERSION,
    SUFFIX,
    Source,
    chunk_key,
    chunk_shape,
    document_checksum,
    document_json,
    grid_shape,
    index_key,
    index_of_chunk_key,
    parse_index_key,
    resolve_key,
    resolve_url,
)
from .parse import parse

__all__ = [
    "ChunkManifest",
    "ChunkManifestError",
    "MISSING",
    "NUMERIC_TYPES",
    "Node",
    "Refs",
    "SPEC_VERSION",
    "SUFFIX",
    "Source",
    "chunk_key",
    "chunk_shape",
    "document_checksum",
    "document_json",
    "grid_shape",
    "index_key",
    "index_of_chunk_key",
    "parse_index_key",
    "resolve_key",
    "resolve_url",
    "parse",
]

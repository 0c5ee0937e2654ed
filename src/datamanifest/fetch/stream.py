"""Hash while writing: one pass over the bytes (SCHEMA.md FET-004).

:func:`stream_to_file` consumes an iterator of byte chunks, feeding each chunk
to the digest and to the file as it arrives, so the file is never re-read.
Memory is bounded by the chunk size, not the file size.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable
from pathlib import Path


def new_hasher(algorithm: str):
    """A hashlib object for a SCHEMA.md algorithm name (SUM-002)."""
    if algorithm == "md5":
        return hashlib.md5(usedforsecurity=False)
    if algorithm == "sha1":
        return hashlib.sha1(usedforsecurity=False)
    return hashlib.new(algorithm)


def stream_to_file(
    chunks: Iterable[bytes],
    path: Path,
    algorithm: str,
    on_chunk: Callable[[int], None] | None = None,
) -> tuple[str, int]:
    """Write ``chunks`` to ``path`` while hashing them; fsync before returning.

    Returns ``(hexdigest, size in bytes)``. ``on_chunk(n)`` is called with each
    chunk's length (progress).
    """
    h = new_hasher(algorithm)
    size = 0
    update = h.update
    with open(path, "wb", buffering=0) as f:
        write = f.write
        for chunk in chunks:
            update(chunk)
            write(chunk)
            size += len(chunk)
            if on_chunk is not None:
                on_chunk(len(chunk))
        os.fsync(f.fileno())
    return h.hexdigest(), size

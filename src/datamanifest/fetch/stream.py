"""Hash while writing: one pass over the bytes (SCHEMA.md FET-004).

:func:`stream_to_file` consumes an iterator of byte chunks and feeds each chunk
to the digest and to the file as it arrives, so the file is never re-read.
For large inputs, network chunks are gathered into ``BLOCK``-sized blocks
and the digest and the write run in two helper threads fed by bounded queues
(hashlib and file writes release the GIL for whole blocks), overlapping with
the network read on another core. On Linux the writer starts write-back every
``WRITEBACK`` bytes (``sync_file_range``) so the final fsync finds little left
to flush. Memory is bounded by the queue depth, not by the file size.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
import queue
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

from .. import faults
from ..spec.checksum import hasher

if False:  # typing only
    from ..interrupt import Stop

#: bytes per block handed to the helper threads
BLOCK = 1024 * 1024
#: blocks buffered per helper thread (bounds memory at about QUEUE_DEPTH * BLOCK)
QUEUE_DEPTH = 16
#: start disk write-back after this many bytes (Linux only)
WRITEBACK = 32 * 1024 * 1024
#: inputs known to be smaller than this are hashed and written inline
INLINE_BELOW = 4 * 1024 * 1024  # bytes

_STOP = None


def _load_sync_file_range():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        fn = libc.sync_file_range
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


_sync_file_range = _load_sync_file_range()
_SYNC_FILE_RANGE_WRITE = 2


class _BlockWriter:
    """Writes blocks to a file and starts write-back every WRITEBACK bytes."""

    def __init__(self, f) -> None:
        self.f = f
        self.fd = f.fileno()
        self.offset = 0
        self.kicked = 0

    def __call__(self, block: bytes) -> None:
        self.f.write(block)
        self.offset += len(block)
        if _sync_file_range is not None and self.offset - self.kicked >= WRITEBACK:
            _sync_file_range(self.fd, self.kicked, self.offset - self.kicked, _SYNC_FILE_RANGE_WRITE)
            self.kicked = self.offset


def stream_to_file(
    chunks: Iterable[bytes],
    path: Path,
    algorithm: str,
    on_chunk: Callable[[int], None] | None = None,
    size_hint: int | None = None,
    append: bool = False,
    durable: bool = True,
    stop: "Stop | None" = None,
) -> tuple[str, int]:
    """Write ``chunks`` to ``path`` while hashing them in ``algorithm``; fsync before returning.

    ``durable=False`` skips the fsync: the caller then makes the bytes durable itself
    (one file-system sync for a batch) before publishing them (STO-007). ``append``: a
    resume (FET-012): the bytes already in ``path`` are hashed first, then the chunks are
    appended. ``stop``: checked between chunks; once set, the bytes received so far are
    written (``path`` then holds a prefix of the source) and
    :class:`~datamanifest.interrupt.Cancelled` (DM172) is raised (FET-023).

    Returns ``(hexdigest, size in bytes)``. ``on_chunk(n)`` is called with each
    chunk's length (progress). ``size_hint`` (bytes), when known and small,
    selects the inline path. Errors of the source or of the file propagate;
    the caller removes the partial file.
    """
    h = hasher(algorithm)
    kept = 0
    if append:  # a resume (FET-012): the kept bytes are hashed first, read once
        with open(path, "rb") as f:
            while block := f.read(1024 * 1024):
                h.update(block)
                kept += len(block)
    with open(path, "ab" if append else "wb", buffering=0) as f:
        if size_hint is not None and size_hint < INLINE_BELOW:
            size = _inline(chunks, f, h, on_chunk, stop)
        else:
            size = _pipelined(chunks, f, h, on_chunk, stop)
        if durable:
            faults.point("fsync", path)
            os.fsync(f.fileno())
    return h.hexdigest(), kept + size


def _inline(chunks, f, h, on_chunk, stop) -> int:
    size = 0
    for chunk in chunks:
        if stop is not None and stop.is_set():
            stop.check()
        h.update(chunk)
        f.write(chunk)
        size += len(chunk)
        if on_chunk is not None:
            on_chunk(len(chunk))
    return size


class _Worker(threading.Thread):
    """Applies ``fn`` to every queued chunk; after an error it drains without working."""

    def __init__(self, fn: Callable[[bytes], object], name: str) -> None:
        super().__init__(name=name, daemon=True)
        self.fn = fn
        self.q: queue.Queue[bytes | None] = queue.Queue(maxsize=QUEUE_DEPTH)
        self.error: BaseException | None = None

    def run(self) -> None:
        get, fn = self.q.get, self.fn
        while (chunk := get()) is not _STOP:
            if self.error is None:
                try:
                    fn(chunk)
                except BaseException as e:  # reported to the producer
                    self.error = e


def _pipelined(chunks, f, h, on_chunk, stop) -> int:
    hasher = _Worker(h.update, "dm-hash")
    writer = _Worker(_BlockWriter(f), "dm-write")
    hasher.start()
    writer.start()
    size = 0
    pending: list[bytes] = []
    pending_len = 0
    hput, wput = hasher.q.put, writer.q.put

    def hand_over() -> None:
        block = pending[0] if len(pending) == 1 else b"".join(pending)
        pending.clear()
        hput(block)
        wput(block)
        if on_chunk is not None:
            on_chunk(len(block))

    stopped = False
    try:
        for chunk in chunks:
            if stop is not None and stop.is_set():
                stopped = True  # what was received is written below, then Cancelled
                break
            pending.append(chunk)
            pending_len += len(chunk)
            size += len(chunk)
            if pending_len >= BLOCK:
                hand_over()
                pending_len = 0
                if writer.error is not None or hasher.error is not None:
                    break
        if pending and (stopped or (writer.error is None and hasher.error is None)):
            hand_over()
    finally:
        hasher.q.put(_STOP)
        writer.q.put(_STOP)
        hasher.join()
        writer.join()
    for worker in (writer, hasher):
        if worker.error is not None:
            raise worker.error
    if stopped:
        stop.check()
    return size

"""The two interfaces of a place, and what they share (SCHEMA.md FET-001, CHK-011, CHK-012).

* :class:`Stream` -- a whole object read once, front to back: ``size`` (bytes, or None)
  and ``chunks()``; what fetch hashes while writing.
* :class:`RangeReader` -- many byte ranges of one object read in one call, with the
  object's :class:`Identity`; what chunk manifests and remote files opened in place read.

:func:`coalesce` merges nearby ranges into blocks (CHK-012); :class:`BlockFile` is a
seekable file over a reader (what h5py opens to read a remote file's metadata).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from ..errors import DataManifestError

#: a coalesced read is cut at this size, so memory stays bounded and reads run in parallel
MAX_BLOCK = 16 * 1024 * 1024


class Stream:
    """An open source of bytes. ``size`` in bytes or None; iterate ``chunks()`` once."""

    size: int | None = None

    def chunks(self) -> Iterator[bytes]:  # pragma: no cover - interface
        raise NotImplementedError

    def __enter__(self) -> "Stream":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the connection or file (idempotent)."""

    def abort(self) -> None:
        """Wake a reader blocked in :meth:`chunks` from another thread (FET-023); the reader
        then ends with an error. Local reads never block for long: nothing to do."""


@dataclass(frozen=True)
class Identity:
    """What a source is now (CHK-011): ``size`` in bytes, ``etag`` and ``last_modified``
    (RFC 3339 UTC) when the place provides them."""

    size: int
    etag: str | None = None
    last_modified: str | None = None


class RangeReader(Protocol):
    """A source's bytes. ``read_ranges`` returns one bytes-like object per ``(offset,
    length)``, in order; a short read raises the caller's error class (DM074)."""

    url: str

    def identity(self) -> Identity: ...

    def read_ranges(self, ranges: Sequence[tuple[int, int]]) -> list[bytes | memoryview]: ...

    def close(self) -> None: ...


def coalesce(ranges: Sequence[tuple[int, int]], gap: int,
             max_block: int = MAX_BLOCK) -> list[tuple[int, int, list[int]]]:
    """Blocks ``(start, end, [indices of the ranges inside])`` covering ``ranges``: ranges
    are merged when the hole between them is at most ``gap`` bytes and the block stays
    under ``max_block`` bytes (a single longer range is its own block)."""
    order = sorted(range(len(ranges)), key=lambda i: ranges[i][0])
    blocks: list[tuple[int, int, list[int]]] = []
    start = end = -1
    members: list[int] = []
    for i in order:
        off, n = ranges[i]
        if members and off - end <= gap and max(end, off + n) - start <= max_block:
            end = max(end, off + n)
            members.append(i)
        else:
            if members:
                blocks.append((start, end, members))
            start, end, members = off, off + n, [i]
    if members:
        blocks.append((start, end, members))
    return blocks


def split_blocks(ranges: Sequence[tuple[int, int]], blocks,
                 fetch: Callable[[list], Iterable], error: type[DataManifestError]) -> list:
    """Read each block with ``fetch(blocks)`` and cut it into the ranges; a block shorter
    than asked is ``error`` DM074."""
    out: list = [None] * len(ranges)
    for (start, end, members), data in zip(blocks, fetch(blocks)):
        view = memoryview(data)
        if len(view) < end - start:
            raise error(f"short read: {len(view)} of {end - start} bytes at {start}",
                        code="DM074", hint="the source is shorter than its references")
        for i in members:
            off, n = ranges[i]
            out[i] = view[off - start: off - start + n]
    return out


def rfc3339(ts: float) -> str:
    """``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (UTC) of a POSIX time in seconds."""
    return _dt.datetime.fromtimestamp(ts, _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def rfc3339_of(when: _dt.datetime) -> str:
    """The same of an aware datetime."""
    return when.astimezone(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class BlockFile:
    """A read-only, seekable binary file over a :class:`RangeReader`, caching aligned
    blocks of ``block`` bytes: what h5py opens to read a remote file's metadata with few
    range requests."""

    def __init__(self, reader: RangeReader, size: int, block: int = 256 * 1024) -> None:
        self.reader, self.size, self.block = reader, size, block
        self.pos = 0
        self.cache: dict[int, bytes] = {}
        self.fetched = 0  # bytes read from the source

    def _blocks(self, first: int, last: int) -> None:
        need = [b for b in range(first, last + 1) if b not in self.cache]
        if not need:
            return
        ranges = [(b * self.block, min(self.block, self.size - b * self.block)) for b in need]
        for b, data in zip(need, self.reader.read_ranges(ranges)):
            self.cache[b] = bytes(data)
            self.fetched += len(data)

    def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes from the position (all the rest when ``n`` < 0)."""
        if n is None or n < 0:
            n = self.size - self.pos
        n = max(0, min(n, self.size - self.pos))
        if n == 0:
            return b""
        first, last = self.pos // self.block, (self.pos + n - 1) // self.block
        self._blocks(first, last)
        data = b"".join(self.cache[b] for b in range(first, last + 1))
        start = self.pos - first * self.block
        self.pos += n
        return data[start: start + n]

    def readinto(self, buf) -> int:
        """Read into a writable buffer; returns the bytes read."""
        data = self.read(len(buf))
        buf[: len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = 0) -> int:
        """Move the position (``whence`` 0: from the start, 1: from here, 2: from the end)."""
        self.pos = offset if whence == 0 else self.pos + offset if whence == 1 else \
            self.size + offset
        return self.pos

    def tell(self) -> int:
        """The position in bytes."""
        return self.pos

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        """Nothing to release: the reader is the caller's."""

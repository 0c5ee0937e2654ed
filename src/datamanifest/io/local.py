"""The local family: files on this machine, streamed, read by ranges or hashed (FET-001,
FET-011, CHK-012)."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ..errors import DataManifestError, FetchError
from ..spec.checksum import hasher
from .base import Identity, Stream, coalesce, rfc3339, split_blocks

CHUNK = 1024 * 1024  # bytes per read of a stream
READ = 1024 * 1024  # bytes per read when hashing
#: files up to this size are read in one call when hashed
SMALL = 1024 * 1024  # bytes
#: ranges closer than this are read as one (bytes): a small gap costs less than a system call
LOCAL_GAP = 64 * 1024

_local = threading.local()


class FileStream(Stream):
    """A local file, read front to back in 1 MiB chunks. Raises ``error`` DM074 when it
    does not exist, is a folder or cannot be read."""

    def __init__(self, path: Path, error: type[DataManifestError] = FetchError) -> None:
        self.path = path
        try:
            self.f = open(path, "rb")
        except FileNotFoundError as e:
            raise error(f"source file {path} does not exist", code="DM074",
                        hint="check the uri; relative paths start at the manifest's folder") from e
        except IsADirectoryError as e:
            raise error(f"source {path} is a directory", code="DM074",
                        hint="point uri at a file, or use uris for several files") from e
        except OSError as e:
            raise error(f"cannot read {path}: {e.strerror}", code="DM074") from e
        self.size = os.fstat(self.f.fileno()).st_size

    def chunks(self) -> Iterator[bytes]:
        read = self.f.read
        while chunk := read(CHUNK):
            yield chunk

    def close(self) -> None:
        self.f.close()


class LocalRanges:
    """A local file read by ranges with ``os.pread`` on one descriptor (thread-safe).
    Raises ``error`` DM074 when it does not exist or cannot be opened."""

    def __init__(self, url: str, path: str | Path,
                 error: type[DataManifestError] = DataManifestError) -> None:
        self.url = url
        self.path = str(path)
        self.error = error
        try:
            self.fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError as e:
            raise error(f"source {self.path} does not exist", code="DM074",
                        hint="a chunk manifest references files by URL; check it "
                        "(`datamanifest refs info`)") from e
        except OSError as e:
            raise error(f"cannot open {self.path}: {e.strerror}", code="DM074") from e

    def identity(self) -> Identity:
        st = os.fstat(self.fd)
        return Identity(st.st_size, None, rfc3339(st.st_mtime_ns / 1e9))

    def read_ranges(self, ranges: Sequence[tuple[int, int]]) -> list:
        blocks = coalesce(ranges, LOCAL_GAP)
        return split_blocks(ranges, blocks,
                            lambda bs: (os.pread(self.fd, e - s, s) for s, e, _ in bs),
                            self.error)

    def close(self) -> None:
        try:
            os.close(self.fd)
        except OSError:
            pass


def hash_file(path: str | Path, algorithm: str, size_hint: int | None = None,
              stop: Any = None) -> tuple[str, int]:
    """The digest of a local file.

    Parameters
    ----------
    path : str or Path
        The file.
    algorithm : str
        A checksum algorithm of SCHEMA.md SUM-001 (``sha256``, ``md5``, ...).
    size_hint : int, optional
        The file's size in bytes when known: a small file is read in one call.
    stop : datamanifest.interrupt.Stop, optional
        Checked between 1 MiB blocks.

    Returns
    -------
    tuple of (str, int)
        The hex digest and the size in bytes.

    Raises
    ------
    OSError
        When the file cannot be read.
    datamanifest.interrupt.Cancelled
        DM172 once ``stop`` is set (LCK-008).
    """
    h = hasher(algorithm)
    if size_hint is not None and size_hint <= SMALL:
        with open(path, "rb", buffering=0) as f:
            data = f.read()
        h.update(data)
        return h.hexdigest(), len(data)
    buf = getattr(_local, "buf", None)
    if buf is None:
        buf = _local.buf = bytearray(READ)  # one buffer per thread, reused
    view = memoryview(buf)
    size = 0
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            h.update(view[:n])
            size += n
            if stop is not None and stop.is_set():
                stop.check()
    return h.hexdigest(), size

"""Atomic file writes: temp file in the same folder, fsync, rename (SCHEMA.md STA-003)."""

from __future__ import annotations

import functools
import os
import tempfile
from pathlib import Path


def fsync_dir(path: Path) -> None:
    """fsync a directory so a rename inside it is durable (no-op where unsupported)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_bytes(path: str | Path, data: bytes, *, mode: int | None = None) -> None:
    """Write ``data`` to ``path`` atomically: readers see the old or the new bytes, never a mix.

    Keeps the permission bits of an existing file unless ``mode`` is given.
    """
    path = Path(os.path.realpath(path))  # a symlinked file stays a symlink; its target changes
    if path.exists() and not path.is_file():
        raise IsADirectoryError(f"{path} is not a regular file; refusing to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    if mode is None:
        try:
            mode = path.stat().st_mode & 0o7777
        except FileNotFoundError:
            mode = 0o666 & ~_umask()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    fsync_dir(path.parent)


def write_text(path: str | Path, text: str) -> None:
    """:func:`write_bytes` for UTF-8 text."""
    write_bytes(path, text.encode("utf-8"))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@functools.lru_cache(maxsize=None)
def _libc():
    import ctypes
    import ctypes.util

    return ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)


def sync_filesystem(path: str | Path) -> None:
    """Flush the file system holding ``path`` (Linux ``syncfs``; elsewhere ``os.sync``).

    Used once before publishing a folder whose files were written without fsync
    (extracted archives, fetchers), so its marker never points at volatile bytes.
    """
    try:
        libc = _libc()
        fd = os.open(path, os.O_RDONLY)
        try:
            if libc.syncfs(fd) == 0:
                return
        finally:
            os.close(fd)
    except (OSError, AttributeError):
        pass
    os.sync()

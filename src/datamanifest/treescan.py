"""One folder of a tree walk, listed and hashed by a worker (SCHEMA.md §20, TREE-001..TREE-006).

:func:`scan` lists a folder in name order, hashes its small files and returns what the
walk's assembly needs as a few strings per folder rather than one Python object per file:
*runs* of consecutive files and links, each carrying

- its manifest text (the leaf rows, indented and comma-separated, TREE-010), and
- its part of the folder's digest input: the concatenated ``tree-sha256`` records
  (TREE-003) or the comma-separated ``dandi-zarr`` file records (TREE-002),

with the folder's file count, bytes and newest modification time. Folders and files
over :data:`SMALL` bytes come back as single items (the caller recurses into the first
and hashes the second on its thread pool). The digests are exactly those of
:mod:`datamanifest.spec.tree`, whose functions stay the reference (tests compare both).

Workers run either as threads of the walk's pool or as forked processes (the ``tree``
command: many small files are bound by the interpreter, not the disk).
"""

from __future__ import annotations

import datetime as _dt
import functools
import hashlib
import json
import operator
import os
import stat
from typing import Any

from .errors import DataManifestError
from .io.local import SMALL

#: path -> (size, mtime_ns, digest) known to be right; set before forking, read only by forked
#: workers (threads get it as an argument, since concurrent walks may differ)
KNOWN: dict[str, tuple[int, int, str]] | None = None
INHERITED = object()
_by_name = operator.attrgetter("name")
_OPEN_ANY = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
#: O_NOATIME (no access-time write per file read) is allowed to the file's owner only
_OPEN = _OPEN_ANY | getattr(os, "O_NOATIME", 0)
#: what a run, a big file and a folder are tagged with in :func:`scan`'s items
RUN, BIG, DIR = 0, 1, 2


class TreeWalkError(DataManifestError):
    """A folder that cannot be checksummed (DM120)."""

    code = "DM120"


@functools.lru_cache(maxsize=4096)
def _second(sec: int) -> str:
    return _dt.datetime.fromtimestamp(sec, _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")


def rfc3339_ns(mtime_ns: int) -> str:
    """``YYYY-MM-DDTHH:MM:SS.nnnnnnnnn+00:00`` (UTC, nanoseconds) of an mtime."""
    sec, ns = divmod(mtime_ns, 1_000_000_000)
    return f"{_second(sec)}.{ns:09d}+00:00"


def quoted(name: str) -> str:
    """``name`` as a JSON string, exactly as :func:`json.dumps` writes it (ASCII only)."""
    if name.isascii() and name.isprintable() and '"' not in name and "\\" not in name:
        return f'"{name}"'
    return json.dumps(name)


def leaf_text(name: str, size: int, when: str, digest: str, kind: str) -> str:
    """One manifest row ``"name": [size, "lastModified", "digest", "type"]`` (TREE-010)."""
    digest_text = json.dumps(digest) if kind == "symlink" else f'"{digest}"'
    return f'{quoted(name)}: [{size}, "{when}", {digest_text}, "{kind}"]'


def sha_record(kind: str, name: str, value: str) -> bytes:
    """One ``tree-sha256`` record ``kind || name || 0x00 || value || 0x00`` (TREE-003)."""
    return (b"x" if kind == "exec" else b"f" if kind == "file" else b"l" if kind == "symlink"
            else b"d") + name.encode("utf-8") + b"\0" + value.encode("utf-8") + b"\0"


def dandi_record(name: str, digest: str, size: int) -> str:
    """One ``{"digest","name","size"}`` record of a ``dandi-zarr`` listing (TREE-002)."""
    return f'{{"digest":"{digest}","name":{quoted(name)},"size":{size}}}'


def _read_rest(fd: int, first: bytes) -> bytes:
    """``first`` and the rest of the file ``fd`` (a file that grew since its stat)."""
    parts = [first]
    while block := os.read(fd, 1 << 20):
        parts.append(block)
    return b"".join(parts)


def scan(path: str, rel: str, level: int, at_root: bool, exclude: frozenset, leaf_algo: str,
         dandi: bool, keep: bool, known: Any = INHERITED) -> tuple:
    """List the folder ``path`` in name order and hash its small files (worker side).

    Returns ``(items, count, size, mtime_ns, hashed, files, link)``: ``items`` in name
    order, each ``(RUN, text, digest part)``, ``(BIG, name, kind, size, mtime_ns, rel,
    path)`` or ``(DIR, name, rel, path)``; ``count``, ``size`` (bytes) and ``mtime_ns``
    (newest, or None) of the files and links in runs; ``hashed``: bytes read; ``files``:
    ``(rel, size, mtime_ns, digest, kind)`` per file or link when ``keep``; ``link``: the
    first link's name (``dandi-zarr`` has none, TREE-002).
    Raises TreeWalkError (DM120) for special files and non-UTF-8 names (TREE-006).
    """
    try:
        with os.scandir(path) as it:
            entries = sorted(it, key=_by_name)  # str order = code points = UTF-8 byte order
    except OSError as e:
        raise TreeWalkError(f"cannot list {path}: {e.strerror}") from e
    if known is INHERITED:
        known = KNOWN
    # the hashlib constructor itself (not hashlib.new, 0.4 us more per file); md5 and sha1
    # not for security, as spec.checksum.hasher
    new = getattr(hashlib, leaf_algo, None) or functools.partial(hashlib.new, leaf_algo)
    secure = leaf_algo not in ("md5", "sha1")
    small = SMALL
    sep = ",\n" + " " * (level + 2)
    items: list[tuple] = []
    texts: list[str] = []
    parts: list[Any] = []
    files: list[tuple] = []
    count = size_total = hashed = 0
    newest = None
    link = None
    S_ISDIR, S_ISLNK, S_ISREG, S_IXUSR = stat.S_ISDIR, stat.S_ISLNK, stat.S_ISREG, stat.S_IXUSR
    seconds = _second
    lazy_rel = known is None and not keep  # a file's relative path is needed only then

    def flush() -> None:
        if texts:
            items.append((RUN, sep.join(texts), ",".join(parts) if dandi else b"".join(parts)))
            texts.clear()
            parts.clear()

    for entry in entries:
        name = entry.name
        if not name.isascii():
            try:
                name.encode("utf-8")
            except UnicodeEncodeError:
                raise TreeWalkError(f"{entry.path!r}: file names must be UTF-8 (TREE-006)"
                                    ) from None
        if at_root and name in exclude:
            continue
        erel = None if lazy_rel else f"{rel}/{name}" if rel else name
        st = entry.stat(follow_symlinks=False)
        mode = st.st_mode
        if S_ISDIR(mode):
            flush()
            items.append((DIR, name, f"{rel}/{name}" if rel else name, entry.path))
            continue
        mtime = st.st_mtime_ns
        qname = quoted(name)
        if S_ISREG(mode):
            kind = "exec" if mode & S_IXUSR else "file"
            size = st.st_size
            hit = known.get(erel) if known is not None else None
            if hit is not None and hit[0] == size and hit[1] == mtime:
                digest = hit[2]
            elif size <= small:
                try:
                    fd = os.open(entry.path, _OPEN)
                except PermissionError:  # EPERM: another user's file (O_NOATIME)
                    fd = os.open(entry.path, _OPEN_ANY)
                try:
                    data = os.read(fd, size + 1)
                    if len(data) > size:  # it grew since the stat: read to its end
                        data = _read_rest(fd, data)
                finally:
                    os.close(fd)
                digest = new(data, usedforsecurity=secure).hexdigest()
                size = len(data)
                hashed += size
            else:  # hashed by the caller's thread pool, block by block
                flush()
                items.append((BIG, name, kind, size, mtime, f"{rel}/{name}" if rel else name,
                              entry.path))
                continue
            if dandi:  # dandi_record, inline
                parts.append(f'{{"digest":"{digest}","name":{qname},"size":{size}}}')
            else:
                parts.append(sha_record(kind, name, f"{size}:{digest}"))
            size_total += size
            digest_text = f'"{digest}"'
        elif S_ISLNK(mode):
            target = os.readlink(entry.path)
            kind, size, digest = "symlink", 0, target
            if link is None:
                link = name
            if not dandi:
                parts.append(sha_record(kind, name, target))
            digest_text = json.dumps(target)
        else:
            raise TreeWalkError(f"{entry.path!r} is a device, FIFO or socket; a tree checksum "
                                "covers files, links and folders (TREE-006)")
        sec, ns = divmod(mtime, 1_000_000_000)  # leaf_text and rfc3339_ns, inline
        texts.append(f'{qname}: [{size}, "{seconds(sec)}.{ns:09d}+00:00", {digest_text}, '
                     f'"{kind}"]')
        count += 1
        if newest is None or mtime > newest:
            newest = mtime
        if keep:
            files.append((erel, size, mtime, digest, kind))
    flush()
    return items, count, size_total, newest, hashed, files, link

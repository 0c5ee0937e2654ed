"""Tree manifests of local directories: walk, hash, write (SCHEMA.md §20).

:func:`walk` computes a tree checksum (``tree-sha256`` or ``dandi-zarr``) of a folder
and, optionally, streams its tree manifest (JSON, DANDI layout plus our extensions)
to a text stream while it walks. The walk is depth-first in sorted order; the files
of each directory are hashed by a bounded thread pool (``jobs`` threads, 1 MiB
reads); contents are never held and the manifest is written as the walk goes, so
memory is bounded by depth x fan-out, not by the number of entries.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from . import treescan
from .io.local import hash_file
from .spec import tree as _tree
from .treescan import TreeWalkError, rfc3339_ns  # noqa: F401  (their home)

READ = 1024 * 1024  # bytes per read
#: Fields of a local tree manifest's entry arrays (TREE-010).
LOCAL_FIELDS = ["size", "lastModified", "digest", "type"]
#: Names left out at the root of a dataset folder (TREE-005).
CONTROL_NAMES = frozenset({".complete"})


@dataclass
class WalkResult:
    """Outcome of :func:`walk`: the checksum (``<algo>:<value>``) and statistics."""

    algorithm: str
    value: str
    entries: int = 0
    depth: int = 0
    total_size: int = 0  # bytes
    last_modified_ns: int | None = None
    files: dict[str, tuple[int, int, str, str]] = field(default_factory=dict)

    @property
    def checksum(self) -> str:
        return f"{self.algorithm}:{self.value}"

    def statistics(self) -> dict[str, Any]:
        stats: dict[str, Any] = {
            "entries": self.entries, "depth": self.depth, "totalSize": self.total_size,
            "lastModified": rfc3339_ns(self.last_modified_ns) if self.last_modified_ns else None,
        }
        if self.algorithm == "dandi-zarr":
            stats["zarrChecksum"] = self.value
        return stats


class _Writer:
    """Streams the ``entries`` object of a manifest: one line per file, indent 1."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.first = [True]

    def open_dir(self, name: str | None, level: int) -> None:
        if name is not None:
            self._sep(level)
            self.out.write(f"{json.dumps(name)}: {{")
        else:
            self.out.write("{")
        self.first.append(True)

    def close_dir(self, level: int) -> None:
        empty = self.first.pop()
        if not empty:
            self.out.write("\n" + " " * (level + 1))
        self.out.write("}")

    def raw_leaf(self, text: str, level: int) -> None:
        self._sep(level)
        self.out.write(text)

    def _sep(self, level: int) -> None:
        if self.first[-1]:
            self.first[-1] = False
            self.out.write("\n")
        else:
            self.out.write(",\n")
        self.out.write(" " * (level + 2))


def walk(root: str | Path, algorithm: str = _tree.DEFAULT_ALGORITHM, *, jobs: int | None = None,
         manifest: IO[str] | None = None, exclude_root: Iterable[str] = CONTROL_NAMES,
         keep_files: bool = False, known: dict[str, tuple[int, int, str]] | None = None,
         on_bytes: Callable[[int], None] | None = None, processes: bool = False) -> WalkResult:
    """Checksum the folder ``root`` (TREE-001..TREE-005) and optionally write its manifest.

    ``manifest``: a text stream receiving the ``entries`` JSON object (see
    :func:`write_manifest` for the whole document). ``exclude_root``: names skipped at the
    root (the completion marker by default). ``keep_files``: record ``path -> (size,
    mtime_ns, digest, type)`` in the result (for ``verify``). ``known``: ``path -> (size,
    mtime_ns, digest)``; a file whose size and mtime match is not re-read (fast verify).
    ``processes``: hash small files in ``jobs`` forked worker processes (many small files
    are bound by the interpreter, not the disk); only for callers with no other threads
    running, such as the ``tree`` command.
    Raises :class:`TreeWalkError` (DM120) for special files or non-UTF-8 names.
    """
    leaf_algo = _tree.leaf_algorithm(algorithm)
    root = os.fspath(root)
    exclude = frozenset(exclude_root)
    result = WalkResult(algorithm, "")
    writer = _Writer(manifest) if manifest is not None else None
    workers = jobs or min(8, (os.cpu_count() or 2))
    procs = None
    if processes and workers > 1 and hasattr(os, "fork"):
        treescan.KNOWN = known  # inherited by the workers forked just below
        from .forkpool import ForkPool

        # forked before any thread of ours exists; a Ctrl-C is this process's to handle
        # (LCK-008, the workers ignore it), the workers are ended below
        procs = ForkPool(workers, treescan.scan)
    try:
        return _walk(root, algorithm, leaf_algo, exclude, result, writer, workers, procs, known,
                     keep_files, on_bytes)
    except BaseException:
        if procs is not None:  # an error or a Ctrl-C: no waiting for the folders queued
            procs.terminate()
            procs = None
        raise
    finally:
        if procs is not None:
            procs.close()
        treescan.KNOWN = None



#: sibling folders listed and submitted for hashing ahead of the one being written
LOOKAHEAD = 8


def _walk(root, algorithm, leaf_algo, exclude, result, writer, workers, procs, known, keep_files,
          on_bytes) -> WalkResult:
    """The assembly: folders depth-first in name order, their listings and small files'
    digests computed ahead by the workers (:func:`treescan.scan`), a handful of strings per
    folder; the directory digests are combined here (TREE-002, TREE-003)."""
    from .interrupt import Stop

    dandi = algorithm == "dandi-zarr"
    if not dandi and algorithm != "tree-sha256":
        raise TreeWalkError(f"unknown tree checksum algorithm {algorithm!r}")
    scan = treescan.scan
    RUN, DIR = treescan.RUN, treescan.DIR
    stop = Stop()  # set when the walk ends early (an error, a Ctrl-C): the hashing stops
    pool = None  # the threads hashing big files (and scanning, without procs): made on first use

    def threads():
        nonlocal pool
        if pool is None:
            from concurrent.futures import ThreadPoolExecutor

            pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dm-tree")
        return pool

    try:
        scanner = procs if procs is not None else threads()

        def hash_big(path: str, size: int) -> tuple[str, int]:
            r = hash_file(path, leaf_algo, size, stop=stop)
            if on_bytes is not None:
                on_bytes(r[1])
            return r

        def submit(path: str, rel: str, level: int, at_root: bool):
            if procs is not None:  # forked workers inherit treescan.KNOWN (one walk per pool)
                return scanner.submit(path, rel, level, at_root, exclude, leaf_algo, dandi,
                                      keep_files)
            return scanner.submit(scan, path, rel, level, at_root, exclude, leaf_algo, dandi,
                                  keep_files, known)

        def visit(scan_future, name: str | None, path: str, level: int) -> tuple[str, int, int]:
            """(digest, bytes below, files below) of one folder."""
            items, count, size, newest, hashed, files, link = scan_future.result()
            if link is not None and dandi:
                raise TreeWalkError(f"{path}: {link!r}: dandi-zarr has no representation for "
                                    "symbolic links")
            if on_bytes is not None and hashed:
                on_bytes(hashed)
            # big files: one task each on the thread pool
            big = {i: threads().submit(hash_big, item[6], item[3])
                   for i, item in enumerate(items) if item[0] == treescan.BIG}
            # subfolders: scanned ahead, at most LOOKAHEAD at a time (bounded memory)
            dirs = [i for i, item in enumerate(items) if item[0] == DIR]
            ahead: dict[int, Any] = {}
            pos = 0

            def fill(limit: int) -> None:
                nonlocal pos
                while pos < min(limit, len(dirs)):
                    i = dirs[pos]
                    ahead[i] = submit(items[i][3], items[i][2], level + 1, False)
                    pos += 1

            fill(LOOKAHEAD)
            if writer is not None:
                writer.open_dir(name, level)
            sha = None if dandi else hashlib.sha256()
            file_parts: list[str] = []
            dir_parts: list[str] = []
            if count:
                result.entries += count
                result.depth = max(result.depth, level)
                if newest is not None and (result.last_modified_ns is None or
                                           newest > result.last_modified_ns):
                    result.last_modified_ns = newest
            if keep_files:
                for erel, fsize, mtime, digest, kind in files:
                    result.files[erel] = (fsize, mtime, digest, kind)
            files_below = count
            seen_dirs = 0
            for i, item in enumerate(items):
                tag = item[0]
                if tag == RUN:
                    if writer is not None:
                        writer.raw_leaf(item[1], level)
                    if dandi:
                        file_parts.append(item[2])
                    else:
                        sha.update(item[2])
                    continue
                if tag == DIR:
                    seen_dirs += 1
                    fill(seen_dirs + LOOKAHEAD)
                    digest, below, n = visit(ahead.pop(i), item[1], item[3], level + 1)
                    size += below
                    files_below += n
                    if not dandi:
                        sha.update(treescan.sha_record("dir", item[1], digest))
                    elif n:  # empty folders are invisible to dandi-zarr
                        dir_parts.append(treescan.dandi_record(item[1], digest, below))
                    continue
                _, ename, kind, _, mtime, erel, _ = item
                digest, fsize = big[i].result()
                if writer is not None:
                    writer.raw_leaf(treescan.leaf_text(ename, fsize, rfc3339_ns(mtime), digest,
                                                       kind), level)
                if dandi:
                    file_parts.append(treescan.dandi_record(ename, digest, fsize))
                else:
                    sha.update(treescan.sha_record(kind, ename, f"{fsize}:{digest}"))
                size += fsize
                files_below += 1
                result.entries += 1
                result.depth = max(result.depth, level)
                if result.last_modified_ns is None or mtime > result.last_modified_ns:
                    result.last_modified_ns = mtime
                if keep_files:
                    result.files[erel] = (fsize, mtime, digest, kind)
            if writer is not None:
                writer.close_dir(level)
            if not dandi:
                return sha.hexdigest(), size, files_below
            body = '{"directories":[' + ",".join(dir_parts) + '],"files":[' + \
                ",".join(file_parts) + "]}"
            md5 = hashlib.md5(body.encode(), usedforsecurity=False).hexdigest()
            return f"{md5}-{files_below}--{size}", size, files_below

        top = visit(submit(root, "", 0, True), None, root, 0)
    except BaseException:
        stop.set()  # LCK-008: a Ctrl-C ends the walk within a block of every running hash
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        raise
    if pool is not None:
        pool.shutdown(wait=True)
    result.value, result.total_size = top[0], top[1]
    return result


def write_manifest(root: str | Path, out_path: str | Path | None, algorithm: str, *,
                   base: str | None = None, jobs: int | None = None,
                   on_bytes: Callable[[int], None] | None = None,
                   processes: bool = False,
                   exclude_root: Iterable[str] = CONTROL_NAMES,
                   known: dict[str, tuple[int, int, str]] | None = None) -> WalkResult:
    """Write the tree manifest of ``root`` to ``out_path`` (atomically; ``None``: stdout).

    The document: ``schemaVersion`` 2, ``fields``, ``entries`` (streamed), ``statistics``,
    and our extensions ``algorithm``, ``checksum`` and ``base`` (TREE-010, TREE-011).
    """
    import sys

    base = base if base is not None else str(Path(root).resolve())
    if out_path is None:
        out = sys.stdout
        tmp = None
    elif Path(out_path).exists() and not Path(out_path).is_file():
        # a device or FIFO (e.g. /dev/null): write to it, never rename over it
        out = open(out_path, "w", encoding="utf-8")
        tmp = None
    else:
        from .store.atomic import mkstemp, sweep_temps

        out_path = Path(out_path)
        out_path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = mkstemp(out_path.parent, out_path.name)
        out = os.fdopen(fd, "w", encoding="utf-8")
    try:
        out.write('{\n "schemaVersion": 2,\n "fields": ' + json.dumps(LOCAL_FIELDS) +
                  ',\n "entries": ')
        result = walk(root, algorithm, jobs=jobs, manifest=out, on_bytes=on_bytes,
                      processes=processes, exclude_root=exclude_root, known=known)
        out.write(',\n "statistics": ' + json.dumps(result.statistics()) +
                  ',\n "algorithm": ' + json.dumps(algorithm) +
                  ',\n "checksum": ' + json.dumps(result.checksum) +
                  ',\n "base": ' + json.dumps(base) + "\n}\n")
        if tmp is not None:
            out.flush()
            os.fsync(out.fileno())
            out.close()
            os.replace(tmp, out_path)
            tmp = None
            sweep_temps(out_path.parent)  # of writers killed before their rename (STO-013)
        elif out is not sys.stdout:
            out.close()
    finally:
        if tmp is not None:
            out.close()
            os.unlink(tmp)
    return result


def iter_manifest_files(doc: dict[str, Any]):
    """Yield ``(path, row dict)`` for every file or link of a tree manifest (TREE-010)."""
    fields = doc.get("fields") or []
    if isinstance(fields, str):
        fields = [fields]

    def rec(node: dict[str, Any], prefix: str):
        for name, value in node.items():
            path = f"{prefix}/{name}" if prefix else name
            if isinstance(value, dict):
                yield from rec(value, path)
            else:
                yield path, dict(zip(fields, value if isinstance(value, list) else [value]))

    yield from rec(doc.get("entries") or {}, "")


def checksum_from_manifest(doc: dict[str, Any], algorithm: str | None = None) -> str:
    """The tree checksum ``<algo>:<value>`` computed from a manifest's entries (TREE-012).

    ``dandi-zarr`` uses the ``digest`` column or, in DANDI manifests, the ``ETag`` column;
    ``tree-sha256`` needs the ``digest`` and ``type`` columns of a local manifest.
    Raises TreeWalkError when the manifest lacks what the algorithm needs.
    """
    import posixpath

    algorithm = algorithm or doc.get("algorithm") or (
        "dandi-zarr" if "ETag" in (doc.get("fields") or []) else _tree.DEFAULT_ALGORITHM)
    dirs: dict[str, list[_tree.Child]] = {"": []}

    def ensure(d: str) -> None:
        while d not in dirs:
            dirs[d] = []
            d = posixpath.dirname(d)

    def walk_dirs(node: dict[str, Any], prefix: str) -> None:
        for name, value in node.items():
            if isinstance(value, dict):
                path = f"{prefix}/{name}" if prefix else name
                ensure(path)
                walk_dirs(value, path)

    walk_dirs(doc.get("entries") or {}, "")
    for path, row in iter_manifest_files(doc):
        parent, name = posixpath.split(path)
        ensure(parent)
        kind = row.get("type", "file")
        if kind == "symlink":
            dirs[parent].append(_tree.Child(name, "symlink", target=str(row.get("digest", ""))))
            continue
        digest = row.get("digest") if algorithm == "tree-sha256" else (
            row.get("ETag") or row.get("digest"))
        if not isinstance(digest, str):
            raise TreeWalkError(f"the manifest has no {algorithm} leaf digests")
        try:
            size = int(row.get("size", 0))
        except (TypeError, ValueError):
            raise TreeWalkError(f"{path}: size {row.get('size')!r} is not a whole number of "
                                "bytes") from None
        dirs[parent].append(_tree.Child(name, kind, digest.strip('"'), size))
    try:
        for d in sorted((d for d in dirs if d), key=lambda d: -d.count("/")):
            children = dirs[d]
            digest = _tree.directory_digest(algorithm, children)
            parent, name = posixpath.split(d)
            dirs[parent].append(_tree.Child(name, "dir", digest,
                                           _tree.directory_size(algorithm, children)))
        return f"{algorithm}:{_tree.directory_digest(algorithm, dirs[''])}"
    except _tree.TreeError as e:
        raise TreeWalkError(str(e)) from e


# -- object-store prefixes -------------------------------------------------------------------------
def s3_manifest(url: str, algorithm: str, *, jobs: int = 8) -> dict[str, Any]:
    """The tree manifest of an S3 prefix ``s3://bucket/prefix`` (TREE-010..TREE-012).

    Lists the latest version of every object (``ListObjectVersions``; version ids where
    the bucket is versioned), with DANDI's fields ``versionId``, ``lastModified``,
    ``size``, ``ETag``. ``dandi-zarr`` is computed from the ETags (the MD5 of single-part
    uploads; a multipart ETag is DM120); ``tree-sha256`` reads every object once, streamed.
    The endpoint and credentials come from the usual AWS settings (``AWS_ENDPOINT_URL``,
    ``AWS_ACCESS_KEY_ID``, ...). Needs boto3 (``pip install datamanifest[s3]``).
    The listing is held in memory (about 200 bytes per object).
    """
    from urllib.parse import urlsplit

    from .io.objects import error_code, s3_client, s3_errors

    boto_errors = s3_errors("listing s3://")
    parts = urlsplit(url)
    bucket, prefix = parts.netloc, parts.path.lstrip("/")
    if not bucket:
        raise TreeWalkError(f"{url} names no bucket", code="DM015",
                            hint="s3://bucket/prefix")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    client = s3_client("listing s3://")
    objects: list[tuple[str, dict]] = []
    pager = client.get_paginator("list_object_versions")
    try:
        for page in pager.paginate(Bucket=bucket, Prefix=prefix):
            for v in page.get("Versions", []):
                if v.get("IsLatest"):
                    objects.append((v["Key"][len(prefix):], v))
    except boto_errors.ClientError as e:
        code = error_code(e)
        raise TreeWalkError(f"{url}: {code or e}", code="DM074" if code in (
            "NoSuchBucket", "404") else "DM071") from e
    except boto_errors.BotoCoreError as e:  # no credentials, no endpoint, bad input
        raise TreeWalkError(f"{url}: {e}", code="DM071",
                            hint="check the AWS settings (AWS_ENDPOINT_URL, credentials)"
                            ) from e
    entries: dict[str, Any] = {}
    rows = {}
    for rel, v in objects:
        if not rel or rel.endswith("/"):
            continue
        node = entries
        segs = rel.split("/")
        for seg in segs[:-1]:
            node = node.setdefault(seg, {})
        when = v["LastModified"].astimezone(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S+00:00")
        row = [v.get("VersionId") or "null", when, v["Size"], v["ETag"].strip('"')]
        node[segs[-1]] = row
        rows[rel] = row
    fields = ["versionId", "lastModified", "size", "ETag"]
    doc: dict[str, Any] = {"schemaVersion": 2, "fields": fields, "entries": entries}
    if algorithm == "tree-sha256":
        fields.append("digest")

        def digest(item: tuple[str, list]) -> None:
            rel, row = item
            body = client.get_object(Bucket=bucket, Key=prefix + rel,
                                     VersionId=row[0])["Body"] if row[0] != "null" else \
                client.get_object(Bucket=bucket, Key=prefix + rel)["Body"]
            h = hashlib.sha256()
            for chunk in body.iter_chunks(READ):
                h.update(chunk)
            row.append(h.hexdigest())

        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=jobs) as pool:
            list(pool.map(digest, rows.items()))
    else:
        for rel, row in rows.items():
            if "-" in row[3]:
                raise TreeWalkError(f"{rel}: multipart ETag {row[3]!r} is not an MD5; dandi-zarr "
                                    "needs single-part uploads", code="DM120",
                                    hint="use --algorithm tree-sha256, which reads the objects")
    checksum = checksum_from_manifest(doc, algorithm)
    sizes = [r[2] for r in rows.values()]
    times = [r[1] for r in rows.values()]
    depth = max((rel.count("/") for rel in rows), default=0)
    doc["statistics"] = {"entries": len(rows), "depth": depth, "totalSize": sum(sizes),
                         "lastModified": max(times) if times else None}
    if algorithm == "dandi-zarr":
        doc["statistics"]["zarrChecksum"] = checksum.partition(":")[2]
    doc.update({"algorithm": algorithm, "checksum": checksum, "base": url})
    return doc

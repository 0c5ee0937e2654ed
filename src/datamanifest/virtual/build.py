"""Building chunk manifests: one source by its format, many along a dimension
(SCHEMA.md CHK-020..CHK-024).

:func:`parse_source` detects a source's format (HDF5/NetCDF4, NetCDF classic, a Zarr
store, kerchunk references) and runs its parser, recording the source's identity
(CHK-002). :func:`virtualize` does that for many sources, through any
``concurrent.futures.Executor`` (a ``dask.distributed`` client's included), and
concatenates the results after checking that they agree (CHK-024).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path

from ..errors import VirtualError
from ..spec import virtual
from ..io.base import BlockFile
from ..io.places import open_ranges
from .join import _shown, concatenate, split_joined, split_rows  # noqa: F401  (joins, CHK-024)

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


@dataclass(frozen=True)
class Options:
    """How sources are parsed: ``split_contiguous`` (bytes; cut contiguous variables into
    chunks of at most this size), ``inline_unsupported`` (load variables whose filters have
    no codec, CHK-021), ``inline_max_bytes`` (inline arrays up to this size)."""

    split_contiguous: int | None = None
    inline_unsupported: bool = False
    inline_max_bytes: int = 0


def absolute_url(source: str | os.PathLike) -> str:
    """A source as an absolute URL: local paths become ``file://`` URLs."""
    text = os.fspath(source)
    if "://" in text:
        return text
    return Path(text).resolve().as_uri()


def parse_source(source: str | os.PathLike, options: Options = Options(), *,
                 url: str | None = None) -> virtual.ChunkManifest:
    """The chunk manifest of one source (CHK-020..CHK-023), its identity recorded.

    ``url``: what the sources table says (default: the source's absolute URL).
    Raises :class:`VirtualError` (DM153 unsupported format or filter, DM074 absent),
    located at the source (its path, or its URL).
    """
    try:
        return _parse_source(source, options, url)
    except VirtualError as e:
        e.located(_shown(source))
        raise


def _parse_source(source: str | os.PathLike, options: Options, url: str | None
                  ) -> virtual.ChunkManifest:
    absolute = absolute_url(source)
    written = url or absolute
    local = absolute.startswith("file://")
    path = Path(absolute[len("file://"):]) if local else None
    if absolute.endswith((".json", ".json.gz")) or (local and path.is_dir() and (
            path.suffix in (".parq", ".parquet") or _kerchunk_parquet(path))):
        from . import kerchunk  # a Parquet folder first: its .zmetadata is not a Zarr store's

        return kerchunk.import_references(absolute)
    if local and path.is_dir():
        from . import zarrsrc

        return zarrsrc.parse(path, written)
    reader = open_ranges(absolute, VirtualError)
    try:
        ident = reader.identity()
        head = bytes(reader.read_ranges([(0, min(8, ident.size))])[0]) if ident.size else b""
        if head[:3] == b"CDF":
            from . import netcdf3

            f = open(path, "rb") if local else BlockFile(reader, ident.size, 64 * 1024)
            try:
                m = netcdf3.parse(f, written, size=ident.size,
                                  split_contiguous=options.split_contiguous)
            finally:
                f.close()
        elif head == HDF5_SIGNATURE or _hdf5_later(reader, ident.size):
            from . import hdf5

            target = str(path) if local else BlockFile(reader, ident.size)
            m = hdf5.parse(target, written, size=ident.size,
                           split_contiguous=options.split_contiguous,
                           inline_unsupported=options.inline_unsupported,
                           inline_max_bytes=options.inline_max_bytes)
        else:
            raise VirtualError(f"{absolute}: not an HDF5, NetCDF4 or NetCDF classic file",
                               code="DM153", hint="chunk manifests are built from NetCDF/HDF5 "
                               "files, Zarr stores and kerchunk references")
    finally:
        reader.close()
    src = m.sources[0]
    src.etag, src.last_modified = ident.etag, ident.last_modified
    return m


def _kerchunk_parquet(folder: Path) -> bool:
    """A kerchunk Parquet reference folder: a ``.zmetadata`` with ``record_size`` (a Zarr
    v2 store's consolidated metadata has none)."""
    import json

    meta = folder / ".zmetadata"
    if not meta.is_file():
        return False
    try:
        return "record_size" in json.loads(meta.read_text(encoding="utf-8"))
    except (OSError, ValueError, TypeError):
        return False


def _hdf5_later(reader, size: int) -> bool:
    """HDF5 files may start after a user block of 512, 1024, 2048, ... bytes."""
    at = 512
    while at + 8 <= min(size, 1 << 20):
        if bytes(reader.read_ranges([(at, 8)])[0]) == HDF5_SIGNATURE:
            return True
        at *= 2
    return False


#: from this many sources on, ``virtualize`` parses in forked worker processes by default
#: (HDF5 serializes its calls inside one process, so threads would not help)
PROCESS_MIN = 16


def virtualize(sources: Sequence[str | os.PathLike] | str | os.PathLike, *,
               concat_dim: str | None = None, executor: Executor | None = None,
               options: Options = Options(), base: str | None = None,
               progress: Callable[[int], None] | None = None,
               jobs: int | None = None) -> virtual.ChunkManifest:
    """One chunk manifest over ``sources``: NetCDF/HDF5 archives or Zarr stores read as one
    virtual Zarr store without copying (SCHEMA.md §25).

    Parameters
    ----------
    sources : path, URL, or sequence of them
        Local paths or ``file://``, ``http(s)://``, ``s3://``, ``gs://``, ``az://`` URLs.
        Several sources are concatenated along ``concat_dim`` after the checks of CHK-024.
    concat_dim : str, optional
        The dimension to join several sources along (required for more than one).
    executor : concurrent.futures.Executor, optional
        Parses the sources (``Client.get_executor()`` of dask.distributed works).
    options : Options
        How sources are parsed: ``split_contiguous`` (bytes), ``inline_unsupported``,
        ``inline_max_bytes`` (bytes).
    base : str, optional
        Write source URLs relative to this URL where they lie under it (CHK-007).
    progress : callable, optional
        Called with the number of sources finished so far.
    jobs : int, optional
        Forked processes parsing the sources when no ``executor`` is given (default: one
        per core, at most 8, from :data:`PROCESS_MIN` sources on; 1: in this process).

    Returns
    -------
    ChunkManifest
        The document of SCHEMA.md §25 (``.to_json()`` writes it).

    Raises
    ------
    VirtualError
        DM150 (nothing to virtualize, an unreadable source), DM154 (sources that cannot be
        concatenated, naming both files), and the other DM15x codes of §25.
    MissingDependency
        DM170 when the ``[virtual]`` extra is not installed.
    """
    if isinstance(sources, (str, os.PathLike)):
        sources = [sources]
    sources = list(sources)
    if not sources:
        raise VirtualError("nothing to virtualize: no sources given", code="DM150")
    if len(sources) > 1 and not concat_dim:
        raise VirtualError(f"{len(sources)} sources need a dimension to be concatenated along",
                           code="DM154", hint="give concat_dim (--concat-dim), e.g. time")
    parts: list[virtual.ChunkManifest] = []
    split = options.split_contiguous
    if split and len(sources) > 1:
        # CHK-024: the sources of a join are cut with one chunk length, chosen below
        options = Options(None, options.inline_unsupported, options.inline_max_bytes)
    workers = jobs if jobs is not None else (
        min(8, os.cpu_count() or 1) if len(sources) >= PROCESS_MIN else 1)
    own = None
    if executor is None and workers > 1 and len(sources) > 1 and hasattr(os, "fork"):
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        from ..interrupt import ignore_sigint_in_worker

        # a Ctrl-C is this process's to handle (LCK-008): the workers are ended below
        executor = own = ProcessPoolExecutor(workers,
                                             mp_context=multiprocessing.get_context("fork"),
                                             initializer=ignore_sigint_in_worker)
    if executor is not None and len(sources) > 1:
        try:
            if own is not None:  # our own processes: a few batches each, not a task per file
                step = max(1, len(sources) // (workers * 3))
                batches = [sources[i:i + step] for i in range(0, len(sources), step)]
                futures = [executor.submit(_parse_batch, b, options) for b in batches]
                for f, b in zip(futures, batches):
                    parts.extend(f.result())
                    if progress:
                        progress(len(b))
            else:
                futures = [executor.submit(parse_source, s, options) for s in sources]
                for f in futures:
                    parts.append(f.result())
                    if progress:
                        progress(1)
        except BaseException:
            if own is not None:  # an error or a Ctrl-C: the queued sources are not parsed
                from ..interrupt import end_process_pool

                end_process_pool(own)
                own = None
            raise
        finally:
            if own is not None:
                own.shutdown()
    else:
        for s in sources:
            parts.append(parse_source(s, options))
            if progress:
                progress(1)
    if split and len(parts) > 1:
        split_joined(parts, concat_dim, split)
    result = parts[0] if len(parts) == 1 else concatenate(parts, concat_dim)
    if base is not None:
        rebase(result, base)
    return result


def _parse_batch(sources: list, options: Options) -> list[virtual.ChunkManifest]:
    return [parse_source(s, options) for s in sources]


def rebase(manifest: virtual.ChunkManifest, base: str) -> None:
    """Write source URLs under ``base`` relative to it, and set the document's ``base``."""
    folder = base if base.endswith("/") else base + "/"
    for s in manifest.sources:
        if s.url.startswith(folder):
            s.url = s.url[len(folder):]
    manifest.base = folder

"""``virtualize`` and ``refs info``: chunk manifests from the command line (SCHEMA.md §25)."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import click

from ._common import check_output_file, command, group, human, info, stderr_is_tty


def _size(text: str | None) -> int | None:
    if text is None:
        return None
    from ..spec.maintain import parse_size

    try:
        return parse_size(text)
    except ValueError as e:
        raise click.BadParameter(str(e)) from e


@contextlib.contextmanager
def _stdout_to_stderr(on: bool) -> Iterator[None]:
    """While ``on`` (``--json``), what a library writes on file descriptor 1 itself --
    Icechunk's log lines when ``ICECHUNK_LOG`` asks for them -- goes to stderr, so that
    stdout holds the JSON document only."""
    if not on:
        yield
        return
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def _check_output(output: Path, fmt: str) -> None:
    """STO-015: a file format is written at a path that is not a folder; a folder format
    (kerchunk Parquet, Icechunk) replaces only an empty folder or, for Parquet, an earlier
    export (``.zmetadata`` at its top). Anything else is DM173, before any work."""
    from ..errors import DataManifestError

    if fmt in ("chunk-manifest", "kerchunk-json"):
        check_output_file(output, "out.chunks.json" if fmt == "chunk-manifest" else "out.json",
                           devices=False)
        return
    if not os.path.lexists(output):
        return
    try:
        names = os.listdir(output)
    except NotADirectoryError:
        raise DataManifestError(f"{output} is a file; {fmt} is written as a folder",
                                code="DM173", file=str(output),
                                hint="give the path of a new folder") from None
    except OSError as e:
        raise DataManifestError(f"{output} cannot be read: {e.strerror}", code="DM173",
                                file=str(output)) from e
    if names and not (fmt == "kerchunk-parquet" and ".zmetadata" in names):
        raise DataManifestError(
            f"{output} is a folder holding other files; {fmt} output would replace it",
            code="DM173", file=str(output),
            hint="give the path of a new or empty folder" + (
                " (an earlier kerchunk Parquet export is replaced)"
                if fmt == "kerchunk-parquet" else ""))


@command("virtualize")
@click.argument("sources", nargs=-1, required=True)
@click.option("-o", "--output", "output", required=True, type=click.Path(path_type=Path),
              help="Where to write: a .chunks.json file, a kerchunk .json, or a folder for "
              "kerchunk Parquet or a new Icechunk repository.")
@click.option("--concat-dim", metavar="DIM", help="Concatenate the sources along DIM (after "
              "checking that they agree: codecs, chunks, packing, units).")
@click.option("--format", "fmt", type=click.Choice(["chunk-manifest", "kerchunk-json",
                                                    "kerchunk-parquet", "icechunk"]),
              default="chunk-manifest", show_default=True, help="What to write.")
@click.option("-j", "--jobs", type=click.IntRange(0, 256), default=0,
              help="Sources indexed at once, in worker processes (default: one per core "
              "for 16 sources or more).")
@click.option("--base", metavar="URL", help="Write source URLs under URL relative to it.")
@click.option("--split-contiguous", metavar="SIZE", help="Cut contiguous variables into "
              "chunks of at most SIZE (e.g. 16M) along their first axis.")
@click.option("--inline-unsupported", is_flag=True, help="Load variables whose filters have "
              "no codec (szip, lzf, blosc, ...) into the manifest instead of failing.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@click.option("--json", "as_json", is_flag=True, help="Print a summary as JSON.")
def virtualize_cmd(sources: tuple[str, ...], output: Path, concat_dim: str | None, fmt: str,
                   jobs: int, base: str | None, split_contiguous: str | None,
                   inline_unsupported: bool, quiet: bool, as_json: bool) -> None:
    """Index NetCDF4/HDF5, NetCDF classic files, Zarr stores or kerchunk references (local
    paths or http(s)/s3/gs/az URLs) into one chunk manifest: a Zarr v3 store whose chunks
    are byte ranges of the sources, pinned by their size and ETag or modification time.

    \b
    Examples:
      datamanifest virtualize era5_*.nc --concat-dim time -o era5.chunks.json
      datamanifest virtualize s3://bucket/tas.nc -o tas.json --format kerchunk-json
    """
    from ..virtual import build, document, kerchunk

    _check_output(output, fmt)  # STO-015: before any source is read
    options = build.Options(split_contiguous=_size(split_contiguous),
                            inline_unsupported=inline_unsupported)
    progress = None
    bar = None
    if stderr_is_tty() and not quiet and not as_json and len(sources) > 1:
        from rich.progress import Progress

        bar = Progress(transient=True)
        bar.start()
        task = bar.add_task("indexing", total=len(sources))
        progress = lambda n: bar.advance(task, n)  # noqa: E731
    try:
        m = build.virtualize(list(sources), concat_dim=concat_dim, options=options, base=base,
                             progress=progress, jobs=jobs or None)
    finally:
        if bar is not None:
            bar.stop()
    if fmt == "chunk-manifest":
        checksum = document.write(m, output)
    elif fmt == "kerchunk-json":
        from ..store.atomic import write_text

        write_text(output, json.dumps(kerchunk.to_json(m)))
        checksum = None
    elif fmt == "kerchunk-parquet":
        from ..store.atomic import staged_folder

        with staged_folder(output) as tmp:  # STO-015: whole or not at all
            kerchunk.write_parquet(m, tmp)
        checksum = None
    else:
        from ..store.atomic import staged_folder
        from ..virtual.icechunk import to_icechunk

        checksum = None
        with staged_folder(output) as tmp, _stdout_to_stderr(as_json):
            snapshot = to_icechunk(m, tmp)
        if not as_json:
            click.echo(f"icechunk snapshot {snapshot}", err=True)
    arrays = list(m.arrays())
    summary = {"output": str(output), "format": fmt, "sources": len(m.sources),
               "arrays": len(arrays), "chunks": sum(n.refs.count for n in arrays),
               "checksum": checksum}
    if fmt == "icechunk":
        summary["snapshot"] = snapshot
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    info(f"wrote {output}: {summary['arrays']} arrays, {summary['chunks']} chunks from "
          f"{summary['sources']} source(s)" + (f", {checksum}" if checksum else ""))


@group("refs")
def refs_group() -> None:
    """Inspect chunk manifests."""


@refs_group.command("info")
@click.argument("file")
@click.option("--verify", "verify_", is_flag=True, help="Also hash whole sources against "
              "their recorded checksums (reads every byte).")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_context
def refs_info(ctx: click.Context, file: str, verify_: bool, as_json: bool) -> None:
    """Arrays, chunk counts, bytes referenced, and whether each source still matches what
    was indexed (CHK-011). Exit 1 when a source changed or cannot be reached."""
    from ..virtual import document
    from ..virtual.store import load_manifest

    from ..spec.secrets import redact_uri

    manifest, url = load_manifest(file)
    info = document.info(manifest, url, verify=verify_)
    for s in info["sources"]:  # SEC-002
        s["url"] = redact_uri(s["url"])
        if s.get("problem"):
            from ..spec.secrets import redact_text

            s["problem"] = redact_text(s["problem"])
    if as_json:
        click.echo(json.dumps(info, indent=2))
    else:
        click.echo(f"{file}: {len(info['arrays'])} arrays, "
                   f"{human(info['bytes_referenced'], '-')} referenced in "
                   f"{len(info['sources'])} source(s); checksum {info['checksum'] or '-'}")
        for a in info["arrays"]:
            dt = a["data_type"] if isinstance(a["data_type"], str) else a["data_type"]["name"]
            click.echo(f"  {a['path']:<24} {dt:<8} {str(a['shape']):<20} chunks "
                       f"{a['chunk_shape']}: {a['referenced']} referenced, {a['inline']} "
                       f"inline, {a['missing']} missing")
        for s in info["sources"]:
            mark = {"ok": "ok", "changed": "CHANGED", "unreachable": "UNREACHABLE"}[s["status"]]
            click.echo(f"  {mark:<11} {redact_uri(s['url'])} ({human(s['size'], '-')})")
            if s.get("problem"):
                click.echo(f"              {s['problem']}", err=True)
    ctx.exit(0 if all(s["status"] == "ok" for s in info["sources"]) else 1)


COMMANDS = [virtualize_cmd, refs_group]

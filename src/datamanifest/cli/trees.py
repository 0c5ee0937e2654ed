"""``tree``, ``verify``, ``diff``, ``versions``: tree manifests and verification at rest
(SCHEMA.md §20)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..errors import DataManifestError
from .completion import complete_datasets
from ._common import check_output_file, command, human, info, open_project, stderr_is_tty

@command("tree")
@click.argument("path", type=str)
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Write the manifest here "
              "(atomically) instead of stdout.")
@click.option("-a", "--algorithm", type=click.Choice(["tree-sha256", "dandi-zarr"]),
              default="tree-sha256", show_default=True)
@click.option("-j", "--jobs", type=click.IntRange(1, 64), default=None,
              help="Files hashed at once (default: min(8, CPUs)).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@click.option("--json", "as_json", is_flag=True, help="Print {checksum, entries, total_size, "
              "output} as JSON (with the manifest itself as `manifest` when there is no -o).")
def tree_cmd(path: str, output: Path | None, algorithm: str, jobs: int | None, quiet: bool,
             as_json: bool) -> None:
    """Write the tree manifest of a folder and print its checksum (SCHEMA.md §20).

    The manifest (JSON, DANDI layout) goes to stdout or -o FILE; the checksum
    `<algorithm>:<value>` is printed on stderr (on stdout with -o).
    """
    from ..tree import write_manifest

    if path.startswith("s3://"):
        from ..store.atomic import write_text
        from ..tree import s3_manifest

        doc = s3_manifest(path, algorithm, jobs=jobs or 8)
        text = json.dumps(doc, indent=1, ensure_ascii=False) + "\n"
        if as_json:
            if output is not None:
                write_text(output, text)
            stats = doc.get("statistics", {})
            click.echo(json.dumps({"checksum": doc["checksum"], "entries": stats.get("entries"),
                                   "total_size": stats.get("totalSize"),
                                   "output": str(output) if output else None,
                                   **({} if output else {"manifest": doc})}))
            return
        if output is None:
            click.echo(text, nl=False)
            click.echo(doc["checksum"], err=True)
        else:
            write_text(output, text)
            click.echo(doc["checksum"])
        return
    if "://" in path and not path.startswith("file://"):
        scheme = path.split("://", 1)[0]
        raise DataManifestError(f"listing {scheme}:// prefixes is not supported", code="DM072",
                                hint="supported: local folders and s3:// (with boto3)")
    root = Path(path[len("file://"):] if path.startswith("file://") else path)
    if not root.is_dir():
        raise DataManifestError(f"{root} is not a folder", code="DM074")
    if output is not None:  # STO-015: the manifest is a file (or a device such as /dev/null)
        check_output_file(output, f"{root.name}.tree.json")
    progress = None
    if stderr_is_tty() and not quiet and not as_json and output is not None:
        from ..progress import RichProgress

        progress = RichProgress()
        task = progress.start(f"hashing {root.name}", None)
    inline = None
    if as_json and output is None:  # the manifest goes into the JSON document
        import tempfile

        inline = Path(tempfile.mkdtemp(prefix="dm-tree-")) / "tree.json"
    try:
        # worker processes only when no thread of ours runs (no progress bar thread)
        result = write_manifest(root, inline or output, algorithm, jobs=jobs,
                                processes=progress is None,
                                on_bytes=(lambda n: progress.advance(task, n)) if progress else None)
    finally:
        if progress:
            progress.close()
    if as_json:
        doc = {"checksum": result.checksum, "entries": result.entries,
               "total_size": result.total_size, "output": str(output) if output else None}
        if inline is not None:
            doc["manifest"] = json.loads(inline.read_text(encoding="utf-8"))
            import shutil

            shutil.rmtree(inline.parent, ignore_errors=True)
        click.echo(json.dumps(doc))
        return
    if output is not None:
        click.echo(result.checksum)
        info(f"{result.entries} entries, {human(result.total_size)}, written to {output}")
    else:
        info(result.checksum)


@command()
@click.argument("names", nargs=-1, shell_complete=complete_datasets)
@click.option("--full", is_flag=True, help="Re-hash every file, not only those whose size or "
              "modification time changed.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@click.pass_context
def verify(ctx: click.Context, names: tuple[str, ...], full: bool, as_json: bool) -> None:
    """Re-check datasets at rest against their checksums and tree manifests.

    Reports every added, removed and modified entry; exits 1 on any difference.
    """
    from ..verify import verify_dataset, verify_target

    targets = {n: r for n in names if (r := verify_target(n, full=full)) is not None}
    if targets and len(targets) == len(names):
        failures = sum(not r.ok for r in targets.values())
        _print_verify(list(targets.values()), as_json)
        if failures:
            click.echo(f"error DM122 {failures} target(s) differ from their latest version",
                       err=True)
        ctx.exit(1 if failures else 0)
    project = open_project(ctx)
    selected = [project.resolve(n) for n in names] if names else [
        n for n, ds in project.manifest.datasets.items()
        if not (ds.skip_download or ds.lazy_access) and project.locate(n) is not None]
    results, failures = [], 0
    for n in selected:
        try:
            r = verify_dataset(project, n, full=full)
        except DataManifestError as e:
            failures += 1
            if as_json:
                results.append({"name": n, "ok": False, "error": e.as_diagnostic().as_json()})
            else:
                click.echo(f"{n}: {e.render()}", err=True)
            continue
        failures += not r.ok
        if as_json:
            results.append(r.as_json())
        else:
            click.echo(f"{n}: {'ok' if r.ok else 'DIFFERS'} ({r.kind}, {r.rehashed} re-hashed)")
            for line in r.differences.lines():
                click.echo(f"  {line}")
    if as_json:
        click.echo(json.dumps(results, indent=2))
    if failures:
        click.echo(f"error DM122 {failures} dataset(s) differ or cannot be verified", err=True)
    ctx.exit(1 if failures else 0)


def _print_verify(results: list, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps([r.as_json() for r in results], indent=2))
        return
    for r in results:
        click.echo(f"{r.name}: {'ok' if r.ok else 'DIFFERS'} ({r.kind}, {r.rehashed} re-hashed)")
        for line in r.differences.lines():
            click.echo(f"  {line}")


@command()
@click.argument("a")
@click.argument("b")
@click.option("--json", "as_json", is_flag=True, help="Print the differences as JSON.")
@click.pass_context
def diff(ctx: click.Context, a: str, b: str, as_json: bool) -> None:
    """Compare two tree manifests: files (*.json) or dataset versions (NAME, NAME@VALUE-PREFIX).

    Exit 0 when they list the same entries, 1 when they differ.
    """
    from ..verify import diff_manifests, tree_manifest

    getter = lambda: open_project(ctx)  # noqa: E731 - only opened when a name is given
    d = diff_manifests(tree_manifest(a, getter), tree_manifest(b, getter))
    if as_json:
        click.echo(json.dumps(d.as_json(), indent=2))
    else:
        for line in d.lines():
            click.echo(line)
        info(f"{len(d.added)} added, {len(d.removed)} removed, {len(d.modified)} modified")
    ctx.exit(1 if d else 0)


@command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_context
def versions(ctx: click.Context, name: str, as_json: bool) -> None:
    """List the kept tree manifests (versions by checksum) of a folder dataset."""
    from ..appends import versions as target_versions
    from ..store import trees

    target = target_versions.target_of(name)
    if target is not None:  # an append target (APP-030): every commit, oldest first
        rows = target_versions.listing(target)
        if as_json:
            click.echo(json.dumps(rows, indent=2))
            return
        for r in rows:
            mark = "*" if r["latest"] else " "
            kept = "" if r["kept"] else "  (manifest pruned)"
            click.echo(f"{mark} {r['checksum']}  {r['time']}  {r['entries']} entries{kept}")
        return
    project = open_project(ctx)
    n = project.resolve(name)
    rows = trees.listing(project.root, project.dataset(n).derived_key)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        info(f"{n}: no tree manifests (only folder datasets have them)")
    for r in rows:
        mark = "*" if r["latest"] else " "
        click.echo(f"{mark} {r['checksum']}  {r['entries']} entries  {human(r['total_size'])}")


COMMANDS = [tree_cmd, verify, diff, versions]

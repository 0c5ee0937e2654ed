"""``list``, ``rm``, ``mv``, ``refresh``, ``export``: owning the store (SCHEMA.md §22)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import click

from ..errors import MaintenanceError
from ..spec import maintain as _maintain
from ._common import command, human, info, open_project, report_steps, trust_option
from .completion import complete_datasets


def _no_format(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    """`--format` is ambiguous on commands that select objects: JSON output is --json, the
    data-format filter is --data-format (CLI convention; `list --format json` used to
    filter by data format and print "0 object(s)")."""
    if value is not None:
        raise click.UsageError(
            f"--format {value}: use --json for JSON output, or --data-format {value} to "
            "select objects of that data format", ctx=ctx)


def _selection_options(fn: Callable) -> Callable:
    """The terms and filters of MNT-010, shared by every verb that selects."""
    opts = [
        click.argument("terms", nargs=-1, shell_complete=complete_datasets),
        click.option("--kind", type=click.Choice(["data", "cached"]),
                     help="Only datasets (data) or produced artifacts (cached)."),
        click.option("--data-format", "formats", multiple=True, metavar="FMT",
                     help="Only objects of this data format: csv, nc, zarr, pickle, ... "
                     "(repeatable)."),
        click.option("--format", "output_format", hidden=True, callback=_no_format,
                     expose_value=False, help="Not an option here: --json, --data-format."),
        click.option("--state", "states", multiple=True, type=click.Choice(_maintain.STATES),
                     help="Only objects in this state (repeatable)."),
        click.option("--present/--missing", "present", default=None,
                     help="Only present, or only missing, objects."),
        click.option("--older-than", metavar="AGE", help="Created (or with --by-access, last "
                     "read) more than AGE ago: 30d, 12h, 2w, 90 (seconds)."),
        click.option("--newer-than", metavar="AGE", help="Created (or last read) within AGE."),
        click.option("--by-access", is_flag=True, help="Age filters use the last access time "
                     "(read with stat, never changed by listing) instead of creation."),
        click.option("--larger-than", metavar="SIZE", help="Larger than SIZE: 500M, 2G, 10K."),
        click.option("--unreferenced", is_flag=True, help="Produced artifacts the state file "
                     "does not record."),
        click.option("--outside", is_flag=True, help="Objects outside datasets_dir and "
                     "datacache_dir."),
        click.option("--all", "all_", is_flag=True, help="Select every object."),
    ]
    for opt in reversed(opts):
        fn = opt(fn)
    return fn


def _selection(all_: bool = False, **sel: Any) -> _maintain.Selection:
    from ..maintain.inventory import selection

    return selection(all=all_, **sel)


def _require(selection: _maintain.Selection, picked: list, verb: str) -> None:
    if selection.empty:
        raise MaintenanceError(f"{verb}: nothing selected", code="DM130",
                               hint="name objects (terms), use filters, or pass --all")
    if not picked:
        raise MaintenanceError(f"{verb}: the selection is empty (no object matches)",
                               code="DM130", hint="`datamanifest list` with the same terms "
                               "shows what they match")


# -- list --------------------------------------------------------------------------------------
@command("list")
@_selection_options
@click.option("--json", "as_json", is_flag=True, help="Print the objects as a JSON list.")
@click.option("--fields", metavar="F1,F2,...", help="Print these fields, tab-separated, one "
              "object a line, no header (for scripts). Fields: "
              + ", ".join(_maintain.FIELDS) + ".")
@click.option("--verify", "verify_", is_flag=True, help="Re-hash present objects to find "
              "modified ones (reads the data; slow on large stores).")
@click.pass_context
def list_cmd(ctx: click.Context, as_json: bool, fields: str | None, verify_: bool,
             **sel: Any) -> None:
    """List every object of the project's stores: datasets and produced artifacts.

    TERMS select objects whose id, name or key equals one of them, artifacts whose hash
    starts with one (6+ characters), or, with * ? [, that a glob matches (MNT-010).
    Listing reads markers and the state file and never opens a data file, so the
    access times it reports are left as they were. Alias: ls.
    """
    from ..maintain.inventory import listing

    objs = listing(open_project(ctx), _selection(**sel), verify=verify_)
    if as_json:
        # one object per line: the C encoder (indent= falls back to pure Python)
        click.echo("[" + ",\n ".join(json.dumps(o.as_json(), ensure_ascii=False)
                                      for o in objs) + "]")
        return
    if fields:
        names = [f.strip() for f in fields.split(",") if f.strip()]
        bad = [f for f in names if f not in _maintain.FIELDS]
        if bad:
            raise click.UsageError(f"unknown field(s) {', '.join(bad)}; known: "
                                   + ", ".join(_maintain.FIELDS))
        for o in objs:
            row = o.as_json()
            click.echo("\t".join("" if row[f] is None else str(row[f]) for f in names))
        return
    _table(objs)


def _table(objs: list) -> None:
    total = sum(o.size or 0 for o in objs if o.state != "missing")
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table

        table = Table(box=None, pad_edge=False)
        for col in ("kind", "id", "state", "size", "created", "location"):
            table.add_column(col, overflow="fold", justify="right" if col == "size" else "left")
        colors = {"clean": "green", "missing": "red", "relocated": "yellow",
                  "untracked": "yellow", "modified": "red"}
        for o in objs:
            state = f"[{colors.get(o.state, 'white')}]{o.state}[/]" + \
                (f" [dim]({o.protected})[/]" if o.protected else "")
            table.add_row(o.kind, o.id if o.kind == "data" else _short(o.id), state,
                          human(o.size, '-'), (_maintain.rfc3339(o.created) or "-")[:10],
                          o.location)
        Console().print(table)
    else:
        for o in objs:
            prot = f" ({o.protected})" if o.protected else ""
            click.echo(f"{o.kind}\t{o.id}\t{o.state}{prot}\t{human(o.size, '-')}\t{o.location}")
    info(f"{len(objs)} object(s), {human(total, '-')} present")


def _short(cache_key: str) -> str:
    head, _, h = cache_key.rpartition("/")
    return f"{head}/{h[:12]}"




# -- rm ----------------------------------------------------------------------------------------
@command("rm")
@_selection_options
@click.option("-n", "--dry-run", is_flag=True, help="Print what would be deleted and the bytes freed; "
              "change nothing.")
@click.option("--prune", is_flag=True, help="Also remove the datasets' entries from the "
              "manifest (comments elsewhere kept).")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
@trust_option
@click.pass_context
def rm_cmd(ctx: click.Context, dry_run: bool, prune: bool, as_json: bool, **sel: Any) -> None:
    """Delete the selected objects: bytes, marker and state record.

    Nothing is deleted without a selection (TERMS, filters, or --all). Protected
    objects (your own exact storage_path, skip_download, lazy_access, read pools,
    anything outside the store roots) and objects a running process is writing are
    skipped and reported.
    """
    from ..maintain import inventory, remove

    selection = _selection(**sel)
    inv = inventory(open_project(ctx))
    picked = _maintain.select(inv.objects, selection)
    _require(selection, picked, "rm")
    ctx.exit(report_steps(remove(inv, picked, dry_run=dry_run, prune=prune), as_json, dry_run,
                     "deleted" if not dry_run else "would delete"))


# -- mv ----------------------------------------------------------------------------------------
@command("mv")
@click.argument("ident", metavar="ID", shell_complete=complete_datasets)
@click.argument("dest", type=click.Path(file_okay=False))
@click.option("-n", "--dry-run", is_flag=True, help="Print what would move and how many bytes.")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
@click.option("--force", is_flag=True, help="Move aside (rename <name>.~N~, never delete) a "
              "file or folder at the destination that datamanifest did not publish, instead "
              "of refusing it (DM182).")
@trust_option
@click.pass_context
def mv_cmd(ctx: click.Context, ident: str, dest: str, dry_run: bool, as_json: bool,
           force: bool) -> None:
    """Move one object (a dataset name, or an artifact's cache key or hash prefix) into the
    store root DEST: copied, verified, published, the record repointed, then the source
    deleted. Lands at DEST/<key>, never nested; an existing copy with the same checksum is
    adopted."""
    from ..maintain import inventory, move

    inv = inventory(open_project(ctx))
    step = move(inv, inv.by_id(ident), dest, dry_run=dry_run, force=force)
    ctx.exit(report_steps([step], as_json, dry_run, "moved" if not dry_run else "would move"))


# -- refresh -------------------------------------------------------------------------------------
@command("refresh")
@click.option("--scan", is_flag=True, help="Also adopt untracked objects after verifying "
              "their bytes.")
@click.option("-n", "--dry-run", is_flag=True, help="Print the changes; write nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
@click.pass_context
def refresh_cmd(ctx: click.Context, scan: bool, dry_run: bool, as_json: bool) -> None:
    """Make the state file follow the bytes: repoint relocated objects, drop records of what
    is gone (only when its folder is reachable), and with --scan adopt untracked ones."""
    from ..maintain import inventory, refresh

    inv = inventory(open_project(ctx))
    steps = refresh(inv, scan=scan, dry_run=dry_run)
    ctx.exit(report_steps(steps, as_json, dry_run, "refreshed" if not dry_run else "would refresh"))


# -- export --------------------------------------------------------------------------------------
@command("export")
@click.argument("dest", type=click.Path(file_okay=False))
@click.argument("names", nargs=-1, shell_complete=complete_datasets)
@click.option("--force", is_flag=True, help="Replace an existing DEST/datamanifest.toml.")
@click.option("-n", "--dry-run", is_flag=True, help="Print what would be copied; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
@click.pass_context
def export_cmd(ctx: click.Context, dest: str, names: tuple[str, ...], force: bool, dry_run: bool,
               as_json: bool) -> None:
    """Copy datasets (NAMES, default all present) into DEST with a manifest of their own
    (datasets_dir = "."): a self-contained folder another project can use as is, or as a
    read pool. Copies are verified against their checksums."""
    from ..maintain import export, inventory

    project = open_project(ctx)
    inv = inventory(project)
    wanted = {project.resolve(n) for n in names}
    picked = [o for o in inv.objects if o.kind == "data" and (not wanted or o.id in wanted)]
    steps = export(inv, picked, dest, dry_run=dry_run, force=force)
    ctx.exit(report_steps(steps, as_json, dry_run, "exported" if not dry_run else "would export"))



COMMANDS = [list_cmd, rm_cmd, mv_cmd, refresh_cmd, export_cmd]

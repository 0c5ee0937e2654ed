"""``push``, ``pull`` and the far end's ``receive``: objects between machines (SCHEMA.md §23)."""

from __future__ import annotations

import json
import sys

import click

from ._common import command, open_project, report_steps, trust_option


def _endpoint_options(fn):
    opts = [
        click.option("--root", "root_mode", is_flag=True, help="TARGET's path is the far store "
                     "root itself, not a project folder (nothing is recorded there)."),
        click.option("--remote-command", metavar="CMD", help="The datamanifest command at the "
                     "far end (default: $DATAMANIFEST_REMOTE or `datamanifest`)."),
        click.option("--bwlimit", type=click.IntRange(min=1), metavar="KIB/S",
                     help="Limit rsync's bandwidth."),
        click.option("--dry-run", "-n", is_flag=True, help="Print what would be copied, and "
                     "the bytes; copy nothing."),
        click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON."),
        click.option("--force", is_flag=True, help="Move aside (rename <name>.~N~, never "
                     "delete) a file or folder at the receiving end that datamanifest did not "
                     "publish, instead of refusing it (DM182)."),
        trust_option,
    ]
    for opt in reversed(opts):
        fn = opt(fn)
    return fn


def _split(args: tuple[str, ...], verb: str) -> tuple[list[str], str]:
    if len(args) < 2:
        raise click.UsageError(f"{verb} needs at least one ID and a TARGET")
    return list(args[:-1]), args[-1]


@command()
@click.argument("args", nargs=-1, required=True, metavar="ID... TARGET")
@_endpoint_options
@click.pass_context
def push(ctx: click.Context, args: tuple[str, ...], root_mode: bool, remote_command: str | None,
         bwlimit: int | None, dry_run: bool, as_json: bool, force: bool) -> None:
    """Copy objects to another machine's store over SSH (or to a local folder).

    TARGET is [user@]host:[path], ssh://[user@]host[:port]/path, or a folder. The path
    names the far project (its store is what `datamanifest where --json` prints there),
    or with --root the far store root. The far end stages, verifies against the checksum,
    publishes with the marker last and records the object (SYNC-003..006). An object
    already there with the same checksum is not sent again.

    \b
    Examples:
      datamanifest push era5 cluster:~/proj
      datamanifest push 'proj.*' /mnt/usb/store --root
    """
    from ..maintain import inventory
    from ..maintain.sync import Endpoint, push as do_push
    from ..spec import maintain as _maintain

    ids, target = _split(args, "push")
    inv = inventory(open_project(ctx))
    objs = []
    for ident in ids:  # each ID is a name, cache key or glob (MNT-010); all are pushed
        picked = _maintain.select(inv.objects, _maintain.Selection(terms=(ident,)))
        if not picked:
            picked = [inv.by_id(ident)]  # an alias or DOI, or DM134 naming the ID
        objs.extend(o for o in picked if o not in objs)
    endpoint = Endpoint.parse(target, root_mode=root_mode, remote_command=remote_command,
                              bwlimit=bwlimit)
    ctx.exit(report_steps(do_push(inv, objs, endpoint, dry_run=dry_run, force=force), as_json, dry_run,
                     "pushed" if not dry_run else "would push"))


@command()
@click.argument("args", nargs=-1, required=True, metavar="ID... TARGET")
@_endpoint_options
@click.pass_context
def pull(ctx: click.Context, args: tuple[str, ...], root_mode: bool, remote_command: str | None,
         bwlimit: int | None, dry_run: bool, as_json: bool, force: bool) -> None:
    """Copy objects from another machine's store into this project's store.

    Each ID is a dataset's name or a cache key (<cachetype>[@<version>]/<hash>); an object
    this store has never had works. This end stages, verifies against the manifest's
    checksum (else the far marker's), publishes with the marker last and records it.
    """
    from ..maintain import inventory
    from ..maintain.sync import Endpoint, pull as do_pull

    ids, target = _split(args, "pull")
    inv = inventory(open_project(ctx))
    endpoint = Endpoint.parse(target, root_mode=root_mode, remote_command=remote_command,
                              bwlimit=bwlimit)
    ctx.exit(report_steps(do_pull(inv, ids, endpoint, dry_run=dry_run, force=force), as_json, dry_run,
                     "pulled" if not dry_run else "would pull"))


@command(hidden=True)
@click.option("--kind", type=click.Choice(["data", "cached"]), required=True)
@click.option("--rel", required=True, help="The object's path below the store root.")
@click.option("--key", required=True)
@click.option("--record-key", default="")
@click.option("--identity", required=True, help="The checksum (artifact: marker) expected.")
@click.option("--dir/--file", "is_dir", required=True)
@click.option("--root", help="The store root (else this project's).")
@click.option("--force", is_flag=True, help="Move aside what datamanifest did not publish.")
@trust_option
@click.pass_context
def receive(ctx: click.Context, kind: str, rel: str, key: str, record_key: str, identity: str,
            is_dir: bool, root: str | None, force: bool) -> None:
    """The far end of a push (SYNC-006): speaks one JSON line each way on stdin/stdout."""
    import os

    from ..maintain.receive import Receiver, serve_receive

    if ".." in rel.split("/") or rel.startswith("/"):
        click.echo(json.dumps({"error": {"code": "DM032", "message": f"unsafe path {rel!r}"}}))
        sys.exit(1)
    if root:
        # no project there: lock_stale_age comes from the environment rung, else its default
        from ..spec.resolution import DEFAULTS

        try:
            stale = float(os.environ.get("DATAMANIFEST_LOCK_STALE_AGE", ""))
        except ValueError:
            stale = 0.0
        recv = Receiver(os.path.join(os.path.abspath(os.path.expanduser(root)), rel), kind,
                        is_dir, key, record_key,
                        stale_age=stale if stale > 0 else DEFAULTS["lock_stale_age"], force=force)
    else:
        try:
            project = open_project(ctx)
            project.require_trust("receive", roots=True)  # TRU-004 at the far end
        except Exception as e:  # noqa: BLE001 - reported to the sender as one JSON line
            code = getattr(e, "code", "DM135")
            click.echo(json.dumps({"error": {"code": code, "message": str(e)}}))
            sys.exit(1)
        res = project.storage.resolved
        base = res.get("datacache_dir") if kind == "cached" else res.get("datasets_dir")
        recv = Receiver(os.path.join(base, rel), kind, is_dir, key, record_key,
                        str(project.state_file), str(project.root), res.get("datacache_dir"),
                        project.storage.lock_stale_age, force=force)
    sys.exit(serve_receive(recv, identity, sys.stdin, sys.stdout))



COMMANDS = [push, pull, receive]

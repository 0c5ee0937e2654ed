"""``append``: grow a Zarr cube slice by slice, one transaction each (SCHEMA.md §26)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from ._common import SECONDS, command, stderr_is_tty


@command("append")
@click.argument("target")
@click.argument("slices", nargs=-1)
@click.option("-c", "--config", "configs", multiple=True, type=click.Path(exists=True,
              dir_okay=False, path_type=Path), help="An append configuration (TOML, "
              "SCHEMA.md §26.1); repeat to merge several, later ones win.")
@click.option("--dim", "append_dim", metavar="DIM", help="The append dimension "
              "(default: time).")
@click.option("--step", "append_step", metavar="STEP", help="The append step: +, -, a "
              "number or a duration like 1D, 6h (labels must continue the target by it).")
@click.option("--zarr-format", type=click.Choice(["2", "3"]), help="The format of a new "
              "target (default 3).")
@click.option("-n", "--dry-run", is_flag=True, default=None, help="Check the slices against the "
              "target and write nothing.")
@click.option("--wait/--no-wait", default=None, help="Wait for another writer's lock "
              "(default), or fail at once with DM131.")
@click.option("--timeout", type=SECONDS, metavar="SECONDS", help="Give up waiting for the lock "
              "after SECONDS (DM075).")
@click.option("--recover", "do_recover", is_flag=True, help="Only repair a pending "
              "transaction (rolled back or forward, as the journal says).")
@click.option("--status", "do_status", is_flag=True, help="Only show the committed length, a "
              "pending transaction and the lock holder.")
@click.option("--no-durable", is_flag=True, help="Skip making the new chunks durable before "
              "the commit (faster; a power cut may then lose the last commits).")
@click.option("--endpoint-url", metavar="URL", help="The S3 endpoint of an s3:// target.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@click.pass_context
def append_cmd(ctx: click.Context, target: str, slices: tuple[str, ...],
               configs: tuple[Path, ...], append_dim: str | None, append_step: str | None,
               zarr_format: str | None, dry_run: bool | None, wait: bool | None,
               timeout: float | None, do_recover: bool, do_status: bool, no_durable: bool,
               endpoint_url: str | None, quiet: bool, as_json: bool) -> None:
    """Append SLICES (NetCDF/HDF5 files, Zarr stores, or URLs) to the Zarr store TARGET (a
    folder or s3://bucket/prefix), one transaction each: a reader sees the cube before a
    slice or after it, never in between; a killed append is rolled back or forward by the
    next one; two appenders never interleave. The first slice creates TARGET (Zarr v3
    unless --zarr-format 2). Every commit is recorded as a version (`datamanifest versions
    TARGET`).

    \b
    Examples:
      datamanifest append cube.zarr day_*.nc --step 1D
      datamanifest append s3://bucket/cube.zarr new.nc -c cube.append.toml --no-wait
      datamanifest append --status cube.zarr
      datamanifest append --recover cube.zarr
    """
    from .. import appends

    options: dict = {"append_dim": append_dim, "append_step": _step(append_step),
                     "zarr_format": int(zarr_format) if zarr_format else None,
                     "dry_run": dry_run, "durable": False if no_durable else None}
    lock = {k: v for k, v in (("wait", wait), ("timeout", timeout)) if v is not None}
    if lock:
        options["lock"] = lock
    if endpoint_url:
        options["target_storage_options"] = {"endpoint_url": endpoint_url}
    cfg = appends.load_config(configs, **{k: v for k, v in options.items() if v is not None})
    if do_status:
        st = appends.status(target, cfg)
        if as_json:
            click.echo(json.dumps(st.as_json(), indent=2))
        else:
            _print_status(st)
        return
    if do_recover:
        done = appends.recover(target, cfg)
        if as_json:
            click.echo(json.dumps(done, indent=2))
        elif done is None:
            click.echo(f"{target}: nothing to recover", err=True)
        else:
            click.echo(f"{target}: {done['action']}" + (f" of transaction {done['txn']}"
                       if done.get("txn") else ""), err=True)
        return
    if not slices:
        raise click.UsageError("give at least one SLICE (or --status / --recover)")
    bar = task = None
    if stderr_is_tty() and not quiet and not as_json and len(slices) > 1:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
        from rich.progress import TimeRemainingColumn

        bar = Progress(TextColumn("appending"), BarColumn(), MofNCompleteColumn(),
                       TimeRemainingColumn(), transient=True)
        bar.start()
        task = bar.add_task("append", total=len(slices))
    results = []

    def done_one(r) -> None:
        results.append(r)
        if bar is not None:
            bar.advance(task, 1)
        elif not as_json:
            _print_result(r, slices[len(results) - 1])

    def waiting(who: str) -> None:
        if not as_json:
            click.echo(f"waiting for the lock of {target}, held by {who}", err=True)

    try:
        appends.append(target, list(slices), cfg, on_slice=done_one, on_wait=waiting)
    finally:
        if bar is not None:
            bar.stop()
            if not as_json:
                for r, s in zip(results, slices):
                    _print_result(r, s)
        if as_json:
            click.echo(json.dumps([r.as_json() for r in results], indent=2))


def _step(text: str | None):
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        return text
    return int(value) if value.is_integer() and "." not in text else value


def _print_result(r, source: str) -> None:
    rec = ""
    if r.recovered:
        rec = f" (recovered first: {r.recovered.get('action')})"
    if r.action == "dry-run":
        click.echo(f"would append {source}: {r.target} {r.old_length} -> {r.new_length}",
                   err=True)
        return
    click.echo(f"{r.action} {source}: {r.target} {r.old_length} -> {r.new_length} in "
               f"{r.seconds * 1000:.1f} ms{rec}", err=True)
    if r.version:
        click.echo(f"  version {r.version}", err=True)


def _print_status(st) -> None:
    out = sys.stdout
    if not st.exists:
        out.write(f"{st.target}: no target yet\n")
    else:
        out.write(f"{st.target}: Zarr v{st.zarr_format}, {st.append_dim} = {st.length}, "
                  f"variables {', '.join(st.variables)}\n")
    if st.version:
        out.write(f"version  {st.version}\n")
    if st.pending:
        p = st.pending
        out.write(f"pending  transaction {p['txn']} from {p['created']}: "
                  f"{p['committed_length']} -> {p['new_length']} (the next append or "
                  "--recover repairs it)\n")
    if st.lock:
        lk = st.lock
        state = "stale" if lk.get("stale") else "held"
        out.write(f"lock     {state} by pid {lk.get('pid')} on {lk.get('host')} since "
                  f"{lk.get('created')} (heartbeat {lk.get('heartbeat_age')} s ago)\n")


COMMANDS = [append_cmd]

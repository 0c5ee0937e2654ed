"""``fetch``, ``status``, ``path``: datasets on this machine (SCHEMA.md §11, STO-010)."""

from __future__ import annotations

import json
import os

import click

from ..errors import Diagnostic
from .completion import complete_datasets
from ._common import SECONDS, command, human, info, open_project, print_warnings, stderr_is_tty, \
    trust_option, verbose_log

# -- fetch -------------------------------------------------------------------------------------
@command()
@click.argument("names", nargs=-1, shell_complete=complete_datasets)
@click.option("-j", "--jobs", type=click.IntRange(1, 64), default=4, show_default=True,
              help="Datasets downloaded at once.")
@click.option("--per-host", type=click.IntRange(1, 64), default=4, show_default=True,
              help="Downloads from any one host at once.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars, no summary; print only "
              "problems.")
@click.option("-v", "--verbose", is_flag=True, help="Also list datasets already present.")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON on stdout.")
@click.option("--force", is_flag=True, help="Download again even when present; an existing "
              "file or folder that datamanifest did not publish is moved aside to "
              "<name>.~N~ (never deleted) instead of refusing (DM182).")
@click.option("--lock-timeout", type=SECONDS, default=None, metavar="SECONDS",
              help="Give up waiting for another process's lock after this long.")
@click.option("--offline", is_flag=True, help="Use only what is present (targets, state, "
              "pools); download nothing and list what is missing.")
@click.option("--insecure", is_flag=True, help="Do not verify TLS certificates (FET-017); "
              "the checksums are still verified. Same as DATAMANIFEST_TLS_VERIFY=0.")
@click.option("-n", "--dry-run", is_flag=True, help="Print what would be fetched: names, "
              "sources, sizes (one HEAD request per http(s) source), targets, and what is "
              "present already; download and write nothing.")
@trust_option
@click.pass_context
def fetch(ctx: click.Context, names: tuple[str, ...], jobs: int, per_host: int, quiet: bool,
          verbose: bool, as_json: bool, force: bool, lock_timeout: float | None,
          offline: bool, insecure: bool, dry_run: bool) -> None:
    """Download datasets (all, or NAMES and their requirements), verified and atomically.

    The digest is computed while bytes stream in; a mismatch publishes
    nothing. Empty checksums are filled into the manifest (comments kept).
    A dataset whose entry, or an entry it requires, has errors is refused
    before any download (exit 1); the others are fetched (MAN-012).
    Progress bars show on a terminal; output is quiet when piped. A wait that
    stays silent for 5 s (a lock, a server that sends nothing) says what it
    waits for, on a terminal and with --verbose.
    Ctrl-C stops at once (exit 130); the next run resumes interrupted HTTP
    downloads.
    """
    from .. import fetch as fetching
    from ..progress import NullProgress, RichProgress

    if verbose:  # the notes of NullProgress (silent waits) and other info
        verbose_log()
    project = open_project(ctx)
    print_warnings(project)
    if insecure:  # read by the HTTP client, inherited by forked workers (FET-017)
        os.environ["DATAMANIFEST_TLS_VERIFY"] = "0"
    if dry_run:
        rows = fetching.plan(project, list(names) or None, force=force, offline=offline)
        _print_plan(rows, as_json, verbose)
        ctx.exit(1 if any(r["action"] in ("refuse", "fail") or r.get("needs_trust")
                          for r in rows) else 0)
    progress = RichProgress() if (stderr_is_tty() and not quiet and not as_json) else NullProgress()
    try:
        report = fetching.run(project, list(names) or None, jobs=jobs, per_host=per_host,
                              force=force, lock_timeout=lock_timeout, offline=offline,
                              progress=progress, move_aside=force)
    finally:
        progress.close()
    if as_json:
        click.echo(json.dumps(report.as_json(), indent=2))
    else:
        for o in report.outcomes:
            if o.status == "missing":
                click.echo(f"{o.name}: missing (offline) {o.path}", err=True)
                continue
            if o.error is not None:
                click.echo(f"{o.name}: {o.status}", err=True)
                click.echo("  " + o.error.render(), err=True)
                for d in o.error.diagnostics:  # a refusal's errors (MAN-012)
                    click.echo("    " + d.render(), err=True)
            elif quiet or (o.status == "present" and not verbose and not o.filled):
                continue
            else:
                extra = " (checksum filled into the manifest)" if o.filled else \
                    f" (from pool {o.path})" if o.pool else \
                    " (an unmarked copy that verified, adopted)" if o.adopted else ""
                if o.moved_aside is not None:
                    extra += f" (what was there was moved to {o.moved_aside})"
                size = f", {human(o.size)}" if o.size is not None else ""
                click.echo(f"{o.name}: {o.status}{size} {o.checksum}{extra}".rstrip())
        counts: dict[str, int] = {}
        for o in report.outcomes:
            counts[o.status] = counts.get(o.status, 0) + 1
        info(", ".join(f"{v} {k}" for k, v in counts.items()) or "nothing to fetch")
    ctx.exit(0 if report.ok else 1)


_PLAN_WORDS = {"refuse": "refused", "skip": "skipped", "pool": "in a read pool",
               "state": "where the state file records it", "fail": "failing"}


def _print_plan(rows: list[dict], as_json: bool, verbose: bool) -> None:
    """``fetch --dry-run``: one line per dataset, then what would be downloaded."""
    if as_json:
        click.echo(json.dumps({"dry_run": True, "datasets": rows}, indent=2))
        return
    for r in rows:
        name, action = r["name"], r["action"]
        if action == "refuse":
            click.echo(f"{name}: would refuse: {r['error']['message']}")
            for d in r["errors"]:
                click.echo(f"    {Diagnostic(**{k: d[k] for k in ('code', 'message', 'file', 'line', 'column', 'hint')}).render()}")
            continue
        if action == "fail":
            click.echo(f"{name}: cannot be fetched: {r['error']['message']}")
            continue
        source = r["uri"] or (f"{len(r['uris'])} sources" if r["uris"] else "its fetcher")
        if action == "fetch":
            size = human(r["size"]) if r["size"] is not None else "size unknown"
            problem = f"  ({r['problem']})" if r["problem"] else ""
            click.echo(f"{name}: would fetch {size} from {source} -> {r['target']}{problem}")
            for what in r.get("needs_trust", []):  # TRU-005: the run would be refused
                click.echo(f"    needs trust (DM180): {what}")
        elif action == "skip":
            click.echo(f"{name}: skipped (skip_download or lazy_access)")
        elif action == "missing":
            click.echo(f"{name}: missing (offline) {r['target']}")
        elif verbose or action != "present":
            where = {"present": "present", "pool": "present in a read pool",
                     "state": "present where the state file records it"}.get(action, action)
            click.echo(f"{name}: {where}, {human(r['size'])} at {r['target']}")
    todo = [r for r in rows if r["action"] == "fetch"]
    known = [r["size"] for r in todo if r["size"] is not None]
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["action"]] = counts.get(r["action"], 0) + 1
    total = f" ({human(sum(known))}{'' if len(known) == len(todo) else ' known'})" \
        if todo else ""
    parts = [f"{len(todo)} to fetch{total}"] + [
        f"{v} {_PLAN_WORDS.get(k, k)}" for k, v in counts.items() if k != "fetch"]
    info(f"dry run: {', '.join(parts)} -- nothing was downloaded")
    if any(r.get("needs_trust") for r in rows):
        info("the fetch would be refused (DM180) until the manifest is trusted: "
              "`datamanifest trust`, or --trust for one run")


# -- status / path -------------------------------------------------------------------------------
@command()
@click.argument("names", nargs=-1, shell_complete=complete_datasets)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON on stdout.")
@click.pass_context
def status(ctx: click.Context, names: tuple[str, ...], as_json: bool) -> None:
    """Each dataset: present, missing or incomplete; its path and checksum."""
    project = open_project(ctx)
    rows = project.status(list(names) or None)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    width = max((len(r["name"]) for r in rows), default=4)
    for r in rows:
        click.echo(f"{r['name']:<{width}}  {r['status']:<10}  {r['path'] or '-'}  "
                   f"{r['checksum'] or '(no checksum)'}")


@command()
@click.argument("name", shell_complete=complete_datasets)
@click.option("--any", "any_state", is_flag=True, help="Print the path even when not present.")
@click.option("--json", "as_json", is_flag=True, help="Print {name, path, present} as JSON.")
@click.pass_context
def path(ctx: click.Context, name: str, any_state: bool, as_json: bool) -> None:
    """Print where dataset NAME (name, alias or doi) lives on this machine."""
    project = open_project(ctx)
    n = project.resolve(name)
    present = True
    if any_state:
        found = project.locate(n)
        present = found is not None
        where = found[0] if found else project.target(n).path
    else:
        where = project.path(n)  # DM078 when not present (STO-010)
    if as_json:
        click.echo(json.dumps({"name": n, "path": str(where), "present": present}))
        return
    click.echo(str(where))


COMMANDS = [fetch, status, path]

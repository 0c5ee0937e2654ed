"""``init``, ``add``, ``remove``, ``show``, ``update-checksums``, ``import``: writing the
manifest from the command line (SCHEMA.md §24). Every edit keeps comments and layout."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ._common import command, group, human, info, open_project, stderr_is_tty, trust_option
from .completion import complete_datasets


def _progress(quiet: bool):
    from ..progress import NullProgress, RichProgress

    return RichProgress() if (stderr_is_tty() and not quiet) else NullProgress()


def _warn(diags) -> None:
    for d in diags:
        click.echo(d.render(), err=True)


# -- init ----------------------------------------------------------------------------------------
@command("init")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path), default=".")
@click.option("--json", "as_json", is_flag=True, help="Print {manifest} as JSON.")
def init_cmd(folder: Path, as_json: bool) -> None:
    """Start a manifest: write FOLDER/datamanifest.toml (default: here) with [_META] schema = 1
    and comments showing how to declare a dataset. Never replaces an existing manifest
    (AUT-001)."""
    from ..author import init_manifest

    path = init_manifest(folder)
    if as_json:
        click.echo(json.dumps({"manifest": str(path)}))
        return
    info(f"wrote {path}")
    info("next: datamanifest add URI   (declares, fetches and records its checksum)")


# -- add -----------------------------------------------------------------------------------------
@command("add")
@click.argument("uri")
@click.option("--name", help="The dataset's name (default: derived from the URI's last "
              "path segment, AUT-004).")
@click.option("--extract", is_flag=True, help="Unpack the archive (zip, tar, tar.gz) into a "
              "folder.")
@click.option("--version", "version", default="", help="A version label (part of the key).")
@click.option("--no-fetch", is_flag=True, help="Declare only; the first `fetch` downloads it "
              "and fills the checksum.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
@click.option("--force", is_flag=True, help="Move aside (rename <name>.~N~, never delete) a "
              "file or folder at the dataset's target that datamanifest did not publish, "
              "instead of refusing it (DM182).")
@trust_option
@click.pass_context
def add_cmd(ctx: click.Context, uri: str, name: str | None, extract: bool, version: str,
            no_fetch: bool, quiet: bool, as_json: bool, force: bool) -> None:
    """Declare a dataset of URI, fetch it verified and write its checksum into the manifest.

    The download happens first; the entry is written only when it succeeded, so a
    failed add leaves the manifest as it was (AUT-005). Comments and layout are kept.

    \b
    Examples:
      datamanifest add https://example.org/data/stations.csv
      datamanifest add https://example.org/archive.tar.gz --extract --name archive
    """
    from ..author import add

    project = open_project(ctx)
    progress = _progress(quiet or as_json) if not no_fetch else None
    try:
        result = add(project, uri, name=name, extract=extract, version=version,
                     fetch=not no_fetch, progress=progress, move_aside=force)
    finally:
        if progress is not None:
            progress.close()
    if as_json:
        click.echo(json.dumps(result.as_json(), indent=2))
        return
    from ..spec.secrets import redact_text

    click.echo(redact_text(result.entry.rstrip("\n")))  # SEC-002
    _warn_secret(project, uri)
    how = "declared (fetch will download it)" if no_fetch else \
        f"fetched to {result.path}" if result.fetched else f"already present at {result.path}"
    info(f"added {result.name}: {how}")


def _warn_secret(project, uri: str) -> None:
    """SEC-003: the URI just written into the manifest holds a credential (DM183)."""
    from ..errors import Diagnostic
    from ..spec.secrets import secret_of, where_credentials_go

    kind = secret_of(uri)
    if kind is not None:
        click.echo(Diagnostic("DM183", f"the URI written holds a {kind}; everyone who reads "
                              "the manifest reads it", str(project.manifest_path),
                              hint=where_credentials_go(uri)).render(), err=True)


# -- remove --------------------------------------------------------------------------------------
@command("remove")
@click.argument("name")
@click.option("--keep-data", is_flag=True, help="Keep the bytes in the store (and their state "
              "record).")
@click.option("-n", "--dry-run", is_flag=True, help="Print what would happen; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
@click.pass_context
def remove_cmd(ctx: click.Context, name: str, keep_data: bool, dry_run: bool,
               as_json: bool) -> None:
    """Take dataset NAME out of the manifest (with the comments above it) and delete its
    bytes from the store, locked, as `rm` does. Protected bytes (your own storage_path, a
    read pool, ...) are kept and reported (AUT-006)."""
    from ..author import remove

    project = open_project(ctx)
    if dry_run:
        result = remove(project, name, keep_data=keep_data, dry_run=True)
    else:
        from ..trust import keep

        result, _ = keep(project.manifest_path, lambda: remove(  # TRU-008
            project, name, keep_data=keep_data, dry_run=False))
    if as_json:
        click.echo(json.dumps(result.as_json(), indent=2))
        return
    step, would = result.step, "would " if dry_run else ""
    info(f"{would}remove the entry {result.name} from the manifest")
    if step.action == "delete":
        info(f"{would}delete {step.detail} ({human(step.bytes, '-')})")
    elif step.action == "keep":
        info(f"keep the bytes: {step.detail}")
    else:
        info(f"no bytes to delete: {step.detail}")


# -- show ----------------------------------------------------------------------------------------
@command("show")
@click.argument("name", shell_complete=complete_datasets)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_context
def show_cmd(ctx: click.Context, name: str, as_json: bool) -> None:
    """Everything about dataset NAME (name, alias or doi): its entry as written, its key,
    where it is stored and found, its state, size and dates, and its state record."""
    from ..author import show

    info = show(open_project(ctx), name)
    if as_json:
        click.echo(json.dumps(info, indent=2, ensure_ascii=False))
        return
    click.echo(info["entry"].rstrip("\n") or f"[{info['name']}]  (not written as a table)")
    click.echo("")
    obj = info["object"] or {}
    rows = [("key", info["record"]["key"] or "-"), ("format", info["record"]["format"] or "-"),
            ("checksum", info["record"]["checksum"] or "(empty: filled by the next fetch)"),
            ("target", info["target"] or "-"),
            ("found", f"{info['location']} ({info['found_in']})" if info["location"]
             else "not present"),
            ("state", obj.get("state", "-") + (f" (protected: {obj['protected']})"
                                               if obj.get("protected") else "")),
            ("size", human(obj.get("size"), '-')), ("created", obj.get("created") or "-"),
            ("last access", obj.get("last_access") or "-")]
    for k, v in rows:
        click.echo(f"{k:<12} {v}")


# -- update-checksums ----------------------------------------------------------------------------
@command("update-checksums")
@click.argument("names", nargs=-1)
@click.option("--refetch", is_flag=True, help="Download the datasets again, without comparing "
              "with the declared checksum, and record what arrives (the source changed).")
@click.option("-n", "--dry-run", is_flag=True, help="Print the changes; write nothing.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
@trust_option
@click.pass_context
def update_checksums_cmd(ctx: click.Context, names: tuple[str, ...], refetch: bool,
                         dry_run: bool, quiet: bool, as_json: bool) -> None:
    """Re-hash datasets (NAMES, default all) where they are stored and write the checksums
    that changed into the manifest, in place, comments kept (AUT-007). Markers in the store
    follow, so the datasets stay current."""
    from ..author import update_checksums

    progress = _progress(quiet or as_json) if refetch else None
    try:
        changes = update_checksums(open_project(ctx), list(names) or None, dry_run=dry_run,
                                   refetch=refetch, progress=progress)
    finally:
        if progress is not None:
            progress.close()
    if as_json:
        click.echo(json.dumps({"dry_run": dry_run, "datasets": [c.as_json() for c in changes]},
                              indent=2))
    else:
        for c in changes:
            if c.action == "update":
                click.echo(f"{'would update' if dry_run else 'updated'}: {c.name} "
                           f"{c.old or '(none)'} -> {c.new}")
            elif c.action == "fail":
                click.echo(f"failed: {c.name}", err=True)
                click.echo("  " + c.error.render(), err=True)
            elif c.action == "skip":
                info(f"skipped: {c.name} ({c.detail})")
        n = sum(c.action == "update" for c in changes)
        info(f"{n} checksum(s) {'would change' if dry_run else 'changed'}, "
              f"{sum(c.action == 'same' for c in changes)} unchanged")
    ctx.exit(1 if any(c.action == "fail" for c in changes) else 0)


# -- import --------------------------------------------------------------------------------------
@group("import")
def import_group() -> None:
    """Declare many datasets at once from another tool's list: a pooch registry, DVC files
    or a list of URLs. Entries already declared are skipped, so importing twice adds
    nothing; bytes already on this machine are adopted after they verify (AUT-010)."""


def _import_options(fn):
    opts = [
        click.option("-n", "--dry-run", is_flag=True, help="Print the entries; write nothing."),
        click.option("-q", "--quiet", is_flag=True, help="No progress bars."),
        click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON."),
        trust_option,
    ]
    for opt in reversed(opts):
        fn = opt(fn)
    return fn


def _run_import(ctx: click.Context, kind: str, source: Path, dry_run: bool, quiet: bool,
                as_json: bool, **kw) -> None:
    from ..author import import_list
    from ..spec.author import render_entry
    from ..spec.secrets import redact_text

    project = open_project(ctx)
    progress = _progress(quiet or as_json or dry_run)
    try:
        result = import_list(project, kind, source, dry_run=dry_run, progress=progress, **kw)
    finally:
        progress.close()
    if as_json:
        click.echo(json.dumps(result.as_json(), indent=2, ensure_ascii=False))
    else:
        _warn(result.warnings)
        if dry_run:
            for e in result.added:
                click.echo(redact_text(render_entry(e.name, e.table())))
        for e, owner in result.skipped:
            info(redact_text(f"skipped: {e.uri or e.source_name} (declared as {owner})"))
        for name, err in result.failed.items():
            click.echo(f"not adopted: {name}", err=True)
            click.echo("  " + err.render(), err=True)
        info(f"{'would declare' if dry_run else 'declared'} {len(result.added)} "
              f"dataset(s), {len(result.skipped)} already declared, "
              f"{len(result.adopted)} adopted from this machine")
    ctx.exit(1 if result.failed else 0)


@import_group.command("pooch")
@click.argument("registry", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--base-url", default="", metavar="URL", help="Prefix of entries without a URL "
              "(pooch's base_url, with any {version} already filled in).")
@click.option("--adopt", "adopt_dir", type=click.Path(exists=True, file_okay=False,
              path_type=Path), help="pooch's cache folder: files there are copied into the "
              "store when they verify, instead of being downloaded.")
@_import_options
@click.pass_context
def import_pooch(ctx: click.Context, registry: Path, base_url: str, adopt_dir: Path | None,
                 **kw) -> None:
    """Declare the entries of a pooch REGISTRY file (NAME HASH [URL] per line, AUT-011)."""
    _run_import(ctx, "pooch", registry, base_url=base_url, adopt_dir=adopt_dir, **kw)


@import_group.command("dvc")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@_import_options
@click.pass_context
def import_dvc(ctx: click.Context, path: Path, **kw) -> None:
    """Declare the outputs of DVC files (PATH: one .dvc file, or a folder searched for them,
    AUT-012). Outputs present in the workspace are copied into the store, verified."""
    _run_import(ctx, "dvc", path, **kw)


@import_group.command("urls")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_import_options
@click.pass_context
def import_urls(ctx: click.Context, file: Path, **kw) -> None:
    """Declare one dataset per line of FILE (URI [CHECKSUM]; # comments, AUT-013)."""
    _run_import(ctx, "urls", file, **kw)



COMMANDS = [init_cmd, add_cmd, remove_cmd, show_cmd, update_checksums_cmd, import_group]

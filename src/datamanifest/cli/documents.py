"""``check``, ``schema``, ``format``, ``migrate``: the documents themselves (SCHEMA.md §9, §18, §19)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..errors import DataManifestError, Diagnostic
from ._common import command, emit, emit_error, info, read_document

# -- check -------------------------------------------------------------------------------------
@command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--output-format", "--format", "fmt",
              type=click.Choice(["text", "json", "github", "sarif"]), default="text",
              show_default=True, help="Diagnostics as lines (text), one JSON list (json), "
              "GitHub Actions workflow commands (github) or a SARIF 2.1.0 log (sarif).")
@click.option("-o", "--output-file", type=click.Path(path_type=Path, dir_okay=False),
              help="Write the diagnostics to this file (atomically) instead of stdout.")
@click.option("--json", "as_json", is_flag=True, help="Same as --output-format json.")
@click.option("--strict", is_flag=True, help="Exit 1 on warnings too.")
@click.option("--type", "doc_type", type=click.Choice(
    ["manifest", "config", "state", "config-sidecar", "metadata-sidecar", "chunk-manifest", "append-config"]),
    help="Check as this document type (default: detected from the file name and _META).")
@click.pass_context
def check(ctx: click.Context, paths: tuple[Path, ...], fmt: str, output_file: Path | None,
          as_json: bool, strict: bool, doc_type: str | None) -> None:
    """Validate documents: manifests, config files, state files, sidecars and chunk
    manifests (*.chunks.json).

    Each document is checked against its JSON Schema and the spec's rules.
    Each problem prints as FILE:LINE:COL: severity DM### message (hint).
    In CI, --output-format github annotates the lines in GitHub Actions and
    --output-format sarif -o check.sarif writes a log for code scanning.
    Exit 0 when clean (warnings allowed unless --strict), 1 when problems
    were found, 2 on a usage error.
    """
    from ..check import check_path
    from ..config import discover

    if as_json:
        fmt = "json"
    if not paths:
        given = ctx.obj.get("manifest")
        paths = (discover(given) if given is None or given.is_dir() else given,)
    diagnostics: list[Diagnostic] = []
    unreadable = False
    n_datasets = 0
    for p in paths:
        if p.is_dir():
            p = discover(p)
        result = check_path(p, doc_type)
        diagnostics.extend(result.diagnostics)
        unreadable |= any(d.code == "DM002" for d in result.diagnostics)
        if result.data and result.doc_type == "manifest":
            n_datasets += sum(1 for k in result.data if not k.startswith("_"))
    errors = sum(d.severity == "error" for d in diagnostics)
    warnings = sum(d.severity == "warning" for d in diagnostics)
    notes = sum(d.severity == "info" for d in diagnostics)  # DM181: never fails (TRU-007)
    code = 2 if unreadable else 1 if errors or (strict and warnings) else 0
    if fmt == "json":
        emit(json.dumps([d.as_json() for d in diagnostics], indent=2, ensure_ascii=False),
              output_file)
    elif fmt == "sarif":  # SCHEMA.md DIAG-011
        from ..reporting import sarif_log

        emit(json.dumps(sarif_log(diagnostics, exit_code=code), indent=2, ensure_ascii=False),
              output_file)
    else:
        if fmt == "github":  # SCHEMA.md DIAG-010
            from ..reporting import github_commands

            lines = github_commands(diagnostics)
        else:
            lines = [d.render() for d in diagnostics]
        if output_file is not None or lines:
            emit("\n".join(lines), output_file)
    if fmt in ("text", "github"):
        trust = f", {notes} entr{'y' if notes == 1 else 'ies'} that need trust" if notes else ""
        if errors or warnings:
            codes = sorted({d.code for d in diagnostics if d.severity != "info"})  # DIAG-006
            info(f"{errors} error(s), {warnings} warning(s){trust} in {len(paths)} file(s): "
                  f"{', '.join(codes)}")
        else:
            info(f"ok: {len(paths)} file(s), {n_datasets} dataset(s){trust}")
    ctx.exit(code)


# -- schema ----------------------------------------------------------------------------------
@command()
@click.argument("name", type=click.Choice(
    ["manifest", "config", "state", "config-sidecar", "metadata-sidecar", "tree-manifest", "chunk-manifest", "append-config", "append-journal", "append-lock", "trust-record"]))
@click.option("--json", "as_json", is_flag=True, help="Accepted for the CLI convention: the "
              "schema is JSON already.")
def schema(name: str, as_json: bool) -> None:
    """Print the JSON Schema of a document type (for editors and other tools)."""
    from .. import schemas

    click.echo(json.dumps(schemas.load(name), indent=2, ensure_ascii=False))


@command("format")
@click.argument("files", nargs=-1)
@click.option("-i", "--in-place", is_flag=True, help="Rewrite FILES instead of printing.")
@click.option("--check", "check_only", is_flag=True,
              help="Exit 1 when a file is not in canonical form; write nothing.")
@click.option("--drop-comments", is_flag=True,
              help="Drop every comment (the canonical form without comments).")
@click.option("--type", "doc_type", type=click.Choice(
    ["manifest", "config", "state", "config-sidecar", "metadata-sidecar"]),
    help="Document type (default: detected).")
@click.option("--json", "as_json", is_flag=True, help="Print {file, canonical, written, "
              "document} as JSON (a list of them for several files).")
@click.pass_context
def format_cmd(ctx: click.Context, files: tuple[str, ...], in_place: bool, check_only: bool,
               drop_comments: bool, doc_type: str | None, as_json: bool) -> None:
    """Print FILES (default datamanifest.toml; - for stdin) in canonical form: key order and
    layout of SCHEMA.md §18.

    Comments move with the key, table header or array element they annotate (FMT-005):
    a comment directly above an item, or at the end of its line, belongs to it. A comment
    that belongs to nothing (a block with blank lines above and below, between two
    tables) cannot be placed: DM094 names it (FMT-006). Each document must pass `check`
    first. --check reports every file that is not in canonical form (and the first line
    that differs) and exits 1, writing nothing; -i rewrites them. With several files,
    give -i or --check.
    """
    files = files or ("datamanifest.toml",)
    if len(files) > 1 and not (in_place or check_only):
        raise click.UsageError("several files: give --in-place or --check")
    failed = 0
    reports: list[dict] | None = [] if as_json else None
    for file in files:
        try:
            failed += not _format_one(file, in_place, check_only, drop_comments, doc_type,
                                      reports)
        except DataManifestError as e:
            if len(files) == 1:
                raise
            emit_error(e)
            failed += 1
    if reports is not None:
        click.echo(json.dumps(reports[0] if len(files) == 1 and reports else reports,
                              ensure_ascii=False))
    ctx.exit(1 if failed else 0)


def _format_one(file: str, in_place: bool, check_only: bool, drop_comments: bool,
                doc_type: str | None, reports: list[dict] | None) -> bool:
    """Format one document (its JSON report appended to ``reports`` when given); False
    when --check finds it not canonical."""
    from ..check import check_text
    from ..spec.canonical import dumps
    from ..spec.comments import OrphanComments, dumps_with_comments

    text, label = read_document(file)
    result = check_text(text, label, doc_type)
    if result.errors:
        for d in result.errors:
            click.echo(d.render(), err=True)
        raise DataManifestError(f"{label} has errors; format only valid documents", code="DM091",
                                hint="run `datamanifest check` and fix them first")
    if drop_comments:
        canonical = dumps(result.data, result.doc_type)
    else:
        try:
            canonical = dumps_with_comments(text, result.data, result.doc_type)
        except OrphanComments as e:
            line, column = e.positions[0]
            raise DataManifestError(
                f"{len(e.positions)} comment(s) belong to no key or table (the first has a "
                "blank line above and below it): the canonical order cannot place it",
                code="DM094", file=label, line=line, column=column,
                hint="move it directly above the key or table it describes (no blank line "
                     "between), or pass --drop-comments to drop every comment") from e
    written = False
    if not check_only and in_place and file != "-" and text != canonical:
        from ..store.atomic import write_text

        write_text(Path(file), canonical)
        written = True
    if reports is not None:
        reports.append({"file": label, "canonical": text == canonical, "written": written,
                        "document": None if in_place or check_only else canonical})
    elif not check_only and (not in_place or file == "-"):
        click.echo(canonical, nl=False)
    if check_only and text != canonical:
        old, new = text.splitlines(), canonical.splitlines()
        line = next((i for i, (x, y) in enumerate(zip(old, new)) if x != y),
                    min(len(old), len(new))) + 1
        click.echo(f"{label}:{line}: not in canonical form (run `datamanifest format -i "
                   f"{file}`)", err=True)
        return False
    if written:
        info(f"formatted {label}")
    return True


@command()
@click.argument("file", default="datamanifest.toml")
@click.option("-n", "--dry-run", is_flag=True, help="Print the migrated text; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print {file, changes, written, "
              "document} as JSON.")
def migrate(file: str, dry_run: bool, as_json: bool) -> None:
    """Rewrite legacy forms of a manifest to current ones, keeping comments (SCHEMA.md §19).

    sha256 -> checksum, bare hex -> sha256:<hex>, local_path -> storage_path,
    [<ds>._LANG.shell] fetcher -> shell, [_loaders] -> [_LOADERS], derived
    host/path/scheme removed, [_META] schema = 1 added. Legacy forms without a
    safe rewrite are listed and left alone.
    """
    from ..check import check_text
    from ..migrate import migrate_text
    from ..store.atomic import write_text

    text, label = read_document(file)
    result = check_text(text, label, "manifest")
    if any(d.code == "DM001" for d in result.errors):
        raise DataManifestError(f"{label} is not valid TOML", code="DM001",
                                hint="run `datamanifest check` first")
    new, changes = migrate_text(text)
    written = not (dry_run or file == "-") and new != text
    kept = False
    if written:
        from ..trust import keep

        _, kept = keep(file, lambda: write_text(Path(file), new))  # TRU-008
    if as_json:
        click.echo(json.dumps({"file": label, "changes": [c.as_json() for c in changes],
                               "written": written,
                               "document": new if dry_run or file == "-" else None},
                              ensure_ascii=False, indent=2))
        return
    for c in changes:
        info(c.render())
    if dry_run or file == "-":
        click.echo(new, nl=False)
    elif written:
        info(f"migrated {label}" + (" (its trust kept)" if kept else ""))
    else:
        info(f"{label}: nothing to migrate")


COMMANDS = [check, schema, format_cmd, migrate]

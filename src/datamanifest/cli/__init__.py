"""The ``datamanifest`` command line: thin click commands over the library.

Exit codes (SCHEMA.md DIAG-005): 0 success, 1 problems found or an operation
failed, 2 usage error (bad option, no manifest found), 130 interrupted.
User errors print one line per diagnostic and never a traceback.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

import click

from .._version import __version__
from ..errors import DataManifestError, Diagnostic
from .completion import complete_datasets


class _LibraryLogFormatter(logging.Formatter):
    """Library log records (gcsfs, botocore, ...) as one line each, without tracebacks: the
    failure they describe reaches the user as a coded diagnostic (set DATAMANIFEST_DEBUG=1
    for the full records). Credentials in URIs are redacted (SEC-002)."""

    def format(self, record: logging.LogRecord) -> str:
        from ..spec.secrets import redact_text

        first = record.getMessage().partition("\n")[0]
        return redact_text(f"note: {record.name}: {first}")


class _RedactingFormatter(logging.Formatter):
    """The full records of DATAMANIFEST_DEBUG=1, with URI credentials redacted (SEC-002):
    httpx logs every request's URL as given, user information included."""

    def format(self, record: logging.LogRecord) -> str:
        from ..spec.secrets import redact_text

        return redact_text(super().format(record))


def _quiet_library_logs() -> None:
    if os.environ.get("DATAMANIFEST_DEBUG"):
        logging.basicConfig(level=logging.DEBUG)
        for handler in logging.getLogger().handlers:
            handler.setFormatter(_RedactingFormatter(logging.BASIC_FORMAT))
        return
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(_LibraryLogFormatter())
        handler.setLevel(logging.WARNING)
        root.addHandler(handler)


class _Seconds(click.ParamType):
    """A duration in seconds: a number >= 0 (not NaN; ``inf`` waits for ever)."""

    name = "seconds"

    def convert(self, value, param, ctx):
        if isinstance(value, (int, float)):
            number = float(value)
        else:
            try:
                number = float(value)
            except ValueError:
                self.fail(f"{value!r} is not a number of seconds", param, ctx)
        if number != number or number < 0:
            self.fail(f"{value!r} is not a number of seconds >= 0", param, ctx)
        return number


SECONDS = _Seconds()


def _stderr_is_tty() -> bool:
    return sys.stderr.isatty()


def _emit_error(err: DataManifestError) -> None:
    for d in err.diagnostics:
        if d.severity == "error":
            click.echo(d.render(), err=True)
    click.echo(err.render(), err=True)


def _set_quiet(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
    if value:
        ctx.meta["datamanifest.quiet"] = True
    return value


class _Command(click.Command):
    """A command of the CLI convention (README, "Conventions"): every command takes
    ``-q/--quiet``, which silences informational messages on stderr (never results on
    stdout, never problems). Commands that do not declare it get it here."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if not any("--quiet" in getattr(p, "opts", ()) for p in self.params):
            self.params.append(click.Option(
                ["-q", "--quiet"], is_flag=True, expose_value=False, callback=_set_quiet,
                help="Print only results and problems."))

    def invoke(self, ctx: click.Context):
        if ctx.params.get("quiet"):
            ctx.meta["datamanifest.quiet"] = True
        return super().invoke(ctx)


def _quiet() -> bool:
    ctx = click.get_current_context(silent=True)
    return bool(ctx is not None and ctx.meta.get("datamanifest.quiet"))


def _info(text: str) -> None:
    """An informational message on stderr (a summary, what was written); ``-q`` silences it."""
    if not _quiet():
        click.echo(text, err=True)


class _CodedClickError(click.UsageError):
    """A click error (usage: an unknown command or option, a missing or malformed argument,
    exit 2; or a file click could not open, exit 1) rendered as every other problem is,
    with its code (DIAG-006): ``error DM174 <message>`` (DM002 for a file)."""

    def __init__(self, err: click.ClickException) -> None:
        super().__init__(err.format_message(), getattr(err, "ctx", None))
        self.exit_code = err.exit_code
        self.code = "DM002" if isinstance(err, click.FileError) else "DM174"

    def show(self, file=None) -> None:
        hint = ""
        if self.ctx is not None:
            click.echo(self.ctx.get_usage(), file=file, err=file is None)
            hint = f" (`{self.ctx.command_path} --help` lists the arguments and options)"
        click.echo(f"error {self.code} {self.message}{hint}", file=file, err=file is None)


def _coded(err: click.ClickException) -> click.ClickException:
    return err if isinstance(err, _CodedClickError) else _CodedClickError(err)


class _Group(click.Group):
    command_class = _Command
    group_class = type  # subgroups (config, conformance, import, refs) are _Group too

    def make_context(self, info_name, args, parent=None, **extra):
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.ClickException as e:  # the group's own options (-m, --version ...)
            raise _coded(e) from None

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except DataManifestError as e:
            _emit_error(e)
            ctx.exit(2 if e.code in ("DM003",) else 1)
        except click.ClickException as e:  # a subcommand's arguments (DIAG-006)
            raise _coded(e) from None
        except KeyboardInterrupt:
            _interrupted()


def _interrupted() -> None:
    """LCK-008 in the command line: say what an interruption left, then end the process with
    status 130. The command's workers were stopped and waited for already (at most
    ``interrupt.GRACE`` seconds) and its locks released; what remains is the interpreter's
    own teardown (joining library threads, freeing every object: ~0.5 s after xarray and
    zarr), skipped here so that a Ctrl-C ends the command at once. A worker thread stuck in
    a call nothing can wake (a fetcher's own code) ends with it, after the locks this process
    still holds are removed (what it was writing has no marker: incomplete)."""
    from ..store.lock import release_held

    release_held()  # of a worker that did not let go within the grace (a loaded machine)
    click.echo("error DM172 interrupted: the work stopped and its locks were released; run "
               "the same command again to continue (a partial download resumes)", err=True)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(130)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="datamanifest")
@click.option("-m", "--manifest", "manifest", type=click.Path(path_type=Path),
              envvar="DATAMANIFEST_TOML", help="Manifest file or folder (default: discovered "
              "upward from the working directory; env DATAMANIFEST_TOML).")
@click.pass_context
def main(ctx: click.Context, manifest: Path | None) -> None:
    """datamanifest: declare a project's data dependencies, check them, fetch them verified.

    \b
    Typical use:
      datamanifest check            validate datamanifest.toml (CI-friendly)
      datamanifest fetch            download every dataset, verified, atomically
      datamanifest status           what is present, missing or incomplete
      datamanifest path NAME        where a dataset lives on this machine

    The specification is SCHEMA.md; every diagnostic has a stable code DM###.
    """
    _quiet_library_logs()
    _tune_gc()
    ctx.obj = {"manifest": manifest}


def _tune_gc() -> None:
    """A command is a short process that builds many small objects and few cycles: the
    imported modules are moved out of the collector's view and young collections run
    every 50,000 allocations instead of 700 (10,000 datasets: ~10% of `list`'s time)."""
    import gc

    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def _project(ctx: click.Context):
    from ..project import Project

    return Project.open(ctx.obj.get("manifest"))


def _print_warnings(project) -> None:
    for d in project.warnings:
        click.echo(d.render(), err=True)


def _grant_trust(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    if value:
        from ..trust import grant

        grant()
    return value


#: TRU-005: ``--trust`` on a command that may run a manifest's code or write outside it
trust_option = click.option(
    "--trust", is_flag=True, expose_value=False, is_eager=True, callback=_grant_trust,
    help="Trust this manifest for this command only: run the code it names and use the "
         "locations it sets outside the project (SCHEMA.md TRU-005; see `datamanifest trust`).")


# -- trust ---------------------------------------------------------------------------------------
@main.command("trust")
@click.option("--show", is_flag=True, help="Print whether the manifest is trusted and what "
              "it would run or where it would write; record nothing. Exit 1 when it is not "
              "trusted and something in it needs trust.")
@click.option("--revoke", is_flag=True, help="Forget this manifest's trust.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON on stdout.")
@click.pass_context
def trust_cmd(ctx: click.Context, show: bool, revoke: bool, as_json: bool) -> None:
    """Trust this manifest to run the code it names and to use the locations it sets,
    like `direnv allow` (SCHEMA.md §27.1).

    Lists its trust-relevant entries (shell templates, fetcher and loader bindings,
    storage settings and storage paths, and those of .datamanifest/config.toml), then
    records the SHA-256 of exactly that content in your configuration folder. Any change
    of it revokes the trust. Plain uri datasets stored in the project or in your own
    stores never need it.
    """
    from .. import trust as _trust
    from ..spec.trust import reason

    if show and revoke:
        raise click.UsageError("--show and --revoke exclude each other")
    project = _project(ctx)
    if revoke:
        gone = _trust.revoke(project.manifest_path)
        if as_json:
            click.echo(json.dumps({"manifest": str(project.manifest_path), "revoked": gone}))
        else:
            _info(f"{'revoked' if gone else 'was not trusted'}: {project.manifest_path}")
        return
    st = _trust.status(project)
    if not show:
        path = _trust.write_record(project, st)
        st = _trust.status(project)
    if as_json:
        click.echo(json.dumps(st.as_json(), indent=2, ensure_ascii=False))
    else:
        from ..spec.secrets import redact_text

        for e in st.entries:
            why = reason(e)
            click.echo(f"  {'*' if why else ' '} {redact_text(e.show(100))}")
        if any(reason(e) for e in st.entries):
            click.echo("  (* may run code or lead outside the project)")
        if show:
            state = f"trusted ({st.how})" if st.trusted else "NOT trusted" + (
                f": changed since {st.record.get('trusted')}: " + "; ".join(st.changed)
                if st.record is not None else "")
            _info(f"{project.manifest_path}: {state}; digest {st.digest}")
        else:
            nothing = "" if any(reason(e) for e in st.entries) else \
                "; nothing in it runs code or leads outside the project today"
            _info(f"trusted {project.manifest_path} ({len(st.entries)} entries, "
                  f"{st.digest}){nothing}; recorded in {path}")
    if show and not st.trusted and any(reason(e) for e in st.entries):
        ctx.exit(1)  # not trusted, and something in it needs trust (TRU-007)


# -- check -------------------------------------------------------------------------------------
@main.command()
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
        _emit(json.dumps([d.as_json() for d in diagnostics], indent=2, ensure_ascii=False),
              output_file)
    elif fmt == "sarif":  # SCHEMA.md DIAG-011
        from ..reporting import sarif_log

        _emit(json.dumps(sarif_log(diagnostics, exit_code=code), indent=2, ensure_ascii=False),
              output_file)
    else:
        if fmt == "github":  # SCHEMA.md DIAG-010
            from ..reporting import github_commands

            lines = github_commands(diagnostics)
        else:
            lines = [d.render() for d in diagnostics]
        if output_file is not None or lines:
            _emit("\n".join(lines), output_file)
    if fmt in ("text", "github"):
        trust = f", {notes} entr{'y' if notes == 1 else 'ies'} that need trust" if notes else ""
        if errors or warnings:
            codes = sorted({d.code for d in diagnostics if d.severity != "info"})  # DIAG-006
            _info(f"{errors} error(s), {warnings} warning(s){trust} in {len(paths)} file(s): "
                  f"{', '.join(codes)}")
        else:
            _info(f"ok: {len(paths)} file(s), {n_datasets} dataset(s){trust}")
    ctx.exit(code)


def _emit(text: str, output_file: Path | None) -> None:
    """``text`` (and a newline) on stdout, or written atomically to ``output_file``."""
    if output_file is None:
        click.echo(text)
        return
    from ..store.atomic import write_text

    try:
        write_text(output_file, text + "\n" if text else "")
    except OSError as e:
        raise click.FileError(str(output_file), hint=e.strerror or str(e)) from None


# -- fetch -------------------------------------------------------------------------------------
@main.command()
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
        _verbose_log()
    project = _project(ctx)
    _print_warnings(project)
    if insecure:  # read by the HTTP client, inherited by forked workers (FET-017)
        os.environ["DATAMANIFEST_TLS_VERIFY"] = "0"
    if dry_run:
        rows = fetching.plan(project, list(names) or None, force=force, offline=offline)
        _print_plan(rows, as_json, verbose)
        ctx.exit(1 if any(r["action"] in ("refuse", "fail") or r.get("needs_trust")
                          for r in rows) else 0)
    progress = RichProgress() if (_stderr_is_tty() and not quiet and not as_json) else NullProgress()
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
                size = f", {_human(o.size)}" if o.size is not None else ""
                click.echo(f"{o.name}: {o.status}{size} {o.checksum}{extra}".rstrip())
        counts: dict[str, int] = {}
        for o in report.outcomes:
            counts[o.status] = counts.get(o.status, 0) + 1
        _info(", ".join(f"{v} {k}" for k, v in counts.items()) or "nothing to fetch")
    ctx.exit(0 if report.ok else 1)


def _verbose_log() -> None:
    """``--verbose``: the ``datamanifest`` log's notes (silent waits) on stderr."""
    log = logging.getLogger("datamanifest")
    log.setLevel(logging.INFO)
    if not any(getattr(h, "_datamanifest", False) for h in log.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("note: %(message)s"))
        handler._datamanifest = True  # type: ignore[attr-defined]
        log.addHandler(handler)
        log.propagate = False


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
            size = _human(r["size"]) if r["size"] is not None else "size unknown"
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
            click.echo(f"{name}: {where}, {_human(r['size'])} at {r['target']}")
    todo = [r for r in rows if r["action"] == "fetch"]
    known = [r["size"] for r in todo if r["size"] is not None]
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["action"]] = counts.get(r["action"], 0) + 1
    total = f" ({_human(sum(known))}{'' if len(known) == len(todo) else ' known'})" \
        if todo else ""
    _info(f"dry run: {len(todo)} to fetch{total}, "
          + ", ".join(f"{v} {_PLAN_WORDS.get(k, k)}" for k, v in counts.items() if k != "fetch")
          + " -- nothing was downloaded")
    if any(r.get("needs_trust") for r in rows):
        _info("the fetch would be refused (DM180) until the manifest is trusted: "
              "`datamanifest trust`, or --trust for one run")


def _human(n: int | None) -> str:
    from ..progress import human_size

    return human_size(n)


# -- status / path -------------------------------------------------------------------------------
@main.command()
@click.argument("names", nargs=-1, shell_complete=complete_datasets)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON on stdout.")
@click.pass_context
def status(ctx: click.Context, names: tuple[str, ...], as_json: bool) -> None:
    """Each dataset: present, missing or incomplete; its path and checksum."""
    project = _project(ctx)
    rows = project.status(list(names) or None)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    width = max((len(r["name"]) for r in rows), default=4)
    for r in rows:
        click.echo(f"{r['name']:<{width}}  {r['status']:<10}  {r['path'] or '-'}  "
                   f"{r['checksum'] or '(no checksum)'}")


@main.command()
@click.argument("name", shell_complete=complete_datasets)
@click.option("--any", "any_state", is_flag=True, help="Print the path even when not present.")
@click.option("--json", "as_json", is_flag=True, help="Print {name, path, present} as JSON.")
@click.pass_context
def path(ctx: click.Context, name: str, any_state: bool, as_json: bool) -> None:
    """Print where dataset NAME (name, alias or doi) lives on this machine."""
    project = _project(ctx)
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


# -- schema ----------------------------------------------------------------------------------
@main.command()
@click.argument("name", type=click.Choice(
    ["manifest", "config", "state", "config-sidecar", "metadata-sidecar", "tree-manifest", "chunk-manifest", "append-config", "append-journal", "append-lock", "trust-record"]))
@click.option("--json", "as_json", is_flag=True, help="Accepted for the CLI convention: the "
              "schema is JSON already.")
def schema(name: str, as_json: bool) -> None:
    """Print the JSON Schema of a document type (for editors and other tools)."""
    from .. import schemas

    click.echo(json.dumps(schemas.load(name), indent=2, ensure_ascii=False))


# -- conformance ---------------------------------------------------------------------------------
from ..conformance import KINDS as _CONFORMANCE_KINDS  # noqa: E402  (stdlib imports only)


@main.group()
def conformance() -> None:
    """The language-neutral conformance suite (fixtures/) and its runner."""


def _fixtures_dir(given: Path | None) -> Path:
    from ..conformance import default_fixtures_dir

    root = given or default_fixtures_dir()
    if root is None or not (root / "index.json").is_file():
        raise click.UsageError("no fixtures/index.json found; pass --fixtures DIR")
    return root


_fixtures_option = click.option("--fixtures", "fixtures", type=click.Path(
    path_type=Path, exists=True, file_okay=False),
    help="The fixtures folder (default: ./fixtures or the source tree's).")


@conformance.command("run")
@click.option("--impl", metavar="CMD", help="Command answering the protocol on stdin/stdout "
              "(default: this implementation, in-process). Example: --impl 'datamanifest "
              "conformance serve'.")
@click.option("--only", "only", multiple=True, type=click.Choice(_CONFORMANCE_KINDS),
    help="Run only this kind (repeatable).")
@click.option("--case", "cases", multiple=True, metavar="PATTERN",
              help="Run only the cases whose id matches this shell-style pattern, such as "
              "'key/*' or 'manifest/invalid/unknown-*' (repeatable).")
@click.option("--bytes", "byte_identity", is_flag=True,
              help="roundtrip cases must also match the canonical bytes (FMT-002).")
@_fixtures_option
@click.option("--json", "as_json", is_flag=True, help="Print {passed, failed, skipped, "
              "failures} as JSON.")
@click.pass_context
def conformance_run(ctx: click.Context, impl: str | None, only: tuple[str, ...],
                    cases: tuple[str, ...], byte_identity: bool, fixtures: Path | None,
                    as_json: bool) -> None:
    """Run every case against an implementation; print failures and `N passed, N failed`."""
    import io

    from ..conformance import run

    out = io.StringIO() if as_json or _quiet() else sys.stdout
    result = run(_fixtures_dir(fixtures), impl, set(only) or None, byte_identity=byte_identity,
                 out=out, cases=cases)
    lines = out.getvalue().splitlines() if out is not sys.stdout else []
    if as_json:
        click.echo(json.dumps({"passed": result.passed, "failed": result.failed,
                               "skipped": result.skipped,
                               "failures": [ln for ln in lines if ln.startswith("FAIL ")]},
                              indent=2))
    elif out is not sys.stdout:  # -q: the failures only
        for ln in lines:
            if ln.startswith("FAIL "):
                click.echo(ln)
    ctx.exit(1 if result.failed else 0)


@conformance.command("serve")
def conformance_serve() -> None:
    """Answer one protocol request (JSON on stdin, JSON on stdout; exit 3: kind unsupported)."""
    from ..conformance import serve

    sys.exit(serve(sys.stdin, sys.stdout))


@conformance.command("index")
@_fixtures_option
@click.option("--check", "check_only", is_flag=True, help="Exit 1 if index.json is stale.")
@click.option("--json", "as_json", is_flag=True, help="Print {index, cases, current} as JSON.")
def conformance_index(fixtures: Path | None, check_only: bool, as_json: bool) -> None:
    """Rebuild fixtures/index.json (and SHA256SUMS) from the case files."""
    from ..conformance import build_index, checksums, render_index
    from ..store.atomic import write_text

    root = fixtures or Path("fixtures")
    if not root.is_dir():
        raise click.UsageError(f"no fixtures folder at {root}; pass --fixtures DIR")
    index = render_index(build_index(root))
    sums = checksums(root, {"index.json": index})
    if check_only:
        current = [(root / n).read_text(encoding="utf-8") if (root / n).is_file() else ""
                   for n in ("index.json", "SHA256SUMS")]
        fresh = current == [index, sums]
        if as_json:
            click.echo(json.dumps({"index": str(root / "index.json"), "cases":
                                   json.loads(index)["count"], "current": fresh}))
        if not fresh:
            click.echo("fixtures/index.json or SHA256SUMS is stale: run "
                       "`datamanifest conformance index`", err=True)
            sys.exit(1)
        _info("index is current")
        return
    write_text(root / "index.json", index)
    write_text(root / "SHA256SUMS", sums)
    if as_json:
        click.echo(json.dumps({"index": str(root / "index.json"), "cases":
                               json.loads(index)["count"], "current": True}))
    _info(f"wrote {root / 'index.json'} and {root / 'SHA256SUMS'}")


# -- format / migrate -------------------------------------------------------------------------------
def _read_document(file: str) -> tuple[str, str]:
    """(text, label) of FILE, or of stdin for "-"."""
    if file == "-":
        return sys.stdin.read(), "<stdin>"
    try:
        return Path(file).read_text(encoding="utf-8"), file
    except (OSError, UnicodeDecodeError) as e:
        raise DataManifestError(f"cannot read {file}: {e}", code="DM002") from e


@main.command("format")
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
            _emit_error(e)
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

    text, label = _read_document(file)
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
                     "between), or pass --drop-comments to drop every comment") from None
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
        _info(f"formatted {label}")
    return True


@main.command()
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

    text, label = _read_document(file)
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
        _info(c.render())
    if dry_run or file == "-":
        click.echo(new, nl=False)
    elif written:
        _info(f"migrated {label}" + (" (its trust kept)" if kept else ""))
    else:
        _info(f"{label}: nothing to migrate")


# -- tree manifests: tree / verify / diff / versions --------------------------------------------------
def _check_output_file(output: Path, example: str, devices: bool = True) -> None:
    """STO-015: an output written as a file goes to a regular file (new or replaced) or, with
    ``devices``, to a character device or a pipe (/dev/null, /dev/stdout); anything else --
    a folder, a socket, a path below a file -- is DM173 before any work."""
    import stat

    try:
        mode = output.stat().st_mode
    except FileNotFoundError:
        parent = output.parent
        if parent.exists() and not parent.is_dir():
            raise DataManifestError(f"{parent} is not a folder; {output} cannot be written",
                                    code="DM173", file=str(output)) from None
        return
    except NotADirectoryError:
        raise DataManifestError(f"{output} lies below a file; it cannot be written",
                                code="DM173", file=str(output)) from None
    if stat.S_ISREG(mode) or (devices and (stat.S_ISCHR(mode) or stat.S_ISFIFO(mode))):
        return
    what = "a folder" if stat.S_ISDIR(mode) else "not a regular file"
    raise DataManifestError(f"{output} is {what}; the output is written as a file",
                            code="DM173", file=str(output),
                            hint=f"give a file name, e.g. {output / example}"
                            if stat.S_ISDIR(mode) else "give the path of a file")
@main.command("tree")
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
        _check_output_file(output, f"{root.name}.tree.json")
    progress = None
    if _stderr_is_tty() and not quiet and not as_json and output is not None:
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
        _info(f"{result.entries} entries, {_human(result.total_size)}, written to {output}")
    else:
        _info(result.checksum)


@main.command()
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
    project = _project(ctx)
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


def _load_tree(project_getter, spec_text: str) -> dict:
    p = Path(spec_text)
    if p.suffix == ".json" and p.is_file():
        return json.loads(p.read_text(encoding="utf-8"))
    from ..append import versions as target_versions
    from ..store import trees

    where, _, version = spec_text.rpartition("@") if "@" in spec_text else (spec_text, "", "")
    target = target_versions.target_of(where)
    if target is not None:  # an append target (APP-030): TARGET or TARGET@VALUE-PREFIX
        return target_versions.find(target, version or None)

    project = project_getter()
    name, _, version = spec_text.partition("@")
    n = project.resolve(name)
    key = project.dataset(n).derived_key
    if not version:
        latest = trees.latest(project.root, key)
        if latest is None:
            raise DataManifestError(f"dataset {n!r} has no tree manifest", code="DM122")
        return json.loads(latest.read_text(encoding="utf-8"))
    hits = [v for v in trees.versions(project.root, key) if v.stem.startswith(version)]
    if len(hits) != 1:
        raise DataManifestError(f"{spec_text!r} matches {len(hits)} kept versions", code="DM076",
                                hint=f"`datamanifest versions {n}` lists them")
    return json.loads(hits[0].read_text(encoding="utf-8"))


@main.command()
@click.argument("a")
@click.argument("b")
@click.option("--json", "as_json", is_flag=True, help="Print the differences as JSON.")
@click.pass_context
def diff(ctx: click.Context, a: str, b: str, as_json: bool) -> None:
    """Compare two tree manifests: files (*.json) or dataset versions (NAME, NAME@VALUE-PREFIX).

    Exit 0 when they list the same entries, 1 when they differ.
    """
    from ..verify import diff_manifests

    getter = lambda: _project(ctx)  # noqa: E731 - only opened when a name is given
    d = diff_manifests(_load_tree(getter, a), _load_tree(getter, b))
    if as_json:
        click.echo(json.dumps(d.as_json(), indent=2))
    else:
        for line in d.lines():
            click.echo(line)
        click.echo(f"{len(d.added)} added, {len(d.removed)} removed, {len(d.modified)} modified",
                   err=True)
    ctx.exit(1 if d else 0)


@main.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_context
def versions(ctx: click.Context, name: str, as_json: bool) -> None:
    """List the kept tree manifests (versions by checksum) of a folder dataset."""
    from ..append import versions as target_versions
    from ..store import trees

    target = target_versions.target_of(name)
    if target is not None:  # an append target (APP-030): every commit, oldest first
        rows = target_versions.history(target)
        latest = trees.latest(target_versions.store_root(target), target.url)
        for r in rows:
            r["latest"] = latest is not None and \
                latest.name.split(".")[0] == r["checksum"].partition(":")[2]
        if as_json:
            click.echo(json.dumps(rows, indent=2))
            return
        for r in rows:
            mark = "*" if r["latest"] else " "
            kept = "" if r["kept"] else "  (manifest pruned)"
            click.echo(f"{mark} {r['checksum']}  {r['time']}  {r['entries']} entries{kept}")
        return
    project = _project(ctx)
    n = project.resolve(name)
    key = project.dataset(n).derived_key
    latest = trees.latest(project.root, key)
    rows = []
    for v in trees.versions(project.root, key):
        doc = json.loads(v.read_text(encoding="utf-8"))
        stats = doc.get("statistics", {})
        rows.append({"checksum": doc.get("checksum"), "entries": stats.get("entries"),
                     "total_size": stats.get("totalSize"), "latest": v == latest,
                     "manifest": str(v)})
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        _info(f"{n}: no tree manifests (only folder datasets have them)")
    for r in rows:
        mark = "*" if r["latest"] else " "
        click.echo(f"{mark} {r['checksum']}  {r['entries']} entries  {_human(r['total_size'])}")


# -- where / config ---------------------------------------------------------------------------------
def _echo_settings(rows: list[dict]) -> None:
    for row in rows:
        click.echo(f"{row['field']:<16} {json.dumps(row['value'])}  [{row['rung']}]")


def _settings_rows(project) -> list[dict]:
    res = project.storage.resolved
    return [{"field": k, "value": v.value, "rung": v.rung} for k, v in res.settings.items()]


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_context
def where(ctx: click.Context, as_json: bool) -> None:
    """Where things are: manifest, state file, config files, and each storage setting with the
    rung of the ladder that set it (SCHEMA.md RES-001)."""
    from ..config import checkout_config_path, user_config_path

    project = _project(ctx)
    info = {
        "manifest": str(project.manifest_path), "project_root": str(project.root),
        "state_file": str(project.state_file), "host": project.storage.platform.hostname,
        "checkout_config": str(checkout_config_path(project.root)),
        "user_config": str(user_config_path()),
        "settings": _settings_rows(project),
        "symbols": {k: v for k, v in project.storage.symbols.items()},
    }
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    for k in ("manifest", "project_root", "state_file", "checkout_config", "user_config", "host"):
        exists = "" if k in ("project_root", "host") else (
            "" if Path(info[k]).exists() else "  (absent)")
        click.echo(f"{k:<16} {info[k]}{exists}")
    click.echo("")
    _echo_settings(info["settings"])


@main.group(invoke_without_command=True)
@click.pass_context
def config(ctx: click.Context) -> None:
    """Show or edit storage settings (this clone, the user file, or the manifest)."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(config_show)


def _scope_options(f):
    f = click.option("--local", "scope", flag_value="local", default=True,
                     help="This clone: .datamanifest/config.toml (default).")(f)
    f = click.option("--global", "scope", flag_value="global",
                     help="The user configuration file.")(f)
    f = click.option("--project", "scope", flag_value="project",
                     help="The manifest's [_STORAGE] (shared with everyone; comments kept).")(f)
    f = click.option("--host", "host", metavar="GLOB",
                     help="Only on hosts matching GLOB (a _HOST section).")(f)
    return f


def _scope_path(ctx: click.Context, scope: str) -> Path:
    from ..config import checkout_config_path, discover, user_config_path

    if scope == "global":
        return user_config_path()
    given = ctx.find_root().obj.get("manifest")
    manifest = discover(given) if given is None or Path(given).is_dir() else Path(given)
    return manifest if scope == "project" else checkout_config_path(manifest.resolve().parent)


@config.command("show")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_context
def config_show(ctx: click.Context, as_json: bool = False) -> None:
    """Each storage setting, its value and the rung that set it."""
    project = _project(ctx.find_root())
    rows = _settings_rows(project)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    _echo_settings(rows)


@config.command("set")
@click.argument("field")
@click.argument("values", nargs=-1, required=True)
@_scope_options
@click.option("--json", "as_json", is_flag=True, help="Print {field, file, changed} as JSON.")
@click.pass_context
def config_set(ctx: click.Context, field: str, values: tuple[str, ...], scope: str,
               host: str | None, as_json: bool) -> None:
    """Set FIELD (a storage field or a user symbol) to VALUE(s) in the chosen file."""
    from ..configedit import edit, parse_values

    path = _scope_path(ctx, scope)
    changed = _keeping_trust(ctx, scope, lambda: edit(
        path, scope, field, parse_values(field, list(values)), host=host))
    if as_json:
        click.echo(json.dumps({"field": field, "file": str(path), "scope": scope, "host": host,
                               "changed": changed}))
    _info(f"{'set' if changed else 'unchanged'}: {field} in {path}")


def _keeping_trust(ctx: click.Context, scope: str, run):
    """TRU-008: an edit of the project's own documents keeps a trust that held before it."""
    if scope == "global":
        return run()
    from ..trust import keep

    manifest = _scope_path(ctx, "project")
    result, kept = keep(manifest, run)
    if kept:
        _info(f"trust kept: {manifest} was trusted before this edit, and is for the "
              "edited content (TRU-008)")
    return result


@config.command("unset")
@click.argument("field")
@_scope_options
@click.option("--json", "as_json", is_flag=True, help="Print {field, file, changed} as JSON.")
@click.pass_context
def config_unset(ctx: click.Context, field: str, scope: str, host: str | None,
                 as_json: bool) -> None:
    """Remove FIELD from the chosen file."""
    from ..configedit import edit

    path = _scope_path(ctx, scope)
    changed = _keeping_trust(ctx, scope, lambda: edit(path, scope, field, host=host,
                                                          unset=True))
    if as_json:
        click.echo(json.dumps({"field": field, "file": str(path), "scope": scope, "host": host,
                               "changed": changed}))
    _info(f"{'unset' if changed else 'not set'}: {field} in {path}")


# command families in modules of their own (registered on import)
from . import maintain as _maintain  # noqa: E402,F401  list/ls, rm, mv, refresh, export
from . import sync as _sync  # noqa: E402,F401  push, pull, receive
from . import author as _author  # noqa: E402,F401  init, add, remove, show, update-checksums, import
from . import append as _append  # noqa: E402,F401  append
from . import virtual as _virtual  # noqa: E402,F401  virtualize, refs info
from . import integrations as _integrations  # noqa: E402,F401  graph, completion

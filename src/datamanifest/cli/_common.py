"""What the commands of the command line share (README, "Conventions"): the command and group
classes (every command takes -q; click's errors rendered with their code, DIAG-006), errors
and interruptions as the CLI ends on them, opening the project, trust for one run, and the
small renderings (sizes, informational lines, outputs written atomically).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

import click

from ..errors import DataManifestError

class LibraryLogFormatter(logging.Formatter):
    """Library log records (gcsfs, botocore, ...) as one line each, without tracebacks: the
    failure they describe reaches the user as a coded diagnostic (set DATAMANIFEST_DEBUG=1
    for the full records). Credentials in URIs are redacted (SEC-002)."""

    def format(self, record: logging.LogRecord) -> str:
        from ..spec.secrets import redact_text

        first = record.getMessage().partition("\n")[0]
        return redact_text(f"note: {record.name}: {first}")


class RedactingFormatter(logging.Formatter):
    """The full records of DATAMANIFEST_DEBUG=1, with URI credentials redacted (SEC-002):
    httpx logs every request's URL as given, user information included."""

    def format(self, record: logging.LogRecord) -> str:
        from ..spec.secrets import redact_text

        return redact_text(super().format(record))


def quiet_library_logs() -> None:
    if os.environ.get("DATAMANIFEST_DEBUG"):
        logging.basicConfig(level=logging.DEBUG)
        for handler in logging.getLogger().handlers:
            handler.setFormatter(RedactingFormatter(logging.BASIC_FORMAT))
        return
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(LibraryLogFormatter())
        handler.setLevel(logging.WARNING)
        root.addHandler(handler)


class Seconds(click.ParamType):
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


SECONDS = Seconds()


def stderr_is_tty() -> bool:
    return sys.stderr.isatty()


def emit_error(err: DataManifestError) -> None:
    for d in err.diagnostics:
        if d.severity == "error":
            click.echo(d.render(), err=True)
    click.echo(err.render(), err=True)


def set_quiet(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
    if value:
        ctx.meta["datamanifest.quiet"] = True
    return value


class Command(click.Command):
    """A command of the CLI convention (README, "Conventions"): every command takes
    ``-q/--quiet``, which silences informational messages on stderr (never results on
    stdout, never problems). Commands that do not declare it get it here."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if not any("--quiet" in getattr(p, "opts", ()) for p in self.params):
            self.params.append(click.Option(
                ["-q", "--quiet"], is_flag=True, expose_value=False, callback=set_quiet,
                help="Print only results and problems."))

    def invoke(self, ctx: click.Context):
        if ctx.params.get("quiet"):
            ctx.meta["datamanifest.quiet"] = True
        return super().invoke(ctx)


def quiet() -> bool:
    ctx = click.get_current_context(silent=True)
    return bool(ctx is not None and ctx.meta.get("datamanifest.quiet"))


def info(text: str) -> None:
    """An informational message on stderr (a summary, what was written); ``-q`` silences it."""
    if not quiet():
        click.echo(text, err=True)


class CodedClickError(click.UsageError):
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


def coded(err: click.ClickException) -> click.ClickException:
    return err if isinstance(err, CodedClickError) else CodedClickError(err)


class Group(click.Group):
    command_class = Command
    group_class = type  # subgroups (config, conformance, import, refs) are Group too

    def make_context(self, info_name, args, parent=None, **extra):
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.ClickException as e:  # the group's own options (-m, --version ...)
            raise coded(e) from e

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except DataManifestError as e:
            emit_error(e)
            ctx.exit(2 if e.code in ("DM003",) else 1)
        except click.ClickException as e:  # a subcommand's arguments (DIAG-006)
            raise coded(e) from e
        except KeyboardInterrupt:
            interrupted(_top_command(ctx))


def _top_command(ctx: click.Context) -> str:
    """The top-level command a group's context runs (``import`` for ``import pooch``)."""
    name = ctx.invoked_subcommand or ""
    while ctx.parent is not None:
        name, ctx = ctx.info_name or "", ctx.parent
    return name


#: what the next run does after an interruption (LCK-008), by top-level command: the
#: commands that download through the fetch engine keep a partial download (FET-023); an
#: append keeps the slices it committed, so the same command again would offer them twice
#: (DM164): only the rest is appended
_RESUMES = "run the same command again to continue (a partial download resumes)"
NEXT_RUN = {
    **dict.fromkeys(("fetch", "add", "import", "update-checksums"), _RESUMES),
    "append": "the slices committed before it stay (one cut short is rolled back, or "
              "forward by the next append); append the slices not yet in the store "
              "(`datamanifest append --status TARGET` shows its length)",
}


def interrupted(command: str = "") -> None:
    """LCK-008 in the command line: say what an interruption left and what the next run
    does (:data:`NEXT_RUN` by top-level ``command``), then end the process with status 130.
    The command's workers were stopped and waited for already (at most ``interrupt.GRACE``
    seconds) and its locks released; what remains is the interpreter's own teardown
    (joining library threads, freeing every object: ~0.5 s after xarray and zarr), skipped
    here so that a Ctrl-C ends the command at once. A worker thread stuck in a call nothing
    can wake (a fetcher's own code) ends with it, after the locks this process still holds
    are removed (what it was writing has no marker: incomplete)."""
    from ..store.lock import release_held

    release_held()  # of a worker that did not let go within the grace (a loaded machine)
    then = NEXT_RUN.get(command, "run the same command again to continue")
    click.echo(f"error DM172 interrupted: the work stopped and its locks were released; {then}",
               err=True)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(130)


def tune_gc() -> None:
    """A command is a short process that builds many small objects and few cycles: the
    imported modules are moved out of the collector's view and young collections run
    every 50,000 allocations instead of 700 (10,000 datasets: ~10% of `list`'s time)."""
    import gc

    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def open_project(ctx: click.Context):
    from ..project import Project

    return Project.open(ctx.obj.get("manifest"))


def print_warnings(project) -> None:
    for d in project.warnings:
        click.echo(d.render(), err=True)


def grant_trust(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    if value:
        from ..trust import end_grant, grant

        grant()
        # "for this command only": a later command of the same process (a notebook, a
        # test's CliRunner) is not trusted by this one's --trust
        ctx.find_root().call_on_close(end_grant)
    return value


#: TRU-005: ``--trust`` on a command that may run a manifest's code or write outside it
trust_option = click.option(
    "--trust", is_flag=True, expose_value=False, is_eager=True, callback=grant_trust,
    help="Trust this manifest for this command only: run the code it names and use the "
         "locations it sets outside the project (SCHEMA.md TRU-005; see `datamanifest trust`).")


def emit(text: str, output_file: Path | None) -> None:
    """``text`` (and a newline) on stdout, or written atomically to ``output_file``."""
    if output_file is None:
        click.echo(text)
        return
    from ..store.atomic import write_text

    try:
        write_text(output_file, text + "\n" if text else "")
    except OSError as e:
        raise click.FileError(str(output_file), hint=e.strerror or str(e)) from e


def verbose_log() -> None:
    """``--verbose``: the ``datamanifest`` log's notes (silent waits, and records of code
    that logs below it) on stderr, URI credentials redacted (SEC-002)."""
    log = logging.getLogger("datamanifest")
    log.setLevel(logging.INFO)
    if not any(getattr(h, "_datamanifest", False) for h in log.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(RedactingFormatter("note: %(message)s"))
        handler._datamanifest = True  # type: ignore[attr-defined]
        log.addHandler(handler)
        log.propagate = False


def human(n: int | None, unknown: str = "?") -> str:
    """A size in bytes in the CLI's one unit family (``2.1 MiB``); ``unknown`` for None."""
    from ..progress import human_size

    return human_size(n, unknown=unknown)


def check_output_file(output: Path, example: str, devices: bool = True) -> None:
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


def read_document(file: str) -> tuple[str, str]:
    """(text, label) of FILE, or of stdin for "-"."""
    if file == "-":
        return sys.stdin.read(), "<stdin>"
    try:
        return Path(file).read_text(encoding="utf-8"), file
    except (OSError, UnicodeDecodeError) as e:
        raise DataManifestError(f"cannot read {file}: {e}", code="DM002") from e




def command(name: str | None = None, **kwargs):
    """A command of this CLI (registered on the group by :mod:`datamanifest.cli`)."""
    return click.command(name, cls=Command, **kwargs)


def group(name: str | None = None, **kwargs):
    """A group of commands of this CLI."""
    return click.group(name, cls=Group, **kwargs)


def report_steps(steps: list, as_json: bool, dry_run: bool, verb: str) -> int:
    """Print the steps of a maintenance verb (rm, mv, refresh, export, push, pull) and a
    summary; returns the exit status (1 when a step failed)."""
    if as_json:
        click.echo(json.dumps({"dry_run": dry_run, "steps": [s.as_json() for s in steps]},
                              indent=2, ensure_ascii=False))
    else:
        for s in steps:
            what = "would " + s.action if dry_run and s.action not in ("skip", "keep") else \
                s.action
            size = f" ({human(s.bytes, '-')})" if s.bytes else ""
            line = f"{what}: {s.obj.kind} {s.obj.id} {s.detail}{size}"
            click.echo(line, err=s.error is not None)
            if s.error is not None:
                click.echo("  " + s.error.render(), err=True)
        done = [s for s in steps if s.error is None and s.action not in ("skip", "keep")]
        total = sum(s.bytes or 0 for s in done)
        info(f"{verb}: {len(done)} object(s), {human(total, '-')}"
             f"{' (dry run: nothing changed)' if dry_run else ''}")
    return 1 if any(s.error is not None for s in steps) else 0

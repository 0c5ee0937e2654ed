"""``conformance run``, ``serve``, ``index``: the language-neutral suite (fixtures/README.md)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from ._common import group, info, quiet

# -- conformance ---------------------------------------------------------------------------------
from ..conformance import KINDS as _CONFORMANCE_KINDS  # noqa: E402  (stdlib imports only)


@group()
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

    out = io.StringIO() if as_json or quiet() else sys.stdout
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
        info("index is current")
        return
    write_text(root / "index.json", index)
    write_text(root / "SHA256SUMS", sums)
    if as_json:
        click.echo(json.dumps({"index": str(root / "index.json"), "cases":
                               json.loads(index)["count"], "current": True}))
    info(f"wrote {root / 'index.json'} and {root / 'SHA256SUMS'}")


COMMANDS = [conformance]

"""The ``datamanifest`` command line: thin click commands over the library.

Exit codes (SCHEMA.md DIAG-005): 0 success, 1 problems found or an operation
failed, 2 usage error (bad option, no manifest found), 130 interrupted.
User errors print one line per diagnostic and never a traceback.
"""

from __future__ import annotations

from pathlib import Path

import click

from .._version import __version__
from . import (
    append,
    author,
    config,
    conformance,
    documents,
    fetch,
    integrations,
    maintain,
    sync,
    trees,
    virtual,
)
from ._common import Group, quiet_library_logs, tune_gc


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
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
    quiet_library_logs()
    tune_gc()
    ctx.obj = {"manifest": manifest}


# every command family registers its commands here (one module per family)
for _family in (documents, fetch, conformance, trees, config, maintain, sync, author, append,
                virtual, integrations):
    for _command in _family.COMMANDS:
        main.add_command(_command)
main.add_command(maintain.list_cmd, "ls")

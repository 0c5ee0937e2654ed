"""The ``datamanifest`` command line: thin click commands over the library.

Exit codes (SCHEMA.md DIAG-005): 0 success, 1 problems found or an operation
failed, 2 usage error (bad option, no manifest found), 130 interrupted.
User errors print one line per diagnostic and never a traceback.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import click

from .._version import __version__
from ._common import Group, quiet_library_logs, tune_gc

#: the module of each command family (``cli/<family>.py``, each listing its ``COMMANDS``) and
#: the commands it holds: a command's module is imported when the command runs, so that
#: ``datamanifest tree`` or ``check`` does not pay for importing fetch, sync, authoring ...
#: (tests/test_cli.py checks this table against the modules)
FAMILIES: dict[str, tuple[str, ...]] = {
    "documents": ("check", "schema", "format", "migrate"),
    "fetch": ("fetch", "status", "path"),
    "conformance": ("conformance",),
    "trees": ("tree", "verify", "diff", "versions"),
    "config": ("trust", "where", "config"),
    "maintain": ("list", "rm", "mv", "refresh", "export"),
    "sync": ("push", "pull", "receive"),
    "author": ("init", "add", "remove", "show", "update-checksums", "import"),
    "append": ("append",),
    "virtual": ("virtualize", "refs"),
    "integrations": ("completion", "graph"),
}
#: other names of commands: alias -> (family, command)
ALIASES = {"ls": ("maintain", "list")}
_FAMILY_OF = {name: family for family, names in FAMILIES.items() for name in names}


class LazyGroup(Group):
    """The top-level group: commands registered by name, their modules imported on use.
    ``commands`` (click's table) is complete whenever it is read as a whole."""

    def __init__(self, *args, **kwargs) -> None:
        self._loaded: set[str] = set()
        super().__init__(*args, **kwargs)

    @property
    def commands(self) -> dict[str, click.Command]:
        for family in FAMILIES:
            self._load(family)
        return self._commands

    @commands.setter
    def commands(self, value: dict[str, click.Command]) -> None:
        self._commands = value

    def _load(self, family: str) -> None:
        if family in self._loaded:
            return
        self._loaded.add(family)
        module = importlib.import_module(f"{__name__}.{family}")
        for command in module.COMMANDS:
            self._commands[command.name] = command
        for alias, (fam, name) in ALIASES.items():
            if fam == family:
                self._commands[alias] = self._commands[name]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        family = _FAMILY_OF.get(cmd_name) or ALIASES.get(cmd_name, (None,))[0]
        if family is None:
            return None
        self._load(family)
        return self._commands.get(cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(self.commands)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
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



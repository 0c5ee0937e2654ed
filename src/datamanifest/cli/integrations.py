"""Commands that meet users in their other tools: ``graph`` (a picture of the
dependencies for a terminal, Mermaid or Graphviz) and ``completion`` (shell completion
scripts, click's mechanism), and the completion of dataset identifiers used by ``fetch``,
``path``, ``show``, ``rm`` and ``verify``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from ._common import command
from .completion import COMPLETE_VAR, complete_datasets

SHELLS = ("bash", "zsh", "fish")


@command("completion")
@click.argument("shell", type=click.Choice(SHELLS))
def completion(shell: str) -> None:
    """Print the completion script for SHELL (bash, zsh or fish).

    \b
    bash:  datamanifest completion bash > ~/.local/share/bash-completion/completions/datamanifest
    zsh:   datamanifest completion zsh > "${fpath[1]}/_datamanifest"
    fish:  datamanifest completion fish > ~/.config/fish/completions/datamanifest.fish

    Or load it in the shell's start-up file, e.g. for bash:
    eval "$(_DATAMANIFEST_COMPLETE=bash_source datamanifest)". Dataset names and aliases
    of the manifest complete after fetch, path, show, rm and verify.
    """
    from click.shell_completion import get_completion_class

    cls = get_completion_class(shell)
    assert cls is not None  # the three are click's own
    root = click.get_current_context().find_root().command  # the datamanifest group
    script = cls(root, {}, "datamanifest", COMPLETE_VAR).source()
    if shell == "zsh":
        script = _zsh_autoloadable(script)
    click.echo(script, nl=False)


def _zsh_autoloadable(script: str) -> str:
    """click's zsh script, made to complete on every TAB when autoloaded from ``$fpath``
    (INT-040). Autoloaded, the file's body becomes the function ``_datamanifest``: click's
    script completes on the first TAB, but the second runs the body again and takes its
    ``compdef`` branch, which registers the function and completes nothing (found by
    tests/test_completion.py's real zsh). The first call therefore registers it too."""
    call = '    _datamanifest_completion "$@"\n'
    if script.count(call) != 1:  # another click template: left as it is (the zsh test says)
        return script
    return script.replace(call, "    compdef _datamanifest_completion datamanifest  # later "
                                "TABs call it directly\n" + call)


# -- graph ----------------------------------------------------------------------------------------
@command("graph")
@click.argument("names", nargs=-1, shell_complete=complete_datasets)
@click.option("--mermaid", "fmt", flag_value="mermaid", help="A Mermaid flowchart (renders in "
              "GitHub Markdown and Material for MkDocs).")
@click.option("--dot", "fmt", flag_value="dot", help="A Graphviz digraph (`| dot -Tsvg`).")
@click.option("--json", "fmt", flag_value="json", help="Nodes, edges and roots as JSON.")
@click.option("--tree", "fmt", flag_value="tree", default=True, hidden=True)
@click.option("--no-artifacts", is_flag=True, help="Do not read the store for produced "
              "artifacts.")
@click.option("--ascii", "ascii_", is_flag=True, help="Draw the tree with ASCII characters.")
@click.pass_context
def graph(ctx: click.Context, names: tuple[str, ...], fmt: str, no_artifacts: bool,
          ascii_: bool) -> None:
    """Draw the dependencies: requires, virtual datasets' sources, and produced artifacts
    with the datasets their parameters name (all, or NAMES and what they depend on).

    An indented tree by default; --mermaid or --dot for documents. A requires entry
    naming no dataset and a requires cycle are drawn (marked), not refused; the summary
    on stderr lists them. Exit 1 when a NAME matches no dataset.
    """
    from .. import graph as g
    from ..check import check_path
    from ..config import discover

    given = ctx.obj.get("manifest")
    path = discover(given) if given is None or Path(given).is_dir() else Path(given)
    result = check_path(path)
    if result.data is None:  # not TOML, or unreadable: nothing to draw
        from ..errors import ManifestError

        raise ManifestError(f"{path} cannot be drawn", code=result.diagnostics[0].code,
                            file=str(path), diagnostics=result.diagnostics,
                            hint="run `datamanifest check` for details")
    artifacts = [] if no_artifacts else _artifacts(path, result)
    graph_ = g.build(result.data, artifacts=artifacts, names=list(names) or None)
    if fmt == "mermaid":
        click.echo(g.mermaid(graph_), nl=False)
    elif fmt == "dot":
        click.echo(g.dot(graph_), nl=False)
    elif fmt == "json":
        click.echo(json.dumps(graph_.as_json(), indent=2, ensure_ascii=False))
    else:
        encoding = getattr(sys.stdout, "encoding", None) or "ascii"
        try:
            "├└│".encode(encoding)
        except (UnicodeEncodeError, LookupError):
            ascii_ = True
        for line in g.tree(graph_, ascii=ascii_):
            click.echo(line)
    for e in graph_.cycles:
        click.echo(f"note: requires cycle through {graph_.nodes[e.src].label} -> "
                   f"{graph_.nodes[e.dst].label} (DM041)", err=True)
    unknown_required = {graph_.nodes[e.dst].label for e in graph_.edges
                        if graph_.nodes[e.dst].kind == g.UNKNOWN}
    for name in sorted(unknown_required):
        click.echo(f"note: {name!r} is required but is no dataset of the manifest (DM040)",
                   err=True)
    missing = [n for n in names if n in graph_.unknown and n not in unknown_required]
    for name in missing:
        click.echo(f"error DM076 no dataset named {name!r} (by name, alias or doi)", err=True)
    ctx.exit(1 if missing else 0)


def _artifacts(manifest_path: Path, result) -> list[dict]:
    """The produced artifacts of the project's store with their parameters (the key table
    of each one's config.toml, SC-001). A manifest with errors across datasets (a cycle, an
    unknown requirement) still locates its store; none when its storage cannot be
    resolved."""
    import tomllib

    from ..errors import DataManifestError
    from ..maintain.inventory import inventory
    from ..project import Project
    from ..spec.manifest import Manifest

    try:
        if result.manifest is None:
            result.manifest = Manifest.from_dict(result.data)
        inv = inventory(Project(manifest_path.resolve(), result))
    except (DataManifestError, ValueError, TypeError):
        return []
    out = []
    for o in inv.objects:
        if o.kind != "cached" or o.state == "missing":
            continue
        try:
            doc = tomllib.loads((Path(o.location) / "config.toml").read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            continue
        params = {k: v for k, v in doc.items() if k != "_META"}
        shown = ", ".join(f"{k}={v!r}" for k, v in params.items())
        out.append({"id": o.id, "label": o.key.rsplit("/", 1)[0] + "/" +
                    o.key.rsplit("/", 1)[1][:12], "parameters": params,
                    "detail": shown[:80] + ("..." if len(shown) > 80 else "")})
    return out




COMMANDS = [completion, graph]

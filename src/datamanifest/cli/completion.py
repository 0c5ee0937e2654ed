"""Shell completion of dataset identifiers (click's ``shell_complete`` protocol).

Imported by the command modules for their NAME arguments; kept free of the command group
so that any of them can import it.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

#: the environment variable click's completion protocol reads (``datamanifest completion``)
COMPLETE_VAR = "_DATAMANIFEST_COMPLETE"


def _manifest_for_completion(ctx: click.Context) -> Path | None:
    from ..config import discover

    given = ctx.find_root().params.get("manifest") or os.environ.get("DATAMANIFEST_TOML")
    try:
        if given:
            p = Path(given)
            return discover(p) if p.is_dir() else p
        return discover()
    except Exception:  # noqa: BLE001 - completion never fails: it offers nothing
        return None


def complete_datasets(ctx: click.Context, param: click.Parameter, incomplete: str) -> list:
    """Dataset names and aliases (and dois) of the manifest that start with ``incomplete``:
    click's ``shell_complete`` callback. Reads the manifest with the TOML parser only
    (no checks, no store), so it answers in milliseconds; never raises."""
    from click.shell_completion import CompletionItem

    path = _manifest_for_completion(ctx)
    if path is None:
        return []
    try:
        from ..spec import tomlparse

        data = tomlparse.loads(path.read_text(encoding="utf-8"))
    except Exception:  # noqa: BLE001 - an unreadable manifest completes nothing
        return []
    given = set(ctx.params.get(param.name) or ()) if param.nargs != 1 else set()
    items = []
    for name, ds in data.items():
        if name.startswith("_") or not isinstance(ds, dict):
            continue
        desc = ds.get("description") if isinstance(ds.get("description"), str) else ""
        desc = desc.strip().splitlines()[0] if desc.strip() else ""
        if name.startswith(incomplete) and name not in given:
            items.append(CompletionItem(name, help=desc or None))
        aliases = ds.get("aliases") if isinstance(ds.get("aliases"), list) else []
        doi = [ds["doi"]] if isinstance(ds.get("doi"), str) and ds["doi"] else []
        for alias in [a for a in aliases if isinstance(a, str)] + doi:
            if alias.startswith(incomplete) and alias not in given:
                items.append(CompletionItem(alias, help=f"alias of {name}"))
    return items

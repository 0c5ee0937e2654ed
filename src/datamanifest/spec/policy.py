"""One error policy: which datasets a tool may act on (SCHEMA.md MAN-012, FET-008).

A dataset's *closure* is its own table, the tables of the datasets it requires
(transitively), the structural tables and the configuration documents read. An error
belongs to the table that holds its position (the first member of its JSON path; a path
that is empty or starts with ``_`` belongs to the structural tables; an error of a
configuration document belongs to that document, which every dataset's closure holds).
A dataset whose closure holds an error is *refused*; the others are acted on.

Pure: parsed documents and diagnostics in, a mapping out; no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..errors import Diagnostic


def dataset_names(data: Mapping[str, Any]) -> list[str]:
    """The dataset names of a parsed manifest, in document order (MAN-002)."""
    return [k for k in data if not k.startswith("_")]


def _requires(data: Mapping[str, Any], name: str) -> list[str]:
    table = data.get(name)
    reqs = table.get("requires") if isinstance(table, dict) else None
    if not isinstance(reqs, list):
        return []
    return [r for r in reqs if isinstance(r, str) and not r.startswith("_") and r in data]


def owner(d: Diagnostic) -> str | None:
    """The dataset an error belongs to, or None for the structural tables (MAN-012)."""
    if d.path and isinstance(d.path[0], str) and not d.path[0].startswith("_"):
        return d.path[0]
    return None


def refused(data: Mapping[str, Any], errors: Iterable[Diagnostic],
            global_errors: Iterable[Diagnostic] = ()) -> dict[str, list[Diagnostic]]:
    """Each refused dataset of the manifest ``data`` with the errors of its closure.

    ``errors``: the manifest's error diagnostics; ``global_errors``: errors of the
    configuration documents, which refuse every dataset (CFG-003). Datasets absent from
    the result are acted on. The errors of a dataset are listed in the order given.
    """
    names = dataset_names(data)
    common = list(global_errors)
    own: dict[str, list[Diagnostic]] = {}
    for d in errors:
        if d.severity != "error":
            continue
        who = owner(d)
        if who is None or who not in data:
            common.append(d)
        else:
            own.setdefault(who, []).append(d)
    if common:
        out: dict[str, list[Diagnostic]] = {n: list(common) for n in names}
        seeds = [n for n in names if n in own]
    else:
        out = {}
        seeds = [n for n in names if n in own]
    if not seeds:
        return out
    # who requires whom, reversed: an error reaches every dataset that requires its owner
    dependents: dict[str, list[str]] = {}
    for n in names:
        for r in _requires(data, n):
            dependents.setdefault(r, []).append(n)
    reached: dict[str, set[str]] = {}
    for seed in seeds:
        stack, seen = [seed], {seed}
        while stack:
            node = stack.pop()
            reached.setdefault(node, set()).add(seed)
            for dep in dependents.get(node, ()):
                if dep not in seen:
                    seen.add(dep)
                    stack.append(dep)
    for n in names:
        sources = reached.get(n)
        if not sources:
            continue
        errs = out.setdefault(n, list(common))
        for seed in seeds:  # document order of the tables holding the errors
            if seed in sources:
                errs.extend(own[seed])
    return out

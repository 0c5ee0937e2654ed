"""The bench JSON contract: what a benchmark script writes with ``--json PATH``.

Every ``bench/*.py`` that measures performance accepts ``--json PATH`` and writes there ONE
JSON object, its entry of ``bench/results.json``::

    {"title": "...", "command": "...", "duration": "...", "what": "...",
     "columns": [...], "rows": [[...], ...],
     "chart": {"unit": "s", "better": "lower", "bars": [{"label", "value", "ours"?}]},
     "figures": [FIGURE, ...]}

``chart`` may hold ``groups`` (``[{"label", "bars"}]``) instead of ``bars`` (bench/charts.py).
A FIGURE is one row of the one comparison table (bench/results.md)::

    {"case": "1,000 x 100 KiB", "unit": "s", "ours": 0.61,
     "peer": "pooch.retrieve loop", "peer_value": 3.1,
     "floor": "httpx keep-alive x8 + sha256", "floor_value": 0.4,
     "target": ">= 4x peer, <= 2x floor", "holds": true,
     "command": ".venv/bin/python bench/fetch_many.py --files 1000 --size-kib 100"}

``peer``/``peer_value``, ``floor``/``floor_value``, ``target`` and ``holds`` may be null where
there is none; ``unit`` is one of :data:`UNITS`. A script also accepts ``--quick`` (a small
case for a smoke test) where that makes sense. ``bench/run.py`` runs every script and checks
each entry with :func:`problems`.

Scripts import this file as ``contract`` (``bench/`` is the script's own folder, so it is on
``sys.path`` when the script runs).
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path

UNITS = ("s", "ms", "MB/s", "MB", "x")
ENTRY_KEYS = ("title", "command", "duration", "what", "columns", "rows", "chart", "figures")
FIGURE_KEYS = ("case", "unit", "ours", "peer", "peer_value", "floor", "floor_value", "target",
               "holds", "command")
ROOT = Path(__file__).resolve().parents[1]


def command_line(argv: list[str] | None = None) -> str:
    """The command that ran this script, as a reader would type it from the repository root.

    Parameters
    ----------
    argv
        The script's arguments (default: ``sys.argv[1:]``); ``--json PATH`` is left out.

    Returns
    -------
    str
        E.g. ``.venv/bin/python bench/check_scaling.py --repeat 5``.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if "--json" in args:
        i = args.index("--json")
        del args[i:i + 2]
    args = [a for a in args if not a.startswith("--json=")]
    python = Path(sys.executable)
    try:
        shown = os.path.relpath(python, ROOT) if python.is_relative_to(ROOT) else str(python)
    except ValueError:
        shown = str(python)
    script = os.path.relpath(Path(sys.argv[0]).resolve(), ROOT)
    return " ".join(shlex.quote(a) for a in [shown, script, *args])


def figure(case: str, unit: str, ours: float, *, peer: str | None = None,
           peer_value: float | None = None, floor: str | None = None,
           floor_value: float | None = None, target: str | None = None,
           holds: bool | None = None, command: str | None = None) -> dict:
    """One row of the comparison table (see the module's docstring for each key).

    Parameters
    ----------
    case
        What was measured, e.g. ``"10,000 datasets"``.
    unit
        One of :data:`UNITS`.
    ours
        datamanifest's figure in ``unit``.

    Returns
    -------
    dict
        The row, every key of :data:`FIGURE_KEYS` present.

    Raises
    ------
    ValueError
        On a unit outside :data:`UNITS`.
    """
    if unit not in UNITS:
        raise ValueError(f"unit {unit!r} is not one of {UNITS}")
    return {"case": case, "unit": unit, "ours": ours, "peer": peer, "peer_value": peer_value,
            "floor": floor, "floor_value": floor_value, "target": target, "holds": holds,
            "command": command or command_line()}


def problems(entry: object) -> list[str]:
    """What keeps ``entry`` from following the contract (empty when it does).

    Parameters
    ----------
    entry
        The object a script wrote with ``--json``.

    Returns
    -------
    list of str
        One sentence per problem.
    """
    if not isinstance(entry, dict):
        return [f"the entry is a {type(entry).__name__}, not an object"]
    out = [f"key {k!r} is missing" for k in ENTRY_KEYS if k not in entry]
    if not isinstance(entry.get("rows", []), list):
        out.append("'rows' is not a list")
    chart = entry.get("chart")
    if chart is not None and not (isinstance(chart, dict)
                                  and ("bars" in chart or "groups" in chart)):
        out.append("'chart' has neither 'bars' nor 'groups'")
    figures = entry.get("figures", [])
    if not isinstance(figures, list):
        return [*out, "'figures' is not a list"]
    for i, f in enumerate(figures):
        if not isinstance(f, dict):
            out.append(f"figure {i} is not an object")
            continue
        out += [f"figure {i} lacks {k!r}" for k in FIGURE_KEYS if k not in f]
        if f.get("unit") not in UNITS:
            out.append(f"figure {i}: unit {f.get('unit')!r} is not one of {UNITS}")
        for k in ("ours", "peer_value", "floor_value"):
            v = f.get(k)
            if v is not None and not (isinstance(v, (int, float)) and not isinstance(v, bool)):
                out.append(f"figure {i}: {k!r} is not a number")
        if f.get("ours") is None:
            out.append(f"figure {i}: 'ours' is null")
        if f.get("holds") not in (True, False, None):
            out.append(f"figure {i}: 'holds' is not true, false or null")
    return out


def write(path: str | os.PathLike, entry: dict) -> None:
    """Write ``entry`` to ``path`` as JSON (atomically), after checking it.

    Parameters
    ----------
    path
        The file ``--json`` named.
    entry
        The benchmark's entry.

    Raises
    ------
    ValueError
        When the entry breaks the contract (:func:`problems`).
    """
    bad = problems(entry)
    if bad:
        raise ValueError("the benchmark's entry breaks the contract: " + "; ".join(bad))
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(entry, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)

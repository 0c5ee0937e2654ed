"""Drive the fault layer (:mod:`datamanifest.faults`) from a test: the environment that
traces a child's file-system mutations or kills it just before the n-th one.

The fault layer itself stays in :mod:`datamanifest.faults`: production modules call its
:func:`~datamanifest.faults.point` at the mutations the audit hook cannot see (``fsync``,
object-store requests), so it must be importable at no cost -- without this package's
servers -- and inert unless the environment switches it on.
"""

from __future__ import annotations

from collections.abc import Iterable
from os import PathLike
from pathlib import Path

#: the variables of the fault layer (a trial's environment drops inherited ones)
VARIABLES = ("DATAMANIFEST_FAULT", "DATAMANIFEST_FAULT_TRACE", "DATAMANIFEST_FAULT_SIGNAL",
             "DATAMANIFEST_FAULT_ONLY")


def environment(*, at: int | None = None, trace: str | PathLike | None = None,
                only: Iterable[str | PathLike] = (), signal: str = "KILL") -> dict[str, str]:
    """The environment that switches the fault layer on in a child process.

    Parameters
    ----------
    at : int, optional
        Kill (or signal) the child just before its ``at``-th mutation (1-based).
    trace : path, optional
        Append one line per mutation (``<n> <event> <path>``) to this file.
    only : iterable of paths
        Count only mutations of paths under these folders (default: every path but
        ``__pycache__``, ``/dev`` and ``/proc``).
    signal : str
        ``"KILL"`` (default: SIGKILL, no clean-up) or ``"INT"`` (a Ctrl-C at that point,
        LCK-008).

    Returns
    -------
    dict of str to str
        Variables to add to the child's environment.
    """
    env: dict[str, str] = {}
    if at is not None:
        env["DATAMANIFEST_FAULT"] = str(at)
        env["DATAMANIFEST_FAULT_SIGNAL"] = signal
    if trace is not None:
        env["DATAMANIFEST_FAULT_TRACE"] = str(trace)
    paths = [str(Path(p)) for p in only]
    if paths:
        env["DATAMANIFEST_FAULT_ONLY"] = ":".join(paths)
    return env


def read_trace(path: str | PathLike) -> list[tuple[int, str, str]]:
    """The mutations a traced run recorded: ``(n, event, path)`` in order.

    Parameters
    ----------
    path : path
        The file given as ``trace`` to :func:`environment`; absent means no mutation.

    Returns
    -------
    list of (int, str, str)
        The mutation's number, its event (``open``, ``rename``, ``fsync``, ``put``, ...)
        and the path or URL it touched.
    """
    p = Path(path)
    if not p.exists():
        return []
    out = []
    for line in p.read_text().splitlines():
        n, _, rest = line.partition(" ")
        event, _, where = rest.partition(" ")
        out.append((int(n), event, where))
    return out


__all__ = ["VARIABLES", "environment", "read_trace"]

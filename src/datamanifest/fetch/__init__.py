"""Fetching datasets verified, atomically and locked (SCHEMA.md §11), in parts:

* :func:`run` -- the one entry: the command line's ``fetch`` and :meth:`Project.fetch
  <datamanifest.project.Project.fetch>` both call it with the same options; :func:`plan`
  is its dry run;
* :mod:`~datamanifest.fetch.job` -- one dataset's job, built once;
* :mod:`~datamanifest.fetch.kinds` -- the source kinds, a table you can extend;
* :mod:`~datamanifest.fetch.engine` -- one dataset's transaction (lock, stage, verify,
  publish, record);
* :mod:`~datamanifest.fetch.schedule` -- requires order, threads or forked workers,
  per-host caps, the first Ctrl-C;
* :mod:`~datamanifest.fetch.report` -- outcomes and the report; helpers:
  :mod:`~datamanifest.fetch.stream` (hash while writing), :mod:`~datamanifest.fetch.archive`,
  :mod:`~datamanifest.fetch.resume`, :mod:`~datamanifest.fetch.sources` (git, rsync),
  :mod:`~datamanifest.fetch.bindings` (fetchers and peers of the ladder).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..progress import Progress
    from ..project import Project
    from .report import FetchReport


def run(project: "Project", names: "str | list[str] | None" = None, *, jobs: int = 4,
        per_host: int = 4, force: "bool | set[str]" = False,
        lock_timeout: float | None = None, offline: bool = False,
        progress: "Progress | None" = None, move_aside: bool = False, trusted: bool = False,
        processes: bool = True, adopt: dict[str, Path] | None = None) -> "FetchReport":
    """Fetch datasets of ``project`` with their requirements, verified and atomically.

    Parameters
    ----------
    project : Project
        The opened manifest.
    names : str or list of str, optional
        Identifiers (name, alias or doi); every dataset when None.
    jobs : int
        Datasets fetched at once (FET-003).
    per_host : int
        Downloads from any one host at once (FET-007).
    force : bool or set of str
        Download again even when present: every dataset (True) or these names.
    lock_timeout : float, optional
        Seconds to wait for another process's lock (None: as long as it heartbeats).
    offline : bool
        Resolve only what is present (targets, state, pools); download nothing (FET-006).
    progress : datamanifest.progress.Progress, optional
        Where progress is drawn (``RichProgress`` on a terminal); none by default.
    move_aside : bool
        Rename a file or folder in the way that this tool did not publish to
        ``<name>.~<n>~`` (STO-016) instead of failing that dataset with DM182.
    trusted : bool
        Vouch for the manifest (TRU-005, ``--trust``): run the code it names and use the
        locations it sets outside the project.
    processes : bool
        Allow forked worker processes for many datasets (see
        :mod:`~datamanifest.fetch.schedule`).
    adopt : dict of str to Path, optional
        Dataset name -> a local file whose bytes stand in for its ``uri`` (AUT-010).

    Returns
    -------
    FetchReport
        A mapping from each name to its :class:`~datamanifest.fetch.report.Outcome`;
        failures are in the report, not raised.

    Raises
    ------
    LookupFailed
        DM076/DM077 for an identifier that names no dataset or several (MAN-051).
    TrustError
        DM180 before anything runs, when the run needs trust the manifest does not have.
    KeyboardInterrupt
        After the first SIGINT, once the workers have let go (FET-023).
    """
    from .engine import Fetcher

    if isinstance(names, str):
        names = [names]
    return Fetcher(project, jobs=jobs, per_host=per_host, force=force,
                   lock_timeout=lock_timeout, offline=offline, progress=progress,
                   move_aside=move_aside, trusted=trusted, processes=processes,
                   adopt=adopt).run(names)


def plan(project: "Project", names: "str | list[str] | None" = None, *,
         force: "bool | set[str]" = False, offline: bool = False, trusted: bool = False,
         probe: bool = True) -> list[dict]:
    """What :func:`run` would do with the same options, doing nothing (``fetch --dry-run``):
    one row per dataset; see :func:`datamanifest.fetch.dryrun.plan`. ``probe``: one HEAD
    request per http(s) source for its size."""
    from .dryrun import plan as dry_run

    if isinstance(names, str):
        names = [names]
    return dry_run(project, names, force=force, offline=offline, trusted=trusted, probe=probe)

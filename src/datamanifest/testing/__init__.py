"""datamanifest's test kit: what its own tests, benchmarks and demo run on, for yours too.

As ``zarr.testing`` is for stores, this is for code that fetches, appends or produces with
datamanifest and wants to test it against real parts rather than mocks:

* :mod:`~datamanifest.testing.servers` -- real servers on 127.0.0.1: an HTTP file server
  that misbehaves on request (:class:`LoopbackServer`), a connection-cutting proxy, the
  S3 / GCS / Azure emulators and an SSH server;
* :mod:`~datamanifest.testing.faults` -- drive the fault layer (:mod:`datamanifest.faults`):
  trace a command's file-system mutations, kill it just before the n-th one;
* :mod:`~datamanifest.testing.crash` -- the crash and race harness: one trial runner
  (a child in its own process group, killed at a fault point, at a random moment, or
  interrupted), sweeps, random kills, races and the verdicts (corrupt, blocked, left over);
* :mod:`~datamanifest.testing.scenarios` -- a project's command as a crash scenario and its
  judge (:class:`~datamanifest.testing.scenarios.CommandScenario`, for your own commands);
* :mod:`~datamanifest.testing.commands` -- the scenarios of every command that writes:
  ``fetch`` (files, archives, folders, git, checksums filled, a concurrent state merge),
  ``rm``, ``mv``, ``add``, produced datasets, ``push`` to a folder, ``tree``,
  ``virtualize``, ``update-checksums``, ``refresh``, ``export``, and over SSH ``pull`` and
  ``push`` (the kill in the sender, or in the far receiver);
* :mod:`~datamanifest.testing.appends` -- the append scenarios: slices, the judge of a
  cube after a kill, races of writers;
* :mod:`~datamanifest.testing.fuzz` -- mutations of every document type through
  ``check``, ``format``, ``migrate`` and the loaders;
* :mod:`~datamanifest.testing.venvs` -- a venv with another Python for peer tools.

The servers are imported here; the harness modules when named (they import more).
"""

from __future__ import annotations

from .servers import (
    CuttingProxy,
    LoopbackServer,
    Unavailable,
    first_line,
    free_port,
    self_signed,
    start_server_process,
    wait_for_port,
)
from .venvs import python_venv

__all__ = ["LoopbackServer", "CuttingProxy", "Unavailable", "free_port", "wait_for_port",
           "first_line", "self_signed", "start_server_process", "python_venv"]

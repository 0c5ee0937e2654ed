"""datamanifest: a spec-first manifest for a project's data dependencies.

The normative specification is ``SCHEMA.md``; this package is its Python
reference implementation. Public API::

    from datamanifest import Project
    project = Project.open()         # discovers datamanifest.toml upward from cwd
    project.add("https://example.org/obs.csv")   # declare, fetch verified, record the checksum
    report = project.fetch()         # name -> outcome (.status, .path); raises on a failure
    project.path("obs")              # -> pathlib.Path of the verified copy
    project.load("obs")              # a DataFrame, an xarray.Dataset, ... (load ladder)
    project.list(kind="cached")      # the objects of the stores, as `datamanifest list`

    @datamanifest.cached             # produce or load by parameter hash (SCHEMA.md §21)
    def monthly_means(year: int, region: str = "global"): ...

    refs = datamanifest.virtualize(files, concat_dim="time")   # chunk manifest (§25)
    ds = datamanifest.open_virtual(refs)                         # xarray, read in place

    datamanifest.append("cube.zarr", ["d1.nc", "d2.nc"], append_step="1D")  # §26
"""

from __future__ import annotations

from ._version import __version__  # noqa: E402

import os as _os  # noqa: E402

if _os.environ.get("DATAMANIFEST_FAULT") or _os.environ.get("DATAMANIFEST_FAULT_TRACE"):
    from . import faults as _faults  # noqa: F401 - crash tests only (design/2026-12-02-reliability.md)

from .errors import (  # noqa: E402
    AppendError,
    DataManifestError,
    Diagnostic,
    ProduceError,
    VirtualError,
)


def open_manifest(path=None):
    """Open a manifest: a file, a folder, or the one discovered upward from the working directory.

    The same as :meth:`datamanifest.Project.open` (SCHEMA.md §2). Datasets whose entries have
    errors are refused one by one (MAN-012), not raised.

    Parameters
    ----------
    path : str or Path, optional
        The manifest file, or a folder to discover it from; default: discovered upward from
        the working directory (``$DATAMANIFEST_TOML`` wins).

    Returns
    -------
    Project

    Raises
    ------
    ManifestError
        DM003 when no manifest is found; DM091 when it cannot be read as a whole
        (``err.diagnostics`` lists the errors).
    """
    from .project import Project

    return Project.open(path)


def __getattr__(name: str):
    # the capabilities are imported on first use, so that `import datamanifest` stays light
    if name == "Project":
        from .project import Project

        return Project
    if name == "FetchReport":
        from .fetch.report import FetchReport

        return FetchReport
    if name == "append":
        from .appends import append

        return append
    if name == "appends":  # append's companions, as documented: datamanifest.appends.status
        import importlib  # (`from . import appends` would ask this function again)

        return importlib.import_module(".appends", __name__)
    if name in ("cached", "CachedFunction", "register_format", "Artifact"):
        from . import cache

        return getattr(cache, name)
    if name in ("open_virtual", "virtualize", "ChunkStore"):
        from . import virtual

        return getattr(virtual, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["Project", "FetchReport", "open_manifest", "DataManifestError", "Diagnostic", "__version__", "cached",
           "CachedFunction", "register_format", "Artifact", "ProduceError", "open_virtual",
           "virtualize", "ChunkStore", "VirtualError", "append", "AppendError"]

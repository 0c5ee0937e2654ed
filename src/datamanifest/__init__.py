"""datamanifest: a spec-first manifest for a project's data dependencies.

The normative specification is ``SCHEMA.md``; this package is its Python
reference implementation. Public API::

    from datamanifest import open_manifest
    m = open_manifest()              # discovers datamanifest.toml upward from cwd
    m.fetch()                        # materialize every dataset, verified
    m.path("my-dataset")             # -> pathlib.Path of the verified copy

    @datamanifest.cached             # produce or load by parameter hash (SCHEMA.md §21)
    def monthly_means(year: int, region: str = "global"): ...

    refs = datamanifest.virtualize(files, concat_dim="time")   # chunk manifest (§25)
    ds = datamanifest.open_virtual(refs)                         # xarray, read in place

    datamanifest.append("cube.zarr", ["d1.nc", "d2.nc"], append_step="1D")  # §26
"""

from __future__ import annotations

__version__ = "0.1.0"

import os as _os  # noqa: E402

if _os.environ.get("DATAMANIFEST_FAULT") or _os.environ.get("DATAMANIFEST_FAULT_TRACE"):
    from . import faults as _faults  # noqa: F401 - crash tests only (design/2026-12-02-reliability.md)

from .errors import DataManifestError, Diagnostic  # noqa: E402


def open_manifest(path=None):
    """Open a manifest (a file or folder; discovered upward from cwd when None).

    Returns a :class:`datamanifest.project.Project`. Raises
    :class:`~datamanifest.errors.ManifestError` (DM003 none found, DM091 it
    has errors; ``err.diagnostics`` lists them). SCHEMA.md §2.
    """
    from .project import Project

    return Project.open(path)


_LAZY = {"Project": "project", "append": "append", "AppendError": "errors", "cached": "cache", "CachedFunction": "cache", "register_format": "cache",
         "Artifact": "cache", "ProduceError": "errors", "open_virtual": "virtual",
         "virtualize": "virtual", "ChunkStore": "virtual", "VirtualError": "errors"}


def __getattr__(name: str):
    # the produce-or-load layer is imported on first use, so `import datamanifest` stays light
    if name in _LAZY:
        import importlib

        module = importlib.import_module(f".{_LAZY[name]}", __name__)
        return module if name == "append" else getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["open_manifest", "Project", "DataManifestError", "Diagnostic", "__version__", "cached",
           "CachedFunction", "register_format", "Artifact", "ProduceError", "open_virtual",
           "virtualize", "ChunkStore", "VirtualError", "append", "AppendError"]

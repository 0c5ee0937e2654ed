"""datamanifest: a spec-first manifest for a project's data dependencies.

The normative specification is ``SCHEMA.md``; this package is its Python
reference implementation. Public API::

    from datamanifest import open_manifest
    m = open_manifest()              # discovers datamanifest.toml upward from cwd
    m.fetch()                        # materialize every dataset, verified
    m.path("my-dataset")             # -> pathlib.Path of the verified copy
"""

from __future__ import annotations

__version__ = "0.1.0"

from .errors import DataManifestError, Diagnostic  # noqa: E402


def open_manifest(path=None):
    """Open a manifest (a file or folder; discovered upward from cwd when None).

    Returns a :class:`datamanifest.project.Project`. Raises
    :class:`~datamanifest.errors.ManifestError` (DM003 none found, DM091 it
    has errors; ``err.diagnostics`` lists them). SCHEMA.md §2.
    """
    from .project import Project

    return Project.open(path)


__all__ = ["open_manifest", "DataManifestError", "Diagnostic", "__version__"]

"""Manifest discovery as a pure function (SCHEMA.md §2, DISC-001, DISC-002)."""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Mapping

#: DISC-001: file names tried in each folder, first existing wins.
MANIFEST_NAMES = ("datamanifest.toml", "DataManifest.toml", "datasets.toml", "Datasets.toml")


def discover(cwd: str, is_file: Callable[[str], bool], env: Mapping[str, str]) -> str | None:
    """The manifest path for a process in ``cwd`` (absolute, POSIX), or None (DM003).

    ``DATAMANIFEST_TOML`` wins when set (relative values are relative to ``cwd``);
    otherwise each folder from ``cwd`` up to ``/`` is searched for the names of
    :data:`MANIFEST_NAMES` in order.
    """
    given = env.get("DATAMANIFEST_TOML")
    if given:
        return given if given.startswith("/") else posixpath.normpath(posixpath.join(cwd, given))
    folder = posixpath.normpath(cwd)
    while True:
        for name in MANIFEST_NAMES:
            candidate = posixpath.join(folder, name)
            if is_file(candidate):
                return candidate
        parent = posixpath.dirname(folder)
        if parent == folder:
            return None
        folder = parent

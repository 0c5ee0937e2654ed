"""Content-addressed tree manifests of datasets (SCHEMA.md TREE-013).

``.datamanifest/trees/<id[0:3]>/<id[3:6]>/<id>/<value>.json`` with ``<id>`` the first 32
hex digits of SHA-256(key) and ``<value>`` the checksum value; ``<id>/LATEST`` names the
latest manifest explicitly.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from .atomic import fsync_dir, write_text
from .layout import STATE_DIR

TREES = "trees"
LATEST = "LATEST"


def dataset_id(key: str) -> str:
    """The 32-hex identifier of a dataset's tree versions."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


def versions_dir(root: Path, key: str) -> Path:
    i = dataset_id(key)
    return root / STATE_DIR / TREES / i[0:3] / i[3:6] / i


def temp(root: Path) -> Path:
    """A new, empty temporary file for a tree manifest in the project's ``.datamanifest/trees``
    (on the file system of the versions store, so that :func:`store` renames it), after the
    leftovers of killed writers of this host are swept (STO-013)."""
    from .atomic import mkstemp, sweep_temps

    folder = root / STATE_DIR / TREES
    folder.mkdir(parents=True, exist_ok=True)
    sweep_temps(folder)
    fd, tmp = mkstemp(folder, "tree")
    os.close(fd)
    return Path(tmp)


def store(root: Path, key: str, manifest_tmp: Path, checksum: str) -> Path:
    """Move a written manifest into its content-addressed place and point LATEST at it."""
    folder = versions_dir(root, key)
    folder.mkdir(parents=True, exist_ok=True)
    value = checksum.partition(":")[2]
    final = folder / f"{value}.json"
    os.replace(manifest_tmp, final)
    fsync_dir(folder)
    write_text(folder / LATEST, final.name + "\n")
    return final


def latest(root: Path, key: str) -> Path | None:
    """The latest tree manifest of a dataset, or None."""
    folder = versions_dir(root, key)
    try:
        name = (folder / LATEST).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    path = folder / name
    return path if path.is_file() else None


def versions(root: Path, key: str) -> list[Path]:
    """Every kept tree manifest of a dataset, oldest first by modification time."""
    folder = versions_dir(root, key)
    if not folder.is_dir():
        return []
    return sorted(folder.glob("*.json"), key=lambda p: (p.stat().st_mtime_ns, p.name))


def listing(root: Path, key: str) -> list[dict]:
    """The kept versions of dataset ``key`` as ``datamanifest versions NAME`` lists them,
    oldest first: ``checksum``, ``entries``, ``total_size`` (bytes), ``latest`` and the
    ``manifest`` file (TREE-014)."""
    import json

    newest = latest(root, key)
    rows = []
    for v in versions(root, key):
        doc = json.loads(v.read_text(encoding="utf-8"))
        stats = doc.get("statistics", {})
        rows.append({"checksum": doc.get("checksum"), "entries": stats.get("entries"),
                     "total_size": stats.get("totalSize"), "latest": v == newest,
                     "manifest": str(v)})
    return rows

"""Where a dataset's bytes are: its target, the state file's record, the read pool or the
place it is used in (SCHEMA.md §7.3, POOL-001..POOL-005, STA-006), and the status rows built
from them (``datamanifest status``, :meth:`datamanifest.Project.status`).

Reads markers and the state file, never the data, and never writes.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .errors import DataManifestError
from .io.places import local_path, scheme_of
from .spec.resolution import pool_candidates as _pool_paths
from .spec.secrets import redact_uri
from .store.layout import Target, is_current, pool_hit

if TYPE_CHECKING:
    from .project import Project


def status_rows(project: "Project", names: list[str] | None = None) -> list[dict]:
    """The rows of :meth:`datamanifest.Project.status` (which documents them)."""
    selected = [project.resolve(n) for n in names] if names else project.dataset_names()
    rows = []
    for n in selected:
        refusal = project.refusal(n)
        if refusal is not None:  # MAN-012: nothing is done for it until its errors are fixed
            rows.append({"name": n, "status": "refused", "path": None, "checksum": "",
                         "size": None,
                         "errors": [d.as_json() for d in refusal.diagnostics]})
            continue
        ds = project.dataset(n)
        if ds.skip_download or ds.lazy_access:
            rows.append({"name": n, "status": "external",  # SEC-002
                         "path": redact_uri(ds.uri) or None,
                         "checksum": ds.effective_checksum, "size": None})
            continue
        try:
            t = project.target(n)
        except DataManifestError as e:  # no source, no usable location: say so, list the rest
            rows.append({"name": n, "status": "no location", "path": None, "checksum": "",
                         "size": None, "errors": [e.as_diagnostic().as_json()]})
            continue
        st = t.status()
        marker = t.read_marker() if st == "present" else {}
        declared = ds.effective_checksum
        found = project.locate(n)
        where = str(t.path)
        if found is not None and found[1] != "target":
            st, where = f"present ({found[1]})", str(found[0])
        elif st == "present" and declared and marker.get("checksum", declared) != declared:
            st = "outdated"
        rows.append({"name": n, "status": st, "path": where,
                     "checksum": declared or marker.get("checksum", ""),
                     "size": marker.get("size")})
    return rows


def pool_candidates(project: "Project", name: str) -> list[Target]:
    """The read-pool candidates of dataset ``name`` (POOL-001, POOL-002)."""
    ds = project.dataset(name)
    return [Target(Path(p), ds.is_folder) for p in
            _pool_paths(ds, project.storage.resolved, project.storage.platform)]


def locate(project: "Project", name: str) -> tuple[Path, str] | None:
    """Where dataset ``name`` is, verified (POOL-005), as :meth:`datamanifest.Project.locate`."""
    ds = project.dataset(name)
    if ds.lazy_access or ds.skip_download:  # LAD-024, RES-006: used in place
        if ds.uri and scheme_of(ds.uri) == "file":
            where = local_path(ds.uri, project.root) if not ds.storage_path else \
                project.target(name).path
            return (where, "in-place") if where.exists() else None
        return None
    target = project.target(name)
    declared = ds.effective_checksum
    status = target.status()
    if is_current(status, declared, target.read_marker() if status == "present" else {}):
        return target.path, "target"
    if declared:
        rec = project.state_records().get(ds.derived_key)
        if rec is not None and rec.checksum == declared:
            where = Path(rec.storage_path)
            where = where if where.is_absolute() else project.root / where
            if where.exists() and where != target.path:
                return where, "state"
    for candidate in project.pool_candidates(name):
        if pool_hit(candidate, declared):
            return candidate.path, "pool"
    return None

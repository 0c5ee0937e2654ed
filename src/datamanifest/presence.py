"""Opening a checked manifest with its refusals (MAN-012), and where a dataset's bytes are:
its target, the state file's record, the read pool or the place it is used in (SCHEMA.md §7.3, POOL-001..POOL-005, STA-006), and the status rows built
from them (``datamanifest status``, :meth:`datamanifest.Project.status`).

Reads markers and the state file, never the data, and never writes.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import os

from .check import CheckResult
from .check.structure import lenient_datasets
from .config import check_configs
from .errors import DataManifestError, Diagnostic, ManifestError
from .io.places import local_path, scheme_of
from .spec.keys import UnsafeKey
from .spec.manifest import Manifest
from .spec.policy import refused
from .spec.resolution import ResolutionError, storage_path
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


def checked(cls: "type[Project]", mpath: Path, result: CheckResult) -> "Project":
    """The project of a checked manifest: refused datasets set aside (MAN-012), a document
    that cannot be read as a whole raising DM091 (as :meth:`datamanifest.Project.open`)."""

    def whole(errors: list[Diagnostic]) -> ManifestError:
        first = errors[0] if errors else None
        return ManifestError(
            f"{mpath} has {len(errors)} error(s)" + (f"; the first: {first.code} "
                                                     f"{first.message}" if first else ""),
            code="DM091", file=str(mpath), line=first.line if first else None,
            column=first.column if first else None,
            hint="run `datamanifest check` for details", diagnostics=result.diagnostics)

    errors = result.errors
    # MAN-012: a document that cannot be read as a whole refuses everything
    if result.data is None or any(d.code in ("DM001", "DM002", "DM004") for d in errors):
        raise whole(errors)
    configs = check_configs(mpath.parent)
    config_errors = [d for d in configs if d.severity == "error"]
    if result.manifest is None:
        data = result.data
        meta = data.get("_META") if isinstance(data.get("_META"), dict) else {}
        structural = {k: v for k, v in data.items() if k.startswith("_") and k != "_META"}
        # lenient: unknown fields kept (MAN-003); refused ones may lack a model
        datasets = lenient_datasets(data, {})
        result.manifest = Manifest(meta=meta, structural=structural, datasets=datasets)
    refusals = refused(result.data, errors, config_errors) if (errors or config_errors) \
        else {}
    try:
        return cls(mpath, result, refusals, configs)
    except ManifestError as e:
        if not (errors or config_errors):
            raise
        # storage settings that cannot be resolved: every dataset is refused (MAN-012)
        raise whole(errors + config_errors) from e


def target(project: "Project", name: str) -> Target:
    """Where dataset ``name`` lives (STO-001, STO-002), as :meth:`datamanifest.Project.target`."""
    from .spec.keys import UnsafeKey
    from .spec.resolution import ResolutionError, storage_path

    ds = project.dataset(name)
    try:
        path, _ = storage_path(name, ds, project.storage.resolved, project.storage.platform)
    except ResolutionError as e:
        raise ManifestError(f"dataset {name!r}: {e}", code=e.code, file=str(project.manifest_path),
                            hint="define the symbol in [_STORAGE] or set the variable") from e
    except UnsafeKey as e:  # no source to derive a key from (DM079), or an unsafe one
        none = not (ds.uri or ds.uris or ds.key)
        line, column = project.entry_position(name)
        raise ManifestError(f"dataset {name!r}: {e}", code="DM079" if none else "DM031",
                            file=str(project.manifest_path), line=line, column=column,
                            hint="add uri, or a key for a fetcher's output" if none else
                            "set an explicit key = \"...\"") from e
    # the control files (STO-005) add up to 9 characters to the last name
    if any(len(part.encode("utf-8", "surrogateescape")) > 246 for part in Path(path).parts):
        line, column = project.entry_position(name)
        raise ManifestError(f"dataset {name!r}: its location {path[:80]}... has a name "
                            "longer than file systems allow (255 bytes)", code="DM031",
                            file=str(project.manifest_path), line=line, column=column,
                            hint="set a shorter explicit key = \"...\"")
    # a fetcher may have written a folder (LAD-020): the bytes on disk tell
    folder = ds.is_folder
    return Target(Path(path), folder or os.path.isdir(path))

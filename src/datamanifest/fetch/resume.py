"""Resume records of interrupted HTTP downloads (SCHEMA.md FET-012).

A download cut midway (or stopped, FET-023) keeps its partial bytes; a record in
``.datamanifest/resume/<hash of the key>.json`` names the uri (redacted, SEC-002), the
partial file and the validator (ETag, else Last-Modified) of the response they came from.
The next run asks for the rest with ``Range`` and ``If-Range``.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from ..spec.secrets import redact_uri

if TYPE_CHECKING:
    from ..project import Project
    from .job import Job


def folder(project: "Project") -> Path:
    """``<root>/.datamanifest/resume``."""
    return project.root / ".datamanifest" / "resume"


def path(project: "Project", job: "Job") -> Path:
    """The resume record of ``job``'s dataset."""
    key = job.dataset.derived_key
    return folder(project) / (hashlib.sha256(key.encode()).hexdigest()[:32] + ".json")


def info(project: "Project", job: "Job") -> dict | None:
    """What an interrupted download of the job left to resume: the record with
    ``offset`` (bytes kept), or None (a stale record is removed)."""
    where = path(project, job)
    try:
        found = json.loads(where.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    dest = Path(found.get("file", ""))
    if found.get("uri") != redact_uri(job.dataset.uri) or not dest.is_file() \
            or not found.get("validator"):
        where.unlink(missing_ok=True)
        return None
    found["offset"] = dest.stat().st_size
    return found


def save(project: "Project", job: "Job", dest: Path, validator: str) -> bool:
    """Record what a resume needs, after making the partial bytes durable (a resume trusts
    the file's length). False when they could not be made durable (the next run starts
    from byte 0)."""
    from ..store.atomic import write_text

    try:
        fd = os.open(dest, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        return False
    write_text(path(project, job), json.dumps(  # SEC-002: no credential in it
        {"uri": redact_uri(job.dataset.uri), "file": str(dest), "validator": validator}) + "\n")
    return True


def forget(engine, job: "Job") -> None:
    """Remove the job's record once it is of no use (the download finished or failed for
    good), when the run has any."""
    if engine.resumable:
        path(engine.project, job).unlink(missing_ok=True)

"""A dry run: what a fetch would do, without doing it (``fetch --dry-run``; SCHEMA.md §11).

Nothing is locked, written or downloaded; an http(s) source gets one HEAD request.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import DataManifestError
from ..spec.secrets import redact_text, redact_uri
from ..store.layout import Target

if TYPE_CHECKING:
    from ..project import Project


def plan(project: "Project", names: list[str] | None = None, *, force: "bool | set[str]" = False,
         offline: bool = False, trusted: bool = False, probe: bool = True) -> list[dict]:
    """What :func:`datamanifest.fetch.run` would do, without doing it (``fetch --dry-run``):
    one row per dataset in fetch order, ``{"name", "action", "uri", "uris", "target", "size",
    "checksum", "problem", "error"}``. ``action`` is ``fetch``, ``present`` (its
    target), ``pool`` (found in a read pool), ``state`` (where the state file records
    it), ``skip`` (skip_download, lazy_access) or ``refuse`` (MAN-012). ``size`` is in
    bytes: a present dataset's recorded size, a source's size (a local file's, an
    http(s) Content-Length from one HEAD request when ``probe``), else None. Nothing is
    locked, written or downloaded."""
    from ..io.places import probe as probe_source

    wanted = None if names is None else [project.resolve(n) for n in names]
    rows: list[dict] = []
    if project.refused:
        asked = project.dataset_names() if wanted is None else list(dict.fromkeys(wanted))
        for n in asked:
            refusal = project.refusal(n)
            if refusal is not None:
                rows.append({"name": n, "action": "refuse", "uri": None, "uris": [],
                             "target": None, "size": None, "checksum": "", "problem": None,
                             "error": refusal.as_diagnostic().as_json(),
                             "errors": [d.as_json() for d in refusal.diagnostics]})
        wanted = [n for n in asked if n not in project.refused]
    for n in project.manifest.order(wanted):
        ds = project.dataset(n)
        row = {"name": n, "action": "fetch", "uri": redact_uri(ds.uri) or None,  # SEC-002
               "uris": [redact_uri(u) for u in ds.uris],
               "target": None, "size": None, "checksum": ds.effective_checksum,
               "problem": None, "error": None}
        rows.append(row)
        if ds.skip_download or ds.lazy_access:
            row["action"] = "skip"
            continue
        try:
            target = project.target(n)
        except DataManifestError as e:
            row["action"], row["error"] = "fail", e.as_diagnostic().as_json()
            continue
        row["target"] = str(target.path)
        forced = force is True or (not isinstance(force, bool) and n in force)
        found = None if forced else project.locate(n)
        if found is not None:
            row["action"] = {"target": "present"}.get(found[1], found[1])
            row["target"] = str(found[0])
            marker = Target(found[0], found[0].is_dir()).read_marker()
            row["size"] = marker.get("size") if marker.get("size") is not None else \
                (found[0].stat().st_size if found[0].is_file() else None)
            continue
        if offline:
            row["action"] = "missing"
            continue
        if probe:
            sources = [ds.uri] if ds.uri else list(ds.uris)
            infos = [probe_source(u, project.root) for u in sources if u]
            sizes = [i["size"] for i in infos]
            row["size"] = sum(sizes) if sizes and None not in sizes else None
            problems = [i["problem"] for i in infos if i["problem"]]
            row["problem"] = redact_text(problems[0]) if problems else None
    _plan_trust(project, rows, offline, trusted)
    return rows


def _plan_trust(project: "Project", rows: list[dict], offline: bool, trusted: bool) -> None:
    """``needs_trust`` of each row the run would fetch: what the run would be refused
    for (DM180, TRU-004) while the manifest is not trusted; absent otherwise."""
    from ..trust import granted_by, status

    todo = [r["name"] for r in rows if r["action"] in ("fetch", "missing")]
    if not todo or trusted or granted_by() is not None:
        return
    needs = project.trust_needs(fetch=todo)
    if offline:
        needs = [n for n in needs if n.kind == "read"]
    if not needs or status(project).trusted:
        return
    for r in rows:
        if r["name"] in todo:
            r["needs_trust"] = [n.what for n in needs if n.dataset in (None, r["name"])]

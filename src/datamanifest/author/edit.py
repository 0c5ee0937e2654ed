"""``init``, ``add``, ``remove``, ``show``, ``update-checksums`` (SCHEMA.md AUT-001..AUT-007).

Each edit goes through :func:`guarded_edit`: the manifest's text, re-read under the
manifest lock, edited with comments and layout kept (MAN-004), checked, and written
atomically only when the edit adds no error (AUT-002).
"""

from __future__ import annotations

import dataclasses
import json
import os

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..errors import AuthoringError, DataManifestError, Diagnostic, ManifestError
from ..store.atomic import mkstemp
from ..spec import author
from ..spec import checksum as _checksum

# -- AUT-002: edits that add no error ------------------------------------------------------------


def new_errors(file: str, before: str, after: str) -> list[Diagnostic]:
    """The error-severity diagnostics of ``after`` that ``before`` did not have, compared by
    code and dataset (AUT-002)."""
    from ..check import check_text

    def key(d: Diagnostic) -> tuple:
        return d.code, tuple(d.path[:1])

    had = {key(d) for d in check_text(before, file, "manifest").errors}
    return [d for d in check_text(after, file, "manifest").errors if key(d) not in had]


def refuse_if_worse(file: str, before: str, after: str) -> None:
    """Raise :class:`ManifestError` (DM091, carrying the new diagnostics) when ``after`` has
    errors ``before`` did not (AUT-002)."""
    bad = new_errors(file, before, after)
    if bad:
        raise ManifestError(
            f"the edit would add {len(bad)} error(s) to {file}, so nothing was written: "
            + "; ".join(f"{d.code} {d.message}" for d in bad[:3]),
            code="DM091", file=file, hint="fix the input, or edit the manifest by hand",
            diagnostics=bad)


def guarded_edit(project, make: Callable[[str], tuple[str, Any]]) -> Any:
    """Apply ``make(text) -> (new text, result)`` to the manifest under its lock; write only
    when the new text adds no error (AUT-002). Returns ``result``."""
    file = str(project.manifest_path)

    def edit(text: str) -> tuple[str, Any]:
        new, result = make(text)
        if new != text:
            refuse_if_worse(file, text, new)
        return new, result

    return project.edit_manifest(edit)


def _read(project) -> str:
    return project.manifest_path.read_text(encoding="utf-8")


# -- init (AUT-001) ----------------------------------------------------------------------------
def init_manifest(folder: str | Path = ".") -> Path:
    """Write the starter manifest ``<folder>/datamanifest.toml`` (AUT-001) and return its path.

    Created atomically and never over an existing file: raises :class:`AuthoringError`
    (DM140) when the folder holds a manifest of any DISC-001 name, DM173 when ``folder`` is
    not a folder (STO-015).
    """
    from ..spec.discovery import MANIFEST_NAMES
    from ..store.atomic import fsync_dir

    folder = Path(folder)
    for name in MANIFEST_NAMES:
        if (folder / name).exists():
            raise AuthoringError(f"{folder / name} already exists; nothing was written",
                                 code="DM140", file=str(folder / name),
                                 hint="edit it, or `datamanifest add URI` to declare datasets")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):  # STO-015: a file, or a path below one
        raise AuthoringError(f"{folder} is not a folder; nothing was written", code="DM173",
                             file=str(folder), hint="give a folder (new or existing)") from None
    path = folder / "datamanifest.toml"
    fd, tmp = mkstemp(folder, "datamanifest.toml")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(author.STARTER)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)  # fails when a manifest appeared meanwhile: never replaced
        except FileExistsError:
            raise AuthoringError(f"{path} already exists; nothing was written", code="DM140",
                                 file=str(path)) from None
    finally:
        os.unlink(tmp)
    fsync_dir(folder)
    return path


# -- add (AUT-005) -----------------------------------------------------------------------------
@dataclass
class AddResult:
    """The outcome of :func:`add`: the dataset's ``name``, ``key``, the ``checksum`` written
    (``""`` when not fetched), ``path`` where it now lies (None when not fetched), whether
    it was ``fetched`` by this call (False: it was already present), and the ``entry``
    text appended to the manifest."""

    name: str
    uri: str
    key: str
    checksum: str
    path: Path | None
    fetched: bool
    entry: str

    def as_json(self) -> dict[str, Any]:
        from ..spec.secrets import redact_text, redact_uri

        return {"name": self.name, "uri": redact_uri(self.uri), "key": self.key,
                "checksum": self.checksum, "path": str(self.path) if self.path else None,
                "fetched": self.fetched, "entry": redact_text(self.entry)}  # SEC-002


def _name_taken(e: author.NameTaken, file: str) -> AuthoringError:
    return AuthoringError(f"a dataset named {e.name!r} already exists", code="DM141", file=file,
                          hint="choose another name with --name")


def _declare(project, text: str, entry: author.Entry) -> author.Plan:
    """The plan of declaring one entry (AUT-005): DM141 for a taken name, DM033 when a
    dataset already has its key."""
    file = str(project.manifest_path)
    try:
        planned = author.plan(text, tomllib.loads(text), [dataclasses.replace(entry)])
    except author.NameTaken as e:
        raise _name_taken(e, file) from e
    if planned.skipped:
        owner = planned.skipped[0][1]
        raise ManifestError(f"dataset {owner!r} already has the key of {entry.uri}",
                            code="DM033", file=file,
                            hint=f"it is declared already: `datamanifest show {owner}`")
    return planned


def _project_relative(project, uri: str) -> str:
    """A relative local path that exists from the working directory, rewritten relative to
    the project root, which is what a plain path in the manifest is relative to (MAN-024)."""
    from ..io.places import scheme_of

    if "://" in uri or scheme_of(uri) != "file" or Path(uri).is_absolute():
        return uri
    here = Path.cwd() / uri
    if not here.exists() or (project.root / uri).resolve() == here.resolve():
        return uri
    return Path(os.path.relpath(here.resolve(), project.root)).as_posix()


def add(project, uri: str, *, name: str | None = None, extract: bool = False,
        version: str = "", fetch: bool = True, progress=None,
        lock_timeout: float | None = None, move_aside: bool = False) -> AddResult:
    """Declare a dataset of ``uri``, fetch it and record its checksum (AUT-005).

    The fetch runs first, on the edit not yet written; the entry is appended (AUT-003)
    only after it succeeded, with the computed checksum. ``fetch=False`` declares only.
    Raises :class:`AuthoringError` (DM141 name taken), :class:`ManifestError` (DM033 the
    key is declared already; DM091 the entry would be invalid, e.g. DM051 ``extract`` of
    a non-archive), or the fetch's error (DM070, DM071, DM074, DM180 trust, DM182 a file
    this tool did not publish at the target: ``move_aside`` renames it instead, STO-016);
    in every case the manifest and the store are left as they were.
    """
    from .. import fetch as fetching

    if not uri.strip():
        raise AuthoringError("no URI given: `add` declares the dataset at a URI or path",
                             code="DM015", hint="datamanifest add https://host/file.csv")
    uri = _project_relative(project, uri)
    entry = author.Entry(uri=uri, extract=extract, version=version, name=name or "")
    text = _read(project)
    planned = _declare(project, text, entry)
    refuse_if_worse(str(project.manifest_path), text, planned.text)
    new_name = planned.added[0].name
    path, fetched = None, False
    if fetch:
        trial = project.with_text(planned.text)
        report = fetching.run(trial, [new_name], jobs=1, progress=progress,
                              lock_timeout=lock_timeout, processes=False,
                              move_aside=move_aside)
        out = next(o for o in report.outcomes if o.name == new_name)
        if out.error is not None:  # about the URI: the entry is not in the file
            out.error.file, out.error.line, out.error.column = uri, None, None
            raise out.error
        entry.checksum, path, fetched = out.checksum, out.path, out.status == "fetched"

    def write(text: str) -> tuple[str, author.Entry]:
        again = _declare(project, text, entry)
        return again.text, again.added[0]

    done = guarded_edit(project, write)
    return AddResult(done.name, uri, author.entry_key(done) or "", done.checksum, path, fetched,
                     author.render_entry(done.name, done.table()))


# -- remove (AUT-006) ----------------------------------------------------------------------------
@dataclass
class RemoveResult:
    """The outcome of :func:`remove`: the dataset's ``name`` and what happened to its bytes
    (a :class:`~datamanifest.maintain.Step`: ``delete``, ``keep`` or ``skip``)."""

    name: str
    step: Any
    dry_run: bool

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "dry_run": self.dry_run, "entry": "removed", **{
            "bytes": self.step.as_json()}}


def remove(project, ident: str, *, keep_data: bool = False, dry_run: bool = False) -> RemoveResult:
    """Take dataset ``ident`` out of the manifest, and its bytes out of the store unless
    ``keep_data`` (AUT-006).

    The bytes go first, as ``rm`` deletes them; a protected dataset keeps its bytes.
    Raises :class:`~datamanifest.errors.LookupFailed` (DM076/DM077),
    :class:`ManifestError` (DM091 with DM040: another dataset requires it) before
    anything is deleted, or :class:`~datamanifest.errors.MaintenanceError` (DM131: a
    live writer holds its lock; the entry is kept).
    """
    from ..maintain import inventory
    from ..maintain.actions import Step
    from ..maintain.actions import remove as rm
    from ..migrate import remove_datasets_text

    name = project.resolve(ident)
    text = _read(project)
    refuse_if_worse(str(project.manifest_path), text, remove_datasets_text(text, [name]))
    inv = inventory(project)
    obj = inv.by_id(name)
    if keep_data:
        step = Step(obj, "keep", obj.location)
    elif obj.protected:
        step = Step(obj, "keep", f"{obj.location} (protected: {obj.protected})")
    else:
        step = rm(inv, [obj], dry_run=dry_run)[0]
        if step.error is not None:
            raise step.error
    if not dry_run:
        guarded_edit(project, lambda t: (remove_datasets_text(t, [name]), None))
    return RemoveResult(name, step, dry_run)


# -- show (AUT-006 companions) -------------------------------------------------------------------
def show(project, ident: str) -> dict[str, Any]:
    """Everything about one dataset: its ``entry`` as written (the manifest's lines), its
    normalized ``record`` (MAN-070), its ``target``, where it is found (``location`` and
    ``found_in``: target, state, pool or in-place), its maintenance ``object`` fields
    (MNT-002: state, size, created, last access, protection) and its state ``record``.
    Raises :class:`~datamanifest.errors.LookupFailed` (DM076/DM077).
    """
    from ..maintain import inventory
    from ..migrate import dataset_text
    from ..spec.manifest import normalized_record

    name = project.resolve(ident)
    ds = project.dataset(name)
    found = project.locate(name)
    try:
        target = str(project.target(name).path)
    except DataManifestError:
        target = None
    obj = next((o for o in inventory(project).objects if o.kind == "data" and o.id == name), None)
    state = project.state_records().get(ds.derived_key) if (ds.uri or ds.uris or ds.key) else None
    return redact_deep({
        "name": name,
        "manifest": str(project.manifest_path),
        "entry": dataset_text(_read(project), name),
        "record": normalized_record(name, ds),
        "target": target,
        "location": str(found[0]) if found else None,
        "found_in": found[1] if found else None,
        "object": obj.as_json() if obj is not None else None,
        "state_record": state.model_dump(exclude_none=True) if state is not None else None,
    })


def redact_deep(value: Any) -> Any:
    """Every string of a JSON-like value with its URI credentials redacted (SEC-002)."""
    from ..spec.secrets import redact_text

    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, list):
        return [redact_deep(v) for v in value]
    if isinstance(value, dict):
        return {k: redact_deep(v) for k, v in value.items()}
    return value


# -- update-checksums (AUT-007) ------------------------------------------------------------------
@dataclass
class ChecksumChange:
    """One dataset's outcome in :func:`update_checksums`: ``action`` is ``update`` (``new``
    differs from ``old``), ``same``, ``skip`` (``detail`` says why) or ``fail`` (``error``)."""

    name: str
    action: str
    old: str = ""
    new: str = ""
    detail: str = ""
    error: DataManifestError | None = None

    def as_json(self) -> dict[str, Any]:
        out = {"name": self.name, "action": self.action, "old": self.old, "new": self.new,
               "detail": self.detail}
        if self.error is not None:
            out["error"] = {"code": self.error.code, "message": self.error.message}
        return out


def _rehash(project, name: str, path: Path, declared: str, in_store: bool,
            dry_run: bool) -> tuple[str, int | None]:
    """The checksum of dataset ``name``'s bytes at ``path`` in its declared algorithm (else
    sha256, or tree-sha256 for a folder). A target in the store is hashed under its lock
    and, when the checksum changed, gets a new marker, tree manifest and state record."""
    from ..fetch.report import dataset_record
    from ..spec.keys import is_git_uri
    from ..maintain.actions import lock_object
    from ..store.atomic import write_text
    from ..store import trees
    from ..store.layout import Target
    from ..store.state import update_state
    from ..io.local import hash_file
    from ..tree import write_manifest

    ds = project.dataset(name)
    folder = path.is_dir()
    parsed = _checksum.parse(declared) if declared else None
    tree = bool(parsed) and _checksum.is_tree(declared)
    algo = (parsed.algorithm if tree else "tree-sha256") if folder else \
        (parsed.algorithm if parsed and not tree else _checksum.DEFAULT_ALGORITHM)
    lock = lock_object(str(path), project.storage.lock_stale_age) if in_store else None
    try:
        if folder:
            exclude = (".complete", ".git") if ds.uri and is_git_uri(ds.uri) else (".complete",)
            tree_dir = project.root / ".datamanifest" / "trees"
            tree_dir.mkdir(parents=True, exist_ok=True)
            fd, tmp = mkstemp(tree_dir, "tree")
            os.close(fd)
            try:
                result = write_manifest(path, tmp, algo, base=str(path), exclude_root=exclude)
                new, size = result.checksum, result.total_size
                if new != declared and in_store and not dry_run:
                    tree_path = trees.store(project.root, ds.derived_key, Path(tmp), new)
                else:
                    tree_path = None
            finally:
                Path(tmp).unlink(missing_ok=True)
        else:
            digest, size = hash_file(str(path), algo)
            new, tree_path = f"{algo}:{digest}", None
        if new != declared and in_store and not dry_run:
            target = Target(path, folder)
            record: dict[str, Any] = {"checksum": new, "size": size}
            if not folder:
                record["mtime_ns"] = path.stat().st_mtime_ns
            write_text(target.marker, json.dumps(record) + "\n")
            update_state(project.state_file,
                         {ds.derived_key: dataset_record(project, name, path, new, size,
                                                         tree_path)},
                         stale_age=project.storage.lock_stale_age,
                         datacache_dir=project.storage.resolved.get("datacache_dir"))
        return new, size
    finally:
        if lock is not None:
            lock.release()


def update_checksums(project, idents: list[str] | None = None, *, dry_run: bool = False,
                     refetch: bool = False, progress=None, jobs: int = 4) -> list[ChecksumChange]:
    """Re-hash datasets (``idents``; all when None) and write their checksums (AUT-007).

    Without ``refetch`` the bytes where each dataset is found are hashed; with it, the
    datasets are downloaded again without comparing with the declared checksum. The
    manifest is written once, comments kept. Returns one :class:`ChecksumChange` each;
    failures are reported there, not raised. Raises
    :class:`~datamanifest.errors.LookupFailed` for an unknown identifier.
    """
    names = [project.resolve(i) for i in idents] if idents else list(project.manifest.datasets)
    changes: list[ChecksumChange] = []
    values: dict[str, str] = {}
    eligible = []
    for name in names:
        ds = project.dataset(name)
        if ds.skip_download or ds.lazy_access:
            changes.append(ChecksumChange(name, "skip", ds.effective_checksum, detail=(
                "skip_download" if ds.skip_download else "lazy_access") + ": never managed"))
        else:
            eligible.append(name)
    if refetch:
        changes += _refetched(project, eligible, values, dry_run, progress, jobs)
    else:
        if not dry_run and eligible:  # markers are rewritten in the store (TRU-004)
            project.require_trust("update-checksums", roots=True)
        for name in eligible:
            ds = project.dataset(name)
            declared = ds.effective_checksum
            try:
                target = project.target(name)
                if target.status() == "present":
                    path, in_store = target.path, True
                else:
                    found = project.locate(name)
                    if found is None:
                        changes.append(ChecksumChange(name, "skip", declared,
                                                      detail="not present: fetch it first"))
                        continue
                    path, in_store = found[0], False
                new, _ = _rehash(project, name, path, declared, in_store, dry_run)
            except DataManifestError as e:
                changes.append(ChecksumChange(name, "fail", declared, error=e))
                continue
            except OSError as e:
                changes.append(ChecksumChange(name, "fail", declared, error=DataManifestError(
                    f"dataset {name!r}: {e.strerror or e}", code="DM078")))
                continue
            if new == declared:
                changes.append(ChecksumChange(name, "same", declared, new, str(path)))
            else:
                values[name] = new
                changes.append(ChecksumChange(name, "update", declared, new, str(path)))
    if values and not dry_run:
        from ..migrate import set_checksums_text

        guarded_edit(project, lambda text: set_checksums_text(text, values))
    return changes


def _refetched(project, names: list[str], values: dict[str, str], dry_run: bool, progress,
               jobs: int) -> list[ChecksumChange]:
    """Download ``names`` again on an edit whose checksums are cleared; ``values`` gets the
    checksums received that differ from the declared ones."""
    from .. import fetch as fetching
    from ..migrate import set_checksums_text

    declared = {n: project.dataset(n).effective_checksum for n in names}
    if dry_run:
        return [ChecksumChange(n, "skip", declared[n], detail="would download again")
                for n in names]
    cleared, _ = set_checksums_text(_read(project), {n: "" for n in names})
    trial = project.with_text(cleared)
    report = fetching.run(trial, names, jobs=jobs, progress=progress, force=set(names))
    out: list[ChecksumChange] = []
    for o in report.outcomes:
        if o.name not in declared:
            continue
        if o.error is not None:
            out.append(ChecksumChange(o.name, "fail", declared[o.name], error=o.error))
        elif o.checksum == declared[o.name]:
            out.append(ChecksumChange(o.name, "same", declared[o.name], o.checksum, str(o.path)))
        else:
            values[o.name] = o.checksum
            out.append(ChecksumChange(o.name, "update", declared[o.name], o.checksum,
                                      str(o.path)))
    return out

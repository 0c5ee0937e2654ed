"""Acting on a selection of a store's objects: delete, move, refresh, export (SCHEMA.md §22.3).

Each action takes the object's lock without waiting (MNT-020), never touches a protected
object (MNT-004), has a dry run (MNT-021) and writes the state file once per run
(STA-007). Each returns :class:`Step` values: what was (or would be) done to which
object, with the bytes concerned, or the coded error that stopped it.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..spec.tomlparse import parse_for_edit
from ..errors import ClobberError, DataManifestError, LockTimeout, MaintenanceError
from ..spec import cache
from ..spec.maintain import Obj
from ..store.atomic import fsync_dir, sync_filesystem, write_bytes
from ..store.lock import Lock, holder_gone, reclaim_project_locks
from ..store.state import DatasetRecord, update_state
from .inventory import Inventory, OsView, verify, verify_artifact


@dataclass
class Step:
    """One object's outcome: ``action`` (``delete``, ``move``, ``adopt``, ``repoint``,
    ``drop``, ``record``, ``keep``, ``export``, ``skip``), ``detail`` (a path or a reason),
    ``bytes`` (freed, moved or copied; None when unknown), ``error`` (why it was skipped)."""

    obj: Obj
    action: str
    detail: str = ""
    bytes: int | None = None
    error: DataManifestError | None = None

    def as_json(self) -> dict[str, Any]:
        out = {"id": self.obj.id, "kind": self.obj.kind, "action": self.action,
               "detail": self.detail, "bytes": self.bytes}
        if self.error is not None:
            out["error"] = {"code": self.error.code, "message": self.error.message}
        return out


def _marker(path: str, is_dir: bool) -> str:
    return f"{path}/.complete" if is_dir else f"{path}.complete"


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)


def lock_object(path: str, stale_age: float) -> Lock:
    """The object's lock, taken without waiting (MNT-020): DM131 when a live writer holds it.
    A lock whose holder is not running on this host, or that names no holder (its writer
    was killed between creating and writing it), is waited for until it is stale (at most
    ``stale_age`` seconds, LCK-004) and then reclaimed."""
    lock = Lock(path + ".lock", stale_age=stale_age, timeout=0, poll=0.01)
    try:
        return lock.acquire()
    except LockTimeout:
        if holder_gone(Path(path + ".lock")):
            try:
                return Lock(path + ".lock", stale_age=stale_age, timeout=stale_age * 1.5 + 1,
                            poll=0.05).acquire()
            except LockTimeout:
                pass
        raise MaintenanceError(f"{path} is being written by another process (its lock is held)",
                               code="DM131", hint="try again when that process is done") from None


def _protected(o: Obj) -> MaintenanceError:
    return MaintenanceError(f"{o.kind} {o.id!r} is protected ({o.protected}): {o.location}",
                            code="DM132", hint={
                                "exact": "its storage_path is yours: delete or move it by hand",
                                "skip_download": "it is used in place and never managed",
                                "lazy_access": "it is opened in place and has no copy",
                                "pool": "it lies in a read pool, which is never written",
                                "outside": "it lies outside datasets_dir and datacache_dir",
                            }.get(o.protected or "", ""))


def _discard(o: Obj, lock: Lock | None = None) -> None:
    """Marker first, then the bytes (an artifact through ``A.old``, PRD-027) and staging;
    the caller holds the object's lock (``lock``: told first, LCK-009)."""
    if lock is not None:
        lock.mark_publishing()
    marker = _marker(o.location, o.is_dir)
    if os.path.lexists(marker):
        os.unlink(marker)
    if o.kind == "cached":
        old = o.location + ".old"
        _remove(old)
        os.replace(o.location, old)
        _remove(old)
    else:
        _remove(o.location)
    _remove(o.location + ".tmp")


def _delete_bytes(o: Obj, stale_age: float) -> None:
    lock = lock_object(o.location, stale_age)
    try:
        _discard(o, lock)
    finally:
        lock.release()


# -- rm (MNT-022) --------------------------------------------------------------------------------------
def remove(inv: Inventory, objects: list[Obj], *, dry_run: bool = False,
           prune: bool = False) -> list[Step]:
    """Delete the selected objects' bytes, markers and state records; with ``prune``,
    also their manifest entries (comments kept). One state write for the run."""
    steps: list[Step] = []
    drop_keys: list[str] = []
    forget: list[tuple[str, str, str | None, str, str]] = []
    pruned: list[str] = []
    stale = inv.project.storage.lock_stale_age
    if not dry_run and objects:  # TRU-004: deleting in store roots a project set elsewhere
        inv.project.require_trust("rm", roots=True)
    for o in objects:
        if o.protected:
            steps.append(Step(o, "skip", o.location, error=_protected(o)))
            continue
        present = o.state != "missing"
        if not present and not (o.recorded or (prune and o.kind == "data")):
            steps.append(Step(o, "skip", "not present"))
            continue
        leftover = not present and o.kind == "data" and (
            os.path.lexists(o.location) or os.path.lexists(o.location + ".tmp"))
        if not dry_run and (present or leftover):  # MNT-022: an incomplete copy goes too
            try:
                _delete_bytes(o, stale)
            except MaintenanceError as e:
                steps.append(Step(o, "skip", o.location, error=e))
                continue
        steps.append(Step(o, "delete", o.location if present else "(record only)",
                          o.size if present else 0))
        if o.kind == "data":
            drop_keys.append(o.key)
            if prune:
                pruned.append(o.id)
        else:
            forget.append((o.record_key, o.key.rsplit("/", 1)[1], None, "", ""))
    if not dry_run and (drop_keys or forget):
        update_state(inv.project.state_file, {}, stale_age=stale,
                     datacache_dir=inv.datacache_dir, remove=drop_keys, instances=forget)
    if not dry_run and pruned:
        from ..migrate import remove_datasets_text  # tomlkit: only when editing

        inv.project.edit_manifest(lambda text: (remove_datasets_text(text, pruned), None))
    if not dry_run:  # LCK-007: locks of killed writers beside what this run found done
        reclaim_project_locks(inv.project.root, stale,
                              [Path(o.location + ".lock") for o in objects if not o.protected])
    return steps


# -- copies: staged, verified, marker last ----------------------------------------------------------------
def _copy_verified(o: Obj, new: str, lock: Lock | None = None) -> int:
    """Copy ``o`` to ``new`` through ``new.tmp``, verify, rename, write its marker last.

    Returns the bytes copied. Raises DM070 when the copy does not verify (nothing is
    published; the staging copy is removed). The caller has judged what is at ``new``
    (STO-018) and holds its ``lock``, told before ``new`` changes (LCK-009).
    """
    from ..errors import ChecksumMismatch

    tmp = new + ".tmp"
    _remove(tmp)
    os.makedirs(os.path.dirname(new), exist_ok=True)
    src_marker = _marker(o.location, o.is_dir)
    marker_text = OsView().read(src_marker) or ""
    try:
        if o.is_dir:
            shutil.copytree(o.location, tmp, symlinks=True,
                            ignore=lambda d, names: [".complete"] if d == o.location else [])
            sync_filesystem(tmp)
        else:
            shutil.copy2(o.location, tmp)
            fd = os.open(tmp, os.O_RDONLY)
            os.fsync(fd)
            os.close(fd)
        probe = Obj(**{**o.__dict__, "location": tmp, "_checksum": o.checksum})
        ok = verify_artifact(probe) if o.kind == "cached" else verify(probe)
        if not ok:
            raise ChecksumMismatch(o.id, (o.checksum or "digests").split(":")[0],
                                   o.checksum or "the marker's digests", "other bytes")
    except BaseException:
        _remove(tmp)
        raise
    if lock is not None:
        lock.mark_publishing()
    if os.path.lexists(new):
        _remove(new)  # this tool's own leftover (the caller judged it, STO-018)
    os.replace(tmp, new)
    fsync_dir(Path(new).parent)
    write_bytes(_marker(new, o.is_dir), marker_text.encode("utf-8"))
    return o.size or 0


def _complete_copy(o: Obj, new: str) -> bool | None:
    """True: a complete copy with ``o``'s checksum is at ``new``; False: something else is
    there; None: nothing (or an unmarked leftover) is there."""
    marker = _marker(new, o.is_dir)
    if not os.path.lexists(marker):
        return None
    text = OsView().read(marker) or ""
    if o.kind == "cached":
        return cache.read_marker(text) == cache.read_marker(OsView().read(
            _marker(o.location, True)) or "")
    import json

    try:
        rec = json.loads(text) if text.strip() else {}
    except ValueError:
        rec = {}
    return bool(o.checksum) and rec.get("checksum") == o.checksum


def _relative_key(inv: Inventory, o: Obj) -> str:
    """Where the object goes under another store root: its path below its own root."""
    for root in (inv.datasets_dir, inv.datacache_dir):
        if o.target.startswith(root.rstrip("/") + "/"):
            return o.target[len(root.rstrip("/")) + 1:]
    return o.key


# -- mv (MNT-023) --------------------------------------------------------------------------------------
def _clear_way(o: Obj, new: str, lock: Lock, force: bool) -> tuple[bool, str | None]:
    """STO-018 at a move's destination, under its lock: an unmarked ``new`` is replaced only
    when a killed run of this tool was writing it (LCK-009); a dataset's unmarked copy
    whose bytes verify against its checksum is adopted (its marker written); with
    ``force`` anything else is moved aside (STO-016); otherwise DM182.

    Returns (adopted, where it was moved aside or None)."""
    if not os.path.lexists(new) or os.path.lexists(_marker(new, o.is_dir)):
        return False, None
    if o.kind == "data" and o.checksum and os.path.isdir(new) == o.is_dir and \
            not os.path.islink(new):
        probe = Obj(**{**o.__dict__, "location": new, "_checksum": o.checksum})
        if verify(probe):
            text = OsView().read(_marker(o.location, o.is_dir)) or ""
            write_bytes(_marker(new, o.is_dir), text.encode("utf-8"))
            return True, None
    if lock.inherited:
        return False, None
    if force:
        from ..store.layout import move_aside

        lock.mark_publishing()
        return False, str(move_aside(Path(new)))
    raise ClobberError(f"{new} exists and datamanifest did not publish it (no completion "
                       "marker); it was left as it is", code="DM182", path=new,
                       hint="move it away yourself, choose another destination, or pass "
                            "--force to move it aside (renamed, never deleted)")


def move(inv: Inventory, o: Obj, dest: str, *, dry_run: bool = False,
         force: bool = False) -> Step:
    """Move one object into the store root ``dest`` (MNT-023); never nests. Something at
    the destination that this tool did not publish is refused (DM182), or with ``force``
    moved aside (STO-018, STO-016)."""
    new = os.path.join(os.path.abspath(dest), _relative_key(inv, o))
    if new == o.location and o.state != "missing":
        # already there: a move killed after repointing finishes by deleting the source
        if not dry_run:
            _finish_move(inv, o)
        return Step(o, "keep", new, 0)
    if o.protected:
        return Step(o, "skip", o.location, error=_protected(o))
    if o.state == "missing":
        return Step(o, "skip", "not present", error=MaintenanceError(
            f"{o.kind} {o.id!r} is not present", code="DM078"))
    existing = _complete_copy(o, new)
    if existing is False:
        return Step(o, "skip", new, error=MaintenanceError(
            f"{new} holds another {o.kind}", code="DM133",
            hint="choose another destination, or remove what is there"))
    if dry_run:
        return Step(o, "adopt" if existing else "move", new, 0 if existing else o.size)
    inv.project.require_trust("mv", roots=True)  # TRU-004: the source's store root
    stale = inv.project.storage.lock_stale_age
    try:
        src_lock = lock_object(o.location, stale)
    except MaintenanceError as e:
        return Step(o, "skip", o.location, error=e)
    aside = None
    try:
        os.makedirs(os.path.dirname(new), exist_ok=True)
        dst_lock = lock_object(new, stale)
        try:
            if not existing:
                existing, aside = _clear_way(o, new, dst_lock, force)
            moved = 0 if existing else _copy_verified(o, new, dst_lock)
        except DataManifestError as e:
            return Step(o, "skip", new, error=e)
        finally:
            dst_lock.release()
        _repoint(inv, o, new)
        _discard(o, src_lock)
    finally:
        src_lock.release()
    detail = new if aside is None else f"{new} (what was there was moved to {aside})"
    return Step(o, "adopt" if existing else "move", detail, moved)


def _finish_move(inv: Inventory, o: Obj) -> None:
    """MNT-023: a dataset whose record already points at the destination, with a copy left
    at its keyed target (a move killed before deleting its source), loses that copy."""
    if o.kind != "data":
        return
    try:
        target = inv.project.target(o.name)
    except DataManifestError:
        return
    old = str(target.path)
    if old != o.location and (os.path.lexists(old) or os.path.lexists(old + ".tmp")):
        import dataclasses

        _delete_bytes(dataclasses.replace(o, location=old, is_dir=os.path.isdir(old)),
                      inv.project.storage.lock_stale_age)
    reclaim_project_locks(inv.project.root, inv.project.storage.lock_stale_age,
                          [Path(old + ".lock")])


def _repoint(inv: Inventory, o: Obj, new: str) -> None:
    root = str(inv.project.root)
    path = cache.relative_to_root(new, root)
    stale = inv.project.storage.lock_stale_age
    if o.kind == "data":
        old = inv.state.datasets.get(o.key)
        rec = old.model_copy(update={"storage_path": path}) if old is not None else \
            DatasetRecord(storage_path=path, checksum=o.checksum or None, size=o.size)
        update_state(inv.project.state_file, {o.key: rec}, stale_age=stale,
                     datacache_dir=inv.datacache_dir)
    else:
        rec = inv.state.datacache.get(o.record_key, {})
        update_state(inv.project.state_file, {}, stale_age=stale, datacache_dir=inv.datacache_dir,
                     instances=[(o.record_key, o.key.rsplit("/", 1)[1], path,
                                 rec.get("ref", ""), fmt) for fmt in (o.format.split(",") or [""])])


# -- refresh (MNT-024) ---------------------------------------------------------------------------------
def refresh(inv: Inventory, *, scan: bool = False, dry_run: bool = False) -> list[Step]:
    """Make the state file follow the bytes (MNT-024); one state write."""
    root = str(inv.project.root)
    records: dict[str, DatasetRecord] = {}
    drop: list[str] = []
    instances: list[tuple[str, str, str | None, str, str]] = []
    steps: list[Step] = []
    for o in inv.objects:
        h = o.key.rsplit("/", 1)[1] if o.kind == "cached" else ""
        if o.state == "clean":
            continue
        if o.state == "relocated":
            steps.append(Step(o, "repoint", o.location))
            if o.kind == "data":
                old = inv.state.datasets.get(o.key)
                path = cache.relative_to_root(o.location, root)
                records[o.key] = old.model_copy(update={"storage_path": path}) if old else \
                    DatasetRecord(storage_path=path)
            else:
                instances.append((o.record_key, h, cache.relative_to_root(o.location, root), "", ""))
        elif o.state == "missing" and o.recorded:
            if os.path.isdir(os.path.dirname(o.recorded)):
                steps.append(Step(o, "drop", o.recorded))
                if o.kind == "data":
                    drop.append(o.key)
                else:
                    instances.append((o.record_key, h, None, "", ""))
            else:
                steps.append(Step(o, "keep", f"{o.recorded} (unreachable: its folder is "
                                             "missing; the record is kept)"))
        elif o.state == "untracked" and scan and not o.protected:
            ok = verify_artifact(o) if o.kind == "cached" else verify(o)
            if not ok:
                steps.append(Step(o, "skip", o.location, error=MaintenanceError(
                    f"{o.id!r}: its bytes do not match its marker; not adopted", code="DM070")))
                continue
            steps.append(Step(o, "record", o.location, o.size))
            path = cache.relative_to_root(o.location, root)
            if o.kind == "data":
                algo, _, hexd = o.checksum.partition(":")
                records[o.key] = DatasetRecord(storage_path=path, checksum=o.checksum or None,
                                               sha256=hexd if algo == "sha256" else None,
                                               size=o.size)
            else:
                instances.extend((o.record_key, h, path, "", f) for f in o.format.split(","))
    if not dry_run and (records or drop or instances):
        update_state(inv.project.state_file, records, stale_age=inv.project.storage.lock_stale_age,
                     datacache_dir=inv.datacache_dir, remove=drop, instances=instances)
    if not dry_run:  # LCK-007: a refresh killed after its state write left the state's lock
        reclaim_project_locks(inv.project.root, inv.project.storage.lock_stale_age)
    return steps


# -- export (MNT-025) ----------------------------------------------------------------------------------
def export(inv: Inventory, objects: list[Obj], dest: str, *, dry_run: bool = False,
           force: bool = False) -> list[Step]:
    """Copy datasets into ``dest`` (verified) and write ``dest/datamanifest.toml`` (MNT-025).
    Raises MaintenanceError DM173 when ``dest`` is not a folder (STO-015), DM133 when it
    holds a manifest already (without ``force``)."""
    dest = os.path.abspath(dest)
    manifest = os.path.join(dest, "datamanifest.toml")
    if os.path.lexists(dest) and not os.path.isdir(dest):  # STO-015
        raise MaintenanceError(f"{dest} is not a folder; an export is a folder", code="DM173",
                               hint="give the path of a new or existing folder")
    if os.path.exists(manifest) and not force:
        raise MaintenanceError(f"{manifest} exists", code="DM133",
                               hint="pass --force to replace it, or choose another folder")
    steps: list[Step] = []
    names: list[str] = []
    for o in objects:
        if o.kind != "data":
            continue
        ds = inv.project.dataset(o.id)
        if ds.lazy_access or o.state == "missing":
            steps.append(Step(o, "skip", "lazy_access: no copy" if ds.lazy_access else
                              "not present"))
            continue
        new = os.path.join(dest, _export_key(inv, o.id))
        names.append(o.id)
        if dry_run:
            steps.append(Step(o, "export", new, o.size))
            continue
        if _complete_copy(o, new):
            steps.append(Step(o, "export", new + " (already there)", 0))
            continue
        try:
            copied = _copy_verified(o, new)
        except DataManifestError as e:
            steps.append(Step(o, "skip", new, error=e))
            names.remove(o.id)
            continue
        steps.append(Step(o, "export", new, copied))
    if not dry_run and names:
        text = exported_manifest_text(inv.project.manifest_path.read_text(encoding="utf-8"), names)
        os.makedirs(dest, exist_ok=True)
        write_bytes(manifest, text.encode("utf-8"))
    return steps


def _export_key(inv: Inventory, name: str) -> str:
    """A dataset's path below a store whose storage_path is the default (``$datasets_dir/$key``)."""
    from ..spec.resolution import storage_path

    ds = inv.project.dataset(name).model_copy(update={"storage_path": ""})
    path, _ = storage_path(name, ds, inv.project.storage.resolved, inv.project.storage.platform)
    return path[len(inv.datasets_dir.rstrip("/")) + 1:]


def exported_manifest_text(text: str, names: list[str]) -> str:
    """The manifest of an export: ``_META``, ``_LANG``, ``_LOADERS`` and the exported entries
    (without ``storage_path``, ``skip_download``), with ``datasets_dir = "."`` (MNT-025).
    Comments inside the kept tables stay."""
    import tomlkit

    doc = parse_for_edit(text)
    out = tomlkit.document()
    out.add(tomlkit.comment("exported by datamanifest on "
                            f"{time.strftime('%Y-%m-%d', time.gmtime())}: the datasets sit "
                            "beside this file"))
    if "_META" in doc:
        out.add("_META", doc["_META"])
    storage = tomlkit.table()
    storage.add("datasets_dir", ".")
    out.add("_STORAGE", storage)
    for key in ("_LANG", "_LOADERS", "_loaders"):
        if key in doc:
            out.add(key, doc[key])
    for name in doc:
        if name in names:
            table = doc[name]
            for field in ("storage_path", "skip_download", "local_path"):
                if field in table:
                    del table[field]
            out.add(name, table)
    return tomlkit.dumps(out)

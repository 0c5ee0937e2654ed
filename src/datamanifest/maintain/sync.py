"""Copying objects between two machines' stores: ``push`` and ``pull`` (SCHEMA.md §23).

The two ends are symmetric. The *receiving* end (this one on pull, the far one on push) runs a
:class:`~datamanifest.maintain.receive.Receiver` (:mod:`.receive`): it takes the object's lock,
lets the bytes arrive in the staging area ``<new>.tmp``, verifies them against the object's
checksum (a file), tree checksum (a folder) or per-format digests (an artifact), renames,
writes the marker last and records the object in its own state file (SYNC-003, SYNC-005). On
push the far receiver is ``datamanifest receive`` run over SSH, driven by one JSON line each
way (SYNC-006).

Bytes move with rsync (``-a --inplace``, so only the staging area is ever written, a folder as
``src/`` into ``staging/``, so it is never nested; the sender's marker excluded). A transfer
killed midway leaves the partial staging copy and no marker; the next run resumes it (rsync's
delta transfer).

The SSH command is ``$DATAMANIFEST_SSH`` or ``ssh`` (as for ssh sources, FET-015); the far
``datamanifest`` command is ``--remote-command`` or ``$DATAMANIFEST_REMOTE`` (default
``datamanifest``).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ChecksumMismatch, DataManifestError, MaintenanceError
from ..spec.checksum import TREE_ALGORITHMS
from ..spec import cache
from ..spec.maintain import Obj
from ..store.lock import reclaim_project_locks, reclaim_stale
from .actions import Step, _marker, _relative_key
from .inventory import Inventory, OsView
from .receive import MARKER, Receiver, _record_checksum, serve_receive, verify_staged  # noqa: F401



# -- the far end --------------------------------------------------------------------------------
@dataclass
class Endpoint:
    """Where the other store is: ``host`` (``[user@]host``; None for a local folder), its
    SSH ``port``, ``path`` (the far project folder, or with ``root_mode`` the store root
    itself), the far ``datamanifest`` command, and an rsync bandwidth limit (KiB/s)."""

    host: str | None
    path: str
    port: int | None = None
    root_mode: bool = False
    remote_command: list[str] = field(default_factory=lambda: ["datamanifest"])
    bwlimit: int | None = None

    @classmethod
    def parse(cls, target: str, *, root_mode: bool = False, remote_command: str | None = None,
              bwlimit: int | None = None) -> "Endpoint":
        """``[user@]host:[path]``, ``ssh://[user@]host[:port]/path`` or a local folder
        (SYNC-001). A path that exists locally, or has no ``:`` before its first ``/``,
        is a local folder."""
        from urllib.parse import unquote, urlsplit

        cmd = shlex.split(remote_command or os.environ.get("DATAMANIFEST_REMOTE", "")
                          or "datamanifest")
        if target.startswith("ssh://"):
            parts = urlsplit(target)
            if not parts.hostname:
                raise MaintenanceError(f"{target!r} names no host", code="DM135")
            user = f"{parts.username}@" if parts.username else ""
            return cls(f"{user}{parts.hostname}", unquote(parts.path), parts.port, root_mode,
                       cmd, bwlimit)
        head, colon, tail = target.partition(":")
        if colon and "/" not in head and head and not os.path.exists(target):
            return cls(head, tail, None, root_mode, cmd, bwlimit)
        path = os.path.abspath(target)
        if not root_mode and not os.path.isdir(path):  # the far project must be there
            raise MaintenanceError(
                f"{target} is not a folder here, so it names no far project", code="DM135",
                hint="give a project folder (one with datamanifest.toml), a store root with "
                     "--root, or [user@]host:path for another machine")
        return cls(None, path, None, root_mode,
                   [sys.executable, "-m", "datamanifest"] if remote_command is None else cmd,
                   bwlimit)

    def describe(self) -> str:
        return f"{self.host}:{self.path}" if self.host else self.path

    # processes at the far end
    def ssh(self) -> list[str]:
        ssh = shlex.split(os.environ.get("DATAMANIFEST_SSH", "ssh")) + ["-o", "BatchMode=yes"]
        return ssh + (["-p", str(self.port)] if self.port else [])

    def argv(self, argv: list[str], *, in_project: bool = False) -> list[str]:
        """The local argv that runs ``argv`` at the far end (in the far project folder when
        ``in_project``)."""
        if self.host is None:
            return argv
        command = shlex.join(argv)
        if in_project and self.path:
            command = f"cd -- {shlex.quote(self.path)} && {command}"
        return self.ssh() + [self.host, command]

    def run(self, argv: list[str], *, in_project: bool = False) -> subprocess.CompletedProcess:
        cwd = self.path if in_project and self.host is None else None
        return subprocess.run(self.argv(argv, in_project=in_project), cwd=cwd,
                              capture_output=True, text=True, stdin=subprocess.DEVNULL)

    def read(self, path: str) -> str | None:
        """A small file's text at the far end; None when it is absent."""
        return self.read_marker(path, "")[0]

    def read_marker(self, path: str, lock: str) -> tuple[str | None, bool]:
        """A marker's text at the far end (None: absent), and whether ``lock`` is there
        too (a receiver killed after publishing, LCK-007) -- one round trip."""
        if self.host is None:
            return OsView().read(path), bool(lock) and os.path.lexists(lock)
        proc = self.run(["sh", "-c", 'cat -- "$1" && if [ -n "$2" ] && [ -e "$2" ]; then '
                         'echo locked >&2; fi', "sh", path, lock])
        return (proc.stdout if proc.returncode == 0 else None), "locked" in proc.stderr

    def roots(self) -> dict[str, str]:
        """``{"datasets_dir", "datacache_dir", "state"}`` of the far store (SYNC-001):
        ``path`` itself with ``root_mode``, else what ``datamanifest where --json`` prints
        in the far project. DM135 when that fails."""
        if self.root_mode:
            return {"datasets_dir": self.path, "datacache_dir": self.path, "state": ""}
        proc = self.run(self.remote_command + ["where", "--json"], in_project=True)
        try:
            info = json.loads(proc.stdout)
            settings = {row["field"]: row["value"] for row in info["settings"]}
            return {"datasets_dir": settings["datasets_dir"],
                    "datacache_dir": settings["datacache_dir"], "state": info["state_file"]}
        except (ValueError, KeyError, TypeError):
            tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-2:])
            raise MaintenanceError(
                f"cannot resolve the far store at {self.describe()}: `datamanifest where "
                f"--json` failed: {tail or 'no output'}", code="DM135",
                hint="give the far project's folder (host:path), set --remote-command to the "
                     "far datamanifest, or pass --root to name a store root") from None

    def rsync(self, src: str, dst: str, *, is_dir: bool, src_far: bool) -> None:
        """Copy ``src`` into the staging area ``dst`` (one of them at the far end): a folder's
        contents (trailing ``/``, never nested), without the sender's marker. DM137."""
        rsync = shutil.which("rsync")
        if rsync is None:
            raise MaintenanceError("push and pull need the rsync program", code="DM137",
                                   hint="install rsync (and an SSH client)")
        cmd = [rsync, "-a", "--inplace", "--protect-args"]  # --inplace: only the staging area is written
        if self.bwlimit:
            cmd.append(f"--bwlimit={self.bwlimit}")
        if is_dir:
            cmd += ["--delete", f"--exclude=/{MARKER}"]
            src, dst = src.rstrip("/") + "/", dst.rstrip("/") + "/"
        if self.host is not None:
            cmd += ["-e", shlex.join(self.ssh())]
            if src_far:
                src = f"{self.host}:{src}"
            else:
                dst = f"{self.host}:{dst}"
        proc = subprocess.run(cmd + ["--", src, dst], capture_output=True, text=True,
                              stdin=subprocess.DEVNULL)
        if proc.returncode != 0:
            tail = " | ".join(proc.stderr.strip().splitlines()[-2:])
            raise MaintenanceError(f"rsync failed ({proc.returncode}): {tail}", code="DM137",
                                   hint="check the host, the path and your SSH keys "
                                        "(DATAMANIFEST_SSH); the next run resumes")


# -- the sending side of this project -----------------------------------------------------------
def _far_location(o: Obj, rel: str, roots: dict[str, str]) -> str:
    root = roots["datacache_dir"] if o.kind == "cached" else roots["datasets_dir"]
    return root.rstrip("/") + "/" + rel


def _marker_text(o: Obj) -> str:
    """The marker a receiver verifies ``o`` against: its own, or (a marker without a
    checksum) one computed now from the bytes."""
    text = OsView().read(_marker(o.location, o.is_dir)) or ""
    checksum = _record_checksum(o.kind, text)
    if checksum and o.is_dir and o.kind == "data" and \
            checksum.partition(":")[0] not in TREE_ALGORITHMS:
        # an extracted archive: its checksum names the archive, not the folder; the
        # receiver verifies the folder against its tree checksum (SYNC-003, STO-012)
        rec = json.loads(text)
        if not isinstance(rec.get("tree"), str):
            from ..tree import walk

            rec["tree"] = walk(o.location, "tree-sha256").checksum
        return json.dumps(rec)
    if checksum:
        return text
    if o.kind == "cached":
        raise MaintenanceError(f"artifact {o.id!r} has an empty marker: no digest to verify "
                               "a copy against", code="DM137",
                               hint="recompute it, or load it once with this version")
    from ..io.local import hash_file
    from ..tree import walk

    if o.checksum:
        return json.dumps({"checksum": o.checksum, "size": o.size})
    if o.is_dir:
        r = walk(o.location, "tree-sha256")
        return json.dumps({"checksum": r.checksum, "size": r.total_size})
    hexd, size = hash_file(o.location, "sha256")
    return json.dumps({"checksum": f"sha256:{hexd}", "size": size})


def push(inv: Inventory, objects: list[Obj], endpoint: Endpoint, *,
         dry_run: bool = False, force: bool = False) -> list[Step]:
    """Copy present objects to the far store (SYNC-001..SYNC-006); one Step per object."""
    roots = endpoint.roots()
    steps: list[Step] = []
    stale = inv.project.storage.lock_stale_age
    for o in objects:
        if o.state == "missing":
            steps.append(Step(o, "skip", "not present here", error=MaintenanceError(
                f"{o.kind} {o.id!r} is not present here", code="DM078")))
            continue
        rel = _relative_key(inv, o)
        far = _far_location(o, rel, roots)
        try:
            text = _marker_text(o)
        except DataManifestError as e:
            steps.append(Step(o, "skip", far, error=e))
            continue
        identity = _record_checksum(o.kind, text)
        far_marker, far_locked = endpoint.read_marker(_marker(far, o.is_dir), far + ".lock")
        if far_marker is not None and _record_checksum(o.kind, far_marker) == identity:
            if far_locked and endpoint.host is None:
                # LCK-007: a receiver killed after publishing left its lock
                reclaim_stale(Path(far + ".lock"), stale)
            elif far_locked and not dry_run:
                # on a far host its own receiver reclaims it: it finds the object current
                try:
                    _push_one(o, rel, identity, text, endpoint, force)
                except DataManifestError:
                    pass  # still held (a live receiver), or unreachable: nothing to push
            steps.append(Step(o, "keep", f"{endpoint.describe()} {far} (already there)", 0))
            continue
        if dry_run:
            steps.append(Step(o, "push", f"{endpoint.host + ':' if endpoint.host else ''}{far}",
                              o.size))
            continue
        try:
            moved = _push_one(o, rel, identity, text, endpoint, force)
        except DataManifestError as e:
            steps.append(Step(o, "skip", far, error=e))
            continue
        steps.append(Step(o, "push" if moved is not None else "keep",
                          f"{endpoint.host + ':' if endpoint.host else ''}{far}", moved or 0))
    return steps


def _push_one(o: Obj, rel: str, identity: str, marker_text: str, endpoint: Endpoint,
              force: bool = False) -> int | None:
    argv = endpoint.remote_command + [
        "receive", "--kind", o.kind, "--rel", rel, "--key", o.key,
        "--record-key", o.record_key, "--identity", identity,
        "--dir" if o.is_dir else "--file"] + (["--force"] if force else [])
    from ..trust import granted_by

    if granted_by() == "option":
        argv.append("--trust")  # the user vouched for this run, at both ends (TRU-005)
    if endpoint.root_mode:
        argv += ["--root", endpoint.path]
    cwd = endpoint.path if endpoint.host is None and not endpoint.root_mode else None
    proc = subprocess.Popen(endpoint.argv(argv, in_project=not endpoint.root_mode), cwd=cwd,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdin is not None and proc.stdout is not None

    def answer() -> dict[str, Any]:
        line = proc.stdout.readline()
        try:
            return json.loads(line)
        except ValueError:
            proc.kill()
            err = proc.stderr.read() if proc.stderr else ""
            tail = " | ".join((err or line).strip().splitlines()[-2:])
            raise MaintenanceError(f"the far end did not answer: {tail or 'no output'}",
                                   code="DM137", hint="is datamanifest installed there? "
                                   "(--remote-command)") from None

    try:
        first = answer()
        if "error" in first:
            raise MaintenanceError(first["error"]["message"], code=first["error"]["code"])
        if first.get("status") == "current":
            return None
        try:
            endpoint.rsync(o.location, first["staging"], is_dir=o.is_dir, src_far=False)
        except DataManifestError:
            proc.stdin.close()  # the receiver releases its lock; the partial copy stays
            raise
        proc.stdin.write(json.dumps({"marker": marker_text}) + "\n")
        proc.stdin.flush()
        result = answer()
        if "error" in result:
            raise MaintenanceError(result["error"]["message"], code=result["error"]["code"])
        return int(result.get("bytes") or 0)
    finally:
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            try:
                if stream:
                    stream.close()
            except OSError:
                pass
        proc.wait()


def pull(inv: Inventory, ids: list[str], endpoint: Endpoint, *,
         dry_run: bool = False, force: bool = False) -> list[Step]:
    """Copy objects from the far store into this one (SYNC-001..SYNC-005, SYNC-007): an
    object here that this tool did not publish is refused (DM182), or with ``force``
    moved aside."""
    if not dry_run:
        inv.project.require_trust("pull", roots=True)  # TRU-004
    roots = endpoint.roots()
    steps: list[Step] = []
    stale = inv.project.storage.lock_stale_age
    for ident in ids:
        o = pull_object(inv, ident)
        if o.protected:
            from .actions import _protected

            steps.append(Step(o, "skip", o.location, error=_protected(o)))
            continue
        rel = _relative_key(inv, o)
        far = _far_location(o, rel, roots)
        far_marker = endpoint.read(_marker(far, o.is_dir))
        if far_marker is None:
            steps.append(Step(o, "skip", far, error=MaintenanceError(
                f"{o.kind} {o.id!r} is not present at {endpoint.describe()} ({far})",
                code="DM078", hint="push it from where it is, or fetch it")))
            continue
        identity = _record_checksum(o.kind, far_marker)
        declared = inv.project.dataset(o.id).effective_checksum if o.kind == "data" else ""
        if declared and identity and identity != declared:
            steps.append(Step(o, "skip", far, error=ChecksumMismatch(
                f"{endpoint.describe()} {far}", declared.split(":")[0], declared, identity)))
            continue
        if not identity and declared:
            identity, far_marker = declared, json.dumps({"checksum": declared})
        recv = Receiver(o.target, o.kind, o.is_dir, o.key, o.record_key,
                        str(inv.project.state_file), str(inv.project.root),
                        inv.datacache_dir, stale, force=force)
        if recv.current(identity):
            steps.append(Step(o, "keep", f"{o.target} (already here)", 0))
            continue
        if dry_run:
            steps.append(Step(o, "pull", f"{endpoint.describe()} {far} -> {o.target}", None))
            continue
        try:
            recv.begin()
            try:
                if recv.current(identity):
                    steps.append(Step(o, "keep", f"{o.target} (already here)", 0))
                    continue
                endpoint.rsync(far, recv.staging, is_dir=o.is_dir, src_far=True)
                size = recv.commit(far_marker)
            finally:
                recv.release()
        except DataManifestError as e:
            steps.append(Step(o, "skip", o.target, error=e))
            continue
        steps.append(Step(o, "pull", o.target if recv.moved_aside is None else
                          f"{o.target} (what was there was moved to {recv.moved_aside})", size))
    if not dry_run:  # LCK-007: a pull killed after its last state write left the state's lock
        reclaim_project_locks(inv.project.root, stale)
    return steps


def pull_object(inv: Inventory, ident: str) -> Obj:
    """The object ``ident`` names here, or, for a cache key this store has never seen
    (``<cachetype>[@<version>]/<hash>``), the artifact it would be (SYNC-002)."""
    from ..errors import LookupFailed

    try:
        return inv.by_id(ident)
    except (MaintenanceError, LookupFailed):
        if "/" not in ident:
            raise
    record_key, _, h = ident.rpartition("/")
    location = os.path.join(inv.datacache_dir, ident)
    name = record_key.split("@", 1)[0]
    return Obj(kind="cached", id=ident, name=name, key=ident, location=location,
               referenced=False, format="", size=None, created=None, last_access=None,
               state="missing", protected=None, target=location, is_dir=True,
               record_key=record_key)

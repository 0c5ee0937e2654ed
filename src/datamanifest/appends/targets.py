"""Where an append writes: a local folder, or an object-store prefix (SCHEMA.md §26.3).

A :class:`AppendTarget` offers what the transaction needs and nothing more: read, write (each key
atomically), delete and list keys; the commit point (APP-022 step 7: the root metadata
replaced atomically, conditionally on object stores); the journal and backups beside the
target (APP-021); and the lock (APP-020). Keys are ``/``-separated paths inside the target.

Local layout beside ``<target>``: ``<target>.lock`` (the lock), ``<target>.lock.guard``
(serializes take-overs of a stale lock), ``<target>.journal.json`` (the journal) and
``<target>.txn/<txn>/`` (temporary files and ``backup/<key>``). On S3 the same names
follow the prefix: ``<prefix>.lock``, ``<prefix>.journal.json``, ``<prefix>.txn/<txn>/``
(:mod:`datamanifest.appends.object_targets`, which registers its schemes with :func:`register`).
"""

from __future__ import annotations

import errno
import json
import os
import secrets
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from .. import faults
from ..errors import AppendError
from ..store.atomic import fsync_dir, sync_filesystem
from ..interrupt import pid_alive
from ..store.lock import _HEARTBEAT
# HeldLock and LockInfo are imported from here too
from .locks import HeldLock, LockInfo, _wait_loop, lock_bytes, parse_lock  # noqa: F401

JOURNAL = ".journal.json"
LOCK = ".lock"
TXN = ".txn"


class AppendTarget:
    """A Zarr target. ``url``: how it is shown; ``durable``: make new bytes durable before
    the commit point (APP-022 step 6)."""

    url: str
    durable: bool = True
    #: the folder keeping the target's versions (APP-030), found once per target object by
    #: :func:`datamanifest.appends.versions.store_root`
    versions_root: Path | None = None

    # -- keys ------------------------------------------------------------------------------
    def read(self, key: str) -> bytes | None:  # pragma: no cover - interface
        raise NotImplementedError

    def exists(self, key: str) -> bool:  # pragma: no cover - interface
        raise NotImplementedError

    def write(self, txn: str, key: str, data: bytes) -> None:  # pragma: no cover
        raise NotImplementedError

    def delete(self, keys: list[str]) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def keys(self) -> Iterator[str]:  # pragma: no cover - interface
        raise NotImplementedError

    def listing(self) -> tuple[str, list[str]]:  # pragma: no cover - interface
        """What lies at the target (APP-015): ``("absent", [])``, ``("file", [])`` (anything
        that is not a folder) or ``("folder", names of its top-level entries)``."""
        raise NotImplementedError

    def flush(self) -> None:
        """Make every write so far durable (APP-022 step 6)."""

    def commit(self, txn: str, key: str, data: bytes, expected: Any) -> Any:
        raise NotImplementedError  # pragma: no cover - interface

    def settle(self) -> None:
        """Wait until the commit point is durable. :meth:`commit` may leave its last flush
        running while per-array metadata and the version are written (APP-022 steps 8 and
        9); the journal is deleted only after this returns (step 10)."""

    def start_journal(self, txn: str, data: bytes) -> Callable[[], None]:
        """Write the journal (APP-021) and return a function that returns once it is
        durable; nothing may be mutated before that. A target may write it in the
        background meanwhile (the slice's chunks are encoded, which mutates nothing)."""
        self.write_journal(txn, data)
        return lambda: None

    def root_tag(self, key: str) -> Any:
        """What :meth:`commit` compares against: None when the root is absent."""
        raise NotImplementedError  # pragma: no cover - interface

    # -- beside the target -------------------------------------------------------------------
    def read_journal(self) -> bytes | None:  # pragma: no cover - interface
        raise NotImplementedError

    def write_journal(self, txn: str, data: bytes) -> None:  # pragma: no cover
        raise NotImplementedError

    def delete_journal(self) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def backup_key(self, txn: str, key: str) -> str:
        return f"{TXN[1:]}/{txn}/backup/{key}"

    def write_backup(self, txn: str, key: str, data: bytes) -> None:  # pragma: no cover
        raise NotImplementedError

    def read_backup(self, txn: str, key: str) -> bytes | None:  # pragma: no cover
        raise NotImplementedError

    def end_txn(self, txn: str) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def clear_txns(self, keep: str | None = None) -> int:  # pragma: no cover - interface
        """Remove transaction folders (temporary files, backups) other than ``keep``;
        returns how many."""
        raise NotImplementedError

    # -- the lock -----------------------------------------------------------------------------
    def lock(self, *, wait: bool, timeout: float | None, stale_age: float, poll: float,
             on_wait: Callable[[str], None] | None = None) -> "HeldLock":
        raise NotImplementedError  # pragma: no cover - interface

    def lock_info(self) -> LockInfo | None:  # pragma: no cover - interface
        raise NotImplementedError


# -- local folders -----------------------------------------------------------------------------------
class LocalTarget(AppendTarget):
    """A Zarr store in a local folder."""

    def __init__(self, path: str | Path, *, durable: bool = True) -> None:
        self.path = Path(os.path.abspath(path))
        self.url = str(self.path)
        self.durable = durable
        self.side = self.path.parent
        self.name = self.path.name
        self._made: set[Path] = set()
        self._syncer: Any = None  # one thread making journals and commits durable
        self._pending: Any = None  # the commit point's flush, until settle()

    # keys
    def _p(self, key: str) -> Path:
        return self.path / key

    def read(self, key: str) -> bytes | None:
        try:
            with open(self.path / key, "rb", buffering=0) as f:
                return f.read()
        except (FileNotFoundError, NotADirectoryError):
            return None

    def exists(self, key: str) -> bool:
        return os.path.isfile(self.path / key)

    def stat(self, key: str) -> os.stat_result:
        return os.stat(self.path / key)

    def _txn_dir(self, txn: str) -> Path:
        return self.side / f"{self.name}{TXN}" / txn

    def _tmp(self, txn: str) -> Path:
        """A temporary file beside the target (same file system, no folder to make):
        ``.<name>.tmp.<txn>.<random>``; leftovers are removed by recovery (APP-024)."""
        return self.side / f".{self.name}.tmp.{txn}.{secrets.token_hex(4)}"

    def _mkdirs(self, folder: Path) -> None:
        if folder in self._made:
            return
        missing = []
        d = folder
        while not d.is_dir():
            missing.append(d)
            d = d.parent
        for d in reversed(missing):
            try:
                os.mkdir(d)
            except FileExistsError:
                pass
        self._made.add(folder)

    def _write_tmp(self, txn: str, data: bytes, *, sync: bool) -> Path:
        """``data`` in a new temporary file beside the target (fsynced when ``sync``)."""
        tmp = self._tmp(txn)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            if sync:
                faults.point("fsync", tmp)
                os.fsync(fd)
        finally:
            os.close(fd)
        return tmp

    def _atomic(self, txn: str, final: Path, data: bytes, *, sync: bool) -> None:
        self._mkdirs(final.parent)
        tmp = self._write_tmp(txn, data, sync=sync)
        try:
            os.rename(tmp, final)
        except FileNotFoundError:  # a folder this process made was removed meanwhile
            self._made.clear()
            self._mkdirs(final.parent)
            os.rename(tmp, final)

    def write(self, txn: str, key: str, data: bytes) -> None:
        self._atomic(txn, self.path / key, data, sync=False)

    def delete(self, keys: list[str]) -> None:
        parents = set()
        for key in keys:
            try:
                os.unlink(self.path / key)
            except (FileNotFoundError, NotADirectoryError):
                continue
            parents.add((self.path / key).parent)
        # folders left empty by the deletes (chunk folders of a rolled-back slice)
        for d in sorted(parents, key=lambda p: -len(p.parts)):
            while d != self.path.parent and d.is_relative_to(self.path):
                try:
                    os.rmdir(d)
                except OSError:
                    break
                self._made.discard(d)
                d = d.parent
        self._made = {d for d in self._made if d.is_dir()}

    def listing(self) -> tuple[str, list[str]]:
        try:
            names = os.listdir(self.path)  # through a link to a folder, as writes would go
        except (FileNotFoundError, NotADirectoryError):
            if os.path.lexists(self.path):  # a file, or a symbolic link to nothing
                return "file", []
            parent = self.path.parent
            while not os.path.lexists(parent) and parent != parent.parent:
                parent = parent.parent
            if not parent.is_dir():
                raise AppendError(f"{parent} is not a folder, so no target can be made below "
                                  "it", code="DM171", file=self.url,
                                  hint="give a path under a folder") from None
            return "absent", []
        except OSError as e:
            raise AppendError(f"{self.url} cannot be read: {e.strerror}", code="DM167") from e
        return "folder", names

    def keys(self) -> Iterator[str]:
        if not self.path.is_dir():
            return
        for dirpath, _dirs, files in os.walk(self.path):
            rel = os.path.relpath(dirpath, self.path)
            for f in files:
                yield f if rel == "." else f"{rel}/{f}".replace(os.sep, "/")

    def flush(self) -> None:
        """Nothing here: :meth:`commit` flushes the file system once, after the new root's
        temporary file is written too, so one ``syncfs`` makes every new chunk and the new
        root durable before the rename that commits them (APP-022 steps 6 and 7)."""

    def root_tag(self, key: str) -> Any:
        return self.read(key)

    def commit(self, txn: str, key: str, data: bytes, expected: Any) -> Any:
        # one process holds the lock (APP-020); the rename is the commit point (APP-022 7)
        final = self.path / key
        self._mkdirs(final.parent)
        tmp = self._write_tmp(txn, data, sync=False)
        if self.durable:  # the chunks, the backups and this root: durable before the rename
            sync_filesystem(self.path)  # a fault point of its own (store.atomic)
        os.rename(tmp, final)
        if self.durable:  # the rename made durable while step 8 runs; settle() waits for it
            self._pending = self._background(self._sync_dir, self.path)
        return data

    def _sync_dir(self, path: Path) -> None:
        faults.point("fsync", path)
        fsync_dir(path)

    def _background(self, fn: Callable[..., None], *args: Any) -> Callable[[], None]:
        """Run ``fn(*args)`` on this target's syncing thread; returns a function waiting for
        it (and raising its error). Inline under the fault layer, whose mutation counts
        must not depend on thread timing (a killed process cannot observe an fsync's
        timing anyway)."""
        if faults.ENABLED:
            fn(*args)
            return lambda: None
        if self._syncer is None:
            from concurrent.futures import ThreadPoolExecutor

            self._syncer = ThreadPoolExecutor(1, thread_name_prefix="dm-append-sync")
        return self._syncer.submit(fn, *args).result

    def settle(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            pending()

    def start_journal(self, txn: str, data: bytes) -> Callable[[], None]:
        return self._background(self.write_journal, txn, data)

    # beside the target
    @property
    def journal_path(self) -> Path:
        return self.side / f"{self.name}{JOURNAL}"

    def read_journal(self) -> bytes | None:
        try:
            return self.journal_path.read_bytes()
        except FileNotFoundError:
            return None

    def write_journal(self, txn: str, data: bytes) -> None:
        self._atomic(txn, self.journal_path, data, sync=True)
        faults.point("fsync", self.side)
        fsync_dir(self.side)

    def delete_journal(self) -> None:
        try:
            os.unlink(self.journal_path)
        except FileNotFoundError:
            pass

    def _backup(self, txn: str, key: str) -> Path:
        return self._txn_dir(txn) / "backup" / key

    def write_backup(self, txn: str, key: str, data: bytes) -> None:
        final = self._backup(txn, key)
        self._atomic(txn, final, data, sync=True)
        faults.point("fsync", final.parent)
        fsync_dir(final.parent)

    def read_backup(self, txn: str, key: str) -> bytes | None:
        try:
            return self._backup(txn, key).read_bytes()
        except FileNotFoundError:
            return None

    def backups(self, txn: str) -> set[str]:
        root = self._txn_dir(txn) / "backup"
        if not root.is_dir():
            return set()
        return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}

    def end_txn(self, txn: str) -> None:
        """Remove what a finished transaction left beside the target (its backups)."""
        d = self._txn_dir(txn)
        if d.parent.is_dir():
            shutil.rmtree(d, ignore_errors=True)
            try:
                os.rmdir(d.parent)
            except OSError:
                pass

    def clear_txns(self, keep: str | None = None) -> int:
        """Remove every transaction's temporary files and backups (recovery, APP-024)."""
        n = 0
        prefix = f".{self.name}.tmp."
        try:
            names = os.listdir(self.side)
        except FileNotFoundError:
            return 0
        lock_prefix = f".{self.name}.lock."
        for name in names:
            if name.startswith(lock_prefix):  # a lock's temporary file, if its writer died
                pid = name.rsplit(".", 1)[-1]
                if pid.isdigit() and not pid_alive(int(pid)):
                    try:
                        os.unlink(self.side / name)
                        n += 1
                    except FileNotFoundError:
                        pass
                continue
            if name.startswith(prefix) and (keep is None or
                                            not name.startswith(f"{prefix}{keep}.")):
                try:
                    os.unlink(self.side / name)
                    n += 1
                except FileNotFoundError:
                    pass
        base = self.side / f"{self.name}{TXN}"
        if base.is_dir():
            for d in base.iterdir():
                if d.name != keep:
                    shutil.rmtree(d, ignore_errors=True)
                    n += 1
            try:
                os.rmdir(base)
            except OSError:
                pass
        self._made.clear()
        return n

    # the lock (APP-020)
    @property
    def lock_path(self) -> Path:
        return self.side / f"{self.name}{LOCK}"

    def lock_info(self) -> LockInfo | None:
        try:
            data = self.lock_path.read_bytes()
            age = time.time() - self.lock_path.stat().st_mtime
        except FileNotFoundError:
            return None
        return LockInfo(parse_lock(data), age)

    def lock(self, *, wait: bool, timeout: float | None, stale_age: float, poll: float,
             on_wait: Callable[[str], None] | None = None) -> HeldLock:
        owner = secrets.token_hex(8)
        took: list[LockInfo] = []

        def once() -> HeldLock | None:
            if self._create_lock(owner):
                _HEARTBEAT.add(self.lock_path, max(stale_age / 2, 0.05))
                self.sweep_lock_files()
                return _LocalHeld(self, owner, took[-1] if took else None)
            info = self.lock_info()
            if info is not None and info.stale(stale_age) and self._take_over(info, stale_age):
                took.append(info)
                return once()
            return None

        return _wait_loop(once, self.lock_info, self.url, wait, timeout, poll, on_wait)

    def _create_lock(self, owner: str) -> bool:
        """Atomic create with the whole document in place: a temporary file linked to the
        lock's name (link fails when the name exists)."""
        self.side.mkdir(parents=True, exist_ok=True)
        tmp = self.side / f".{self.name}.lock.{owner}.{os.getpid()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.write(fd, lock_bytes(owner))
        finally:
            os.close(fd)
        try:
            os.link(tmp, self.lock_path)
            return True
        except FileExistsError:
            return False
        except OSError as e:  # a file system without hard links: O_EXCL create instead
            if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP):
                raise
            try:
                fd = os.open(self.lock_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                return False
            try:
                os.write(fd, lock_bytes(owner))
            finally:
                os.close(fd)
            return True
        finally:
            os.unlink(tmp)

    def _take_over(self, seen: LockInfo, stale_age: float) -> bool:
        """Remove a stale lock, serialized by an advisory lock (``flock``) on the folder
        holding it, which the kernel releases if its holder dies: under it the lock is
        read again and removed only if it is still the stale one that was seen."""
        import fcntl

        fd = os.open(self.side, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            now = self.lock_info()
            if now is None:
                return True
            if now.owner != seen.owner or now.doc.get("pid") != seen.doc.get("pid") or \
                    not now.stale(stale_age):
                return False
            os.unlink(self.lock_path)
            return True
        finally:
            os.close(fd)  # releases the advisory lock

    def sweep_lock_files(self) -> None:
        """Remove the temporary files of lock creations whose process died between
        writing and linking them (``.<name>.lock.<owner>.<pid>``)."""
        prefix = f".{self.name}.lock."
        try:
            with os.scandir(self.side) as it:
                names = [e.name for e in it if e.name.startswith(prefix)]
        except FileNotFoundError:
            return
        for name in names:
            pid = name.rsplit(".", 1)[-1]
            if pid.isdigit() and int(pid) != os.getpid() and not pid_alive(int(pid)):
                try:
                    os.unlink(self.side / name)
                except FileNotFoundError:
                    pass


class _LocalHeld(HeldLock):
    def release(self) -> None:
        from ..interrupt import shielded

        t: LocalTarget = self.target  # type: ignore[assignment]
        with shielded():  # a Ctrl-C during the release does not keep the lock (LCK-008)
            _HEARTBEAT.remove(t.lock_path)
            if self.still_held():
                try:
                    os.unlink(t.lock_path)
                except FileNotFoundError:
                    pass


#: scheme -> the target class for its URLs (``s3`` is registered by
#: :mod:`datamanifest.appends.object_targets`, which the package imports)
TARGETS: dict[str, Callable[[str, dict[str, Any] | None], AppendTarget]] = {}


def register(scheme: str, opener: Callable[[str, dict[str, Any] | None], AppendTarget]) -> None:
    """Make :func:`open_target` open ``scheme://`` URLs with ``opener(url, options)``.

    Parameters
    ----------
    scheme : str
        The URL scheme without ``://``, e.g. ``"s3"``.
    opener : callable
        Called with the URL and the target's options; returns an :class:`AppendTarget`.
    """
    TARGETS[scheme] = opener


def open_target(url: str | os.PathLike, options: dict[str, Any] | None = None, *,
                durable: bool = True) -> AppendTarget:
    """A :class:`AppendTarget` for a local path or ``s3://`` URL. Raises :class:`AppendError`
    (DM160) for another scheme."""
    text = os.fspath(url)
    scheme = text.split("://", 1)[0] if "://" in text else ""
    if scheme in TARGETS:
        return TARGETS[scheme](text, options)
    if scheme and scheme != "file":
        raise AppendError(f"appends write to local folders and "
                          f"{', '.join(f'{s}://' for s in sorted(TARGETS))} prefixes, not {text}",
                          code="DM160")
    if text.startswith("file://"):
        text = text[len("file://"):]
    return LocalTarget(text, durable=durable)

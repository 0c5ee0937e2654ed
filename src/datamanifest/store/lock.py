"""The lock protocol: ``<target>.lock`` pid files with heartbeat and stale reclaim (SCHEMA.md §7.3).

LCK-001  A writer creates ``<target>.lock`` exclusively (O_CREAT|O_EXCL) and writes
         ``"<pid> <hostname>\\n"`` into it.
LCK-002  While it holds the lock it refreshes the file's mtime every ``stale_age/2`` s.
LCK-003  A contender waits, polling, and MUST re-check completion after acquiring.
LCK-004  A lock is stale at once when its pid is not running on this host; a lock that
         names no pid is stale once its mtime is older than ``stale_age``; any lock is
         stale when its age exceeds ``5 * stale_age``.
LCK-005  Reclaiming is serialized by ``<target>.lock.reclaim`` (itself exclusive); the
         reclaimer re-checks staleness before deleting the stale lock.
LCK-006  A contender that waits longer than its timeout fails with DM075.
LCK-009  Before its first change to the target (the rename onto it, removing its marker or
         its bytes), a holder appends the line ``publish`` to its lock. A contender that
         reclaims a stale lock holding that line knows an unmarked target is the killed
         holder's own work (STO-018), and carries the line into its own lock at once.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import LockTimeout
from ..interrupt import pid_alive

DEFAULT_STALE_AGE = 30.0  # seconds
RECLAIM_FACTOR = 5
#: LCK-009: the line a holder appends before it changes its target
PUBLISHING = "publish"


def read_owner(path: Path) -> tuple[int | None, str]:
    """(pid, hostname) written in a lock file; (None, "") when unreadable."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace").split()
    except OSError:
        return None, ""
    try:
        return int(text[0]), (text[1] if len(text) > 1 else "")
    except (ValueError, IndexError):
        return None, ""


def is_stale(path: Path, stale_age: float, now: float | None = None) -> bool:
    """LCK-004: is the lock at ``path`` stale? At once when it names a pid that is not
    running on this host (its holder was killed, or interrupted and could not release it);
    after ``stale_age`` seconds without a heartbeat when it names no pid (a writer killed
    between creating and writing it); after ``5 * stale_age`` seconds whatever it names."""
    try:
        age = (now or time.time()) - path.stat().st_mtime
    except FileNotFoundError:
        return False
    pid, host = read_owner(path)
    if pid is not None and host == socket.gethostname() and not pid_alive(pid):
        return True
    if age <= stale_age:
        return False
    if age > RECLAIM_FACTOR * stale_age:
        return True
    return pid is None


def reclaim_stale(path: Path, stale_age: float) -> bool:
    """Remove the lock at ``path`` if it is stale (LCK-004), serialized as LCK-005 says.

    Called where a command finds its work already done beside a lock file (a holder killed
    after publishing and before releasing), so a dead holder's lock never outlives the
    stale age by more than one run. Returns whether the lock is gone. Never raises for a
    lock that vanished meanwhile.
    """
    if not is_stale(path, stale_age):
        return not path.exists()
    Lock(path, stale_age=stale_age)._reclaim()
    return not path.exists()


def reclaim_project_locks(root: Path, stale_age: float, extra: list[Path] = ()) -> None:
    """LCK-007 at the end of a run: reclaim the stale locks of the state file and the
    manifest (``<root>/.datamanifest/``) and of ``extra`` (the objects the run found
    done), each only if stale. One ``lstat`` per path when there is none."""
    from .layout import state_path

    state = state_path(root)
    for lock in (state.with_name(state.name + ".lock"), root / ".datamanifest" / "manifest.lock",
                 *extra):
        if os.path.lexists(lock):
            reclaim_stale(Path(lock), stale_age)


def holder_gone(path: Path) -> bool:
    """Is the holder of the lock at ``path`` known not to be running: no pid in it (its
    writer was killed between creating and writing it), or a pid not running on this
    host? The latter is stale at once, the former once ``lock_stale_age`` has passed
    (LCK-004)."""
    pid, host = read_owner(path)
    return pid is None or (host == socket.gethostname() and not pid_alive(pid))


class _Heartbeat:
    """One thread per process refreshes the mtime of every held lock (LCK-002)."""

    def __init__(self) -> None:
        self._held: dict[Path, float] = {}  # path -> interval (seconds)
        self._due: dict[Path, float] = {}
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        #: set by release_held: the process is exiting after an interruption and takes no
        #: new lock (a thread that created one after the sweep removes it itself, LCK-008)
        self.closed = False

    def add(self, path: Path, interval: float) -> bool:
        """Start refreshing ``path``; False (nothing added) once the process is closing."""
        with self._cond:
            if self.closed:
                return False
            self._held[path] = interval
            self._due[path] = time.monotonic() + interval
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="dm-lock-heartbeat",
                                                daemon=True)
                self._thread.start()
            self._cond.notify()
        return True

    def remove(self, path: Path) -> None:
        with self._cond:
            self._held.pop(path, None)
            self._due.pop(path, None)

    def _run(self) -> None:
        with self._cond:
            while True:
                now = time.monotonic()
                for path, due in list(self._due.items()):
                    if due <= now:
                        try:
                            os.utime(path)
                        except FileNotFoundError:
                            pass
                        self._due[path] = now + self._held[path]
                wait = min(self._due.values(), default=now + 1.0) - now
                self._cond.wait(timeout=max(wait, 0.01))


_HEARTBEAT = _Heartbeat()


def release_held() -> int:
    """Remove every lock this process still holds (its heartbeat's list) whose first line
    is this process's ``<pid> <hostname>``; returns how many. For a process about to exit
    after an interruption whose workers did not all let go within the grace (LCK-008):
    what they were writing is incomplete and stays so (no marker), and the next run must
    not find a lock. Never raises."""
    token = f"{os.getpid()} {socket.gethostname()}"
    with _HEARTBEAT._cond:
        _HEARTBEAT.closed = True  # a lock created from now on is removed by its creator
        paths = list(_HEARTBEAT._held)
        _HEARTBEAT._held.clear()
        _HEARTBEAT._due.clear()
    n = 0
    for path in paths:
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                first = f.readline().strip()
            if first == token:
                os.unlink(path)
                n += 1
        except OSError:
            pass
    return n

if hasattr(os, "register_at_fork"):
    # a forked fetch worker holds none of its parent's locks, and must not inherit a
    # condition the parent's heartbeat thread may have held at the fork
    os.register_at_fork(after_in_child=_HEARTBEAT.__init__)


class Lock:
    """An inter-process lock on ``<target>.lock`` (LCK-001..LCK-006).

    Use as a context manager. ``timeout`` (seconds, None = wait forever) bounds
    the wait; ``on_wait(owner_text)`` is called once when the lock is busy; ``stop``
    (a :class:`~datamanifest.interrupt.Stop`) ends the wait when set.
    Raises :class:`~datamanifest.errors.LockTimeout` (DM075) on timeout and
    :class:`~datamanifest.interrupt.Cancelled` (DM172) on a stop.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        stale_age: float = DEFAULT_STALE_AGE,
        timeout: float | None = None,
        poll: float = 0.05,
        on_wait: Callable[[str], None] | None = None,
        stop: Any = None,
    ) -> None:
        self.path = Path(path)
        self.stop = stop
        self.stale_age = stale_age
        self.timeout = timeout
        self.poll = poll
        self.on_wait = on_wait
        self.waited = False
        #: LCK-009: the stale lock this one replaced said its holder was changing the target
        self.inherited = False
        self._token = f"{os.getpid()} {socket.gethostname()}\n"
        #: the held lock file, open from its creation to its release: LCK-009's line is
        #: written through it and the release knows its own file by it (no open per step)
        self._fd: int | None = None

    def _try_create(self) -> bool:
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        try:  # no fsync: after a crash the pid is dead and the lock is reclaimed (LCK-004)
            os.write(fd, self._token.encode())
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd  # kept open while held (mark_publishing, release)
        return True

    def _reclaim(self) -> bool:
        """LCK-005: remove a stale lock under the reclaim guard. Returns whether the lock
        removed said its holder had begun changing its target (LCK-009)."""
        guard = self.path.with_name(self.path.name + ".reclaim")
        try:
            fd = os.open(guard, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:  # a reclaimer that died mid-way leaves its guard; clear it when old
                if time.time() - guard.stat().st_mtime > self.stale_age:
                    guard.unlink()
            except FileNotFoundError:
                pass
            return False
        os.close(fd)
        publishing = False
        try:
            if is_stale(self.path, self.stale_age):
                try:
                    text = self.path.read_text(encoding="utf-8", errors="replace")
                except OSError:
                    text = ""
                try:
                    self.path.unlink()
                    publishing = PUBLISHING in text.splitlines()[1:]
                except FileNotFoundError:
                    pass
        finally:
            guard.unlink(missing_ok=True)
        return publishing

    def mark_publishing(self) -> None:
        """LCK-009: append ``publish`` to the held lock before the first change to its
        target, so that a run killed from here on leaves evidence that an unmarked target
        is this tool's work (STO-018). Idempotent; never raises for a vanished lock."""
        if self._token.endswith(f"\n{PUBLISHING}\n"):
            return
        if self._fd is not None:  # the held file, written after its first line
            try:
                os.write(self._fd, f"{PUBLISHING}\n".encode())
                self._token += f"{PUBLISHING}\n"
            except OSError:
                pass
            return
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        except OSError:
            return
        try:
            os.write(fd, f"{PUBLISHING}\n".encode())
            self._token += f"{PUBLISHING}\n"
        finally:
            os.close(fd)

    def acquire(self) -> "Lock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        start = time.monotonic()
        delay = self.poll
        evidence = False  # LCK-009, for the lock created right after a reclaim
        while not self._create():
            evidence = False
            if is_stale(self.path, self.stale_age):
                evidence = self._reclaim()
                continue
            if not self.waited:
                self.waited = True
                if self.on_wait:
                    pid, host = read_owner(self.path)
                    self.on_wait(f"pid {pid} on {host}" if pid else "another process")
            if self.timeout is not None and time.monotonic() - start > self.timeout:
                pid, host = read_owner(self.path)
                raise LockTimeout(
                    f"timed out after {self.timeout:g} s waiting for {self.path} "
                    f"(held by pid {pid} on {host})",
                    hint="another datamanifest process is fetching this dataset; wait for it, "
                    f"or delete {self.path} if that process is gone",
                )
            if self.stop is not None:
                self.stop.wait(delay)
                self.stop.check()
            else:
                time.sleep(delay)
            delay = min(delay * 1.5, 0.5)
        self.inherited = evidence
        if evidence:
            self.mark_publishing()  # LCK-009: the evidence survives this holder too
        return self

    def _create(self) -> bool:
        """One attempt: create the lock and start its heartbeat. A Ctrl-C that arrives
        meanwhile is held back until the lock is either not taken or released again, so
        an interruption never leaves a lock of a live process behind (LCK-008)."""
        from ..interrupt import Cancelled, shielded

        if self.stop is not None:
            self.stop.check()  # an interrupted run takes no new lock (LCK-008)
        created = False
        try:
            # creating the file and registering it happen under the heartbeat's condition,
            # which release_held takes: the sweep of an exiting process either comes first
            # (closed: no lock is created) or finds this one (LCK-008). The condition's lock
            # is reentrant (add takes it again).
            with shielded(), _HEARTBEAT._cond:
                if _HEARTBEAT.closed:
                    raise Cancelled()
                created = self._try_create()
                if created:
                    _HEARTBEAT.add(self.path, max(self.stale_age / 2, 0.05))
        except KeyboardInterrupt:
            if created:
                self.release()
            raise
        return created

    def release(self) -> None:
        from ..interrupt import shielded

        # a Ctrl-C during the release does not keep the lock; and the heartbeat's list
        # keeps the path until the file is gone, under the condition release_held takes,
        # so an exiting process never sweeps its list while this release is half done
        # (the list empty, the file not yet removed: LCK-008)
        with shielded(), _HEARTBEAT._cond:
            fd, self._fd = self._fd, None
            try:
                if fd is not None:
                    # ours while the path names the file we created and hold open (its
                    # inode cannot be reused meanwhile); a reclaimer's new lock is another
                    mine = os.fstat(fd)
                    found = os.stat(self.path)
                    if (found.st_ino, found.st_dev) == (mine.st_ino, mine.st_dev):
                        os.unlink(self.path)
                elif self.path.read_text(encoding="utf-8", errors="replace") == self._token:
                    self.path.unlink()
            except FileNotFoundError:
                pass
            finally:
                if fd is not None:
                    os.close(fd)
                _HEARTBEAT.remove(self.path)

    def __enter__(self) -> "Lock":
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

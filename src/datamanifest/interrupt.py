"""Stopping on the first Ctrl-C (SCHEMA.md LCK-008, FET-023).

A command that works in threads or forked worker processes cannot rely on Python's default
``KeyboardInterrupt``: it is raised in the main thread only, while the workers go on
downloading or hashing until they finish. Here the work shares one :class:`Stop`:

* the workers check it between blocks (:meth:`Stop.check` raises :class:`Cancelled`);
* a worker blocked in I/O registers how to wake it (:meth:`Stop.on_abort`: shut a
  socket down, end a child process), and setting the stop calls that at once;
* :func:`sigint_stops`, in the main thread, turns the first SIGINT into ``stop.set()``
  followed by ``KeyboardInterrupt`` in the main thread, whose handler then waits (briefly,
  :data:`GRACE` seconds) for the workers to release their locks; further SIGINTs are
  ignored during that bounded clean-up. In a process forked from it, the inherited handler
  only sets the stop (no ``KeyboardInterrupt``, so no traceback from a worker).

The command line then exits 130 (DIAG-005).
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from .errors import DataManifestError

#: seconds the main thread waits for its workers after the first SIGINT (LCK-008: a
#: command stops within 1 s)
GRACE = 0.75


class Cancelled(DataManifestError):
    """Work stopped because the command was interrupted (DM172, LCK-008)."""

    code = "DM172"

    def __init__(self, message: str = "interrupted", **kwargs) -> None:
        kwargs.setdefault("hint", "run the same command again: it resumes where it stopped")
        super().__init__(message, **kwargs)


class Stop:
    """A stop request shared by the threads of one run: set once, never cleared.

    Workers call :meth:`check` between blocks of work; code that may block in I/O wraps
    it in ``with stop.on_abort(fn):`` so that :meth:`set` calls ``fn`` (from the setting
    thread) to wake it.
    """

    def __init__(self) -> None:
        self.event = threading.Event()
        self._aborts: dict[int, Callable[[], None]] = {}
        self._next = 0
        self._mutex = threading.Lock()

    def is_set(self) -> bool:
        return self.event.is_set()

    def set(self) -> None:
        """Request the stop and call every registered abort (errors ignored)."""
        self.event.set()
        with self._mutex:
            aborts = list(self._aborts.values())
        for fn in aborts:
            try:
                fn()
            except Exception:  # noqa: BLE001 - waking a worker is best effort
                pass

    def check(self) -> None:
        """Raise :class:`Cancelled` (DM172) when the stop was requested."""
        if self.event.is_set():
            raise Cancelled()

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``, waking early on a stop; returns whether it is set."""
        return self.event.wait(seconds)

    @contextmanager
    def on_abort(self, fn: Callable[[], None]) -> Iterator[None]:
        """While inside, a :meth:`set` calls ``fn`` (at once if the stop is already set)."""
        with self._mutex:
            key = self._next
            self._next += 1
            self._aborts[key] = fn
        if self.event.is_set():
            try:
                fn()
            except Exception:  # noqa: BLE001
                pass
        try:
            yield
        finally:
            with self._mutex:
                self._aborts.pop(key, None)


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextmanager
def sigint_stops(stop: Stop) -> Iterator[None]:
    """While inside (in the main thread; elsewhere this does nothing), the first SIGINT sets
    ``stop`` and raises ``KeyboardInterrupt`` here; later ones are ignored until the context
    exits, so the clean-up that follows the first (bounded by :data:`GRACE`) is not cut
    short. A process forked inside inherits a handler that only sets ``stop``."""
    if not _in_main_thread():
        yield
        return
    owner = os.getpid()
    hits = [0]

    def handler(signum, frame) -> None:  # noqa: ARG001
        hits[0] += 1
        stop.set()
        if os.getpid() == owner and hits[0] == 1:
            raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main interpreter
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous if previous is not None else signal.SIG_DFL)


def ignore_sigint_in_worker() -> None:
    """Initializer of forked pool workers whose parent handles SIGINT: a Ctrl-C (sent to the
    whole process group by the terminal) is left to the parent, which stops the pool."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def end_process_pool(pool) -> None:
    """Stop a :class:`~concurrent.futures.ProcessPoolExecutor` at once (an error or a
    Ctrl-C in its user, LCK-008): queued work cancelled, workers terminated and reaped
    (at most 1 s each)."""
    workers = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for p in workers:
        if p.is_alive():
            p.terminate()
    for p in workers:
        p.join(timeout=1.0)


@contextmanager
def shielded() -> Iterator[None]:
    """A short step that a SIGINT must not cut in two (taking or releasing a lock, a
    clean-up; main thread only): a SIGINT that arrives inside is held back and handled as
    it would have been (``KeyboardInterrupt`` by default) when the block exits."""
    if not _in_main_thread():
        yield
        return
    pending = []
    try:
        previous = signal.signal(signal.SIGINT, lambda s, f: pending.append(s))
    except ValueError:
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous if previous is not None else signal.SIG_DFL)
    if pending:  # what the SIGINT would have done outside
        if callable(previous):
            previous(signal.SIGINT, None)
        elif previous != signal.SIG_IGN:
            raise KeyboardInterrupt


# -- the stop of the current thread's work ------------------------------------------------------
_local = threading.local()


def current() -> Stop | None:
    """The :class:`Stop` the calling thread works under (see :func:`bound`), or None."""
    return getattr(_local, "stop", None)


@contextmanager
def bound(stop: Stop | None) -> Iterator[None]:
    """Run the block with ``stop`` as this thread's :func:`current` stop."""
    old = getattr(_local, "stop", None)
    _local.stop = stop
    try:
        yield
    finally:
        _local.stop = old


def run_child(cmd: list[str], **kwargs):
    """:func:`subprocess.run` whose child is terminated (then killed after 1 s) when the
    calling thread's :func:`current` stop is set; then raises :class:`Cancelled` (DM172).
    Same arguments and result as :func:`subprocess.run`."""
    import subprocess

    stop = current()
    if stop is None:
        return subprocess.run(cmd, **kwargs)
    stop.check()
    capture = kwargs.pop("capture_output", False)
    if capture:
        kwargs.setdefault("stdout", subprocess.PIPE)
        kwargs.setdefault("stderr", subprocess.PIPE)
    stdin_data = kwargs.pop("input", None)
    if stdin_data is not None:
        kwargs.setdefault("stdin", subprocess.PIPE)
    with subprocess.Popen(cmd, **kwargs) as proc:

        def end() -> None:
            proc.terminate()
            later = threading.Timer(1.0, lambda: proc.poll() is None and proc.kill())
            later.daemon = True
            later.start()

        with stop.on_abort(end):
            out, err = proc.communicate(stdin_data)
    if stop.is_set():
        raise Cancelled()
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def pid_alive(pid: int) -> bool:
    """Is process ``pid`` running on this host (a zombie counts as running)?"""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError as e:  # pragma: no cover - exotic platforms
        import errno

        return e.errno != errno.ESRCH
    return True

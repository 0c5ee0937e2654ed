"""Scheduling a fetch run: requires order, threads or forked workers, per-host caps and the
first Ctrl-C (SCHEMA.md FET-003, FET-007, FET-023, LCK-008).

:func:`run` hands the datasets of a run to workers as their requirements finish (a ready
queue: O(datasets + requirements)). Few datasets: ``jobs`` threads. Many
(:data:`PROCESS_MIN` or more, POSIX): batches go to forked worker processes, so that the
per-dataset Python work runs on every core, each batch's files made durable with one
sync. Either way at most ``jobs`` datasets and ``per_host`` downloads per host run at once
(:class:`HostSlots`). The first SIGINT sets the run's :class:`~datamanifest.interrupt.Stop`;
the workers let go within :data:`~datamanifest.interrupt.GRACE` seconds.

The engine (:class:`~datamanifest.fetch.engine.Fetcher`) does one dataset; this module
decides when and where.
"""

from __future__ import annotations

import collections
import os
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING, Any

from ..errors import FetchError
from ..interrupt import GRACE, Stop, sigint_stops
from ..progress import NullProgress
from .report import Deferred, Outcome

if TYPE_CHECKING:
    from .engine import Fetcher

#: fork worker processes when at least this many datasets need fetching
PROCESS_MIN = 64
#: datasets handed to a worker process at once (at most)
BATCH_MAX = 16
#: above this many distinct hosts, threads are used (one semaphore per host, FET-007)
MAX_FORK_HOSTS = 256

_FORKED: "Fetcher | None" = None


class HostSlots:
    """FET-007: a semaphore per host bounding the downloads from it at once (``per_host``;
    ``jobs`` for local sources, host ``""``). In process mode the semaphores are shared by
    the forked workers (:meth:`share`)."""

    def __init__(self, per_host: int, jobs: int) -> None:
        self.per_host, self.jobs = max(1, per_host), max(1, jobs)
        self._sems: dict[str, Any] = {}
        self._mutex = threading.Lock()

    def slot(self, host: str):
        """The semaphore of ``host`` (made on first use)."""
        with self._mutex:
            sem = self._sems.get(host)
            if sem is None:
                sem = self._sems[host] = threading.BoundedSemaphore(
                    self.per_host if host else self.jobs)
        return sem

    def share(self, hosts: set[str], ctx) -> None:
        """Semaphores of ``hosts`` that forked workers share (a multiprocessing context)."""
        self._sems = {h: ctx.BoundedSemaphore(self.per_host if h else self.jobs) for h in hosts}


def workers(jobs: int) -> int:
    """Worker processes in process mode: ``jobs``, at most two per core (more only contend
    for the cores; each worker fetches one dataset at a time)."""
    return max(1, min(jobs, 2 * (os.cpu_count() or 1)))


def process_mode(engine: "Fetcher", pending: int, hosts: set[str]) -> bool:
    """Fork workers when enough datasets remain and hosts are few enough to give each its
    own cross-process semaphore (FET-007); never once obstore ran in this process (its
    runtime does not survive a fork)."""
    if not (engine.processes and engine.jobs > 1 and pending >= PROCESS_MIN
            and not engine.offline and hasattr(os, "fork") and hasattr(os, "register_at_fork")):
        return False
    from ..io.objects import obstore_used

    if obstore_used() or len(hosts) > MAX_FORK_HOSTS:
        return False
    import multiprocessing

    engine.slots.share(hosts, multiprocessing.get_context("fork"))
    return True


def _process_pool(engine: "Fetcher", size: int):
    import multiprocessing
    import warnings
    from concurrent.futures import ProcessPoolExecutor

    global _FORKED
    _FORKED = engine  # the forked workers find the engine here (copy-on-write)
    from ..io.http import warm

    warm()  # httpx and its TLS context once here rather than in every worker (~0.1 s each)
    with warnings.catch_warnings():  # Python >= 3.12 warns about fork with threads
        warnings.simplefilter("ignore", DeprecationWarning)
        return ProcessPoolExecutor(max_workers=size,
                                   mp_context=multiprocessing.get_context("fork"))


def _forked_batch(names: list[str]) -> tuple[list[Outcome], dict, dict]:
    """Run in a forked worker: fetch ``names`` with the parent's engine (inherited).

    Returns the outcomes with the state records and checksum fills they produced,
    which the parent merges and writes once (STA-007, SUM-003).
    """
    import signal

    engine = _FORKED
    assert engine is not None
    engine.progress = NullProgress()  # the parent draws progress as batches return
    engine.records, engine.fill = {}, {}
    engine.defer_sync = True
    # FET-023: a SIGINT (from the terminal, or passed on by the parent) stops this batch;
    # the worker itself lives on until the parent shuts the pool down
    engine.stop = Stop()
    signal.signal(signal.SIGINT, lambda signum, frame: engine.stop.set())
    outcomes = [engine.safe_one(name) for name in names]
    if any(isinstance(o, Deferred) for o in outcomes):
        _publish_deferred(outcomes)
    return outcomes, engine.records, engine.fill


def _publish_deferred(outcomes: list) -> None:
    """STO-007: the staged files of a batch are made durable at once, then published: one
    ``syncfs`` per file system they are on (Linux; :func:`~datamanifest.store.atomic.
    sync_batch`), else one fsync each; no marker is written before the sync returned
    (STO-008). A sync reporting a write-back error fails every dataset of the batch and
    publishes none of them."""
    from ..store.atomic import sync_batch

    try:
        sync_batch([out.staging for out in outcomes if isinstance(out, Deferred)])
    except OSError as e:  # a write-back error: nothing of this batch is durable for sure
        for i, out in enumerate(outcomes):
            if isinstance(out, Deferred):
                out.lock.release()  # the staged bytes are cleared by the next run (STO-007)
                outcomes[i] = Outcome(out.name, "failed", error=FetchError(
                    f"dataset {out.name!r}: {e.strerror or e}", code="DM071"))
        return
    for i, out in enumerate(outcomes):
        if isinstance(out, Deferred):
            try:
                outcomes[i] = out.publish()
                outcomes[i].waited = out.waited
                outcomes[i].moved_aside = out.moved_aside
            except OSError as e:
                outcomes[i] = Outcome(out.name, "failed", error=FetchError(
                    f"dataset {out.name!r}: {e.strerror or e}", code="DM071"))
            finally:
                out.lock.release()


def run(engine: "Fetcher", order: list[str], requires: dict[str, list[str]],
        quick: dict[str, Outcome], on_done: Callable[[str, Outcome], None]) -> str:
    """Fetch the datasets of ``order`` not in ``quick`` (outcomes found inline), each after
    its requirements; ``on_done(name, outcome)`` is called as each finishes, in this
    thread. A dataset whose requirement failed is ``blocked`` (DM081). Returns how the
    work ran: ``"processes"``, ``"threads"`` or ``"none"``. Stopped by ``engine.stop``
    (set by the first SIGINT, which then raises KeyboardInterrupt here once the workers have
    let go, or by the caller: the datasets not started are left without an outcome)."""
    pending = [n for n in order if n not in quick]
    processes = process_mode(engine, len(pending), {engine.host(n) for n in pending})
    outcomes: dict[str, Outcome] = {}
    waiting = {n: len(requires[n]) for n in order}
    dependents: dict[str, list[str]] = {n: [] for n in order}
    for n in order:
        for r in requires[n]:
            dependents[r].append(n)
    ready = collections.deque(n for n in order if waiting[n] == 0)
    running: dict[Future, list[str]] = {}
    quick = dict(quick)

    def finish(n: str, outcome: Outcome) -> None:
        outcomes[n] = outcome
        on_done(n, outcome)
        for d in dependents[n]:
            waiting[d] -= 1
            if waiting[d] == 0:
                ready.append(d)

    def next_batch(size: int) -> list[str]:
        batch: list[str] = []
        while ready and len(batch) < size:
            n = ready.popleft()
            if n in quick:
                finish(n, quick.pop(n))
                continue
            failed = [r for r in requires[n]
                      if outcomes[r].status in ("failed", "blocked", "missing")]
            if failed:
                finish(n, Outcome(n, "blocked", error=FetchError(
                    f"dataset {n!r} not fetched: requirement {failed[0]!r} failed",
                    code="DM081")))
                continue
            batch.append(n)
        return batch

    # FET-023: the first SIGINT stops the workers (threads or forked processes, which
    # inherit the handler) and raises KeyboardInterrupt here once they have let go
    with sigint_stops(engine.stop):
        if processes:
            slots = workers(engine.jobs)
            pool = _process_pool(engine, slots)
            size = max(1, min(BATCH_MAX, len(pending) // (slots * 4)))
            submit = lambda batch: pool.submit(_forked_batch, batch)  # noqa: E731
        else:
            slots = engine.jobs
            pool = ThreadPoolExecutor(max_workers=engine.jobs, thread_name_prefix="dm-fetch")
            size = 1
            submit = lambda batch: pool.submit(  # noqa: E731
                lambda names: ([engine.safe_one(n) for n in names], {}, {}), batch)
        interrupted = False
        try:
            while (ready and not engine.stop.is_set()) or running:
                while ready and len(running) < slots and not engine.stop.is_set():
                    batch = next_batch(size)
                    if batch:
                        running[submit(batch)] = batch
                if not running:
                    continue
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in done:
                    running.pop(fut)
                    batch_outcomes, records, fill = fut.result()
                    engine.records.update(records)
                    engine.fill.update(fill)
                    for out in batch_outcomes:
                        finish(out.name, out)
        except KeyboardInterrupt:
            interrupted = True
            _stop_workers(engine, pool, running, processes)
            raise
        finally:
            if not interrupted:
                pool.shutdown(wait=True, cancel_futures=True)
            global _FORKED
            _FORKED = None
    return "none" if not pending else "processes" if processes else "threads"


def _stop_workers(engine: "Fetcher", pool: Any, running: dict, processes: bool) -> None:
    """FET-023/LCK-008 after the first SIGINT: stop every worker and wait for them at most
    :data:`~datamanifest.interrupt.GRACE` seconds, so that each releases its lock and keeps
    what it downloaded for a resume. Forked workers are told with a SIGINT of their own
    (the signal may have reached this process only); one still running after the grace is
    killed (its lock names a dead pid: stale at once, LCK-004)."""
    import signal
    import time

    engine.stop.set()
    procs = list((getattr(pool, "_processes", None) or {}).values()) if processes else []
    for proc in procs:
        try:
            os.kill(proc.pid, signal.SIGINT)
        except (OSError, TypeError):
            pass
    deadline = time.monotonic() + GRACE
    if running:
        wait(running, timeout=GRACE)
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in procs:
        proc.join(timeout=max(0.0, deadline - time.monotonic()) + 0.1)
        if proc.is_alive():
            proc.kill()

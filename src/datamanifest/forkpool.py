"""A pool of forked worker processes fed through pipes, with no thread (the tree walk's).

:class:`ForkPool` runs calls of one function in ``n`` processes forked at its creation
(they inherit the function): each worker has a pipe for its calls and one for its answers,
and serves its calls in order. Arguments and results travel as :mod:`marshal` data (str,
bytes, numbers, None, tuples, lists, dicts, sets: no import, no class lookup); an exception
travels pickled.
The parent has no helper thread: a :meth:`Task.result` reads answers (from any worker,
whichever comes first) until its own has come, and hands each idle worker the next queued
call. Many calls of about a millisecond each (the folders of a tree of small files) then
cost a few microseconds of bookkeeping each instead of the ~0.3 ms that
:class:`concurrent.futures.ProcessPoolExecutor` spends in its queue threads, and the
processes start in ~1 ms instead of ~5.

Only for a parent that runs no other thread while it forks. The workers ignore SIGINT
(the parent handles a Ctrl-C, LCK-008) and leave with ``os._exit`` (no atexit handler,
no inherited buffer flushed twice). :meth:`ForkPool.close` ends them when their pipes
close; :meth:`ForkPool.terminate` (an error, a Ctrl-C) kills them at once.
"""

from __future__ import annotations

import marshal
import os
import select
import signal
from collections import deque
from collections.abc import Callable
from typing import Any

#: calls handed to a worker at a time: the next one waits in its pipe while it works
DEPTH = 2
_HEADER = 8


class WorkerDied(RuntimeError):
    """A worker process ended without answering (killed, out of memory)."""


class Task:
    """The pending outcome of one :meth:`ForkPool.submit`."""

    __slots__ = ("_pool", "_done", "_ok", "_value")

    def __init__(self, pool: ForkPool) -> None:
        self._pool = pool
        self._done = False
        self._ok = True
        self._value: Any = None

    def result(self) -> Any:
        """The call's return value (its exception raised here), waiting for it."""
        while not self._done:
            self._pool._pump()
        if not self._ok:
            raise self._value
        return self._value


def _read_exact(fd: int, n: int) -> bytes:
    parts = []
    while n:
        block = os.read(fd, min(n, 1 << 20))
        if not block:
            raise EOFError
        parts.append(block)
        n -= len(block)
    return parts[0] if len(parts) == 1 else b"".join(parts)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _send(fd: int, data: bytes) -> None:
    _write_all(fd, len(data).to_bytes(_HEADER, "little") + data)


def _receive(fd: int) -> bytes:
    return _read_exact(fd, int.from_bytes(_read_exact(fd, _HEADER), "little"))


def _serve(fn: Callable, calls: int, answers: int) -> None:
    """A worker's loop: answer each call until the parent closes the pipe. An answer is
    ``b"v"`` and the marshalled result, or ``b"e"`` and the pickled exception."""
    while True:
        try:
            args = marshal.loads(_receive(calls))
        except EOFError:
            return
        try:
            out = b"v" + marshal.dumps(fn(*args))
        except Exception as e:  # noqa: BLE001 - the parent raises it
            import pickle

            try:
                out = b"e" + pickle.dumps(e)
            except Exception:  # noqa: BLE001 - an exception that does not pickle
                out = b"e" + pickle.dumps(RuntimeError(f"{type(e).__name__}: {e}"))
        _send(answers, out)


class ForkPool:
    """``workers`` forked processes calling ``fn`` with the arguments given to :meth:`submit`."""

    def __init__(self, workers: int, fn: Callable) -> None:
        self._calls: list[int] = []  # per worker: the parent's end of its call pipe
        self._answers: list[int] = []  # ... and of its answer pipe
        self._pids: list[int] = []
        self._busy: list[deque[Task]] = []
        self._queue: deque[tuple[Task, bytes]] = deque()
        self._by_fd: dict[int, int] = {}
        self._poll = select.poll()  # the answer pipes (no FD_SETSIZE limit, unlike select)
        try:
            for i in range(workers):
                calls_r, calls_w = os.pipe()
                answers_r, answers_w = os.pipe()
                pid = os.fork()
                if pid == 0:  # the worker
                    code = 0
                    try:
                        signal.signal(signal.SIGINT, signal.SIG_IGN)
                        for fd in (*self._calls, *self._answers, calls_w, answers_r):
                            os.close(fd)
                        _serve(fn, calls_r, answers_w)
                    except BaseException:  # noqa: BLE001 - never back into the parent's code
                        code = 1
                    finally:
                        os._exit(code)
                os.close(calls_r)
                os.close(answers_w)
                self._calls.append(calls_w)
                self._answers.append(answers_r)
                self._pids.append(pid)
                self._busy.append(deque())
                self._by_fd[answers_r] = i
                self._poll.register(answers_r, select.POLLIN)
        except BaseException:
            self.terminate()
            raise

    def submit(self, *args: Any) -> Task:
        """Queue a call with ``args`` (marshal data) for the next idle worker."""
        task = Task(self)
        self._queue.append((task, marshal.dumps(args)))
        self._dispatch()
        return task

    def _dispatch(self) -> None:
        queue, busy = self._queue, self._busy
        while queue:
            i = min(range(len(busy)), key=lambda j: len(busy[j]))
            if len(busy[i]) >= DEPTH:
                return
            task, call = queue.popleft()
            busy[i].append(task)
            try:
                _send(self._calls[i], call)
            except BrokenPipeError:
                raise WorkerDied(f"worker process {self._pids[i]} ended") from None

    def _pump(self) -> None:
        """Wait for answers and take every one that has come."""
        if not any(self._busy):
            raise RuntimeError("no call is running")
        for fd, _ in self._poll.poll():  # an answer, or the end of a worker (POLLHUP)
            i = self._by_fd[fd]
            try:
                answer = _receive(fd)
            except EOFError:
                raise WorkerDied(f"worker process {self._pids[i]} ended without answering") \
                    from None
            task = self._busy[i].popleft()
            if answer[:1] == b"v":
                task._value = marshal.loads(memoryview(answer)[1:])
            else:
                import pickle

                task._ok, task._value = False, pickle.loads(memoryview(answer)[1:])
            task._done = True
        self._dispatch()

    def close(self) -> None:
        """End the workers once their calls are done (the queue must be empty) and reap them."""
        for fd in self._calls:
            os.close(fd)
        self._calls = []
        for pid in self._pids:
            os.waitpid(pid, 0)
        self._pids = []
        for fd in self._answers:
            os.close(fd)
        self._answers = []

    def terminate(self) -> None:
        """Kill the workers at once (their calls abandoned) and reap them."""
        for pid in self._pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for fd in (*self._calls, *self._answers):
            os.close(fd)
        self._calls, self._answers = [], []
        for pid in self._pids:
            os.waitpid(pid, 0)
        self._pids = []
        self._queue.clear()

"""Progress reporting for long work: rich bars on a TTY, silence otherwise.

The engine calls a :class:`Progress`; the CLI picks :class:`RichProgress`
when stderr is a terminal and ``--quiet`` is not given, else :class:`NullProgress`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

# SEC-002: notes and progress labels are output, whoever shows them
from .errors import redact_text as _redacted

#: the log of silent waits and other notes (shown with ``--verbose``)
log = logging.getLogger("datamanifest")

def _patience() -> float:
    """Seconds a wait may stay silent before it says what it is waiting for (the CLI
    convention: 5; ``DATAMANIFEST_PATIENCE`` changes it, for tests)."""
    import os

    try:
        value = float(os.environ.get("DATAMANIFEST_PATIENCE", "5"))
    except ValueError:
        return 5.0
    return value if value > 0 else 5.0


PATIENCE = 5.0

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def human_size(n: int | float | None, *, unknown: str = "?") -> str:
    """A size in bytes in the one unit family of the CLI: B, KiB, MiB, GiB, TiB (powers of
    1024), one decimal above bytes: ``2.1 MiB``."""
    if n is None:
        return unknown
    size = float(n)
    for unit in _UNITS:
        if abs(size) < 1024 or unit == _UNITS[-1]:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover


class Watchdog:
    """Says what a silent wait is waiting for (a lock's holder, a server that sends
    nothing) once it has lasted :data:`PATIENCE` seconds (5), then every 30 s.

    ``start(what)`` returns a token; ``alive(token)`` says the wait made progress (bytes
    arrived), ``stop(token)`` ends it. ``say(text)`` prints the notice (a TTY's progress
    display, else the ``datamanifest`` log, shown with ``--verbose``).
    """

    def __init__(self, say: Callable[[str], None], patience: float | None = None,
                 every: float = 30.0) -> None:
        self.say = say
        self.patience = _patience() if patience is None else patience
        self.every = every
        self._waits: dict[int, list] = {}  # token -> [what, since, last activity, next notice]
        self._next = 0
        self._mutex = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def start(self, what: str) -> int:
        now = time.monotonic()
        with self._mutex:
            self._next += 1
            token = self._next
            self._waits[token] = [what, now, now, now + self.patience]
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="dm-watchdog",
                                                daemon=True)
                self._thread.start()
        return token

    def alive(self, token: int, what: str | None = None) -> None:
        w = self._waits.get(token)
        if w is not None:
            now = time.monotonic()
            w[2], w[3] = now, now + self.patience
            if what is not None:
                w[0] = what

    def stop(self, token: int) -> None:
        with self._mutex:
            self._waits.pop(token, None)

    def close(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(0.25):
            now = time.monotonic()
            with self._mutex:
                due = [(t, w) for t, w in self._waits.items() if now >= w[3]]
                for _, w in due:
                    w[3] = now + self.every
            for _, w in due:
                try:
                    self.say(f"waiting {now - w[2]:.0f} s for {w[0]}")
                except Exception:  # noqa: BLE001 - a notice never breaks the work
                    pass


class Progress:
    """Interface: per-file tasks (bytes) and a total (datasets)."""

    def total(self, n: int) -> None: ...
    def start(self, label: str, size: int | None) -> Any: ...
    def advance(self, task: Any, n: int) -> None: ...
    def finish(self, task: Any) -> None: ...
    def done_one(self) -> None: ...
    def note(self, text: str) -> None: ...
    def close(self) -> None: ...


class NullProgress(Progress):
    """Draws nothing (pipes, CI, library use); notes go to the ``datamanifest`` log, which
    ``--verbose`` shows."""

    def note(self, text: str) -> None:
        log.info(_redacted(text))


class RichProgress(Progress):
    """One bar per file being downloaded plus a total bar, on stderr."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn, DownloadColumn, Progress as RP, TextColumn, TimeRemainingColumn,
            TransferSpeedColumn,
        )

        from rich.text import Text

        class _Amount(DownloadColumn):
            def render(self, task):  # the total bar counts datasets, file bars count bytes
                if task.fields.get("count"):
                    return Text(f"{int(task.completed)}/{int(task.total or 0)} datasets")
                done = human_size(task.completed)  # one unit family: KiB, MiB, GiB
                return Text(f"{done}/{human_size(task.total)}" if task.total is not None
                            else done, style="progress.download")

        class _Speed(TransferSpeedColumn):
            def render(self, task):
                speed = task.finished_speed or task.speed
                if task.fields.get("count") or speed is None:
                    return Text("")
                return Text(f"{human_size(speed)}/s", style="progress.data.speed")

        self.console = Console(stderr=True)
        self.rp = RP(
            TextColumn("{task.description}", justify="left"),
            BarColumn(),
            _Amount(),
            _Speed(),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
        )
        self._lock = threading.Lock()
        self._total = None
        self.rp.start()

    def total(self, n: int) -> None:
        with self._lock:
            self._total = self.rp.add_task("[bold]total", total=n, count=True)

    def start(self, label: str, size: int | None) -> Any:
        with self._lock:
            return self.rp.add_task(_redacted(label), total=size)

    def advance(self, task: Any, n: int) -> None:
        self.rp.advance(task, n)

    def finish(self, task: Any) -> None:
        with self._lock:
            self.rp.remove_task(task)

    def done_one(self) -> None:
        if self._total is not None:
            self.rp.advance(self._total, 1)

    def note(self, text: str) -> None:
        from rich.text import Text

        self.console.print(Text(_redacted(text), style="dim"))  # text, not markup

    def close(self) -> None:
        self.rp.stop()

"""Progress reporting for long work: rich bars on a TTY, silence otherwise.

The engine calls a :class:`Progress`; the CLI picks :class:`RichProgress`
when stderr is a terminal and ``--quiet`` is not given, else :class:`NullProgress`.
"""

from __future__ import annotations

import threading
from typing import Any


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
    """Reports nothing (pipes, CI, library use)."""


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
                return super().render(task)

        class _Speed(TransferSpeedColumn):
            def render(self, task):
                return Text("") if task.fields.get("count") else super().render(task)

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
            return self.rp.add_task(label, total=size)

    def advance(self, task: Any, n: int) -> None:
        self.rp.advance(task, n)

    def finish(self, task: Any) -> None:
        with self._lock:
            self.rp.remove_task(task)

    def done_one(self) -> None:
        if self._total is not None:
            self.rp.advance(self._total, 1)

    def note(self, text: str) -> None:
        self.console.print(f"[dim]{text}[/dim]")

    def close(self) -> None:
        self.rp.stop()

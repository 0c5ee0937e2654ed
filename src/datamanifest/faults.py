"""Fault injection for crash tests: SIGKILL just before the n-th file-system mutation.

Switched on only by the environment, read once at import; when unset nothing is installed
and the cost is nil (``point`` is a no-op whose body is one global check).

``DATAMANIFEST_FAULT=<n>``
    The process kills itself (SIGKILL, no clean-up, no buffered output) just before its
    n-th mutation (1-based).
``DATAMANIFEST_FAULT_TRACE=<file>``
    Append one line per mutation to ``<file>``: ``<n> <event> <path>``. A sweep runs a
    command once with the trace on to learn how many mutations it makes, then once per
    ``n`` with ``DATAMANIFEST_FAULT=n``.
``DATAMANIFEST_FAULT_SIGNAL=INT``
    Send SIGINT instead (a Ctrl-C at that exact point, handled as any other: the command
    stops, cleans up and exits 130; LCK-008). Default ``KILL``.
``DATAMANIFEST_FAULT_ONLY=<prefix>[:<prefix>...]``
    Count only mutations of paths under these prefixes (default: every path except
    ``__pycache__`` folders, ``/dev`` and ``/proc``).

Mutations are observed with an audit hook (PEP 578) -- so library code is covered too --
and by explicit calls to :func:`point` where the audit events say nothing: ``fsync``
(no audit event) and object-store requests (``put``, ``delete``). The events counted:
``open`` for writing (create or truncate), ``os.rename`` (and replace), ``os.remove``
(and unlink), ``os.mkdir``, ``os.rmdir``, ``os.link``, ``os.symlink``, ``os.truncate``
and the explicit points. ``os.utime`` (lock heartbeats, on their own thread and clock) is
not counted, so a sweep is deterministic. ``design/2026-12-02-appends.md`` explains it.
"""

from __future__ import annotations

import os
import sys

_KILL_AT = 0
_SIGNAL = 9  # SIGKILL
_TRACE: str | None = None
_ONLY: tuple[str, ...] = ()
_COUNT = 0
ENABLED = False

_EVENTS = {"os.rename", "os.remove", "os.mkdir", "os.rmdir", "os.link", "os.symlink",
           "os.truncate"}
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | getattr(os, "O_APPEND", 0)


def _counted(path: object) -> bool:
    if isinstance(path, int):
        return False
    try:
        text = os.fsdecode(path)  # type: ignore[arg-type]
    except TypeError:
        return False
    if _TRACE is not None and text == _TRACE:
        return False
    if _ONLY:
        full = os.path.abspath(text)
        return any(full == p or full.startswith(p.rstrip("/") + "/") for p in _ONLY)
    return "__pycache__" not in text and not text.startswith(("/dev/", "/proc/"))


def _mutation(event: str, path: object) -> None:
    global _COUNT
    _COUNT += 1
    if _TRACE is not None:
        fd = os.open(_TRACE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, f"{_COUNT} {event} {os.fsdecode(path) if path else ''}\n".encode())
        finally:
            os.close(fd)
    if _KILL_AT and _COUNT == _KILL_AT:
        os.kill(os.getpid(), _SIGNAL)


def _hook(event: str, args: tuple) -> None:
    if event == "open":
        path, mode, flags = args
        if path is None:
            return
        if isinstance(mode, str):
            if not any(c in mode for c in "wax+"):
                return
        elif not (flags & _WRITE_FLAGS):
            return
        if _counted(path):
            _mutation("open", path)
    elif event in _EVENTS:
        if _counted(args[0]):
            _mutation(event[3:], args[0])


def point(event: str, path: object = "") -> None:
    """An explicit mutation point (``fsync``, ``put``, ``delete``): counted, and killed at,
    like the audited ones. A no-op unless the fault layer is switched on."""
    if ENABLED and (not path or _counted(path) or "://" in os.fsdecode(path)):
        _mutation(event, path)


def count() -> int:
    """Mutations counted so far in this process (0 when switched off)."""
    return _COUNT


def _install() -> None:
    global _KILL_AT, _TRACE, _ONLY, ENABLED, _SIGNAL
    at = os.environ.get("DATAMANIFEST_FAULT")
    trace = os.environ.get("DATAMANIFEST_FAULT_TRACE")
    if not at and not trace:
        return
    _KILL_AT = int(at) if at else 0
    import signal

    _SIGNAL = int(getattr(signal, "SIG" + os.environ.get("DATAMANIFEST_FAULT_SIGNAL", "KILL")))
    _TRACE = os.path.abspath(trace) if trace else None
    only = os.environ.get("DATAMANIFEST_FAULT_ONLY")
    _ONLY = tuple(os.path.abspath(p) for p in only.split(":") if p) if only else ()
    ENABLED = True
    sys.addaudithook(_hook)


_install()

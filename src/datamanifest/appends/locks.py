"""The append lock (SCHEMA.md §26.3, APP-020): its document, its parsing and the wait for it.

A lock holds LCK-001's line ``<pid> <host>`` and then a JSON document (``owner``, ``pid``,
``host``, ``created``); each kind of target (:mod:`datamanifest.appends.targets`) creates and
removes it its own way and waits through :func:`_wait_loop`.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import socket
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import LockTimeout
from ..interrupt import pid_alive

if TYPE_CHECKING:
    from .targets import AppendTarget


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class LockInfo:
    """A lock document (APP-020): ``owner``, ``pid``, ``host``, ``created``; ``age`` is
    seconds since its last heartbeat."""

    def __init__(self, doc: dict[str, Any], age: float, tag: Any = None) -> None:
        self.doc, self.age, self.tag = doc, age, tag

    @property
    def owner(self) -> str | None:
        return self.doc.get("owner")

    def describe(self) -> str:
        return f"pid {self.doc.get('pid')} on {self.doc.get('host')} since " \
               f"{self.doc.get('created')}"

    def stale(self, stale_age: float) -> bool:
        """APP-020: the holder's pid is not running on this host, or (another host) its
        heartbeat is older than ``stale_age`` seconds. A live holder on this host never is."""
        pid, host = self.doc.get("pid"), self.doc.get("host")
        if host == socket.gethostname() and isinstance(pid, int):
            return not pid_alive(pid)
        return self.age > stale_age


def lock_bytes(owner: str) -> bytes:
    """A lock's content (APP-020): LCK-001's line, then the JSON lock document."""
    doc = {"owner": owner, "pid": os.getpid(), "host": socket.gethostname(), "created": _now()}
    return f"{os.getpid()} {socket.gethostname()}\n{json.dumps(doc)}\n".encode()


def parse_lock(data: bytes) -> dict[str, Any]:
    """The lock document from a lock's bytes (first line ``<pid> <host>``, second JSON)."""
    text = data.decode("utf-8", "replace").splitlines()
    doc: dict[str, Any] = {}
    if len(text) > 1:
        try:
            doc = json.loads(text[1])
        except ValueError:
            doc = {}
    if not doc and text:
        parts = text[0].split()
        try:
            doc = {"pid": int(parts[0]), "host": parts[1] if len(parts) > 1 else ""}
        except (ValueError, IndexError):
            doc = {}
    return doc


class HeldLock:
    """A held append lock; ``took_over`` is the stale lock it replaced (LockInfo) if any."""

    def __init__(self, target: "AppendTarget", owner: str, took_over: LockInfo | None) -> None:
        self.target, self.owner, self.took_over = target, owner, took_over

    def still_held(self) -> bool:
        info = self.target.lock_info()
        return info is not None and info.owner == self.owner

    def release(self) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def __enter__(self) -> "HeldLock":
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _wait_loop(try_once: Callable[[], HeldLock | None], info: Callable[[], LockInfo | None],
               url: str, wait: bool, timeout: float | None, poll: float,
               on_wait: Callable[[str], None] | None) -> HeldLock:
    from ..interrupt import shielded

    start = time.monotonic()
    delay = min(poll, 0.01)
    told = False
    while True:
        held = None
        try:
            with shielded():  # a Ctrl-C never leaves a lock nobody will release (LCK-008)
                held = try_once()
        except KeyboardInterrupt:
            if held is not None:
                held.release()
            raise
        if held is not None:
            return held
        holder = info()
        who = holder.describe() if holder else "another writer"
        if not wait:
            raise LockTimeout(f"{url} is being appended to by {who}", code="DM131",
                              hint="wait for it (--wait), or try again later")
        if timeout is not None and time.monotonic() - start > timeout:
            raise LockTimeout(f"timed out after {timeout:g} s waiting for the lock of {url} "
                              f"(held by {who})", code="DM075",
                              hint="the holder is alive; a dead holder's lock is taken over "
                              "by itself (APP-020)")
        if not told and on_wait:
            told = True
            on_wait(who)
        time.sleep(delay)
        delay = min(delay * 1.5, poll)

"""The lock protocol (SCHEMA.md §7.3) with real processes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from datamanifest.errors import LockTimeout
from datamanifest.store.lock import Lock, is_stale


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


@pytest.mark.covers("LCK-001")
def test_lock_file_content_and_release(tmp_path: Path):
    path = tmp_path / "x.lock"
    with Lock(path):
        assert path.read_text() == f"{os.getpid()} {socket.gethostname()}\n"
    assert not path.exists()


def test_contender_times_out_with_dm075(tmp_path: Path):
    path = tmp_path / "x.lock"
    with Lock(path):
        with pytest.raises(LockTimeout) as exc:
            Lock(path, timeout=0.3).acquire()
    assert exc.value.code == "DM075" and "held by pid" in str(exc.value)


def test_stale_lock_of_dead_process_is_reclaimed(tmp_path: Path):
    path = tmp_path / "x.lock"
    path.write_text(f"{_dead_pid()} {socket.gethostname()}\n")
    old = time.time() - 10
    os.utime(path, (old, old))
    assert is_stale(path, stale_age=5)
    with Lock(path, stale_age=5, timeout=2):
        assert path.read_text().startswith(f"{os.getpid()} ")


def test_old_lock_of_live_process_is_not_reclaimed_early(tmp_path: Path):
    path = tmp_path / "x.lock"
    path.write_text(f"{os.getppid()} {socket.gethostname()}\n")  # a live pid
    old = time.time() - 10
    os.utime(path, (old, old))
    assert not is_stale(path, stale_age=5)  # alive and younger than 5 x stale_age
    old = time.time() - 30
    os.utime(path, (old, old))
    assert is_stale(path, stale_age=5)  # older than 5 x stale_age: reclaimable anywhere


@pytest.mark.covers("LCK-002")
def test_heartbeat_keeps_a_long_holder_fresh(tmp_path: Path):
    path = tmp_path / "x.lock"
    with Lock(path, stale_age=0.4):
        time.sleep(1.0)
        assert time.time() - path.stat().st_mtime < 0.4
        assert not is_stale(path, 0.4)


@pytest.mark.covers("LCK-004", "LCK-005")
def test_holder_killed_midway_is_reclaimed(tmp_path: Path):
    path = tmp_path / "x.lock"
    code = ("import sys,time; from datamanifest.store.lock import Lock; "
            f"l=Lock({str(path)!r}, stale_age=0.5).acquire(); print('held', flush=True); time.sleep(60)")
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "held"
    p.kill()
    p.wait()
    assert time.time() - path.stat().st_mtime < 0.5  # its heartbeat was fresh
    start = time.monotonic()
    with Lock(path, stale_age=0.5, timeout=10):
        waited = time.monotonic() - start
    assert waited < 0.3  # a dead pid's lock is stale at once, whatever its age


@pytest.mark.covers("LCK-004")
def test_a_dead_pids_lock_is_stale_at_once_a_live_ones_only_when_very_old(tmp_path: Path):
    path = tmp_path / "x.lock"
    path.write_text(f"{_dead_pid()} {socket.gethostname()}\n")
    assert is_stale(path, stale_age=30)  # just written: no stale age to wait out
    path.write_text(f"{_dead_pid()} another-host\n")
    assert not is_stale(path, stale_age=30)  # another host's pid says nothing here
    old = time.time() - 151
    os.utime(path, (old, old))
    assert is_stale(path, stale_age=30)  # 5 x stale age without a heartbeat


@pytest.mark.covers("LCK-004")
def test_an_empty_lock_is_stale_after_the_stale_age_only(tmp_path: Path):
    """A writer killed between creating its lock and writing its token leaves it empty
    (found by bench/chaos.py: `rm` then reported the object busy)."""
    path = tmp_path / "x.lock"
    path.write_text("")
    assert not is_stale(path, stale_age=5)  # fresh: its writer may be filling it now
    old = time.time() - 6
    os.utime(path, (old, old))
    assert is_stale(path, stale_age=5)
    with Lock(path, stale_age=5, timeout=2):
        assert path.read_text().startswith(f"{os.getpid()} ")


@pytest.mark.covers("LCK-005", "LCK-009")
def test_a_holder_never_removes_the_lock_that_replaced_its_own(tmp_path: Path):
    """A holder whose lock was removed (judged stale) and taken by another keeps its hands
    off the new lock on release, even when the new one reads the same (same pid)."""
    path = tmp_path / "x.lock"
    first = Lock(path).acquire()
    path.unlink()  # a reclaimer removed it
    second = Lock(path).acquire()  # same process: the same first line
    first.release()
    assert path.exists() and path.read_text() == f"{os.getpid()} {socket.gethostname()}\n"
    second.mark_publishing()
    assert path.read_text().splitlines()[1:] == ["publish"]  # LCK-009, through the held file
    second.release()
    assert not path.exists()

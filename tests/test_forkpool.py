"""The tree walk's fork pool (datamanifest.forkpool): answers, errors, dead and ended workers."""

from __future__ import annotations

import os
import signal
import time

import pytest

from datamanifest.forkpool import ForkPool, WorkerDied
from datamanifest.treescan import TreeWalkError

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")


def _gone(pids: list[int]) -> bool:
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        return False
    return True


def _work(kind: str, n: int):
    if kind == "square":
        return {"n": n, "square": [n * n, (n, b"x" * n)], "pid": os.getpid()}
    if kind == "error":
        raise TreeWalkError(f"bad {n}", hint="a hint")
    if kind == "unpicklable":
        class Local(Exception):
            pass
        raise Local("a class pickle cannot find")
    if kind == "die":
        os._exit(9)
    if kind == "sleep":
        time.sleep(60)
    raise AssertionError(kind)


def test_answers_come_back_to_their_calls_from_every_worker():
    pool = ForkPool(3, _work)
    pids = list(pool._pids)
    try:
        tasks = [pool.submit("square", n) for n in range(200)]
        # taken out of order: each result is its own call's
        got = [t.result() for t in reversed(tasks)][::-1]
    finally:
        pool.close()
    assert [g["n"] for g in got] == list(range(200))
    assert all(g["square"] == [n * n, (n, b"x" * n)] for n, g in enumerate(got))
    assert len({g["pid"] for g in got}) > 1 and os.getpid() not in {g["pid"] for g in got}
    assert _gone(pids)  # ended and reaped


def test_a_workers_exception_is_raised_by_its_result_and_the_pool_goes_on():
    pool = ForkPool(2, _work)
    try:
        bad = pool.submit("error", 7)
        good = pool.submit("square", 3)
        with pytest.raises(TreeWalkError) as e:
            bad.result()
        assert e.value.code == "DM120" and e.value.hint == "a hint" and "bad 7" in str(e.value)
        assert good.result()["square"][0] == 9
        with pytest.raises(RuntimeError, match="Local: a class pickle cannot find"):
            pool.submit("unpicklable", 0).result()
        assert pool.submit("square", 4).result()["n"] == 4
    finally:
        pool.close()


def test_a_dead_worker_is_an_error_not_a_hang():
    pool = ForkPool(1, _work)
    pids = list(pool._pids)
    try:
        with pytest.raises(WorkerDied):
            pool.submit("die", 0).result()
    finally:
        pool.terminate()
    assert _gone(pids)


def test_terminate_ends_busy_workers_at_once_and_they_ignore_sigint():
    pool = ForkPool(2, _work)
    pids = list(pool._pids)
    tasks = [pool.submit("sleep", 0) for _ in range(4)]
    time.sleep(0.2)
    for pid in pids:  # a Ctrl-C reaches the whole process group: the parent handles it
        os.kill(pid, signal.SIGINT)
    time.sleep(0.1)
    assert not _gone(pids)
    t = time.monotonic()
    pool.terminate()
    assert time.monotonic() - t < 2 and _gone(pids)
    assert not any(task._done for task in tasks)


def test_the_walk_ends_its_workers_on_an_error(tmp_path):
    from datamanifest.tree import walk

    for i in range(20):
        (tmp_path / f"d{i:02d}").mkdir()
        (tmp_path / f"d{i:02d}" / "f").write_bytes(b"x")
    os.mkfifo(tmp_path / "d13" / "pipe")
    before = _children()
    with pytest.raises(TreeWalkError, match="FIFO"):
        walk(tmp_path, "dandi-zarr", processes=True, jobs=2)
    assert _children() == before


def _children() -> set[int]:
    me = str(os.getpid())
    out = set()
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[1] == me:
                out.add(int(d))
    return out

"""The crash and concurrency harness of appends (used by ``tests/test_append.py`` for a
short run and ``bench/append_crash.py`` for the full one).

A trial copies a base target of ``k`` slices, runs one append of slice ``k`` in a child
process, kills it (SIGKILL just before its n-th file mutation, through
:mod:`datamanifest.faults`, or after a random delay) or interrupts it (SIGINT there: LCK-008
also wants the lock released and, before the commit point, the transaction rolled back at
once), and then, with no manual step, checks
that (i) ``xarray.open_zarr`` opens the target, (ii) it holds exactly ``k`` or ``k + 1``
slices equal to the inputs, (iii) the next append (of the slice at the length seen)
succeeds and (ii) holds again with one more, and (iv) nothing is left beside the target
but the versions, and the target at rest equals its latest recorded version.
"""

from __future__ import annotations

import functools
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..optional import APPEND, need
from ..testing import first_line

CHILD = r"""
import os, sys, time
import datamanifest.appends as A
target, source, step = sys.argv[1], sys.argv[2], sys.argv[3]
sys.stdout.write("READY\n"); sys.stdout.flush()
if os.environ.get("DM_HARNESS_GO"):
    sys.stdin.readline()
try:
    A.append(target, source, append_step=step or None,
             lock={"wait": os.environ.get("DM_HARNESS_NOWAIT") != "1", "stale_age": 5})
except Exception as e:  # the error is the result
    sys.stdout.write("ERROR " + getattr(e, "code", type(e).__name__) + " " + str(e) + "\n")
    sys.exit(3)
except KeyboardInterrupt:  # a SIGINT (DATAMANIFEST_FAULT_SIGNAL=INT): as the CLI exits
    sys.stdout.write("INTERRUPTED\n")
    sys.exit(130)
sys.stdout.write("DONE\n")
"""


def make_slice(i: int, shape: tuple[int, int] = (18, 36)):
    """Slice ``i``: one day (2020-01-01 + i), ``t2m`` (smooth plus noise) and ``tp``
    (gamma, many zeros) as float32 over ``shape`` (lat, lon)."""
    np = need("numpy", **APPEND)
    pd = need("pandas", **APPEND)
    xr = need("xarray", **APPEND)

    rng = np.random.default_rng(i)
    ny, nx = shape
    lat = np.linspace(-89.5, 89.5, ny)
    lon = np.linspace(0.5, 359.5, nx)
    field2 = (280 + 20 * np.cos(np.deg2rad(lat))[:, None] + rng.normal(0, 1, shape))
    tp = rng.gamma(0.3, 2.0, shape) * (rng.random(shape) > 0.6)
    return xr.Dataset(
        {"t2m": (("time", "lat", "lon"), field2[None].astype("f4"), {"units": "K"}),
         "tp": (("time", "lat", "lon"), tp[None].astype("f4"), {"units": "mm"})},
        coords={"time": pd.date_range("2020-01-01", periods=1) + pd.Timedelta(days=i),
                "lat": lat, "lon": lon})


def write_slices(folder: Path, n: int, shape: tuple[int, int] = (18, 36)) -> list[Path]:
    """NetCDF files ``s<i>.nc`` of slices 0..n-1 (written once)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        p = folder / f"s{i}.nc"
        if not p.exists():
            make_slice(i, shape).to_netcdf(p)
        out.append(p)
    return out


@functools.lru_cache(maxsize=8)
def expected(n: int, shape: tuple[int, int] = (18, 36)):
    """Slices 0..n-1 concatenated along time (cached: treat as read-only)."""
    xr = need("xarray", **APPEND)

    return xr.concat([make_slice(i, tuple(shape)) for i in range(n)], "time")


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("DATAMANIFEST_FAULT", None)
    env.pop("DATAMANIFEST_FAULT_TRACE", None)
    env.update(extra)
    return env


def run_child(target: Path, source: Path, *, step: str = "1D", env: dict | None = None,
              timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", CHILD, str(target), str(source), step],
                          env=env or _env(), capture_output=True, text=True, timeout=timeout)


def count_mutations(base: Path, work: Path, source: Path) -> list[str]:
    """The file mutations of one append of ``source`` to a copy of ``base`` (the trace)."""
    trial = _fresh(base, work)
    trace = work / "trace.txt"
    trace.unlink(missing_ok=True)
    r = run_child(trial / "cube.zarr", source,
                  env=_env(DATAMANIFEST_FAULT_TRACE=str(trace), DATAMANIFEST_FAULT_ONLY=str(trial)))
    if r.returncode != 0:
        raise RuntimeError(f"the calibration append failed: {r.stdout}{r.stderr}")
    return trace.read_text().splitlines()


def _fresh(base: Path, work: Path) -> Path:
    trial = work / "trial"
    shutil.rmtree(trial, ignore_errors=True)
    shutil.copytree(base, trial, symlinks=True)
    return trial


@dataclass
class Outcome:
    """One trial: ``length`` after the kill (None: unreadable), whether the child was
    ``killed``, and the verdicts."""

    point: Any
    killed: bool
    length: int | None
    consistent: bool
    continued: bool
    clean: bool
    reason: str = ""

    @property
    def corrupt(self) -> bool:
        return not self.consistent

    @property
    def blocked(self) -> bool:
        return self.consistent and not self.continued


def check(trial: Path, k0: int, slices: list[Path], shape, point: Any, killed: bool,
          interrupted: bool = False) -> Outcome:
    """(i)-(iv) of the module docstring on the target in ``trial``; ``interrupted`` (a
    SIGINT, not a kill): also no lock left, and no journal unless the root is already the
    new one (an interruption past the commit point, rolled forward by the next start)."""
    xr = need("xarray", **APPEND)

    target = trial / "cube.zarr"
    if interrupted:
        why = _after_interrupt(trial, target)
        if why:
            return Outcome(point, killed, None, False, False, False, why)
    want = expected(k0 + 2, shape)
    if k0 == 0 and not (target / "zarr.json").exists() and not (target / ".zmetadata").exists():
        n, ok, reason = 0, True, ""  # the creating append never committed: no cube yet
    else:
        try:
            with xr.open_zarr(target) as ds:
                ds = ds.load()
            n = ds.sizes["time"]
            ok = n in (k0, k0 + 1) and ds.identical(want.isel(time=slice(0, n)))
            reason = "" if ok else f"length {n} or values differ"
        except Exception as e:  # noqa: BLE001 - any failure to read is corruption
            return Outcome(point, killed, None, False, False, False, f"unreadable: {e}")
    if not ok:
        return Outcome(point, killed, n, False, False, False, reason)
    r = _next_append(target, slices[n])
    continued = False
    try:
        with xr.open_zarr(target) as ds2:
            ds2 = ds2.load()
        continued = r.returncode == 0 and ds2.sizes["time"] == n + 1 and \
            ds2.identical(want.isel(time=slice(0, n + 1)))
        if not continued:
            reason = f"next append: rc {r.returncode} {r.stdout[-300:]} {r.stderr[-300:]}"
    except Exception as e:  # noqa: BLE001
        reason = f"after the next append: {e}"
    clean = continued and _clean(trial, target)
    if continued and not clean:
        reason = f"left over: {_leftovers(trial)} or the target differs from its version"
    return Outcome(point, killed, n, True, continued, clean, reason)


def _after_interrupt(trial: Path, target: Path) -> str:
    """LCK-008 right after a SIGINT: '' when the lock is released and a journal remains only
    past the commit point."""
    from ..spec import appends

    lock = target.with_name(target.name + ".lock")
    if lock.exists():
        return f"the lock was not released: {lock.read_text()[:80]!r}"
    journal = target.with_name(target.name + ".journal.json")
    if journal.exists():
        doc = json.loads(journal.read_text())
        root = target / (doc.get("root") or "zarr.json")
        digest = appends.digest(root.read_bytes()) if root.exists() else None
        if digest != (doc.get("new") or {}).get("digest"):
            return "interrupted before its commit point, the transaction was not rolled back"
    return ""


def _next_append(target: Path, source: Path) -> subprocess.CompletedProcess:
    """The next append, in this process (it has everything imported already)."""
    from . import append

    try:
        append(target, source, append_step="1D", lock={"wait": False, "stale_age": 5})
        return subprocess.CompletedProcess([], 0, "", "")
    except Exception as e:  # noqa: BLE001 - reported as the outcome
        return subprocess.CompletedProcess([], 1, f"{getattr(e, 'code', '')} {e}", "")


def _leftovers(trial: Path) -> list[str]:
    return sorted(p.name for p in trial.iterdir() if p.name not in ("cube.zarr",
                                                                    "cube.zarr.versions"))


def _clean(trial: Path, target: Path) -> bool:
    from ..verify import verify_target

    if _leftovers(trial):
        return False
    r = verify_target(str(target), full=True)
    return r is not None and r.ok


def sweep(base: Path, work: Path, slices: list[Path], k0: int, shape,
          points: list[int] | None = None, log=None, sig: str = "KILL") -> list[Outcome]:
    """SIGKILL (or ``sig="INT"``: SIGINT) just before mutation n, for every n of one append
    (or ``points``)."""
    trace = count_mutations(base, work, slices[k0])
    out = []
    for n in points or range(1, len(trace) + 1):
        trial = _fresh(base, work)
        r = run_child(trial / "cube.zarr", slices[k0],
                      env=_env(DATAMANIFEST_FAULT=str(n), DATAMANIFEST_FAULT_ONLY=str(trial),
                               DATAMANIFEST_FAULT_SIGNAL=sig))
        stopped = r.returncode == (130 if sig == "INT" else -signal.SIGKILL)
        o = check(trial, k0, slices, shape, f"{n} {trace[n - 1].split()[1]}"
                  if n <= len(trace) else n, stopped, interrupted=sig == "INT")
        if sig == "INT" and "Traceback" in r.stderr:
            o = Outcome(o.point, o.killed, o.length, False, False, False,
                        "a traceback: " + r.stderr[-300:])
        out.append(o)
        if log:
            log(o)
    return out


def calibrate(base: Path, work: Path, source: Path, runs: int = 3) -> float:
    """Median seconds from GO to the end of one append (the random kills' window)."""
    times = []
    for _ in range(runs):
        trial = _fresh(base, work)
        p = _start(trial / "cube.zarr", source)
        t0 = time.perf_counter()
        p.stdin.write("GO\n")
        p.stdin.flush()
        p.wait(timeout=120)
        times.append(time.perf_counter() - t0)
    times.sort()
    return times[len(times) // 2]


def _start(target: Path, source: Path, *, nowait: bool = False) -> subprocess.Popen:
    env = _env(DM_HARNESS_GO="1", DM_HARNESS_NOWAIT="1" if nowait else "0")
    p = subprocess.Popen([sys.executable, "-c", CHILD, str(target), str(source), "1D"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env=env)
    line = first_line(p)
    if line.strip() != "READY":
        p.kill()
        raise RuntimeError(f"child did not start: {line} {p.stderr.read()}")
    return p


def random_kills(base: Path, work: Path, slices: list[Path], k0: int, shape, trials: int,
                 seed: int = 0, log=None) -> list[Outcome]:
    """SIGKILL at a random moment U(0, D) after GO (D: the calibrated append time)."""
    rng = random.Random(seed)
    window = calibrate(base, work, slices[k0])
    out = []
    for i in range(trials):
        trial = _fresh(base, work)
        p = _start(trial / "cube.zarr", slices[k0])
        delay = rng.uniform(0, window)
        p.stdin.write("GO\n")
        p.stdin.flush()
        time.sleep(delay)
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=60)
        rest = p.stdout.read()
        killed = "DONE" not in rest
        o = check(trial, k0, slices, shape, f"{delay * 1000:.1f} ms", killed)
        out.append(o)
        if log:
            log(o)
    return out


@dataclass
class RaceResult:
    landed: list[int] = field(default_factory=list)  # slice indices in target order
    errors: dict[int, str] = field(default_factory=dict)  # slice -> error code
    ok: bool = True
    reason: str = ""


def race(base: Path, work: Path, slices: list[Path], k0: int, shape, writers: int, *,
         nowait: bool = False, seed: int = 0) -> RaceResult:
    """``writers`` appenders of slices k0..k0+writers-1 released together (in a shuffled
    order, up to 20 ms apart). Every slice must land at most once, the target must hold
    its slices in label order, and each one that did not land must have failed with a
    clear error (DM164 late, DM131 busy under --no-wait)."""
    xr = need("xarray", **APPEND)

    rng = random.Random(seed)
    trial = _fresh(base, work)
    order = list(range(k0, k0 + writers))
    rng.shuffle(order)
    procs = {i: _start(trial / "cube.zarr", slices[i], nowait=nowait) for i in order}
    for i in order:
        procs[i].stdin.write("GO\n")
        procs[i].stdin.flush()
        time.sleep(rng.uniform(0, 0.02))
    res = RaceResult()
    outs = {}
    for i, p in procs.items():
        out, err = p.communicate(timeout=120)
        outs[i] = (p.returncode, out, err)
    want = expected(k0 + writers, shape)
    with xr.open_zarr(trial / "cube.zarr") as ds:
        ds = ds.load()
    times = ds.time.values[k0:].astype("datetime64[ns]").astype("int64").tolist()
    index = {int(t): i for i, t in enumerate(
        want.time.values.astype("datetime64[ns]").astype("int64"))}
    res.landed = [index.get(t, -1) for t in times]
    for i, (rc, out, err) in outs.items():
        if rc != 0:
            code = out.split()[1] if out.startswith("READY") and "ERROR" in out else "?"
            for line in out.splitlines():
                if line.startswith("ERROR"):
                    code = line.split()[1]
            res.errors[i] = code
    landed_set = set(res.landed)
    if -1 in landed_set or len(landed_set) != len(res.landed):
        res.ok, res.reason = False, f"unknown or repeated slices {res.landed}"
    elif res.landed != sorted(res.landed):
        res.ok, res.reason = False, f"out of order {res.landed}"
    elif not ds.isel(time=slice(k0, None)).identical(
            xr.concat([want.isel(time=[i]) for i in res.landed], "time")
            if res.landed else want.isel(time=slice(0, 0))):
        res.ok, res.reason = False, "values differ"
    else:
        for i in order:
            if (i in landed_set) == (i in res.errors):
                res.ok, res.reason = False, f"slice {i}: landed and failed, or neither"
            elif i in res.errors and res.errors[i] not in ("DM164", "DM131"):
                res.ok, res.reason = False, f"slice {i} failed with {res.errors[i]}"
    return res


def summary(outcomes: list[Outcome], k0: int) -> dict[str, int]:
    """Counts: trials, killed before the end, k and k+1 after the kill, corrupt, blocked
    (consistent but the next append failed), left over (files beside the target, or the
    target differs from its version), recovered (everything held)."""
    return {"trials": len(outcomes), "killed": sum(o.killed for o in outcomes),
            "k": sum(o.consistent and o.length == k0 for o in outcomes),
            "k+1": sum(o.consistent and o.length == k0 + 1 for o in outcomes),
            "corrupt": sum(o.corrupt for o in outcomes),
            "blocked": sum(o.blocked for o in outcomes),
            "left_over": sum(o.continued and not o.clean for o in outcomes),
            "recovered": sum(o.continued and o.clean for o in outcomes)}


def build_base(folder: Path, slices: list[Path], k0: int, **options: Any) -> Path:
    """A base target of ``k0`` slices in ``folder/cube.zarr`` (built once)."""
    from . import append

    folder.mkdir(parents=True, exist_ok=True)
    marker = folder.with_name(folder.name + ".built")
    if marker.exists() and json.loads(marker.read_text()) == {"k0": k0, **options}:
        return folder
    shutil.rmtree(folder / "cube.zarr", ignore_errors=True)
    shutil.rmtree(folder / "cube.zarr.versions", ignore_errors=True)
    append(folder / "cube.zarr", slices[:k0], append_step="1D", **options)
    marker.write_text(json.dumps({"k0": k0, **options}))
    return folder

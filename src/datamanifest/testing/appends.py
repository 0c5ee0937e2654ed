"""The append scenarios of the crash harness: slices, a base target, the judge of a cube after
a kill, and writers racing (used by ``tests/test_append.py`` for a short run and
``bench/append_crash.py`` for the full one).

A trial copies a base target of ``k`` slices, runs one append of slice ``k`` in a child
(:class:`AppendScenario` through :mod:`datamanifest.testing.crash`), stops it, and then,
with no manual step, checks that (i) ``xarray.open_zarr`` opens the target, (ii) it holds
exactly ``k`` or ``k + 1`` slices equal to the inputs, (iii) the next append (of the slice
at the length seen) succeeds and (ii) holds again with one more, and (iv) nothing is left
beside the target but its versions, and the target at rest equals its latest recorded
version. After a SIGINT (LCK-008) the lock must also be released and, before the commit
point, the transaction rolled back at once.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..optional import APPEND, need
from . import crash
from .crash import Verdict

#: names a trial may hold besides the target (the isolated home of its children)
_BESIDE = ("cube.zarr", "cube.zarr.versions", "home")


def make_slice(i: int, shape: tuple[int, int] = (18, 36)):
    """Slice ``i``: one day (2020-01-01 + i) of ``t2m`` and ``tp``.

    Parameters
    ----------
    i : int
        The slice's index (its day, and the seed of its values).
    shape : (int, int)
        (lat, lon) points.

    Returns
    -------
    xarray.Dataset
        ``t2m`` (smooth plus noise, K) and ``tp`` (gamma, many zeros, mm) as float32 of
        shape (1, lat, lon).
    """
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
    """NetCDF files ``s<i>.nc`` of slices 0..n-1 in ``folder`` (each written once)."""
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


def build_base(folder: Path, slices: Sequence[Path], k0: int, **options: Any) -> Path:
    """A base folder holding a target of ``k0`` slices, ``folder/cube.zarr`` (built once;
    ``options`` go to :func:`datamanifest.append`)."""
    from ..appends import append

    folder.mkdir(parents=True, exist_ok=True)
    marker = folder.with_name(folder.name + ".built")
    if marker.exists() and json.loads(marker.read_text()) == {"k0": k0, **options}:
        return folder
    shutil.rmtree(folder / "cube.zarr", ignore_errors=True)
    shutil.rmtree(folder / "cube.zarr.versions", ignore_errors=True)
    append(folder / "cube.zarr", list(slices[:k0]), append_step="1D", **options)
    marker.write_text(json.dumps({"k0": k0, **options}))
    return folder


def run_append(target: str | Path, source: Path, *, step: str = "1D",
               env: dict[str, str] | None = None, timeout: float = 120
               ) -> subprocess.CompletedProcess:
    """One append in a child process (the harness's child), to its end; ``env`` replaces
    the environment (default: this one without the fault layer's variables)."""
    from .faults import VARIABLES

    env = env if env is not None else {k: v for k, v in os.environ.items()
                                       if k not in VARIABLES}
    return subprocess.run([sys.executable, "-c", crash.CHILD, "--append", str(target),
                           str(source), step], env=env, capture_output=True, text=True,
                          timeout=timeout)


def next_append(target: Path, source: Path) -> subprocess.CompletedProcess:
    """The next append, in this process (it has everything imported already); the error,
    if any, is the result (return code 1, ``code message`` as stdout)."""
    from ..appends import append

    try:
        append(target, source, append_step="1D", lock={"wait": False, "stale_age": 5})
        return subprocess.CompletedProcess([], 0, "", "")
    except Exception as e:  # noqa: BLE001 - reported as the outcome
        return subprocess.CompletedProcess([], 1, f"{getattr(e, 'code', '')} {e}", "")


def leftovers(trial: Path) -> list[str]:
    """What the trial holds besides the target and its versions."""
    return sorted(p.name for p in trial.iterdir() if p.name not in _BESIDE)


@dataclass
class AppendScenario(crash.Scenario):
    """One append of slice ``k0`` (or ``source``) to ``<trial>/cube.zarr``.

    Parameters
    ----------
    slices : sequence of Path
        The slices' files (:func:`write_slices`).
    k0 : int
        The base target's length.
    shape : (int, int)
        The slices' shape.
    source : Path, optional
        What the append adds (default: ``slices[k0]``).
    name : str
        The scenario's name.
    """

    slices: Sequence[Path]
    k0: int
    shape: tuple[int, int] = (18, 36)
    source: Path | None = None
    name: str = "append"
    nowait: bool = False

    def command(self, trial: Path) -> list[str]:
        return ["--append", str(trial / "cube.zarr"), str(self.source or self.slices[self.k0]),
                "1D"]

    def environment(self, trial: Path) -> dict[str, str]:
        return {"DM_CRASH_NOWAIT": "1"} if self.nowait else {}

    def interrupted(self, trial: Path, result: subprocess.CompletedProcess) -> str:
        """LCK-008: exit 130 without a traceback, the lock released, and a journal left only
        past the commit point."""
        why = super().interrupted(trial, result)
        if why:
            return why
        from ..spec import appends

        target = trial / "cube.zarr"
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

    def judge(self, trial: Path, point: str, killed: bool, *, partner_ok: bool = True
              ) -> Verdict:
        """(i)-(iv) of the module docstring on the target in ``trial``."""
        xr = need("xarray", **APPEND)

        k0, target = self.k0, trial / "cube.zarr"
        want = expected(k0 + 2, tuple(self.shape))
        if k0 == 0 and not (target / "zarr.json").exists() and \
                not (target / ".zmetadata").exists():
            n, ok, reason = 0, True, ""  # the creating append never committed: no cube yet
        else:
            try:
                with xr.open_zarr(target) as ds:
                    ds = ds.load()
                n = ds.sizes["time"]
                ok = n in (k0, k0 + 1) and ds.identical(want.isel(time=slice(0, n)))
                reason = "" if ok else f"length {n} or values differ"
            except Exception as e:  # noqa: BLE001 - any failure to read is corruption
                return Verdict(point, killed, False, reason=f"unreadable: {e}")
        if not ok:
            return Verdict(point, killed, False, reason=reason, length=n)
        r = next_append(target, self.slices[n])
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
            reason = f"left over: {leftovers(trial)} or the target differs from its version"
        return Verdict(point, killed, True, continued, clean, reason, length=n)


def _clean(trial: Path, target: Path) -> bool:
    from ..verify import verify_target

    if leftovers(trial):
        return False
    r = verify_target(str(target), full=True)
    return r is not None and r.ok


def lengths(outcomes: Sequence[Verdict], k0: int) -> dict[str, int]:
    """:func:`~datamanifest.testing.crash.summary` plus ``k`` and ``k+1``: the consistent
    trials whose target held ``k0`` (the append was lost) or ``k0 + 1`` slices (landed)."""
    return {**crash.summary(outcomes),
            "k": sum(o.consistent and o.length == k0 for o in outcomes),
            "k+1": sum(o.consistent and o.length == k0 + 1 for o in outcomes)}


@dataclass
class RaceResult:
    """A race's verdict: the slices ``landed`` in target order, the ``errors`` (slice ->
    error code) of those that did not, and whether the race passed (``ok``, ``reason``)."""

    landed: list[int] = field(default_factory=list)
    errors: dict[int, str] = field(default_factory=dict)
    ok: bool = True
    reason: str = ""


def race(scenario: AppendScenario, base: Path, work: Path, writers: int, *, seed: int = 0
         ) -> RaceResult:
    """``writers`` appenders of slices k0..k0+writers-1 released together (shuffled, up to
    20 ms apart). Every slice must land at most once, the target must hold its slices in
    label order, and each one that did not land must have failed with a clear error (DM164
    late, DM131 busy when ``scenario.nowait``)."""
    xr = need("xarray", **APPEND)

    k0 = scenario.k0
    trial = crash.fresh(base, work)
    target = str(trial / "cube.zarr")
    argvs = [["--append", target, str(scenario.slices[i]), "1D"]
             for i in range(k0, k0 + writers)]
    results = crash.race(scenario, trial, argvs, seed=seed)
    res = RaceResult()
    want = expected(k0 + writers, tuple(scenario.shape))
    with xr.open_zarr(target) as ds:
        ds = ds.load()
    times = ds.time.values[k0:].astype("datetime64[ns]").astype("int64").tolist()
    index = {int(t): i for i, t in enumerate(
        want.time.values.astype("datetime64[ns]").astype("int64"))}
    res.landed = [index.get(t, -1) for t in times]
    for i, r in zip(range(k0, k0 + writers), results):
        if r.returncode != 0:
            codes = [line.split()[1] for line in r.stdout.splitlines()
                     if line.startswith("ERROR") and len(line.split()) > 1]
            res.errors[i] = codes[-1] if codes else "?"
    landed = set(res.landed)
    if -1 in landed or len(landed) != len(res.landed):
        res.ok, res.reason = False, f"unknown or repeated slices {res.landed}"
    elif res.landed != sorted(res.landed):
        res.ok, res.reason = False, f"out of order {res.landed}"
    elif not ds.isel(time=slice(k0, None)).identical(
            xr.concat([want.isel(time=[i]) for i in res.landed], "time")
            if res.landed else want.isel(time=slice(0, 0))):
        res.ok, res.reason = False, "values differ"
    else:
        for i in range(k0, k0 + writers):
            if (i in landed) == (i in res.errors):
                res.ok, res.reason = False, f"slice {i}: landed and failed, or neither"
            elif i in res.errors and res.errors[i] not in ("DM164", "DM131"):
                res.ok, res.reason = False, f"slice {i} failed with {res.errors[i]}"
    return res


__all__ = ["AppendScenario", "RaceResult", "make_slice", "write_slices", "expected",
           "build_base", "run_append", "next_append", "leftovers", "lengths", "race"]

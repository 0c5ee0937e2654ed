"""The full crash and concurrency harness of appends (issue 12; tests/test_append.py runs a
short version of the same harness: datamanifest.testing.crash, the one trial runner, with
the append scenarios of datamanifest.testing.appends).

    python bench/append_crash.py [--random 200] [--races 20] [--shape 180 360]

1. **Sweep**: for one append of slice k = 10 to a base target of 10 slices, SIGKILL just
   before every file mutation (the fault layer, DATAMANIFEST_FAULT=n), n = 1..N; the same
   for the append that creates the target, and for an append over a partial chunk (chunks
   of 4 steps along time, so it replaces one chunk and backs it up first).
2. **Random kills**: SIGKILL to the appender's process group at U(0, D) after GO, D the
   calibrated time of one append.
3. **Races**: 2 and 4 appenders released together (up to 20 ms apart, shuffled), waiting
   for the lock and with --no-wait.

After each kill, with no manual step, the harness checks: the target opens with
``xarray.open_zarr``; it holds exactly k or k+1 slices equal to the inputs; the next append
succeeds and holds k+1 or k+2 equal slices; nothing is left beside the target; the target
at rest equals its latest recorded version (``verify --full``). A race passes when every
slice landed at most once, in label order, with equal values, and every slice that did not
land failed with DM164 (late) or DM131 (busy, --no-wait).

Prints the counts: trials, killed, k / k+1 after the kill, corrupt, blocked, left over,
recovered. The goal is 0 corrupt, 0 blocked, 0 left over, 0 lost or out of order.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / ".cache" / "bench-append-crash"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--random", type=int, default=200, help="random kills (default 200)")
    ap.add_argument("--races", type=int, default=20, help="trials per race kind")
    ap.add_argument("--shape", type=int, nargs=2, default=(180, 360), metavar=("NY", "NX"))
    ap.add_argument("--k0", type=int, default=10)
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    import warnings

    warnings.simplefilter("ignore")
    from datamanifest import appends as api
    from datamanifest.testing import appends as harness, crash

    shape = tuple(args.shape)
    k0 = args.k0
    slices = harness.write_slices(DATA / f"slices-{shape[0]}x{shape[1]}", k0 + 6, shape)
    work = Path(tempfile.mkdtemp(prefix="dm-crash-", dir=DATA))
    base = harness.build_base(DATA / f"base-{shape[0]}x{shape[1]}-{k0}", slices, k0)

    def log(o):
        if args.verbose or not o.clean:
            print(f"    {o.point}: {'killed' if o.killed else 'finished'}, length {o.length}, "
                  f"{'ok' if o.clean else 'FAIL ' + o.reason}", flush=True)

    report: list[tuple[str, dict]] = []
    try:
        t0 = time.time()
        print(f"sweep: every mutation of the append of slice {k0}", flush=True)
        scenario = harness.AppendScenario(slices, k0, shape)
        out = crash.sweep(scenario, base, work, log=log)
        report.append(("sweep, existing target", harness.lengths(out, k0)))

        print("sweep: every mutation of the append that creates the target", flush=True)
        empty = DATA / "empty"
        empty.mkdir(exist_ok=True)
        out = crash.sweep(harness.AppendScenario(slices, 0, shape), empty, work, log=log)
        report.append(("sweep, creating append", harness.lengths(out, 0)))

        print("sweep: every mutation of an append over a partial chunk", flush=True)
        partial = DATA / f"partial-{shape[0]}x{shape[1]}-{k0}"
        if not (partial / "cube.zarr").exists():
            partial.mkdir(parents=True, exist_ok=True)
            cfg = {"variables": {"*": {"encoding": {"chunks": [4, *shape]}},
                                 "time": {"encoding": {"chunks": [4]}},
                                 "lat": {"encoding": {"chunks": False}},
                                 "lon": {"encoding": {"chunks": False}}}}
            api.append(partial / "cube.zarr", slices[:k0], cfg, append_step="1D")
        out = crash.sweep(scenario, partial, work, log=log)
        report.append(("sweep, partial chunk", harness.lengths(out, k0)))

        print(f"random kills: {args.random}", flush=True)
        out = crash.random_kills(scenario, base, work, args.random, seed=12, log=log)
        report.append(("random kills", harness.lengths(out, k0)))

        races = []
        for writers in (2, 4):
            for nowait in (False, True):
                bad = lost = 0
                outcomes = {"all landed": 0, "some refused": 0}
                for seed in range(args.races):
                    racing = harness.AppendScenario(slices, k0, shape, nowait=nowait)
                    r = harness.race(racing, base, work, writers, seed=seed)
                    bad += not r.ok
                    if not r.ok:
                        print(f"    race {writers} {'no-wait' if nowait else 'wait'} seed "
                              f"{seed}: FAIL {r.reason}", flush=True)
                    lost += writers - len(r.landed) - len(r.errors)
                    outcomes["all landed" if not r.errors else "some refused"] += 1
                races.append((writers, nowait, args.races, bad, lost, outcomes))
        elapsed = time.time() - t0
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"\ncrash trials (target {shape[0]}x{shape[1]}, k = {k0}), {elapsed:.0f} s")
    cols = ["trials", "killed", "k", "k+1", "corrupt", "blocked", "left_over", "recovered"]
    print(f"{'run':<26}" + "".join(f"{c:>10}" for c in cols))
    for name, s in report:
        print(f"{name:<26}" + "".join(f"{s[c]:>10}" for c in cols))
    print("\nraces (every slice once, in label order, or refused with DM164/DM131)")
    print(f"{'writers':<8}{'mode':<9}{'trials':>7}{'failed':>8}{'lost':>6}  outcomes")
    for writers, nowait, n, bad, lost, outcomes in races:
        print(f"{writers:<8}{'no-wait' if nowait else 'wait':<9}{n:>7}{bad:>8}{lost:>6}  "
              + ", ".join(f"{v} {k}" for k, v in outcomes.items()))


if __name__ == "__main__":
    main()

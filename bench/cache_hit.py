"""The cost of a cache hit and of a miss, side by side: datamanifest, joblib.Memory and
datamanifestpy (the ecosystem's Python tool), for stores of 10, 1,000 and 10,000 instances.

    python bench/cache_hit.py [--sizes 10,1000,10000] [--repeat 300]

Each tool runs in its own process. The function is trivial (it returns a small dict), so a
miss measures what the tool adds to the function's own time. Our store and joblib's are
filled by real calls; datamanifestpy's is written directly in its layout (artifact
folders and its state file), because filling it by calls costs O(n^2) (its weak point:
every call reads the whole state file). datamanifestpy lives in a venv of its own under
``.cache/bench-datamanifestpy`` (made on first use: it installs a package also named
``datamanifest``). Targets (issue 9): a hit no dearer than joblib's at every size, flat in
the number of instances (within 1.5x from 10 to 10,000); a miss under 5 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PEER_VENV = ROOT / ".cache" / "bench-datamanifestpy"

MODULE = '''
def f(i, tag="bench"):
    return {"i": i, "tag": tag, "values": [i, i + 1, i + 2]}
'''


def _timed(fn, keys) -> list[float]:
    out = []
    for k in keys:
        t = time.perf_counter()
        fn(k)
        out.append(time.perf_counter() - t)
    return out


def worker(tool: str, size: int, work: Path, repeat: int) -> dict:
    """Run inside the tool's process: fill (when needed), then time hits and misses."""
    os.chdir(work)
    sys.path.insert(0, str(work))
    import random

    import bench_mod

    if tool == "datamanifest":
        import datamanifest

        cf = datamanifest.cached(cachetype="bench.f")(bench_mod.f)
        call = lambda k: cf(i=k)  # noqa: E731
    elif tool == "joblib":
        import joblib

        mem = joblib.Memory(str(work / "joblib"), verbose=0)
        jf = mem.cache(bench_mod.f)
        call = lambda k: jf(i=k)  # noqa: E731
    else:
        from datamanifest.cache import cached

        pf = cached(cachetype="bench.f")(bench_mod.f)
        call = lambda k: pf(i=k)  # noqa: E731
    fill = 0.0
    if tool != "datamanifestpy" and not (work / f".filled-{tool}").exists():
        t = time.perf_counter()
        for i in range(size):
            call(i)
        fill = time.perf_counter() - t
        (work / f".filled-{tool}").write_text("")
    call(0)  # warm: imports, project resolution
    rng = random.Random(1)
    keys = [rng.randrange(size) for _ in range(repeat)]
    cold = None
    if tool == "datamanifest":
        # a hit on an instance this process has not judged yet: the verdict memo (PRD-020
        # verdicts by file identity) emptied before each call, so small stores get no help
        from datamanifest.cache import artifact

        def cold_call(k):
            artifact._VERDICTS.clear()
            call(k)
        cold = _timed(cold_call, keys)
    hits = _timed(call, keys)
    misses = _timed(call, [size + 10_000_000 + j for j in range(min(repeat, 200))])
    own = _timed(bench_mod.f, range(repeat))
    return {"fill_s": fill, "hit": hits, "cold": cold, "miss": misses, "own": own}


def _fill_datamanifestpy(work: Path, size: int) -> None:
    """Write ``size`` artifacts and their state records in datamanifestpy's layout."""
    code = r'''
import os, pickle, sys, tomli_w
from datamanifest.cache import param_hash
work, size = sys.argv[1], int(sys.argv[2])
inst = {}
for i in range(size):
    table = {"i": i, "tag": "bench"}
    h = param_hash(table)
    d = os.path.join(work, "cache", "bench.f", h)
    os.makedirs(d)
    with open(os.path.join(d, "config.toml"), "w") as f:
        f.write(tomli_w.dumps({**table, "_META": {"schema": 1, "cachetype": "bench.f", "hash": h}}))
    with open(os.path.join(d, "data.pickle"), "wb") as f:
        pickle.dump({"i": i, "tag": "bench", "values": [i, i + 1, i + 2]}, f)
    open(os.path.join(d, ".complete"), "w").close()
    inst[h] = f"cache/bench.f/{h}"
os.makedirs(os.path.join(work, ".datamanifest"), exist_ok=True)
doc = {"_META": {"schema": 5},
       "datacache": {"bench.f": {"ref": "bench_mod:f", "format": "pickle", "instances": inst}}}
with open(os.path.join(work, ".datamanifest", "state.toml"), "w") as f:
    f.write(tomli_w.dumps(doc))
'''
    subprocess.run([str(PEER_VENV / "bin" / "python"), "-c", code, str(work), str(size)],
                   check=True)


def _peer_python() -> str | None:
    py = PEER_VENV / "bin" / "python"
    if not py.exists():
        print("making a venv for datamanifestpy in .cache/bench-datamanifestpy ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
        r = subprocess.run([str(py), "-m", "pip", "install", "-q", "datamanifestpy", "tomli-w"],
                           capture_output=True, text=True)
        if r.returncode != 0:
            print("datamanifestpy could not be installed; it is left out:", r.stderr[-500:])
            shutil.rmtree(PEER_VENV, ignore_errors=True)
            return None
    return str(py)


def run_tool(tool: str, python: str, size: int, repeat: int, base: Path) -> dict:
    work = base / f"{tool}-{size}"
    work.mkdir(parents=True)
    (work / "datamanifest.toml").write_text('[_META]\nschema = 1\n\n[_STORAGE]\n'
                                            'datacache_dir = "cache"\n')
    (work / "bench_mod.py").write_text(MODULE)
    if tool == "datamanifestpy":
        _fill_datamanifestpy(work, size)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATAMANIFEST_")}
    env["PYTHONPATH"] = "" if tool == "datamanifestpy" else str(ROOT / "src")
    out = subprocess.run([python, __file__, "--worker", tool, "--size", str(size),
                          "--dir", str(work), "--repeat", str(repeat)],
                         capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise SystemExit(f"{tool} worker failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10,1000,10000")
    ap.add_argument("--repeat", type=int, default=300)
    ap.add_argument("--worker")
    ap.add_argument("--size", type=int)
    ap.add_argument("--dir")
    ap.add_argument("--keep", action="store_true", help="keep the stores (prints where)")
    ap.add_argument("--tools", default="datamanifest,joblib,datamanifestpy",
                    help="which tools to run (comma-separated)")
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.size, Path(args.dir), args.repeat)))
        return 0
    sizes = [int(s) for s in args.sizes.split(",")]
    wanted = args.tools.split(",")
    tools = [(t, sys.executable) for t in ("datamanifest", "joblib") if t in wanted]
    peer = _peer_python() if "datamanifestpy" in wanted else None
    if peer:
        tools.append(("datamanifestpy", peer))
    base = Path(tempfile.mkdtemp(prefix="dm-cache-bench-", dir=ROOT / ".cache"
                                 if (ROOT / ".cache").is_dir() else None))
    results: dict[tuple[str, int], dict] = {}
    try:
        for size in sizes:
            for tool, py in tools:
                print(f"  {tool:15s} {size:>6} instances ...", flush=True, end="")
                t = time.perf_counter()
                results[(tool, size)] = run_tool(tool, py, size, args.repeat, base)
                print(f" {time.perf_counter() - t:.1f} s", flush=True)
    finally:
        if args.keep:
            print("stores kept in", base)
        else:
            shutil.rmtree(base, ignore_errors=True)

    def ms(xs: list[float], q: float = 0.5) -> float:
        return statistics.quantiles(xs, n=100)[int(q * 100) - 1] * 1000 if q != 0.5 else \
            statistics.median(xs) * 1000

    print("\ncost per call, milliseconds (median / 90th percentile); miss = call - function's"
          " own time")
    head = f"{'instances':>10} | " + " | ".join(f"{t + ' hit':>22}" for t, _ in tools) + " | " + \
        " | ".join(f"{t + ' miss':>22}" for t, _ in tools)
    print(head)
    print("-" * len(head))
    for size in sizes:
        cells = []
        for kind in ("hit", "miss"):
            for tool, _ in tools:
                r = results[(tool, size)]
                own = statistics.median(r["own"]) * 1000
                med, p90 = ms(r[kind]), ms(r[kind], 0.9)
                if kind == "miss":
                    med, p90 = med - own, p90 - own
                cells.append(f"{med:9.3f} / {p90:9.3f}")
        print(f"{size:>10} | " + " | ".join(f"{c:>22}" for c in cells))
    ours = [statistics.median(results[("datamanifest", s)]["hit"]) for s in sizes]
    cold = [statistics.median(results[("datamanifest", s)]["cold"]) for s in sizes]
    jl = [statistics.median(results[("joblib", s)]["hit"]) for s in sizes]
    print("our cold hit (an instance not yet judged in this process; ms, median / 90th): " +
          ", ".join(f"{ms(results[('datamanifest', s)]['cold']):.3f} / "
                    f"{ms(results[('datamanifest', s)]['cold'], 0.9):.3f} at {s}"
                    for s in sizes))
    print("\nour hit / joblib hit: " + ", ".join(f"{o / j:.2f}x at {s}" for o, j, s
                                                 in zip(ours, jl, sizes)))
    print("our cold hit / joblib hit: " + ", ".join(f"{o / j:.2f}x at {s}" for o, j, s
                                                   in zip(cold, jl, sizes)))
    print(f"our hit, largest / smallest store: {ours[-1] / ours[0]:.2f}x; cold: "
          f"{cold[-1] / cold[0]:.2f}x")
    misses = [statistics.median(results[("datamanifest", s)]["miss"]) * 1000 for s in sizes]
    print("our miss (median, ms): " + ", ".join(f"{m:.2f} at {s}" for m, s in zip(misses, sizes)))
    for s in sizes:
        print(f"filling {s} instances by calls: datamanifest "
              f"{results[('datamanifest', s)]['fill_s']:.1f} s, joblib "
              f"{results[('joblib', s)]['fill_s']:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

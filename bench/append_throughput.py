"""Appends of 200 slices to a Zarr cube, side by side in one run (issue 12; the anchors are in
shared/reference/append-anchors.md).

    python bench/append_throughput.py [--rounds 3] [--slices 200] [--skip-zappend]
                                      [--quick] [--json PATH]

The cube: 200 daily slices, time = 1, lat 180, lon 360 (float64 coordinates), two float32
variables ``t2m`` (smooth field plus noise) and ``tp`` (gamma, many zeros), seeded; chunks
(1, 180, 360), 1 for time. "mem" rows append ``xarray.Dataset`` objects built beforehand;
"nc" rows read NetCDF4 files written once (under .cache/bench-append/). Each figure is the
median over ``--rounds`` fresh processes (tools alternated), time taken inside the process
after imports, in ms per slice; the CLI row is wall time, imports included.

Rows: datamanifest (API mem, API nc, CLI one process for all files), xarray ``to_zarr``
with ``append_dim`` on zarr 3 (this venv), zappend 0.8 in a Python 3.12 venv of its own
pinned to ``zarr<3`` and ``xarray<2026.9`` (.cache/bench-zappend, made on first use; the
row is left out when it does not install), and the floor: zstd-0 chunk files written with
``tofile`` plus one JSON manifest replaced atomically (tmp + ``os.replace``).

Also printed: our median time per step of APP-022 (check, encode, journal, chunks, flush,
commit, metadata, version, cleanup) and the commit step -- journal + flush + commit point +
metadata + cleanup -- against the floor's commit (its manifest replace).

Targets (issue 24): at most 10 ms per slice; the commit step at most 2 ms over the floor's.
--quick: 20 slices, one round, no zappend (a smoke test). --json PATH: the benchmark's entry
for bench/results.json, with its ``figures`` rows.
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
DATA = ROOT / ".cache" / "bench-append"
PEER = ROOT / ".cache" / "bench-zappend"
PEER_PACKAGES = ["zappend==0.8.0", "zarr<3", "xarray<2026.9", "numcodecs<0.16", "dask",
                 "netCDF4", "numpy", "fsspec", "pandas"]

SLICE = r'''
import numpy as np, pandas as pd, xarray as xr
def make(i):
    rng = np.random.default_rng(i)
    lat = np.linspace(-89.5, 89.5, 180); lon = np.linspace(0.5, 359.5, 360)
    base = 280 + 20 * np.cos(np.deg2rad(lat))[:, None] + 5 * np.sin(np.deg2rad(lon))[None, :]
    t2m = (base + rng.normal(0, 1, (180, 360))).astype("f4")[None]
    tp = (rng.gamma(0.3, 2.0, (180, 360)) * (rng.random((180, 360)) > 0.6)).astype("f4")[None]
    return xr.Dataset({"t2m": (("time", "lat", "lon"), t2m, {"units": "K"}),
                       "tp": (("time", "lat", "lon"), tp, {"units": "mm"})},
                      coords={"time": pd.date_range("2020-01-01", periods=1)
                              + pd.Timedelta(days=i), "lat": lat, "lon": lon})
'''

CHILDREN = {
    "datamanifest": SLICE + r'''
import sys, time, json, statistics, warnings
warnings.simplefilter("ignore")
import datamanifest
target, n, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
items = [make(i) for i in range(n)] if mode == "mem" else \
    [f"{sys.argv[4]}/s{i:03d}.nc" for i in range(n)]
datamanifest.append(target, items[0], append_step="1D")  # warm: the first creates
t0 = time.perf_counter()
results = datamanifest.append(target, items[1:], append_step="1D")
dt = time.perf_counter() - t0
phases = {k: statistics.median(r.phases[k] for r in results) for k in results[0].phases}
print(json.dumps({"ms": dt / (n - 1) * 1000, "phases": phases}))
''',
    "xarray": SLICE + r'''
import sys, time, json, warnings
warnings.simplefilter("ignore")
import xarray as xr
target, n, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
items = [make(i) for i in range(n)] if mode == "mem" else \
    [f"{sys.argv[4]}/s{i:03d}.nc" for i in range(n)]
def get(x):
    return x if mode == "mem" else xr.open_dataset(x)
enc = {"t2m": {"chunks": (1, 180, 360)}, "tp": {"chunks": (1, 180, 360)}}
get(items[0]).to_zarr(target, mode="w", zarr_format=3, consolidated=True, encoding=enc)
t0 = time.perf_counter()
for x in items[1:]:
    get(x).to_zarr(target, append_dim="time", consolidated=True)
print(json.dumps({"ms": (time.perf_counter() - t0) / (n - 1) * 1000}))
''',
    "zappend": SLICE + r'''
import sys, time, json, warnings
warnings.simplefilter("ignore")
from zappend.api import zappend
target, n, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
items = [make(i) for i in range(n)] if mode == "mem" else \
    [f"{sys.argv[4]}/s{i:03d}.nc" for i in range(n)]
cfg = {"target_dir": target, "append_dim": "time",
       "variables": {"t2m": {"encoding": {"chunks": [1, 180, 360]}},
                     "tp": {"encoding": {"chunks": [1, 180, 360]}}}}
zappend([items[0]], config=cfg)
t0 = time.perf_counter()
zappend(items[1:], config=cfg)
print(json.dumps({"ms": (time.perf_counter() - t0) / (n - 1) * 1000}))
''',
    "floor": SLICE + r'''
import sys, time, json, os
import numcodecs
target, n = sys.argv[1], int(sys.argv[2])
items = [make(i) for i in range(n)]
z = numcodecs.Zstd(level=0)
os.makedirs(target, exist_ok=True)
files = manifest = 0.0
t0 = time.perf_counter()
for i, ds in enumerate(items):
    a = time.perf_counter()
    for v in ("t2m", "tp"):
        d = f"{target}/{v}/c/{i}/0"
        os.makedirs(d, exist_ok=True)
        with open(f"{d}/0", "wb") as f:
            f.write(z.encode(ds[v].values.tobytes()))
    b = time.perf_counter()
    with open(f"{target}/manifest.json.tmp", "w") as f:
        json.dump({"shape": [i + 1, 180, 360], "chunks": [1, 180, 360]}, f)
    os.replace(f"{target}/manifest.json.tmp", f"{target}/manifest.json")
    c = time.perf_counter()
    files += b - a
    manifest += c - b
dt = time.perf_counter() - t0
print(json.dumps({"ms": dt / n * 1000, "files_ms": files / n * 1000,
                  "commit_ms": manifest / n * 1000}))
''',
}


def make_inputs(n: int) -> Path:
    nc = DATA / f"nc{n}"
    if (nc / ".done").exists():
        return nc
    print(f"writing {n} NetCDF slices (once) to {nc}", flush=True)
    nc.mkdir(parents=True, exist_ok=True)
    code = SLICE + f"\nfor i in range({n}):\n    make(i).to_netcdf(r'{nc}/s%03d.nc' % i)\n"
    subprocess.run([sys.executable, "-c", code], check=True)
    (nc / ".done").write_text("")
    return nc


def run(py: str, child: str, target: Path, n: int, mode: str, nc: Path) -> dict:
    shutil.rmtree(target, ignore_errors=True)
    shutil.rmtree(str(target) + ".versions", ignore_errors=True)
    r = subprocess.run([py, "-c", CHILDREN[child], str(target), str(n), mode, str(nc)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{child} {mode}: {r.stderr[-2000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def run_cli(target: Path, n: int, nc: Path) -> dict:
    shutil.rmtree(target, ignore_errors=True)
    shutil.rmtree(str(target) + ".versions", ignore_errors=True)
    exe = str(Path(sys.executable).parent / "datamanifest")
    files = [str(nc / f"s{i:03d}.nc") for i in range(n)]
    t0 = time.perf_counter()
    subprocess.run([exe, "append", str(target), *files, "--step", "1D", "-q"], check=True,
                   capture_output=True)
    return {"ms": (time.perf_counter() - t0) / n * 1000}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--slices", type=int, default=200)
    ap.add_argument("--skip-zappend", action="store_true")
    ap.add_argument("--quick", action="store_true", help="20 slices, one round, no zappend")
    ap.add_argument("--json", metavar="PATH", help="write the results.json entry here")
    args = ap.parse_args()
    if args.quick:
        args.slices, args.rounds, args.skip_zappend = 20, 1, True
    command = " ".join([".venv/bin/python", "bench/append_throughput.py", *sys.argv[1:]])
    from datamanifest.testing import python_venv

    n = args.slices
    nc = make_inputs(n)
    zappend_py = None
    if not args.skip_zappend:
        print("preparing the zappend venv (once) in", PEER, flush=True)
        zappend_py = python_venv(PEER, PEER_PACKAGES)
        if zappend_py is None:
            print("  zappend did not install: its rows are left out", flush=True)
    rows = [("datamanifest API (mem)", sys.executable, "datamanifest", "mem"),
            ("datamanifest API (nc)", sys.executable, "datamanifest", "nc"),
            ("datamanifest CLI, one process (nc)", None, "cli", "nc"),
            ("xarray to_zarr(append_dim), zarr 3 (mem)", sys.executable, "xarray", "mem"),
            ("xarray to_zarr(append_dim), zarr 3 (nc)", sys.executable, "xarray", "nc")]
    if zappend_py:
        rows += [("zappend 0.8, zarr 2 (mem)", zappend_py, "zappend", "mem"),
                 ("zappend 0.8, zarr 2 (nc)", zappend_py, "zappend", "nc")]
    rows.append(("floor: zstd-0 files + JSON manifest replace (mem)", sys.executable, "floor",
                 "mem"))
    results: dict[str, list[dict]] = {r[0]: [] for r in rows}
    work = Path(tempfile.mkdtemp(prefix="dm-append-bench-", dir=DATA))
    try:
        for k in range(args.rounds):
            order = rows[k % len(rows):] + rows[:k % len(rows)]
            for label, py, child, mode in order:
                target = work / "cube.zarr"
                if child == "cli":
                    got = run_cli(target, n, nc)
                else:
                    got = run(py, child, target, n, mode, nc)
                results[label].append(got)
                print(f"  round {k + 1}: {label}: {got['ms']:.1f} ms/slice", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    med = {label: statistics.median(r["ms"] for r in rs) for label, rs in results.items()}
    floor_label = rows[-1][0]
    xr_label = "xarray to_zarr(append_dim), zarr 3 (mem)"
    print(f"\n{n} slices, {args.rounds} rounds, ms per slice: median [min-max]")
    print(f"{'row':<52} {'ms/slice':>22} {'x floor':>8} {'x xarray':>9}")
    for label, rs in results.items():
        ms = [r["ms"] for r in rs]
        print(f"{label:<52} {med[label]:>8.1f} [{min(ms):.1f}-{max(ms):.1f}]".ljust(75) +
              f" {med[label] / med[floor_label]:>8.2f} {med[label] / med[xr_label]:>9.2f}")
    ours = results["datamanifest API (mem)"]
    phases = {k: statistics.median(r["phases"][k] for r in ours) * 1000
              for k in ours[0]["phases"]}
    print("\ndatamanifest API (mem), median ms per step of APP-022:")
    print("  " + "  ".join(f"{k} {v:.2f}" for k, v in phases.items()))
    commit = sum(phases[k] for k in ("journal", "flush", "commit", "metadata", "cleanup"))
    floor_commit = statistics.median(r["commit_ms"] for r in results[floor_label])
    print(f"commit step (journal + flush + commit + metadata + cleanup): {commit:.2f} ms; "
          f"the floor's manifest replace {floor_commit:.2f} ms; over the floor "
          f"{commit - floor_commit:.2f} ms (target <= 2)")
    print(f"target: <= 10 ms per slice: {med['datamanifest API (mem)']:.1f} ms "
          f"({'met' if med['datamanifest API (mem)'] <= 10 else 'NOT met'})")
    if args.json:
        Path(args.json).write_text(json.dumps(entry(results, med, phases, commit, floor_commit,
                                                    floor_label, n, args, command), indent=1)
                                   + "\n")


def entry(results: dict, med: dict, phases: dict, commit: float, floor_commit: float,
          floor_label: str, n: int, args, command: str) -> dict:
    """The benchmark's entry for bench/results.json (the bench JSON contract of issue 24)."""
    ours = med["datamanifest API (mem)"]
    xr_mem = "xarray to_zarr(append_dim), zarr 3 (mem)"
    figures = [
        {"case": f"{n} slices, API (mem), per slice", "unit": "ms", "ours": round(ours, 2),
         "peer": "xarray to_zarr(append_dim), zarr 3", "peer_value": round(med[xr_mem], 2),
         "floor": "zstd-0 chunk files + JSON manifest replace",
         "floor_value": round(med[floor_label], 2), "target": "<= 10 ms",
         "holds": ours <= 10, "command": command},
        {"case": "commit step (journal + flush + commit + metadata + cleanup)", "unit": "ms",
         "ours": round(commit, 2), "peer": None, "peer_value": None,
         "floor": "the floor's manifest replace (tmp + os.replace)",
         "floor_value": round(floor_commit, 2), "target": "<= floor + 2 ms",
         "holds": commit - floor_commit <= 2, "command": command},
    ]
    if "datamanifest API (nc)" in med:
        figures.append({
            "case": f"{n} slices, API (nc), per slice", "unit": "ms",
            "ours": round(med["datamanifest API (nc)"], 2),
            "peer": "xarray to_zarr(append_dim), zarr 3",
            "peer_value": round(med["xarray to_zarr(append_dim), zarr 3 (nc)"], 2),
            "floor": None, "floor_value": None, "target": None, "holds": None,
            "command": command})
    if "zappend 0.8, zarr 2 (mem)" in med:
        figures.append({
            "case": f"{n} slices, API (mem), per slice, vs zappend", "unit": "ms",
            "ours": round(ours, 2), "peer": "zappend 0.8 (zarr 2)",
            "peer_value": round(med["zappend 0.8, zarr 2 (mem)"], 2),
            "floor": "zstd-0 chunk files + JSON manifest replace",
            "floor_value": round(med[floor_label], 2), "target": None, "holds": None,
            "command": command})
    short = {"datamanifest API (mem)": "datamanifest API (mem)",
             "datamanifest API (nc)": "datamanifest API (nc)",
             "datamanifest CLI, one process (nc)": "datamanifest CLI (nc)",
             xr_mem: "xarray to_zarr, zarr 3 (mem)",
             "xarray to_zarr(append_dim), zarr 3 (nc)": "xarray to_zarr, zarr 3 (nc)",
             "zappend 0.8, zarr 2 (mem)": "zappend 0.8 (mem)",
             "zappend 0.8, zarr 2 (nc)": "zappend 0.8 (nc)", floor_label: "floor (mem)"}
    return {
        "title": f"Appending {n} slices to a Zarr cube",
        "command": command,
        "duration": "under a minute" if args.quick else
        "about 10 minutes (zappend installs into a venv of its own on first use)",
        "what": f"{n} daily slices of two float32 variables of 180 x 360; ms per slice, median "
                f"of {args.rounds} fresh processes. mem: `xarray.Dataset` slices; nc: NetCDF4 "
                "files. The floor writes compressed chunk files and replaces one JSON manifest "
                "atomically. Steps of our commit (ms): " +
                ", ".join(f"{k} {v:.2f}" for k, v in phases.items()),
        "columns": ["tool", "ms per slice", "x floor"],
        "rows": [[label, f"{med[label]:.1f}", f"{med[label] / med[floor_label]:.2f}"]
                 for label in results],
        "chart": {"unit": "ms per slice", "better": "lower",
                  "bars": [{"label": short.get(label, label), "value": round(med[label], 1),
                            **({"ours": True} if label.startswith("datamanifest") else {})}
                           for label in results]},
        "figures": figures,
    }


if __name__ == "__main__":
    main()

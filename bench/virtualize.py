"""Chunk manifests against VirtualiZarr 2.8 and kerchunk 0.2.10, side by side in one run.

    python bench/virtualize.py [--rounds 3] [--skip-slow] [--quick] [--json PATH]

Inputs (made once, seeded, under .cache/bench-virtual/; shared/reference/virtual-anchors.md):
``big.nc`` tas (365, 360, 720) float32 in 365 chunks (1, 360, 720), zlib 1 + shuffle;
``bigsc.nc`` the same values in 23,360 chunks (1, 45, 90); ``series/`` 100 files of
(10, 180, 360), one chunk per time step.

Each figure is the median of ``--rounds`` fresh processes, tools alternated, times taken
inside the process after imports. Peers run in a Python 3.12 venv of their own
(.cache/bench-virtualizarr, made on first use). Floors: h5py's ``chunk_iter`` over every
dataset (build), and pread + zlib + unshuffle of every chunk in one thread (read).

Targets (issues 11 and 24): build >= 5x faster than both tools on bigsc and >= 10x faster
than VirtualiZarr on the series; a full read <= 1.5x the decode floor on big and bigsc with
equal values; a one-point time series on bigsc <= 2x h5py; the peak RSS of a full read at
most 1.2x the array's size above the interpreter's baseline (its RSS after imports, just
before the read).

--quick: one round, no peers' full reads of bigsc (a smoke test). --json PATH: the
benchmark's entry for bench/results.json, with its ``figures`` rows.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / ".cache" / "bench-virtual"
PEER = ROOT / ".cache" / "bench-virtualizarr"


# -- inputs ----------------------------------------------------------------------------------
def make_inputs() -> None:
    import h5netcdf
    import numpy as np

    DATA.mkdir(parents=True, exist_ok=True)
    if (DATA / ".done").exists():
        return
    print("making the inputs (once) in", DATA, flush=True)
    rng = np.random.default_rng(0)

    def write(path, nt, ny, nx, chunks, t0=0):
        with h5netcdf.File(path, "w") as f:
            f.dimensions = {"time": None, "lat": ny, "lon": nx}
            t = f.create_variable("time", ("time",), "f8")
            f.resize_dimension("time", nt)
            t[:] = np.arange(t0, t0 + nt)
            t.attrs["units"] = "days since 2000-01-01"
            t.attrs["calendar"] = "standard"
            f.create_variable("lat", ("lat",), "f4")[:] = np.linspace(-89.75, 89.75, ny)
            f.create_variable("lon", ("lon",), "f4")[:] = np.linspace(0.25, 359.75, nx)
            v = f.create_variable("tas", ("time", "lat", "lon"), "f4", chunks=chunks,
                                  compression="gzip", compression_opts=1, shuffle=True)
            base = 280 + 20 * np.cos(np.deg2rad(np.linspace(-90, 90, ny)))[:, None]
            for i in range(nt):
                v[i] = (base + rng.normal(0, 2, (ny, nx))).astype("f4")
            v.attrs["units"] = "K"

    write(DATA / "big.nc", 365, 360, 720, (1, 360, 720))
    rng = np.random.default_rng(0)
    write(DATA / "bigsc.nc", 365, 360, 720, (1, 45, 90))
    (DATA / "series").mkdir(exist_ok=True)
    rng = np.random.default_rng(1)
    for k in range(100):
        write(DATA / "series" / f"tas_{k:03d}.nc", 10, 180, 360, (1, 180, 360), t0=10 * k)
    (DATA / ".done").write_text("")


def peer_python() -> str | None:
    sys.path.insert(0, str(ROOT / "src"))
    from datamanifest.testing.venvs import virtualizarr_python

    if not (PEER / ".ready").exists():
        print(f"making a venv for VirtualiZarr and kerchunk in {PEER} (once) ...", flush=True)
    py = virtualizarr_python(ROOT)
    if py is None:
        print("no Python 3.12 here, or the peers do not install: they are left out")
    return py


# -- workers (each in a fresh process) --------------------------------------------------------
def _rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _rss_now_mb() -> float:
    """The resident set now (MB), from /proc (Linux); the peak where /proc is absent."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return _rss_mb()


def _warm_xarray() -> None:
    """xarray imports its duck-array modules (dask, ...) and time decoding on first use:
    paid once, before the timing, by every tool that reads through xarray."""
    import numpy as np
    import xarray as xr

    ds = xr.decode_cf(xr.Dataset({"t": ("t", np.array([0.0]), {"units": "days since 2000-01-01",
                                                             "calendar": "standard"}),
                                  "v": (("t", "x"), np.zeros((1, 2), "f4"))}))
    ds.v[:, 1].values


def work(tool: str, task: str, target: str) -> dict:
    import numpy as np

    if tool in ("ours", "virtualizarr", "vz-json", "kerchunk"):
        _warm_xarray()

    files = sorted(str(p) for p in Path(target).glob("*.nc")) if Path(target).is_dir() \
        else [target]
    out: dict = {}
    if tool == "ours":
        sys.path.insert(0, str(ROOT / "src"))
        from datamanifest.virtual import build, open_virtual
        import xarray  # noqa: F401  (imports outside the timing)
        import h5py  # noqa: F401
        build.Options()
        if task == "build":
            out["base_mb"] = _rss_now_mb()  # the baseline, just before the work
            t = time.perf_counter()
            m = build.virtualize(files, concat_dim="time" if len(files) > 1 else None)
            doc = m.as_json()
            out["seconds"] = time.perf_counter() - t
            out["chunks"] = sum(n.refs.count for n in m.arrays())
            (DATA / f"ours-{Path(target).stem}.json").write_text(json.dumps(doc))
            return out
        doc = json.loads((DATA / f"ours-{Path(target).stem}.json").read_text())
        out["base_mb"] = _rss_now_mb()  # the baseline, just before the work
        t = time.perf_counter()
        ds = open_virtual(doc)
        sel = ds.tas.values if task == "all" else ds.tas[:, 100, 200].values
        out["seconds"] = time.perf_counter() - t
    elif tool in ("virtualizarr", "vz-json"):
        from obstore.store import LocalStore
        from obspec_utils.registry import ObjectStoreRegistry
        from virtualizarr import open_virtual_dataset, open_virtual_mfdataset
        from virtualizarr.parsers import HDFParser
        import xarray as xr

        registry = ObjectStoreRegistry({"file://": LocalStore()})
        urls = [f"file://{f}" for f in files]
        if task == "build":
            out["base_mb"] = _rss_now_mb()  # the baseline, just before the work
            t = time.perf_counter()
            if len(urls) == 1:
                vds = open_virtual_dataset(urls[0], registry=registry, parser=HDFParser(),
                                           loadable_variables=["time", "lat", "lon"])
            else:
                vds = open_virtual_mfdataset(urls, registry=registry, parser=HDFParser(),
                                             concat_dim="time", combine="nested",
                                             loadable_variables=["time", "lat", "lon"])
            out["seconds"] = time.perf_counter() - t
            vds.vz.to_kerchunk(str(DATA / f"vz-{Path(target).stem}.json"), format="json")
            return out
        if tool == "vz-json":
            out["base_mb"] = _rss_now_mb()  # the baseline, just before the work
            t = time.perf_counter()
            ds = xr.open_dataset(str(DATA / f"vz-{Path(target).stem}.json"), engine="kerchunk")
        else:
            from virtualizarr.manifests import ManifestStore

            out["base_mb"] = _rss_now_mb()  # the baseline, just before the work
            t = time.perf_counter()
            store = HDFParser()(urls[0], registry=registry)
            ds = xr.open_zarr(store, consolidated=False, zarr_format=3)
        sel = ds.tas.values if task == "all" else ds.tas[:, 100, 200].values
        out["seconds"] = time.perf_counter() - t
        del ManifestStore
    elif tool == "kerchunk":
        from kerchunk.hdf import SingleHdf5ToZarr
        import xarray as xr

        if task == "build":
            out["base_mb"] = _rss_now_mb()  # the baseline, just before the work
            t = time.perf_counter()
            refs = SingleHdf5ToZarr(files[0], inline_threshold=0).translate()
            out["seconds"] = time.perf_counter() - t
            (DATA / f"kc-{Path(target).stem}.json").write_text(json.dumps(refs))
            return out
        out["base_mb"] = _rss_now_mb()  # the baseline, just before the work
        t = time.perf_counter()
        ds = xr.open_dataset(str(DATA / f"kc-{Path(target).stem}.json"), engine="kerchunk")
        sel = ds.tas.values if task == "all" else ds.tas[:, 100, 200].values
        out["seconds"] = time.perf_counter() - t
    elif tool == "h5py":
        import h5py

        if task == "build":
            out["base_mb"] = _rss_now_mb()  # the baseline, just before the work
            t = time.perf_counter()
            for f in files:
                with h5py.File(f) as h:
                    for name in h:
                        if h[name].chunks:
                            h[name].id.chunk_iter(lambda i: None)
            out["seconds"] = time.perf_counter() - t
            return out
        out["base_mb"] = _rss_now_mb()  # the baseline, just before the work
        t = time.perf_counter()
        with h5py.File(files[0]) as h:
            sel = h["tas"][...] if task == "all" else h["tas"][:, 100, 200]
        out["seconds"] = time.perf_counter() - t
    elif tool == "floor":
        import h5py
        import numcodecs
        import zlib

        with h5py.File(files[0]) as h:
            ds = h["tas"]
            infos = []
            ds.id.chunk_iter(infos.append)
            shape, chunks = ds.shape, ds.chunks
        sel = np.empty(shape, dtype="<f4")
        sh = numcodecs.Shuffle(4)
        fd = os.open(files[0], os.O_RDONLY)
        out["base_mb"] = _rss_now_mb()  # the baseline, just before the work
        t = time.perf_counter()
        for info in infos:
            a = np.frombuffer(sh.decode(zlib.decompress(os.pread(fd, info.size,
                                                                 info.byte_offset))),
                              dtype="<f4").reshape(chunks)
            o = info.chunk_offset
            sel[o[0]:o[0] + chunks[0], o[1]:o[1] + chunks[1], o[2]:o[2] + chunks[2]] = a
        out["seconds"] = time.perf_counter() - t
    out["rss_mb"] = _rss_mb()
    out["sum"] = float(np.asarray(sel, dtype="f8").sum())
    out["mb"] = np.asarray(sel).nbytes / 2**20
    return out


def run(python: str, tool: str, task: str, target: Path) -> dict:
    env = dict(os.environ, PYTHONPATH="")
    r = subprocess.run([python, __file__, "--worker", tool, "--task", task,
                        "--target", str(target)], capture_output=True, text=True, env=env)
    if r.returncode != 0:
        return {"error": r.stderr.strip().splitlines()[-1][:200] if r.stderr else "failed"}
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--skip-slow", action="store_true",
                    help="leave out the peers' full reads of bigsc (about 20 s each)")
    ap.add_argument("--quick", action="store_true",
                    help="one round, no peers' full reads of bigsc (a smoke test)")
    ap.add_argument("--json", metavar="PATH", help="write the results.json entry here")
    ap.add_argument("--worker")
    ap.add_argument("--task")
    ap.add_argument("--target")
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(work(args.worker, args.task, args.target)))
        return 0
    if args.quick:
        args.rounds, args.skip_slow = 1, True
    command = " ".join([".venv/bin/python", "bench/virtualize.py", *sys.argv[1:]])
    make_inputs()
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "src")],
                   stdout=subprocess.DEVNULL)
    peer = peer_python()
    ours = sys.executable
    inputs = {"big": DATA / "big.nc", "bigsc": DATA / "bigsc.nc", "series": DATA / "series"}
    plan = []  # (label, input, task, tool, python)
    for name in ("big", "bigsc", "series"):
        plan.append((name, "build", "ours", ours))
        plan.append((name, "build", "h5py", ours))
        if peer:
            plan.append((name, "build", "virtualizarr", peer))
            if name != "series":
                plan.append((name, "build", "kerchunk", peer))
    for name in ("big", "bigsc"):
        for task in ("all", "pt"):
            plan.append((name, task, "ours", ours))
            plan.append((name, task, "h5py", ours))
            if task == "all":
                plan.append((name, task, "floor", ours))
            if peer and not (args.skip_slow and name == "bigsc" and task == "all"):
                plan.append((name, task, "virtualizarr", peer))
                plan.append((name, task, "kerchunk", peer))
    results: dict = {}
    for r in range(args.rounds):
        print(f"round {r + 1}/{args.rounds}", flush=True)
        for name, task, tool, py in plan:
            res = run(py, tool, task, inputs[name])
            results.setdefault((name, task, tool), []).append(res)

    def med(name, task, tool):
        rs = [x for x in results.get((name, task, tool), []) if "seconds" in x]
        return statistics.median(x["seconds"] for x in rs) if rs else None

    def fmt(v):
        return f"{v:7.3f} s" if v is not None else "      -  "

    print("\nbuilding references (median seconds)")
    print(f"{'input':<8} {'ours':>9} {'VirtualiZarr':>13} {'kerchunk':>9} {'h5py floor':>11} "
          f"{'VZ/ours':>8} {'kc/ours':>8}")
    for name in ("big", "bigsc", "series"):
        o, v, k, f = (med(name, "build", t) for t in ("ours", "virtualizarr", "kerchunk",
                                                      "h5py"))
        print(f"{name:<8} {fmt(o)} {fmt(v):>13} {fmt(k):>9} {fmt(f):>11} "
              f"{(v / o if o and v else 0):7.1f}x {(k / o if o and k else 0):7.1f}x")
    print("\nreading (median seconds; all = the whole variable, pt = one point over time)")
    print(f"{'input':<6} {'sel':<4} {'ours':>9} {'floor':>9} {'h5py':>9} {'VZ':>9} "
          f"{'kerchunk':>9} {'ours/floor':>11} {'ours/h5py':>10} {'VZ/ours':>8}")
    for name in ("big", "bigsc"):
        for task in ("all", "pt"):
            o, fl, h, v, k = (med(name, task, t) for t in ("ours", "floor", "h5py",
                                                           "virtualizarr", "kerchunk"))
            print(f"{name:<6} {task:<4} {fmt(o)} {fmt(fl)} {fmt(h)} {fmt(v)} {fmt(k)} "
                  f"{(o / fl if o and fl else 0):10.2f}x {(o / h if o and h else 0):9.2f}x "
                  f"{(v / o if o and v else 0):7.1f}x")
    for name in ("big", "bigsc"):
        rs = [x for x in results.get((name, "all", "ours"), []) if "rss_mb" in x]
        ref = [x for x in results.get((name, "all", "h5py"), []) if "sum" in x]
        if rs:
            peak = max(x["rss_mb"] for x in rs)
            print(f"{name}: peak RSS of our full read {peak:.0f} MB for a {rs[0]['mb']:.0f} MB "
                  f"array ({peak / rs[0]['mb']:.2f}x); values equal to h5py's: "
                  f"{bool(ref) and abs(rs[0]['sum'] - ref[0]['sum']) < 1e-6 * abs(ref[0]['sum'])}")
    errors = {k: v for k, vs in results.items() for v in vs if "error" in v}
    for k, v in errors.items():
        print("error:", k, v["error"])
    if args.json:
        Path(args.json).write_text(json.dumps(entry(results, med, args, command), indent=1)
                                   + "\n")
    return 0


def entry(results: dict, med, args, command: str) -> dict:
    """The benchmark's entry for bench/results.json (the bench JSON contract of issue 24)."""
    def r3(v):
        return None if v is None else round(v, 3)

    def fig(case, unit, ours, peer, peer_value, floor, floor_value, target, holds):
        return {"case": case, "unit": unit, "ours": r3(ours), "peer": peer,
                "peer_value": r3(peer_value), "floor": floor, "floor_value": r3(floor_value),
                "target": target, "holds": holds, "command": command}

    def ratio_at_least(peer_value, ours, x):
        return None if peer_value is None or ours is None else peer_value / ours >= x

    vz, kc, floor_b = "VirtualiZarr 2.8", "kerchunk 0.2.10", "h5py chunk_iter over every dataset"
    figures = []
    o, v, k, f = (med("bigsc", "build", t) for t in ("ours", "virtualizarr", "kerchunk", "h5py"))
    figures.append(fig("build, small-chunk file (bigsc, 23,360 chunks)", "s", o, vz, v, floor_b,
                       f, ">= 5x peer", ratio_at_least(v, o, 5)))
    figures.append(fig("build, small-chunk file (bigsc, 23,360 chunks)", "s", o, kc, k, floor_b,
                       f, ">= 5x peer", ratio_at_least(k, o, 5)))
    o, v, k, f = (med("big", "build", t) for t in ("ours", "virtualizarr", "kerchunk", "h5py"))
    figures.append(fig("build, big file (365 chunks)", "s", o, vz, v, floor_b, f, None, None))
    o, v, f = (med("series", "build", t) for t in ("ours", "virtualizarr", "h5py"))
    figures.append(fig("join, 100-file series", "s", o, vz, v, floor_b, f, ">= 10x peer",
                       ratio_at_least(v, o, 10)))
    for name in ("big", "bigsc"):
        o, fl, v = (med(name, "all", t) for t in ("ours", "floor", "virtualizarr"))
        figures.append(fig(f"full read, {name}", "s", o, vz, v,
                           "pread + zlib + unshuffle of every chunk, one thread", fl,
                           "<= 1.5x floor", None if o is None or fl is None else o <= 1.5 * fl))
    o, h = med("bigsc", "pt", "ours"), med("bigsc", "pt", "h5py")
    figures.append(fig("one-point time series, bigsc", "s", o, vz, med("bigsc", "pt",
                                                                      "virtualizarr"),
                       "h5py", h, "<= 2x floor", None if o is None or h is None else o <= 2 * h))
    for name in ("big", "bigsc"):
        rs = [x for x in results.get((name, "all", "ours"), []) if "rss_mb" in x]
        if not rs:
            continue
        above = max(x["rss_mb"] - x["base_mb"] for x in rs)
        mb = rs[0]["mb"]
        peers = [x for x in results.get((name, "all", "virtualizarr"), []) if "rss_mb" in x]
        figures.append(fig(f"peak RSS of a full read above the baseline, {name}", "MB", above,
                           vz, max(x["rss_mb"] - x["base_mb"] for x in peers) if peers else None,
                           "the array's size", mb, "<= 1.2x the array's size",
                           above <= 1.2 * mb))
    rows = [[x["case"] + ("" if x["peer"] != kc else " (vs kerchunk)"),
             f"{x['ours']} {x['unit']}" if x["ours"] is not None else "-",
             f"{x['peer_value']} {x['unit']}" if x["peer_value"] is not None else "-",
             f"{x['floor_value']} {x['unit']}" if x["floor_value"] is not None else "-",
             x["target"] or "-", {True: "yes", False: "NO", None: "-"}[x["holds"]]]
            for x in figures]
    groups = []
    for label, name, task in (("build, small-chunk file", "bigsc", "build"),
                              ("join, 100-file series", "series", "build"),
                              ("full read, small-chunk file", "bigsc", "all")):
        bars = [{"label": "datamanifest", "value": r3(med(name, task, "ours")), "ours": True}]
        if task == "all":
            bars.append({"label": "decode floor", "value": r3(med(name, task, "floor"))})
        bars += [{"label": lab, "value": r3(med(name, task, t))}
                 for lab, t in ((vz, "virtualizarr"), (kc, "kerchunk"))
                 if med(name, task, t) is not None]
        groups.append({"label": label, "bars": [b for b in bars if b["value"] is not None]})
    return {
        "title": "Chunk manifests: build and read",
        "command": command,
        "duration": "about a minute" if args.quick else
        "about 10 minutes (the peers install into a venv of their own on first use)",
        "what": f"Median of {args.rounds} fresh processes, tools alternated, times inside the "
                "process after imports. bigsc: one variable in 23,360 small zlib chunks; "
                "series: 100 files joined along time. The decode floor reads and decodes every "
                "chunk by hand in one thread; peak RSS is measured above the process's RSS "
                "just before the read.",
        "columns": ["what", "datamanifest", "peer", "floor", "target", "holds"],
        "rows": rows,
        "chart": {"unit": "seconds", "better": "lower", "groups": groups},
        "figures": figures,
    }


if __name__ == "__main__":
    raise SystemExit(main())

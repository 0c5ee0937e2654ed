"""``make demo``: the main job on real data, offline.

Serves real third-party files that ship inside installed packages (the IERS
Earth-orientation tables of ``astropy-iers-data`` and xarray's NetCDF test
samples) from a loopback HTTP server on 127.0.0.1, writes a manifest naming
them (one with an empty checksum to show auto-fill, one tar.gz archive with
``extract = true``), then runs ``datamanifest check``, ``fetch``, ``status``
and ``fetch`` again (everything already present), and stops the server. Then a
produced dataset: monthly means of UT1-UTC derived from the fetched IERS table by
an ``@datamanifest.cached`` function, computed by one process and loaded by the next
(SCHEMA.md §21), with its artifact folder and sidecars shown.

Run: ``python -m datamanifest.demo [WORKDIR]`` (default ``./demo-run``).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

from .testing import LoopbackServer
from .optional import need


def _package_file(package: str, *parts: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"demo: package {package!r} is missing; run `make demo`, which installs it")
    path = Path(next(iter(spec.submodule_search_locations))).joinpath(*parts)
    if not path.exists():
        raise SystemExit(f"demo: {path} is missing from the installed {package}")
    return path


def _sha256(path: Path) -> str:
    return hashlib.file_digest(open(path, "rb"), "sha256").hexdigest()


MANIFEST = """\
# datamanifest demo: real files from installed packages, served on 127.0.0.1.
[_META]
schema = 1

[_STORAGE]
datasets_dir = "datasets"   # relative to this file
datacache_dir = "cached"    # produced datasets (SCHEMA.md §21)

# IERS Earth orientation parameters (finals2000A), ~3.8 MB of text.
[iers-finals]
uri = "{base}/iers/finals2000A.all"
checksum = "sha256:{finals}"
description = "IERS Bulletin A: polar motion, UT1-UTC, nutation (astropy-iers-data)"
aliases = ["finals2000A"]

# Leap seconds table: the checksum is left empty on purpose; `fetch` fills it in
# and keeps this comment.
[leap-seconds]
uri = "{base}/iers/Leap_Second.dat"
checksum = ""
description = "IERS leap second table"

# The first lines of the leap-second table, made by a command (a shell template). The
# command is code this manifest names: `fetch` runs it only once you trust the manifest
# (`datamanifest trust`, SCHEMA.md §27).
[leap-seconds-head]
key = "derived/leap-seconds-head.txt"
requires = ["leap-seconds"]
shell = "sh -c 'head -n 5 \\"$0\\" > \\"$1\\"' $path_leap_seconds $download_path"
checksum = ""   # filled in by the first fetch

# Two NetCDF samples from xarray's test data, bundled as one tar.gz and extracted.
[xarray-samples]
uri = "{base}/xarray/netcdf-samples.tar.gz"
checksum = "sha256:{tarball}"
extract = true
description = "example_1.nc and bears.nc from xarray's test suite"
requires = ["leap-seconds"]

# Three monthly NEMO ocean files as one virtual dataset: `fetch` reads only their headers
# and chunk indexes (HTTP range requests) and stores a chunk manifest; the data stay put.
[nemo-sst]
uris = [{nemo}]
virtual = true
concat_dim = "time_counter"
description = "NEMO monthly SST, Jan-Mar 2015 (iris-sample-data), read in place"
"""


# The produced step: a module of the demo project, so the cachetype is its import path.
IERS_STATS = '''\
"""Monthly means of UT1-UTC from the IERS finals2000A table (a produced dataset)."""
import datamanifest


@datamanifest.cached(format="json", version="1")
def monthly_ut1_utc(first_year: int = 1973, last_year: int = 2030) -> dict:
    path = datamanifest.open_manifest().path("iers-finals")
    sums: dict[str, list[float]] = {}
    for line in path.read_text().splitlines():
        value = line[58:68].strip()
        if len(line) < 68 or not value:
            continue  # future rows carry no UT1-UTC
        yy, mm = int(line[0:2]), int(line[2:4])
        year = 1900 + yy if yy >= 73 else 2000 + yy
        if first_year <= year <= last_year:
            acc = sums.setdefault(f"{year:04d}-{mm:02d}", [0.0, 0])
            acc[0] += float(value)
            acc[1] += 1
    return {month: round(total / n, 7) for month, (total, n) in sorted(sums.items())}
'''

DERIVE = '''\
import time
import iers_stats

f = iers_stats.monthly_ut1_utc
computed = not f.exists(first_year=2000)
start = time.perf_counter()
result = f(first_year=2000)
first = time.perf_counter() - start
start = time.perf_counter()
f(first_year=2000)
again = time.perf_counter() - start
print(f"{'computed' if computed else 'loaded'} {len(result)} monthly means in "
      f"{first * 1000:.1f} ms (the same call again in this process: {again * 1000:.2f} ms); "
      f"2020-01: {result['2020-01']} s")
print(f"artifact: {f.path(first_year=2000)}")
'''


def _virtual_step(project: Path, cli: list[str], served: Path, srv) -> int:
    """The virtual dataset: what fetch read of the NEMO files, the chunk manifest, and the
    dataset opened through it, compared with xarray's own read of the files."""
    nbytes = sum(p.stat().st_size for p in (served / "nemo").glob("*.nc"))
    ranges = sum(v for k, v in srv.ranges.items() if k.startswith("/nemo/"))
    print(f"\nnemo-sst: 3 files, {nbytes / 2**20:.1f} MiB on the server; fetch read them by "
          f"{ranges} range request(s) and published a chunk manifest")
    for args in (["refs", "info", _target(project, cli, "nemo-sst")],):
        print(f"\n$ datamanifest {' '.join(args)}", flush=True)
        code = subprocess.call(cli + args, cwd=project)
        if code != 0:
            return code
    script = (
        "import datamanifest, xarray as xr, glob\n"
        "p = datamanifest.open_manifest()\n"
        "ds = p.load('nemo-sst')\n"
        f"files = sorted(glob.glob({str(served / 'nemo' / '*.nc')!r}))\n"
        "ref = xr.open_mfdataset(files, combine='nested', concat_dim='time_counter',\n"
        "                        data_vars='minimal', coords='minimal', compat='override')\n"
        "print('opened through the chunk manifest:', dict(ds.sizes))\n"
        "print('mean SST per month:', ds.tos.mean(('y', 'x')).values.round(3))\n"
        "xr.testing.assert_identical(ds.load(), ref.load())\n"
        "print('identical to xarray.open_mfdataset of the files')\n")
    print("\n$ python -c '...p.load(\"nemo-sst\")...'", flush=True)
    return subprocess.call([sys.executable, "-c", script], cwd=project)


def _append_step(project: Path, cli: list[str]) -> int:
    """A growing cube: OSTIA monthly SST (iris-sample-data) cut into yearly NetCDF slices,
    appended one transaction each; a repeated slice refused; the versions and the diff
    between two; the cube read back by xarray equal to the source."""
    xr = need("xarray", extra="demo", feature="the demo")

    src = _package_file("iris_sample_data", "sample_data", "ostia_monthly.nc")
    slices = project / "sst-slices"
    slices.mkdir()
    with xr.open_dataset(src) as ds:
        years = sorted(set(ds.time.dt.year.values.tolist()))[:3]
        files = []
        for y in years:
            f = slices / f"ostia_{y}.nc"
            ds.sel(time=str(y)).to_netcdf(f)
            files.append(f.relative_to(project).as_posix())
    runs = [(["append", "sst.zarr", *files], 0),
            (["append", "sst.zarr", files[-1]], 1),  # refused: its months are in already
            (["append", "--status", "sst.zarr"], 0),
            (["versions", "sst.zarr"], 0)]
    for args, want in runs:
        print(f"\n$ datamanifest {' '.join(args)}", flush=True)
        code = subprocess.call(cli + args, cwd=project)
        if code != want:
            return code or 1
    rows = json.loads(subprocess.run(cli + ["versions", "sst.zarr", "--json"], cwd=project,
                                     capture_output=True, text=True).stdout)
    a, b = (r["checksum"].split(":")[1][:12] for r in (rows[0], rows[-1]))
    args = ["diff", f"sst.zarr@{a}", f"sst.zarr@{b}"]
    print(f"\n$ datamanifest {' '.join(args)} | head -4   # what the two later years added",
          flush=True)
    out = subprocess.run(cli + args, cwd=project, capture_output=True, text=True)
    if out.returncode not in (0, 1):
        print(out.stderr, file=sys.stderr)
        return 1
    print("\n".join(out.stdout.splitlines()[:4]) + "\n...\n" + out.stderr.strip())
    script = (
        "import xarray as xr\n"
        "cube = xr.open_zarr('sst.zarr').load()\n"
        f"src = xr.open_dataset({str(src)!r}).load()\n"
        f"src = src.sel(time=slice('{years[0]}', '{years[-1]}'))\n"
        "xr.testing.assert_identical(cube, src)\n"
        "print('xr.open_zarr(sst.zarr):', dict(cube.sizes), '- identical to the source months')\n")
    print("\n$ python -c 'xr.open_zarr(\"sst.zarr\") ...'", flush=True)
    return subprocess.call([sys.executable, "-c", script], cwd=project)


def _target(project: Path, cli: list[str], name: str) -> str:
    out = subprocess.run(cli + ["path", name], cwd=project, capture_output=True, text=True)
    return out.stdout.strip()


def _produced_step(project: Path, cli: list[str]) -> int:
    """Run the produced-dataset step twice in fresh processes: computed, then loaded."""
    (project / "iers_stats.py").write_text(IERS_STATS)
    (project / "derive.py").write_text(DERIVE)
    print("\n$ cat iers_stats.py   # a function of the project, cached by parameter hash")
    print(IERS_STATS)
    for label in ("first call: computed and stored", "second call, a new process: loaded"):
        print(f"$ python derive.py   # {label}", flush=True)
        code = subprocess.call([sys.executable, "derive.py"], cwd=project)
        if code != 0:
            return code
    import tomllib

    state = (project / ".datamanifest" / "state.journal").read_text().splitlines()
    folder = Path(json.loads(state[-1])["path"])
    folder = folder if folder.is_absolute() else project / folder
    for name in ("config.toml", "metadata.toml", ".complete"):
        print(f"\n$ cat {folder.name[:12]}.../{name}")
        print((folder / name).read_text().rstrip())
    tomllib.loads((folder / "config.toml").read_text())
    return 0


def _forget_earlier_trust(manifest_path: Path) -> bool:
    """Revoke the trust an earlier ``make demo`` recorded for this same manifest path
    (TRU-006 keys records by path, and the demo writes the same manifest every run), so
    that every run shows the untrusted manifest first. Returns whether a record was removed."""
    from . import trust

    return trust.revoke(manifest_path)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    work = Path(argv[0] if argv else "demo-run").resolve()
    if work.exists():
        shutil.rmtree(work)
    served = work / "served"
    (served / "iers").mkdir(parents=True)
    (served / "xarray").mkdir(parents=True)
    for name in ("finals2000A.all", "Leap_Second.dat"):
        shutil.copy(_package_file("astropy_iers_data", "data", name), served / "iers" / name)
    tarball = served / "xarray" / "netcdf-samples.tar.gz"
    with tarfile.open(tarball, "w:gz") as tf:
        for name in ("example_1.nc", "bears.nc"):
            tf.add(_package_file("xarray", "tests", "data", name), arcname=f"samples/{name}")
    shutil.copy(_package_file("xarray", "tests", "data", "example_1.nc"),
                served / "xarray" / "example_1.nc")
    nemo = sorted(_package_file("iris_sample_data", "sample_data", "NEMO").glob("*.nc"))
    (served / "nemo").mkdir()
    for f in nemo:
        shutil.copy(f, served / "nemo" / f.name)

    project = work / "project"
    project.mkdir()
    _forget_earlier_trust(project / "datamanifest.toml")
    cli = [sys.executable, "-m", "datamanifest"]
    with LoopbackServer(served) as srv:
        base = srv.url("").rstrip("/")
        (project / "datamanifest.toml").write_text(MANIFEST.format(
            base=base, finals=_sha256(served / "iers" / "finals2000A.all"),
            tarball=_sha256(tarball),
            nemo=", ".join(f'"{base}/nemo/{f.name}"' for f in nemo)))
        steps = [
            (["check"], 0),
            (["trust", "--show"], 1),  # not trusted yet: what the manifest would run
            (["trust"], 0),
            (["fetch"], 0),
            (["status"], 0),
            (["path", "finals2000A"], 0),
            (["fetch"], 0),
            (["add", f"{base}/xarray/example_1.nc", "-q"], 0),  # declare + fetch + record
            (["show", "example_1"], 0),
        ]
        for args, want in steps:
            if args == ["trust"]:
                print("\ndemo: this manifest names a command (leap-seconds-head), so fetch would "
                      "refuse it (DM180) until it is trusted. The demo wrote this manifest and "
                      "trusts it now, as you would after reading the entries above:")
            print(f"\n$ datamanifest {' '.join(args)}", flush=True)
            code = subprocess.call(cli + args, cwd=project)
            if code != want:
                print(f"demo: `datamanifest {' '.join(args)}` exited {code}", file=sys.stderr)
                return code or 1
        print(f"\nGET requests served: {dict(srv.hits)} (the second fetch downloaded nothing;"
              " `add` fetched example_1.nc once)")
        code = _virtual_step(project, cli, served, srv)
        if code != 0:
            print(f"demo: the virtual step exited {code}", file=sys.stderr)
            return code
    print("\n$ cat datamanifest.toml   # leap-seconds now has its checksum, comments kept")
    print((project / "datamanifest.toml").read_text())
    extracted = sorted(p.relative_to(project) for p in (project / "datasets").rglob("*.nc"))
    print("extracted:", ", ".join(map(str, extracted)))
    try:
        xr = need("xarray", extra="demo", feature="the demo")

        ds = xr.open_dataset(project / extracted[0])
        print(f"\nopened {extracted[0].name} with xarray: {dict(ds.sizes)}")
        ds.close()
    except Exception as e:  # a NetCDF engine is optional for the demo
        print(f"(xarray could not open the sample here: {e})")
    code = _produced_step(project, cli)
    if code != 0:
        print(f"demo: the produced step exited {code}", file=sys.stderr)
        return code
    code = _append_step(project, cli)
    if code != 0:
        print(f"demo: the append step exited {code}", file=sys.stderr)
        return code
    print("\n$ datamanifest list   # every object of the store: datasets and produced artifacts",
          flush=True)
    code = subprocess.call(cli + ["list"], cwd=project)
    if code != 0:
        print(f"demo: `datamanifest list` exited {code}", file=sys.stderr)
        return code
    print(f"\ndemo done: {project}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

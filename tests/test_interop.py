"""The interop matrix (issue 22): every file of ``tests/interop.py`` (real files from packages,
and generated ones for what no package ships) through every reader of our exports --
``open_virtual``, kerchunk JSON and Parquet read by fsspec + xarray and by kerchunk's own
xarray backend, our re-import of both, Icechunk + xarray, ``ChunkStore`` + xarray, and
VirtualiZarr 2.8 in its own Python 3.12 venv where there is one -- each ``identical`` to
``xarray.open_dataset`` of the file.

Where a reader cannot be identical for a reason that xarray's own ``to_zarr``/``open_zarr``
round trip shares (a float32 ``scale_factor`` through JSON attributes; an ``S1`` variable
with ``_FillValue`` in Zarr v3: SCHEMA.md CHK-025), the case says so and the test asserts
that very outcome: the reader gives what xarray's round trip gives (the same values, or
the same error). ``bench/interop_matrix.py`` prints the whole table.
"""

from __future__ import annotations

import fcntl
import json
import os
import pickle
import subprocess
from pathlib import Path

import pytest

from . import interop
from . import realdata as rd

pytest.importorskip("xarray")
pytest.importorskip("h5py")
pytest.importorskip("netCDF4")  # writes the generated files (CDF5, fletcher32, groups)

CASES = interop.cases()


@pytest.fixture(scope="module")
def workdirs(tmp_path_factory) -> dict[str, Path]:
    return {}


def _work(workdirs: dict[str, Path], tmp_path_factory, case_id: str) -> Path:
    if case_id not in workdirs:
        workdirs[case_id] = tmp_path_factory.mktemp(case_id)
    return workdirs[case_id]


def _needs(reader: str) -> None:
    if reader.startswith("kerchunk-"):
        pytest.importorskip("kerchunk")
    if reader.startswith("fsspec") or reader.startswith("kerchunk"):
        pytest.importorskip("fsspec")
    if "parquet" in reader:
        pytest.importorskip("pyarrow")
    if reader == "icechunk":
        pytest.importorskip("icechunk")


@pytest.mark.covers("CHK-020", "CHK-022", "CHK-023", "CHK-025")
@pytest.mark.parametrize("reader", list(interop.READERS))
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_every_reader_is_identical_to_open_dataset(case: interop.Case, reader: str,
                                                   workdirs, tmp_path_factory):
    _needs(reader)
    kind, why = interop.outcome(case, reader, _work(workdirs, tmp_path_factory, case.id))
    if reader in case.like_xarray:
        # documented: xarray's own Zarr round trip is not identical either, and this
        # reader gives exactly what it gives
        assert kind == "as xarray's round trip", (case.like_xarray[reader], kind, why)
    else:
        assert kind == "identical", why


def test_the_matrix_covers_what_issue_22_lists():
    covered = {c for case in CASES for c in case.covers}
    for need in ("netcdf3", "netcdf3-64bit-offset", "netcdf3-cdf5", "netcdf4-zlib-shuffle",
                 "fletcher32", "contiguous", "groups", "scalar-fill", "scalar-no-fill", "S1",
                 "vlen-string", "packed", "cftime", "unallocated"):
        assert need in covered, need
    real = [c for c in CASES if not c.id.startswith("gen-")]
    assert len(real) >= 30


# -- joins: several real files along a dimension, through the same readers -------------------------
JOINS = {
    "iris-nemo-3": ("NEMO", "time_counter"),
    "cmip6-awi-65": (f"{interop.CMIP6}/AWI/AWI-CM-1-1-MR/historical/r1i1p1f1/Amon/ta", "time"),
    "cmip6-ec-earth3-65": (f"{interop.CMIP6}/EC-Earth-Consortium/EC-Earth3/historical/"
                           "r1i1p1f1/Amon/ta", "time"),
}


@pytest.fixture(scope="module")
def joins() -> dict[str, tuple[Path, object]]:
    """Each join's made-up path (``interop.JOINED``) and ``open_mfdataset`` of its files."""
    import xarray as xr

    from datamanifest.virtual import build

    out = {}
    for name, (folder, dim) in JOINS.items():
        root = (rd.wheel_files(rd.IRIS, f"{interop.IRIS}/{folder}") if folder == "NEMO"
                else rd.wheel_files(rd.ESMVALTOOL, folder))
        files = sorted(root.rglob("*.nc"))
        key = f"join:{name}"
        interop.JOINED[key] = build.virtualize(files, concat_dim=dim)
        with xr.open_mfdataset(files, combine="nested", concat_dim=dim, data_vars="minimal",
                               coords="minimal", compat="override") as ds:
            out[name] = Path(key), ds.load()
    return out


@pytest.mark.covers("CHK-024", "CHK-025")
@pytest.mark.parametrize("reader", list(interop.READERS))
@pytest.mark.parametrize("join", list(JOINS))
def test_joins_read_through_every_reader_as_open_mfdataset(join: str, reader: str, joins,
                                                           tmp_path: Path):
    """The 3 NEMO months, the 65 AWI-CM-1-1-MR years and the 65 EC-Earth3 years joined
    along time, exported and read back by every reader: ``open_mfdataset`` of the files."""
    import xarray as xr

    _needs(reader)
    path, want = joins[join]
    got = interop.READERS[reader](path, "", tmp_path).load()
    xr.testing.assert_identical(got, want)


# -- VirtualiZarr 2.8 (Python >= 3.12) reading our kerchunk exports -----------------------------
_VZ = r"""
import json, pickle, sys, warnings
warnings.simplefilter("ignore")
import numpy as np, xarray as xr
from obstore.store import LocalStore
from obspec_utils.registry import ObjectStoreRegistry
from virtualizarr.parsers import KerchunkJSONParser, KerchunkParquetParser
out = {}
for line in sys.stdin:
    case, kind, refs, ref_nc, group = json.loads(line)
    registry = ObjectStoreRegistry({"file://": LocalStore()})
    parser = (KerchunkJSONParser if kind == "json" else KerchunkParquetParser)(
        group=group or None)
    try:
        ds = xr.open_zarr(parser("file://" + refs, registry=registry), consolidated=False,
                          zarr_format=3, chunks=None, decode_times=False).load()
        with open(ref_nc, "wb") as f:  # times as stored: that venv may lack cftime
            pickle.dump(ds.drop_encoding(), f)
        out[f"{case}:{kind}:{group}"] = "ok"
    except Exception as e:
        out[f"{case}:{kind}:{group}"] = f"{type(e).__name__}: {str(e)[:300]}"
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def virtualizarr(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """VirtualiZarr's reading of every case's exports (each of its groups), run once in its
    own venv: (folder of what it read, pickled, case:kind:group -> ok or the error)."""
    from datamanifest.testing.venvs import virtualizarr_python

    py = virtualizarr_python(rd.ROOT)
    if py is None:
        pytest.skip("VirtualiZarr 2 needs Python 3.12, which is not here")
    # once per test run: pytest-xdist workers share their run's folder and the first one in
    # computes what every worker reads
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    out = shared / "virtualizarr"
    with open(shared / ".virtualizarr.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = out / "results.json"
        if not done.exists():
            out.mkdir(exist_ok=True)
            results = _virtualizarr_run(py, out)
            done.write_text(json.dumps(results))
        return out, json.loads(done.read_text())


def _vz_pickle(kind: str, group: str) -> str:
    return f"vz-{kind}-{group.replace('/', '_') or 'root'}.pickle"


def _virtualizarr_run(py: str, out: Path) -> dict[str, str]:
    lines = []
    for case in CASES:
        try:
            path = case.get()
        except BaseException:  # noqa: BLE001 - a file this machine cannot have: skipped below
            continue
        work = out / case.id
        exports = interop._exports(path, work)
        for kind in ("json", "parquet"):
            for group in case.groups:
                lines.append(json.dumps([case.id, kind, str(exports[kind]),
                                         str(work / _vz_pickle(kind, group)), group]))
    r = subprocess.run([py, "-c", _VZ], input="\n".join(lines), capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


#: where VirtualiZarr 2.8's kerchunk parsers lose what fsspec, kerchunk and xarray read from
#: the same references (measured: kerchunk 0.2.10's own references of these files fail the
#: same way, so these are its limits, not the exports'): case[:kind] -> (the kind of failure,
#: the reason). A failure of another kind than the one named is a failure of the test.
_VZ_FILL = ("values", "VirtualiZarr turns the Zarr v2 fill_value into a Zarr v3 fill_value "
            "and keeps no _FillValue attribute, and xarray masks Zarr v3 by the attribute "
            "only: masked values come back unmasked (zarr-developers/VirtualiZarr#982, "
            "pydata/xarray#5475)")
_VZ_VLEN = ("Object", "VirtualiZarr makes Zarr v3 metadata from the bare numpy dtype |O, which "
            "zarr-python refuses as ambiguous even with the vlen-utf8 filter "
            "(zarr-developers/VirtualiZarr#1053, the same root cause in its Zarr parser)")
_VZ_F32 = ("values", "a float32 scale_factor through JSON attributes decodes packed values as "
           "float64, as xarray's own to_zarr/open_zarr round trip does (CHK-025)")
_VZ_PARQ_GROUPS = ("KeyError", "fsspec's LazyReferenceMapper, which VirtualiZarr's Parquet "
                   "parser iterates, takes every folder of a Parquet reference set for an "
                   "array and asks for its .zarray: a file with subgroups does not open, "
                   "at any group")
VZ_LIMITS = {
    "ncarg-tstorm": _VZ_FILL, "scipy-maskedvals": _VZ_FILL, "iris-ostia": _VZ_FILL,
    "iris-soi-darwin": _VZ_FILL, "gen-cdf2-record": _VZ_FILL, "iris-atlantic-profiles": _VZ_FILL,
    # chlor_a: float32 scale_factor and its _FillValue both lost
    "ncmeta-chlor-a:json": _VZ_FILL,
    "iris-vlstr": _VZ_VLEN, "h5py-vlen-strings": _VZ_VLEN, "kerchunk-vlen": _VZ_VLEN,
    "gen-fletcher32-noleap": _VZ_VLEN,
    "gen-packed-int16": _VZ_F32,
    "gen-nested-groups:json": _VZ_FILL,  # group a: w's masked value
    "ncmeta-chlor-a:parquet": _VZ_PARQ_GROUPS, "ncarg-nc4uvt:parquet": _VZ_PARQ_GROUPS,
    "gen-nested-groups:parquet": _VZ_PARQ_GROUPS,
}


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["json", "parquet"])
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_virtualizarr_reads_our_kerchunk_exports(case: interop.Case, kind: str, virtualizarr):
    import xarray as xr

    folder, results = virtualizarr
    if f"{case.id}:{kind}:{case.groups[0]}" not in results:
        pytest.skip(f"{case.id} could not be had here")
    failure, limit = VZ_LIMITS.get(f"{case.id}:{kind}") or VZ_LIMITS.get(case.id) or ("", "")
    differs = False
    for group in case.groups:
        got = results[f"{case.id}:{kind}:{group}"]
        if failure and failure != "values" and got != "ok":
            # the documented failure, not another one
            assert failure in got, (group, limit, got)
            pytest.xfail(limit)
        assert got == "ok", (group, got)
        with open(folder / case.id / _vz_pickle(kind, group), "rb") as f:
            vz = pickle.load(f)
        with xr.open_dataset(case.get(), group=group or None, decode_times=False) as want:
            try:
                xr.testing.assert_identical(vz, want.load())
            except AssertionError:
                if failure != "values":
                    raise
                differs = True
    if differs:
        pytest.xfail(limit)

"""The interop matrix (issue 22): real files from packages, and a few generated ones, each
read through every reader of our exports and compared with ``xarray.open_dataset`` of the
file itself.

Used by ``tests/test_interop.py`` (one test per file and reader) and by
``bench/interop_matrix.py`` (the table of identical / wrong values / does not open).

A *case* names a file (fetched into ``.cache/real-data`` by :mod:`tests.realdata`, or
generated into ``.cache/real-data/generated``) and the groups compared. A *reader* turns a
chunk manifest of it into an ``xarray.Dataset`` of one group.
"""

from __future__ import annotations

import functools
import json
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import realdata as rd

NCARG = "usr/share/ncarg/data/cdf"
NCMETA = "usr/lib/R/site-library/ncmeta/extdata"
STARS = "usr/lib/R/site-library/stars/nc"
IRIS = "iris_sample_data/sample_data"
CMIP6 = "esmvaltool_sample_data/data/timeseries/CMIP6/CMIP"


def _installed(module: str, rel: str) -> Path:
    """A data file shipped inside an installed package (scipy, xarray, h5py: test
    dependencies)."""
    import importlib.util

    import pytest

    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        pytest.skip(f"{module} is not installed")
    path = Path(list(spec.submodule_search_locations)[0]) / rel
    if not path.exists():
        pytest.skip(f"{rel} is not in the installed {module}")
    return path


@dataclass(frozen=True)
class Case:
    """One file of the matrix: ``id``, how to get its path, what it covers, its groups."""

    id: str
    get: Callable[[], Path]
    covers: tuple[str, ...] = ()
    groups: tuple[str, ...] = ("",)
    #: readers expected to differ from open_dataset as xarray's own Zarr round trip does
    #: (SCHEMA.md CHK-025): reader -> the reason; the test asserts that same outcome
    like_xarray: dict[str, str] = field(default_factory=dict, hash=False)


def _deb(pkg: str, prefix: str, name: str) -> Callable[[], Path]:
    return lambda: rd.deb_files(pkg, f"{prefix}/{name}")


def _whl(spec: str, path: str) -> Callable[[], Path]:
    return lambda: rd.wheel_files(spec, path)


def _cmip(inst_model: str, table: str = "Amon") -> Callable[[], Path]:
    def get() -> Path:
        root = rd.wheel_files(rd.ESMVALTOOL, f"{CMIP6}/{inst_model}/historical/r1i1p1f1/"
                              f"{table}/ta")
        return sorted(root.rglob("*.nc"))[0]
    return get


# -- generated files: what no package ships (CDF5, fletcher32, ...) ------------------------------
GENERATED = rd.CACHE / "generated" / "v1"


def _generated(name: str, write: Callable[[Path], None]) -> Callable[[], Path]:
    def get() -> Path:
        path = GENERATED / name
        if not path.exists():
            GENERATED.mkdir(parents=True, exist_ok=True)
            tmp = GENERATED / f".{name}.{os.getpid()}"
            write(tmp)
            os.replace(tmp, path)  # xdist workers may race: the last rename wins, same bytes
        return path
    return get


def _times(n: int) -> np.ndarray:
    return np.arange(n, dtype="float64")


def _write_groups(path: Path) -> None:
    import netCDF4

    with netCDF4.Dataset(path, "w", format="NETCDF4") as d:
        d.title = "nested groups"
        d.createDimension("x", 4)
        v = d.createVariable("x", "f8", ("x",))
        v[:] = np.arange(4.0)
        g = d.createGroup("a")
        g.createDimension("y", 3)
        w = g.createVariable("w", "i4", ("x", "y"), zlib=True, chunksizes=(2, 3),
                             fill_value=-9)
        w[:] = np.arange(12).reshape(4, 3)
        w[1, 1] = np.ma.masked
        h = g.createGroup("b")
        h.note = "deepest"
        u = h.createVariable("u", "f4", ("y",))
        u.units = "m"
        u[:] = [1.5, 2.5, 3.5]
        s = h.createVariable("s", "f8", ())  # a scalar in a subgroup
        s[...] = 7.0


def _write_packed(path: Path) -> None:
    import netCDF4

    with netCDF4.Dataset(path, "w", format="NETCDF4") as d:
        d.createDimension("time", None)
        d.createDimension("lat", 5)
        t = d.createVariable("time", "f8", ("time",))
        t.units = "hours since 1970-01-01 00:00:00"
        t.calendar = "standard"
        t[:] = np.arange(6) * 6.0
        v = d.createVariable("t2m", "i2", ("time", "lat"), zlib=True, shuffle=True,
                             chunksizes=(2, 5), fill_value=np.int16(-32767))
        v.scale_factor = np.float32(0.01)
        v.add_offset = np.float32(273.15)
        v.units = "K"
        data = np.ma.masked_array(270 + np.arange(30).reshape(6, 5) * 0.37,
                                  mask=np.zeros((6, 5), bool))
        data.mask[2, 3] = True
        v[:] = data
        s = d.createVariable("crs", "i4", ())  # a grid-mapping scalar without _FillValue
        s.grid_mapping_name = "latitude_longitude"
        s.radius = np.float32(6371000.0)
        s2 = d.createVariable("height", "f8", (), fill_value=-1.0e20)  # with _FillValue
        s2.units = "m"
        s2[...] = 2.0


def _write_fletcher(path: Path) -> None:
    import netCDF4

    with netCDF4.Dataset(path, "w", format="NETCDF4") as d:
        d.createDimension("time", 8)
        d.createDimension("x", 6)
        t = d.createVariable("time", "f8", ("time",))
        t.units = "days since 2001-01-01"
        t.calendar = "noleap"
        t[:] = np.arange(8) * 45.5
        v = d.createVariable("tas", "f4", ("time", "x"), fletcher32=True, zlib=True,
                             shuffle=True, chunksizes=(4, 3))
        v.units = "K"
        v[:] = np.linspace(250, 300, 48).reshape(8, 6)
        e = d.createVariable("empty", "f4", ("time", "x"), chunksizes=(4, 6))  # never written
        e.long_name = "unallocated chunks read as the fill value"
        cm = d.createVariable("v1", str, ("x",))  # variable-length strings
        cm[:] = np.array(["a", "bb", "ccc", "", "eeeee", "ü"], dtype=object)
        c = d.createVariable("label", "S1", ("time",))  # char, with _FillValue
        c[:] = np.array(list(b"abcdefgh"), dtype="S1")


def _write_cdf2_record(path: Path) -> None:
    import netCDF4

    with netCDF4.Dataset(path, "w", format="NETCDF3_64BIT_OFFSET") as d:
        d.createDimension("time", None)
        d.createDimension("station", 3)
        d.createDimension("nchar", 4)
        t = d.createVariable("time", "f8", ("time",))
        t.units = "days since 1990-01-01"
        t[:] = np.arange(5.0)
        a = d.createVariable("temp", "f4", ("time", "station"), fill_value=np.float32(-999))
        a[:] = np.arange(15, dtype="f4").reshape(5, 3)
        a[2, 1] = np.ma.masked
        b = d.createVariable("count", "i2", ("time",))
        b[:] = np.arange(5)
        n = d.createVariable("name", "S1", ("station", "nchar"))
        n[:] = netCDF4.stringtochar(np.array(["abc", "de", "fghi"], dtype="S4"))
        z = d.createVariable("elevation", "f8", ())
        z[...] = 12.5


def _write_classic4(path: Path) -> None:
    import netCDF4

    with netCDF4.Dataset(path, "w", format="NETCDF4_CLASSIC") as d:
        d.createDimension("lat", 10)
        d.createDimension("lon", 12)
        v = d.createVariable("lat", "f4", ("lat",), contiguous=True)
        v[:] = np.linspace(-45, 45, 10)
        v.units = "degrees_north"
        w = d.createVariable("z", "f8", ("lat", "lon"), contiguous=True)
        w[:] = np.arange(120.0).reshape(10, 12)
        w.missing_value = 7.0
        u = d.createVariable("flag", "i1", ("lat",), contiguous=True)
        u[:] = np.arange(10, dtype="i1")


def _write_cdf5(path: Path) -> None:
    import netCDF4

    with netCDF4.Dataset(path, "w", format="NETCDF3_64BIT_DATA") as d:
        d.createDimension("t", None)
        d.createDimension("n", 4)
        a = d.createVariable("big", "u8", ("n",))
        a[:] = np.array([0, 1, 2**40, 2**63 + 5], dtype="u8")
        b = d.createVariable("i64", "i8", ("t", "n"))
        b[:] = np.arange(8, dtype="i8").reshape(2, 4) - 3
        c = d.createVariable("u2", "u2", ("t",))
        c[:] = [1, 65000]


def _generated_cases() -> list[Case]:
    return [
        Case("gen-nested-groups", _generated("nested_groups.nc", _write_groups),
             ("groups", "netcdf4-zlib", "scalar-no-fill"), ("", "a", "a/b")),
        Case("gen-packed-int16", _generated("packed_int16.nc", _write_packed),
             ("packed", "netcdf4-zlib-shuffle", "scalar-fill", "scalar-no-fill"),
             like_xarray=_ZARR_READERS_F32),
        Case("gen-fletcher32-noleap", _generated("fletcher32_noleap.nc", _write_fletcher),
             ("fletcher32", "cftime", "vlen-string", "S1", "unallocated")),
        Case("gen-cdf2-record", _generated("cdf2_record.nc", _write_cdf2_record),
             ("netcdf3-64bit-offset", "record-dimension", "S1", "scalar-no-fill")),
        Case("gen-netcdf4-classic-contiguous", _generated("classic4.nc", _write_classic4),
             ("contiguous",)),
        Case("gen-cdf5", _generated("cdf5.nc", _write_cdf5), ("netcdf3-cdf5",)),
    ]


# -- the real files ---------------------------------------------------------------------------------
_PACKED_F32 = ("a float32 scale_factor: Zarr attributes are JSON, so xarray's own to_zarr/open_zarr "
               "round trip decodes the packed values as float64 too (CHK-025)")
_S1_V3 = ("an S1 variable with _FillValue: xarray's own Zarr v3 round trip cannot read it back "
          "(Unsupported dtype |S1, CHK-025)")
_ZARR_READERS_F32 = {r: _PACKED_F32 for r in (
    "fsspec+kerchunk-json", "fsspec+kerchunk-parquet", "kerchunk-json", "kerchunk-parquet",
    "icechunk", "chunkstore")}


def _real_cases() -> list[Case]:
    W, I = rd.wheel_files, IRIS  # noqa: E741
    drb = "pywatershed/data/drb_2yr"
    out = [
        # NetCDF classic (CDF-1)
        Case("ncarg-trinidad", _deb("libncarg-data", NCARG, "trinidad.nc"), ("netcdf3",)),
        # (the SAO surface reports, 950318*_sao.cdf, have thousands of interleaved record
        # chunks: correct through every reader, but 10-20 s each through zarr; the
        # generated CDF-2 file covers records with S1 characters instead)
        Case("ncarg-tstorm", _deb("libncarg-data", NCARG, "Tstorm.cdf"), ("netcdf3",)),
        Case("ncarg-sst30e", _deb("libncarg-data", NCARG, "sst30e_netcdf.nc"),
             ("netcdf3", "record-dimension")),
        Case("ncarg-fice", _deb("libncarg-data", NCARG, "fice.nc"), ("netcdf3",)),
        Case("ncarg-traj", _deb("libncarg-data", NCARG, "traj_data.nc"), ("netcdf3",)),
        Case("eofs-hgt-djf", _whl("eofs==2.0.0", "eofs/examples/example_data/hgt_djf.nc"),
             ("netcdf3", "record-dimension")),
        Case("eofs-sst-anom", _whl("eofs==2.0.0",
                                   "eofs/examples/example_data/sst_ndjfm_anom.nc"),
             ("netcdf3", "record-dimension")),
        Case("scipy-example-1", lambda: _installed("scipy", "io/tests/data/example_1.nc"),
             ("netcdf3",)),
        Case("scipy-maskedvals", lambda: _installed(
            "scipy", "io/tests/data/example_3_maskedvals.nc"),
             ("netcdf3", "S1", "fill-value"),
             like_xarray={"icechunk": _S1_V3, "chunkstore": _S1_V3}),
        Case("xarray-example-1", lambda: _installed("xarray", "tests/data/example_1.nc"),
             ("netcdf3",)),
        Case("xarray-bears", lambda: _installed("xarray", "tests/data/bears.nc"),
             ("netcdf4",)),
        Case("stars-stageiv", _deb("r-cran-stars", STARS, "test_stageiv_xyt.nc"),
             ("netcdf3",)),
        Case("stars-bcsd", _deb("r-cran-stars", STARS, "bcsd_obs_1999.nc"),
             ("netcdf3", "record-dimension")),
        # 64-bit offset (CDF-2)
        Case("iris-mesh-cdf2", lambda: W(rd.IRIS, f"{I}/mesh_C4_synthetic_float.nc"),
             ("netcdf3-64bit-offset",)),
        Case("stars-sub-cdf2", _deb("r-cran-stars", STARS, "sub.nc"),
             ("netcdf3-64bit-offset",)),
        # NetCDF4: chunked, zlib and shuffle
        *[Case(f"pywatershed-{n}", (lambda n=n: W(rd.PYWATERSHED, f"{drb}/{n}.nc")),
               ("netcdf4-zlib-shuffle",)) for n in ("prcp", "tmax", "tmin", "ssr_to_gw",
                                                    "dprst_seep_hru", "soil_to_gw")],
        Case("stars-lcc-km", _deb("r-cran-stars", STARS, "lcc_km.nc"),
             ("netcdf4-zlib-shuffle",)),
        Case("ncmeta-chlor-a", _deb("r-cran-ncmeta", NCMETA,
                                    "S2008001.L3m_DAY_CHL_chlor_a_9km.nc"),
             ("netcdf4-zlib", "groups", "many-chunks")),
        Case("ncarg-nc4uvt", _deb("libncarg-data", NCARG, "nc4uvt.nc"),
             ("groups", "netcdf4-zlib-shuffle"), ("", "grp1")),
        Case("iris-nemo-jan", lambda: sorted(W(rd.IRIS, f"{I}/NEMO").glob("*.nc"))[0],
             ("netcdf4-zlib", "cftime")),
        Case("ncmeta-daymet", _deb("r-cran-ncmeta", NCMETA, "daymet_sample.nc"),
             ("netcdf4",)),
        # NetCDF4: contiguous, calendars, packing, fill values
        Case("iris-a1b-360day", lambda: W(rd.IRIS, f"{I}/A1B_north_america.nc"),
             ("contiguous", "cftime")),
        Case("iris-ostia", lambda: W(rd.IRIS, f"{I}/ostia_monthly.nc"), ("contiguous",)),
        Case("iris-soi-darwin", lambda: W(rd.IRIS, f"{I}/SOI_Darwin.nc"),
             ("fill-value", "scalar-fill")),
        Case("iris-vlstr", lambda: W(rd.IRIS, f"{I}/vlstr_type.nc"), ("vlen-string",)),
        Case("iris-atlantic-profiles", lambda: W(rd.IRIS, f"{I}/atlantic_profiles.nc"),
             ("netcdf4",)),
        Case("iris-rotated-pole", lambda: W(rd.IRIS, f"{I}/rotated_pole.nc"),
             ("scalar-no-fill",)),
        Case("iris-hybrid-height", lambda: W(rd.IRIS, f"{I}/hybrid_height.nc"),
             ("scalar-no-fill",)),
        Case("aospy-precip-noleap", _whl("aospy==0.3.1", "aospy/test/data/netcdf/"
                                         "00040101.precip_monthly.nc"),
             ("contiguous", "cftime")),
        Case("kerchunk-air-packed", _whl("kerchunk==0.2.6", "kerchunk/tests/air.nc"),
             ("packed", "contiguous")),
        Case("cmip6-awi", _cmip("AWI/AWI-CM-1-1-MR"), ("contiguous", "scalar-no-fill")),
        Case("cmip6-ec-earth3", _cmip("EC-Earth-Consortium/EC-Earth3"),
             ("contiguous", "scalar-no-fill")),
        Case("pvlib-altitude", _whl(rd.PVLIB, "pvlib/data/Altitude.h5"), ("hdf5",)),
        Case("h5py-vlen-strings", lambda: _installed("h5py", "tests/data_files/"
                                                     "vlen_string_dset.h5"),
             ("hdf5", "vlen-string")),
        Case("kerchunk-vlen", _whl(rd.KERCHUNK, "kerchunk/tests/vlen.h5"),
             ("hdf5", "vlen-string")),
    ]
    return out


def cases() -> list[Case]:
    return _real_cases() + _generated_cases()


CASES = {c.id: c for c in cases()}


# -- readers ---------------------------------------------------------------------------------------
#: chunk manifests of joins (several files along a dimension), under a made-up path
#: ``join:<name>`` that the readers take in place of a file's
JOINED: dict[str, Any] = {}


@functools.lru_cache(maxsize=8)
def manifest_of(path: str):
    """The chunk manifest of a file (parsed once per process), or of a join."""
    from datamanifest.virtual import build

    if path in JOINED:
        return JOINED[path]
    return build.parse_source(path)


def reference(path: Path, group: str):
    import xarray as xr

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with xr.open_dataset(path, group=group or None) as ds:
            return ds.load()


def _exports(path: Path, work: Path) -> dict[str, Path]:
    """kerchunk JSON and Parquet of a file's manifest, written once into ``work``."""
    from datamanifest.virtual import kerchunk

    out = {"json": work / "refs.json", "parquet": work / "refs.parq"}
    if not out["json"].exists():
        m = manifest_of(str(path))
        work.mkdir(parents=True, exist_ok=True)
        out["json"].write_text(json.dumps(kerchunk.to_json(m)))
        kerchunk.write_parquet(m, out["parquet"])
    return out


def _zarr2(mapper_or_store, group: str, **kw):
    import xarray as xr

    return xr.open_dataset(mapper_or_store, engine="zarr", consolidated=False, zarr_format=2,
                           **kw)


def read_open_virtual(path: Path, group: str, work: Path):
    from datamanifest.virtual import open_virtual

    doc = json.loads(json.dumps(manifest_of(str(path)).as_json()))
    return open_virtual(doc, group=group)


def read_fsspec_json(path: Path, group: str, work: Path):
    import fsspec

    refs = json.loads(_exports(path, work)["json"].read_text())
    fs = fsspec.filesystem("reference", fo=refs)
    return _zarr2(fs.get_mapper(group), group)


def read_fsspec_parquet(path: Path, group: str, work: Path):
    import fsspec

    fs = fsspec.filesystem("reference", fo=str(_exports(path, work)["parquet"]),
                           remote_protocol="file")
    return _zarr2(fs.get_mapper(group), group)


def _kerchunk_backend(refs: Path, group: str):
    import xarray as xr

    if not group:
        return xr.open_dataset(str(refs), engine="kerchunk",
                               storage_options={"remote_protocol": "file"},
                               open_dataset_options={"chunks": None})
    # kerchunk's store has the path "/", under which zarr lists no member of a subgroup
    # (kerchunk's own references alike): a subgroup is opened at its path in that store
    from kerchunk.utils import refs_as_store
    from zarr.storage import FsspecStore

    store = refs_as_store(str(refs), remote_protocol="file")
    return xr.open_zarr(FsspecStore(store.fs, path=group, read_only=True), zarr_format=2,
                        consolidated=False, chunks=None)


def read_kerchunk_json(path: Path, group: str, work: Path):
    return _kerchunk_backend(_exports(path, work)["json"], group)


def read_kerchunk_parquet(path: Path, group: str, work: Path):
    return _kerchunk_backend(_exports(path, work)["parquet"], group)


def read_reimport_json(path: Path, group: str, work: Path):
    from datamanifest.virtual import build, open_virtual

    return open_virtual(build.parse_source(_exports(path, work)["json"]), group=group)


def read_reimport_parquet(path: Path, group: str, work: Path):
    from datamanifest.virtual import build, open_virtual

    return open_virtual(build.parse_source(_exports(path, work)["parquet"]), group=group)


def read_icechunk(path: Path, group: str, work: Path):
    import xarray as xr

    from datamanifest.virtual.icechunk import open_icechunk, to_icechunk

    m = manifest_of(str(path))
    repo = work / "icechunk"
    if not repo.exists():
        to_icechunk(m, repo)
    return xr.open_zarr(open_icechunk(repo, m), group=group or None, consolidated=False,
                        chunks=None)


def read_chunkstore(path: Path, group: str, work: Path):
    import xarray as xr

    from datamanifest.virtual.store import Session
    from datamanifest.virtual.zarrstore import ChunkStore

    return xr.open_zarr(ChunkStore(Session(manifest_of(str(path)))), group=group or None,
                        consolidated=False, chunks=None)


READERS: dict[str, Callable[[Path, str, Path], Any]] = {
    "open_virtual": read_open_virtual,
    "fsspec+kerchunk-json": read_fsspec_json,
    "fsspec+kerchunk-parquet": read_fsspec_parquet,
    "kerchunk-json": read_kerchunk_json,
    "kerchunk-parquet": read_kerchunk_parquet,
    "reimport-json": read_reimport_json,
    "reimport-parquet": read_reimport_parquet,
    "icechunk": read_icechunk,
    "chunkstore": read_chunkstore,
}


#: the Zarr format each reader reads (xarray's own round trip is made in it)
ZARR_FORMAT = {"fsspec+kerchunk-json": 2, "fsspec+kerchunk-parquet": 2, "kerchunk-json": 2,
               "kerchunk-parquet": 2, "icechunk": 3, "chunkstore": 3}


def xarray_round_trip(path: Path, group: str, zarr_format: int, work: Path):
    """``open_dataset`` of the file written by xarray's own ``to_zarr`` and read back with
    ``open_zarr``: what no exporter can beat (CHK-025). Variable by variable, so
    that one xarray cannot write (conflicting ``_FillValue`` and ``missing_value``) does not
    hide what the others give; such a variable keeps its ``open_dataset`` values. Raises
    what xarray raises on reading one back."""
    import xarray as xr

    ds = reference(path, group)
    parts = []
    for i, name in enumerate(ds.data_vars):
        store = work / f"xarray-{zarr_format}-{group.replace('/', '_') or 'root'}-{i}.zarr"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if not store.exists():
                try:
                    ds[[name]].to_zarr(store, zarr_format=zarr_format, consolidated=False)
                except ValueError:  # xarray cannot write it at all
                    parts.append(ds[[name]])
                    continue
            parts.append(xr.open_zarr(store, zarr_format=zarr_format, consolidated=False,
                                      chunks=None).load())
    if not parts:
        return ds
    return xr.merge(parts, combine_attrs="override", compat="override")


def _same(a, b) -> bool:
    import xarray as xr

    try:
        xr.testing.assert_identical(a, b)
        return True
    except AssertionError:
        return False


def outcome(case: Case, reader: str, work: Path) -> tuple[str, str]:
    """(``identical`` | ``as xarray's round trip`` | ``wrong values`` | ``does not open``,
    detail) of one reader over every group of a case. ``as xarray's round trip``: not
    identical to ``open_dataset``, exactly as xarray's own ``to_zarr``/``open_zarr`` round
    trip in the reader's Zarr format is not (the same values, or the same error)."""
    import xarray as xr

    path = case.get()
    result = "identical", ""
    for group in case.groups:
        want = reference(path, group)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                got = READERS[reader](path, group, work).load()
        except Exception as e:  # noqa: BLE001 - the outcome is the point
            error = f"{type(e).__name__}: {str(e)[:300]}"
            fmt = ZARR_FORMAT.get(reader)
            if fmt is not None:
                try:
                    xarray_round_trip(path, group, fmt, work)
                except Exception as x:  # noqa: BLE001
                    if type(x) is type(e) and str(x)[:60] == str(e)[:60]:
                        result = "as xarray's round trip", f"{group or '/'}: {error}"
                        continue
            return "does not open", f"{group or '/'}: {error}"
        try:
            xr.testing.assert_identical(got, want)
        except AssertionError as e:
            fmt = ZARR_FORMAT.get(reader)
            if fmt is not None:
                try:
                    theirs = xarray_round_trip(path, group, fmt, work)
                except Exception:  # noqa: BLE001
                    theirs = None
                if theirs is not None and not _same(theirs, want) and _same(got, theirs):
                    result = "as xarray's round trip", f"{group or '/'}: {str(e)[:300]}"
                    continue
            return "wrong values", f"{group or '/'}: {str(e)[:600]}"
    return result

"""Chunk manifests (SCHEMA.md §25) on real data from the package registries: every virtual
open must equal xarray's direct read of the sources."""

from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from . import realdata as rd

xr = pytest.importorskip("xarray")
pytest.importorskip("h5py")

from datamanifest.errors import VirtualError  # noqa: E402
from datamanifest.virtual import build, kerchunk, open_virtual  # noqa: E402
from datamanifest.virtual.store import Session  # noqa: E402
from datamanifest.virtual.zarrstore import ChunkStore  # noqa: E402

warnings.filterwarnings("ignore", category=xr.SerializationWarning)


def _identical(manifest, reference, **kw) -> None:
    ds = open_virtual(json.loads(json.dumps(manifest.as_json())), **kw).load()
    xr.testing.assert_identical(ds, reference.load())


@pytest.fixture(scope="module")
def drb() -> Path:
    return rd.wheel_files(rd.PYWATERSHED, "pywatershed/data/drb_2yr")


# -- HDF5 / NetCDF4 ---------------------------------------------------------------------------
@pytest.mark.covers("CHK-020")
@pytest.mark.parametrize("name", ["prcp", "tmax", "tmin", "ssr_to_gw", "dprst_seep_hru"])
def test_netcdf4_files_open_equal_to_xarray(drb: Path, name: str):
    f = drb / f"{name}.nc"
    m = build.parse_source(f)
    arrays = {p: n for p, n in m.nodes.items() if n.is_array}
    data = next(n for p, n in arrays.items() if p not in ("time", "nhm_id"))
    assert [c["name"] for c in data.metadata["codecs"]] == ["bytes", "numcodecs.shuffle",
                                                            "numcodecs.zlib"]
    assert data.refs.count == 25  # 731 days in chunks of 30: the last one partial
    _identical(m, xr.open_dataset(f))


def test_plain_hdf5_with_many_chunks_equals_h5py():
    import h5py

    f = rd.wheel_files(rd.PVLIB, "pvlib/data/LinkeTurbidities.h5")
    m = build.parse_source(f)
    node = m.nodes["LinkeTurbidity"]
    assert node.refs.count == 1536
    ds = open_virtual(m, decode=False)
    with h5py.File(f) as h:
        np.testing.assert_array_equal(ds["LinkeTurbidity"].values, h["LinkeTurbidity"][...])
        np.testing.assert_array_equal(ds["LinkeTurbidity"][100:300, 5, 3].values,
                                      h["LinkeTurbidity"][100:300, 5, 3])


def test_groups():
    f = rd.deb_files("libncarg-data", "usr/share/ncarg/data/cdf/nc4uvt.nc")
    m = build.parse_source(f)
    assert {"grp1", "group2", "g3"} <= set(m.nodes)
    _identical(m, xr.open_dataset(f))
    _identical(m, xr.open_dataset(f, group="grp1"), group="grp1")


@pytest.mark.covers("CHK-021")
def test_a_filter_without_codec_names_the_variable_and_the_filter():
    f = rd.wheel_files(rd.KERCHUNK, "kerchunk/tests/hdf5_compression_zstd.h5")
    with pytest.raises(VirtualError) as e:
        build.parse_source(f)
    assert e.value.code == "DM153" and "zstd" in e.value.message
    assert "variable" in e.value.message and "inline" in (e.value.hint or "")


def test_contiguous_split_into_row_chunks(tmp_path: Path):
    import h5py

    f = tmp_path / "c.h5"
    values = np.arange(1200 * 50, dtype="<f8").reshape(1200, 50)
    with h5py.File(f, "w") as h:
        h["v"] = values
    m = build.parse_source(f, build.Options(split_contiguous=64 * 1024))
    node = m.nodes["v"]
    assert node.refs.count > 1 and 1200 % node.metadata["chunk_grid"]["configuration"][
        "chunk_shape"][0] == 0
    got = open_virtual(m, decode=False)["v"]
    np.testing.assert_array_equal(got.values, values)
    np.testing.assert_array_equal(got[::-7, 3].values, values[::-7, 3])


# -- NetCDF classic ------------------------------------------------------------------------------
@pytest.mark.covers("CHK-022")
@pytest.mark.parametrize("name", ["trinidad.nc", "950318_sao.cdf", "Tstorm.cdf",
                                  "sst30e_netcdf.nc", "fice.nc"])
def test_netcdf3_classic_equal_to_xarray(name: str):
    f = rd.deb_files("libncarg-data", f"usr/share/ncarg/data/cdf/{name}")
    assert f.read_bytes()[:4] == b"CDF\x01"
    _identical(build.parse_source(f), xr.open_dataset(f))


def test_netcdf3_64bit_offset():
    f = rd.wheel_files(rd.IRIS, "iris_sample_data/sample_data/mesh_C4_synthetic_float.nc")
    assert f.read_bytes()[:4] == b"CDF\x02"
    _identical(build.parse_source(f), xr.open_dataset(f))


# -- many files as one ----------------------------------------------------------------------------
def _mf(files, dim):
    return xr.open_mfdataset(files, combine="nested", concat_dim=dim, data_vars="minimal",
                             coords="minimal", compat="override")


@pytest.mark.covers("CHK-024")
def test_nemo_monthly_files_along_time_counter():
    folder = rd.wheel_files(rd.IRIS, "iris_sample_data/sample_data/NEMO")
    files = sorted(folder.glob("*.nc"))
    assert len(files) == 3
    m = build.virtualize(files, concat_dim="time_counter")
    assert len(m.sources) == 3
    assert m.nodes["time_counter"].refs.inline  # the concatenated coordinate, inlined
    _identical(m, _mf(files, "time_counter"))


def test_cmip6_yearly_files_along_time():
    root = rd.wheel_files(rd.ESMVALTOOL, "esmvaltool_sample_data/data/timeseries/CMIP6/CMIP/"
                          "AWI/AWI-CM-1-1-MR/historical/r1i1p1f1/Amon/ta")
    files = sorted(root.rglob("*.nc"))
    assert len(files) == 65
    m = build.virtualize(files, concat_dim="time")
    ds = open_virtual(m)
    assert ds.sizes["time"] == 780 and str(ds.time.values[0])[:7] == "1950-01"
    _identical(m, _mf(files, "time"))


def test_files_that_disagree_are_refused_naming_both(tmp_path: Path, drb: Path):
    import h5netcdf

    a, b = tmp_path / "a.nc", tmp_path / "b.nc"
    for path, chunks in ((a, (30, 765)), (b, (10, 765))):
        with xr.open_dataset(drb / "prcp.nc") as src:
            src.isel(time=slice(0, 60)).to_netcdf(path, engine="h5netcdf",
                                                  encoding={"prcp": {"chunksizes": chunks,
                                                                     "zlib": True}})
    with pytest.raises(VirtualError) as e:
        build.virtualize([a, b], concat_dim="time")
    assert e.value.code == "DM154" and "a.nc" in e.value.message and "b.nc" in e.value.message
    assert "chunk" in e.value.message
    del h5netcdf


def test_executor_parses_files_in_parallel(drb: Path):
    from concurrent.futures import ThreadPoolExecutor

    folder = rd.wheel_files(rd.IRIS, "iris_sample_data/sample_data/NEMO")
    files = sorted(folder.glob("*.nc"))
    with ThreadPoolExecutor(2) as ex:
        m = build.virtualize(files, concat_dim="time_counter", executor=ex)
    _identical(m, _mf(files, "time_counter"))


@pytest.mark.slow
def test_dask_distributed_local_cluster_executor():
    distributed = pytest.importorskip("distributed")
    folder = rd.wheel_files(rd.IRIS, "iris_sample_data/sample_data/NEMO")
    files = sorted(folder.glob("*.nc"))
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        m = build.virtualize(files, concat_dim="time_counter", executor=client.get_executor())
    _identical(m, _mf(files, "time_counter"))


# -- sources pinned --------------------------------------------------------------------------------
@pytest.mark.covers("CHK-011")
def test_a_changed_source_is_refused(tmp_path: Path, drb: Path):
    f = tmp_path / "prcp.nc"
    shutil.copy(drb / "prcp.nc", f)
    doc = build.parse_source(f).as_json()
    with open(f, "ab") as out:
        out.write(b"\0" * 16)  # appended: same chunks, but not the bytes that were indexed
    with pytest.raises(VirtualError) as e:
        open_virtual(doc).prcp.values  # the coordinates are read at open already
    assert e.value.code == "DM152" and "prcp.nc" in e.value.message
    assert "size" in e.value.message


@pytest.mark.covers("CHK-008")
def test_an_edited_document_fails_its_checksum(drb: Path):
    doc = build.parse_source(drb / "prcp.nc").as_json()
    doc["nodes"]["prcp"]["refs"]["offset"][0] += 1
    with pytest.raises(VirtualError) as e:
        open_virtual(doc)
    assert e.value.code == "DM155"


# -- the zarr Store ---------------------------------------------------------------------------------
@pytest.mark.covers("CHK-010")
def test_zarr_store_serves_metadata_and_chunks(drb: Path):
    import zarr

    m = build.parse_source(drb / "prcp.nc")
    store = ChunkStore(Session(m))
    group = zarr.open_group(store=store, mode="r")
    with xr.open_dataset(drb / "prcp.nc", mask_and_scale=False) as ref:
        np.testing.assert_array_equal(group["prcp"][...], ref.prcp.values)
        np.testing.assert_array_equal(group["prcp"][700:731, 3], ref.prcp.values[700:, 3])
    via = xr.open_zarr(store, consolidated=False).load()
    xr.testing.assert_identical(via.prcp.drop_encoding(),
                                xr.open_dataset(drb / "prcp.nc").prcp.load())


# -- Zarr stores and kerchunk ------------------------------------------------------------------------
@pytest.mark.covers("CHK-023")
@pytest.mark.parametrize("zarr_format", [2, 3])
def test_existing_zarr_store_by_reference(tmp_path: Path, drb: Path, zarr_format: int):
    with xr.open_dataset(drb / "tmax.nc") as src:
        src.chunk({"time": 100}).to_zarr(tmp_path / "s.zarr", zarr_format=zarr_format,
                                          consolidated=False)
    m = build.parse_source(tmp_path / "s.zarr")
    assert len(m.sources) > 8  # every chunk file a source
    ref = xr.open_zarr(tmp_path / "s.zarr", consolidated=False).load()
    ds = open_virtual(m).load()
    xr.testing.assert_identical(ds.drop_encoding(), ref.drop_encoding())


def test_kerchunk_exports_open_in_fsspec_and_import_back(tmp_path: Path, drb: Path):
    fsspec = pytest.importorskip("fsspec")
    f = drb / "prcp.nc"
    ref = xr.open_dataset(f).load()
    m = build.parse_source(f)
    refs = kerchunk.to_json(m)
    fs = fsspec.filesystem("reference", fo=refs)
    got = xr.open_dataset(fs.get_mapper(""), engine="zarr", consolidated=False, zarr_format=2)
    xr.testing.assert_identical(got.load(), ref)
    kerchunk.write_parquet(m, tmp_path / "refs.parq")
    fs = fsspec.filesystem("reference", fo=str(tmp_path / "refs.parq"), remote_protocol="file")
    got = xr.open_dataset(fs.get_mapper(""), engine="zarr", consolidated=False, zarr_format=2)
    xr.testing.assert_identical(got.load(), ref)
    (tmp_path / "refs.json").write_text(json.dumps(refs))
    for location in (tmp_path / "refs.json", tmp_path / "refs.parq"):
        back = kerchunk.import_references(str(location))
        assert not back.sources[0].extra  # sizes read from the file itself
        _identical(back, ref)


def test_kerchunk_reference_sets_of_the_wheel_parse():
    for name in ("hrrr.wrfsfcf.subset.json", "hrrr.wrfsubhf.subset.json"):
        sets = json.loads(rd.wheel_files(rd.KERCHUNK, f"kerchunk/tests/{name}").read_text())
        for doc in sets:
            assert doc["version"] == 1 and doc["templates"]
            m = kerchunk.from_refs(kerchunk.expand(doc))
            urls = {s.url for s in m.sources}
            assert all("{{" not in u for u in urls)  # templates substituted
            assert all(s.extra.get("size_from_references") for s in m.sources)
            field = next(p for p in ("u", "dswrf") if p in m.nodes)
            assert m.nodes[field].refs.chunks
            assert any(n.refs.inline for n in m.arrays())  # small coordinates inline
            m.as_json()  # canonical: serializable with its checksum


def test_kerchunk_gen_expands_the_product_of_dimensions():
    doc = {"version": 1, "templates": {"u": "https://h.example.org/f.bin"},
           "gen": [{"key": "x/{{i}}.{{j}}", "url": "{{u}}", "offset": "{{ (i*2 + j) * 100 }}",
                    "length": "100", "dimensions": {"i": {"stop": 2}, "j": [0, 1]}}],
           "refs": {".zgroup": '{"zarr_format": 2}',
                    "x/.zarray": json.dumps({"shape": [4, 4], "chunks": [2, 2], "dtype": "<i2",
                                             "compressor": None, "filters": None,
                                             "fill_value": 0, "order": "C",
                                             "zarr_format": 2})}}
    refs = kerchunk.expand(doc)
    assert refs["x/1.1"] == ["https://h.example.org/f.bin", 300, 100]
    m = kerchunk.from_refs(refs, sizes={"https://h.example.org/f.bin": 400})
    assert m.nodes["x"].refs.chunks["1.0"] == [0, 200, 100]


# -- remote sources ---------------------------------------------------------------------------------
def test_http_source_indexed_by_range_requests(tmp_path: Path, drb: Path):
    from datamanifest.testing import LoopbackServer

    served = tmp_path / "served"
    served.mkdir()
    shutil.copy(drb / "prcp.nc", served / "prcp.nc")
    with LoopbackServer(served) as srv:
        url = srv.url("prcp.nc")
        m = build.parse_source(url)
        assert m.sources[0].url == url and m.sources[0].etag
        assert srv.ranges["/prcp.nc"] > 0  # read by ranges, never whole
        _identical(m, xr.open_dataset(drb / "prcp.nc"))


def test_s3_source_through_obstore(s3_endpoint, tmp_path: Path, drb: Path):
    import boto3

    s3 = boto3.client("s3", endpoint_url=s3_endpoint)
    s3.create_bucket(Bucket="virt")
    s3.upload_file(str(drb / "tmin.nc"), "virt", "drb/tmin.nc")
    m = build.parse_source("s3://virt/drb/tmin.nc")
    assert m.sources[0].etag
    _identical(m, xr.open_dataset(drb / "tmin.nc"))
    s3.put_object(Bucket="virt", Key="drb/tmin.nc", Body=(drb / "tmax.nc").read_bytes())
    with pytest.raises(VirtualError) as e:
        open_virtual(m).tmin.values
    assert e.value.code == "DM152"


# -- virtual datasets in the data manifest (CHK-030) ----------------------------------------------
@pytest.mark.covers("CHK-030", "MAN-027")
def test_a_virtual_dataset_is_fetched_as_its_chunk_manifest(tmp_path: Path, drb: Path):
    from datamanifest.testing import LoopbackServer

    from .conftest import run_cli

    served = tmp_path / "served"
    served.mkdir()
    for n in ("tmax", "tmin"):
        shutil.copy(drb / f"{n}.nc", served / f"{n}.nc")
    root = tmp_path / "proj"
    root.mkdir()
    with LoopbackServer(served) as srv:
        (root / "datamanifest.toml").write_text(
            '[_META]\nschema = 1\n\n[_STORAGE]\ndatasets_dir = "store"\n\n'
            f'# daily maxima, read in place\n[tmax]\nuri = "{srv.url("tmax.nc")}"\n'
            'virtual = true\n')
        r = run_cli("fetch", "--json", cwd=root)
        assert r.returncode == 0, r.stderr
        [out] = json.loads(r.stdout)["datasets"]
        path = Path(out["path"])
        assert path.name == "tmax.nc.chunks.json" and path.is_file()
        assert out["checksum"] == json.loads(path.read_text())["checksum"]
        assert 'checksum = "' + out["checksum"] + '"' in (root / "datamanifest.toml").read_text()
        # one HEAD for its identity, then only range requests: never the whole file
        assert srv.ranges["/tmax.nc"] >= 1 and srv.hits["/tmax.nc"] == srv.ranges["/tmax.nc"] + 1
        from datamanifest import open_manifest

        ds = open_manifest(root).load("tmax")
        xr.testing.assert_identical(ds.load(), xr.open_dataset(drb / "tmax.nc").load())
        assert run_cli("verify", "tmax", cwd=root).returncode == 0
        # the source changes: verify says so, and reading refuses (CHK-011)
        shutil.copy(drb / "tmin.nc", served / "tmax.nc")
        r = run_cli("verify", "tmax", cwd=root)
        assert r.returncode == 1 and "tmax.nc" in (r.stdout + r.stderr)
        with pytest.raises(VirtualError) as e:
            open_manifest(root).load("tmax").tmax.values
        assert e.value.code == "DM152"


def test_a_virtual_dataset_with_a_wrong_checksum_publishes_nothing(tmp_path: Path, drb: Path):
    from .conftest import run_cli

    root = tmp_path / "proj"
    root.mkdir()
    (root / "datamanifest.toml").write_text(
        '[_META]\nschema = 1\n\n[_STORAGE]\ndatasets_dir = "store"\n\n'
        f'[prcp]\nuri = "{drb / "prcp.nc"}"\nvirtual = true\n'
        f'checksum = "sha256:{"0" * 64}"\n')
    r = run_cli("fetch", cwd=root)
    assert r.returncode == 1 and "DM070" in r.stderr
    assert not list((root / "store").rglob("*.chunks.json*")) if (root / "store").exists() \
        else True


def test_virtualize_command_writes_each_format(tmp_path: Path):
    from .conftest import run_cli

    folder = rd.wheel_files(rd.IRIS, "iris_sample_data/sample_data/NEMO")
    files = [str(p) for p in sorted(folder.glob("*.nc"))]
    out = tmp_path / "nemo.chunks.json"
    r = run_cli("virtualize", *files, "--concat-dim", "time_counter", "-o", str(out), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["sources"] == 3
    assert run_cli("check", str(out)).returncode == 0
    info = run_cli("refs", "info", str(out), "--json")
    assert info.returncode == 0
    assert all(s["status"] == "ok" for s in json.loads(info.stdout)["sources"])
    for fmt, name in (("kerchunk-json", "k.json"), ("kerchunk-parquet", "k.parq")):
        r = run_cli("virtualize", *files, "--concat-dim", "time_counter", "-o",
                    str(tmp_path / name), "--format", fmt)
        assert r.returncode == 0, r.stderr
        assert (tmp_path / name).exists()
    bad = run_cli("virtualize", *files, "-o", str(tmp_path / "x.chunks.json"))
    assert bad.returncode == 1 and "DM154" in bad.stderr and "Traceback" not in bad.stderr


# -- what other tools make of our exports -------------------------------------------------------
_VZ_READ = r"""
import json, sys, warnings
warnings.simplefilter("ignore")
import numpy as np, xarray as xr
from obstore.store import LocalStore
from obspec_utils.registry import ObjectStoreRegistry
from virtualizarr.parsers import KerchunkJSONParser, KerchunkParquetParser
refs, source, kind = sys.argv[1:4]
registry = ObjectStoreRegistry({"file://": LocalStore()})
parser = KerchunkJSONParser() if kind == "json" else KerchunkParquetParser()
ds = xr.open_zarr(parser("file://" + refs, registry=registry), consolidated=False,
                  zarr_format=3).load()
ref = xr.open_dataset(source).load()
print(json.dumps({n: bool(np.array_equal(ds[n].values, ref[n].values,
                                         equal_nan=ref[n].dtype.kind == "f"))
                  for n in ref.variables}))
"""


@pytest.mark.slow
def test_virtualizarr_reads_our_kerchunk_exports(tmp_path: Path, drb: Path):
    import subprocess

    from datamanifest.testing.venvs import virtualizarr_python

    py = virtualizarr_python(rd.ROOT)
    if py is None:
        pytest.skip("VirtualiZarr 2 needs Python 3.12, which is not here")
    m = build.parse_source(drb / "prcp.nc")
    (tmp_path / "refs.json").write_text(json.dumps(kerchunk.to_json(m)))
    kerchunk.write_parquet(m, tmp_path / "refs.parq")
    for refs, kind in ((tmp_path / "refs.json", "json"), (tmp_path / "refs.parq", "parquet")):
        r = subprocess.run([py, "-c", _VZ_READ, str(refs), str(drb / "prcp.nc"), kind],
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr[-1500:]
        equal = json.loads(r.stdout.strip().splitlines()[-1])
        assert equal == {"prcp": True, "time": True, "nhm_id": True}, (kind, equal)


def test_icechunk_repository_of_virtual_references(tmp_path: Path, drb: Path):
    pytest.importorskip("icechunk")
    from datamanifest.virtual.icechunk import open_icechunk, to_icechunk

    from .conftest import run_cli

    folder = rd.wheel_files(rd.IRIS, "iris_sample_data/sample_data/NEMO")
    files = sorted(folder.glob("*.nc"))
    m = build.virtualize(files, concat_dim="time_counter")
    to_icechunk(m, tmp_path / "repo")
    ds = xr.open_zarr(open_icechunk(tmp_path / "repo", m), consolidated=False).load()
    xr.testing.assert_identical(ds.drop_encoding(), _mf(files, "time_counter").load())
    r = run_cli("virtualize", *map(str, files), "--concat-dim", "time_counter", "-o",
                str(tmp_path / "cli-repo"), "--format", "icechunk")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "cli-repo").is_dir()


# gs:// is read through obstore too, but not tested here: gcp-storage-emulator serves only
# GCS's JSON API, and obstore uses the XML API (HEAD on objects answers 501 there)
@pytest.mark.parametrize("scheme", ["az"])
def test_az_sources_through_obstore(scheme: str, request, drb: Path,
                                    monkeypatch: pytest.MonkeyPatch):
    from .test_object_stores import _put_az, _put_gs

    if scheme == "gs":
        env = request.getfixturevalue("gcs_endpoint")
        put = _put_gs
    else:
        env, _ = request.getfixturevalue("azure_endpoint")
        put = _put_az
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    put(env, "drb/tmax.nc", (drb / "tmax.nc").read_bytes())
    m = build.parse_source(f"{scheme}://data/drb/tmax.nc")
    assert m.sources[0].size == (drb / "tmax.nc").stat().st_size
    _identical(m, xr.open_dataset(drb / "tmax.nc"))


# -- issue 22: exports and imports every reader opens identically -------------------------------
from . import interop  # noqa: E402


def test_virtualize_icechunk_json_prints_json_only(tmp_path: Path, drb: Path):
    pytest.importorskip("icechunk")
    from .conftest import run_cli

    r = run_cli("virtualize", str(drb / "prcp.nc"), "-o", str(tmp_path / "repo"), "--format",
                "icechunk", "--json", "-q")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)  # nothing but the JSON document: no log line before it
    assert summary["format"] == "icechunk" and summary["snapshot"]
    # the user asks for Icechunk's log: its lines go to stderr, stdout stays the JSON
    r = run_cli("virtualize", str(drb / "prcp.nc"), "-o", str(tmp_path / "repo2"), "--format",
                "icechunk", "--json", env={"ICECHUNK_LOG": "warn"})
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["format"] == "icechunk"
    assert "WARN" in r.stderr


@pytest.mark.covers("CHK-025")
def test_kerchunk_export_of_scalars_and_unallocated_chunks(tmp_path: Path):
    """A scalar gets ``_ARRAY_DIMENSIONS: []`` (fsspec, kerchunk and VirtualiZarr need it);
    a never-written chunk reads as the HDF5 fill value, not 0."""
    fsspec = pytest.importorskip("fsspec")
    f = interop.CASES["gen-packed-int16"].get()
    refs = kerchunk.to_json(build.parse_source(f))["refs"]
    assert json.loads(refs["crs/.zattrs"])["_ARRAY_DIMENSIONS"] == []
    got = xr.open_dataset(fsspec.filesystem("reference", fo=refs).get_mapper(""),
                          engine="zarr", consolidated=False, zarr_format=2)
    assert int(got.crs.values) == -2147483647  # netCDF's default fill, as h5py reads it
    xr.testing.assert_identical(got.crs.load(), xr.open_dataset(f).crs.load())
    g = interop.CASES["gen-fletcher32-noleap"].get()
    m = build.parse_source(g)
    assert m.nodes["empty"].refs.count == 2 and not list(m.nodes["empty"].refs.references())
    refs = kerchunk.to_json(m)["refs"]
    assert refs["empty/0.0"].startswith("base64:")  # inline chunks of the fill value
    got = xr.open_dataset(fsspec.filesystem("reference", fo=refs).get_mapper(""),
                          engine="zarr", consolidated=False, zarr_format=2)
    xr.testing.assert_identical(got.empty.load(), xr.open_dataset(g).empty.load())


@pytest.mark.covers("CHK-025")
def test_kerchunk_layout_puts_codecs_in_filters():
    m = build.parse_source(rd.wheel_files(rd.PYWATERSHED, "pywatershed/data/drb_2yr")
                           / "prcp.nc")
    zarray = json.loads(kerchunk.to_json(m)["refs"]["prcp/.zarray"])
    assert zarray["compressor"] is None
    assert [f["id"] for f in zarray["filters"]] == ["shuffle", "zlib"]


@pytest.mark.covers("CHK-023")
def test_reimported_kerchunk_keeps_fill_value_masking(tmp_path: Path):
    """SOI_Darwin.nc: -99.9 is its _FillValue; re-imported references must give NaN."""
    f = rd.wheel_files(rd.IRIS, "iris_sample_data/sample_data/SOI_Darwin.nc")
    (tmp_path / "s.json").write_text(json.dumps(kerchunk.to_json(build.parse_source(f))))
    got = open_virtual(build.virtualize(tmp_path / "s.json")).load()
    want = xr.open_dataset(f).load()
    name = next(n for n in want.data_vars if want[n].isnull().any())
    assert bool(got[name].isnull().any()) and float(got[name].min()) > -99
    xr.testing.assert_identical(got, want)


@pytest.mark.covers("CHK-023")
def test_a_kerchunk_parquet_folder_is_imported_not_taken_for_a_zarr_store(tmp_path: Path,
                                                                          drb: Path):
    m = build.parse_source(drb / "tmin.nc")
    kerchunk.write_parquet(m, tmp_path / "refs")  # no .parq suffix: found by its content
    back = build.parse_source(tmp_path / "refs")
    _identical(back, xr.open_dataset(drb / "tmin.nc"))


@pytest.mark.covers("CHK-020")
def test_variable_length_strings_are_read_and_inlined(tmp_path: Path):
    f = rd.wheel_files(rd.IRIS, "iris_sample_data/sample_data/vlstr_type.nc")
    m = build.parse_source(f, build.Options(inline_unsupported=True))
    node = next(n for n in m.arrays() if n.metadata["data_type"] == "string")
    assert node.refs.inline and node.metadata["codecs"] == [{"name": "vlen-utf8",
                                                              "configuration": {}}]
    _identical(build.parse_source(f), xr.open_dataset(f))


@pytest.mark.covers("CHK-020")
def test_fletcher32_opens_through_zarr_stores():
    import zarr

    f = interop.CASES["gen-fletcher32-noleap"].get()
    m = build.parse_source(f)
    assert {"name": "numcodecs.fletcher32", "configuration": {}} in m.nodes["tas"].metadata[
        "codecs"]
    group = zarr.open_group(store=ChunkStore(Session(m)), mode="r")
    with xr.open_dataset(f) as want:
        np.testing.assert_array_equal(group["tas"][...], want.tas.values)


@pytest.mark.covers("CHK-003")
def test_character_fill_values_mask_and_complex_attributes_stay_complex(tmp_path: Path):
    f = interop.CASES["scipy-maskedvals"].get()
    got = open_virtual(build.parse_source(f)).load()
    assert got.var6_char.values[1] is np.nan or got.var6_char.isnull().values[1]
    import h5py

    h = tmp_path / "c.h5"
    with h5py.File(h, "w") as out:
        d = out.create_dataset("v", data=np.arange(3.0))
        d.attrs["c"] = np.complex128(4.3 + 0j)
    m = build.parse_source(h)
    assert m.nodes["v"].attribute_types["c"] == "complex128"
    doc = json.loads(json.dumps(m.as_json()))
    assert open_virtual(doc, decode=False)["v"].attrs["c"] == 4.3 + 0j


def _series(tmp_path: Path, lengths: list[int], width: int = 4, **encoding) -> list[Path]:
    """Daily files written one by one by xarray (each with its own reference date)."""
    start = np.datetime64("2019-01-01")
    files = []
    for i, n in enumerate(lengths):
        t = start + np.arange(n).astype("timedelta64[D]")
        ds = xr.Dataset({"tas": (("time", "x"),
                                 np.arange(n * width, dtype="f4").reshape(n, width) + i),
                         "time_bnds": (("time", "nv"), np.stack([t, t + np.timedelta64(1, "D")],
                                                                axis=1))},
                        coords={"time": t, "x": np.arange(float(width))})
        ds.time.attrs["bounds"] = "time_bnds"
        f = tmp_path / f"y{i}.nc"
        ds.to_netcdf(f, engine="h5netcdf", encoding={"time": encoding,
                                                     "time_bnds": encoding} if encoding else None)
        files.append(f)
        start = t[-1] + np.timedelta64(1, "D")
    return files


@pytest.mark.covers("CHK-024")
def test_files_whose_time_units_differ_in_reference_date_join_like_open_mfdataset(
        tmp_path: Path):
    files = _series(tmp_path, [3, 3, 3])
    units = {xr.open_dataset(f).time.encoding["units"] for f in files}
    assert len(units) == 3  # xarray's default: days since each file's first date
    m = build.virtualize(files, concat_dim="time")
    assert m.nodes["time"].metadata["attributes"]["units"] == \
        xr.open_dataset(files[0]).time.encoding["units"]
    _identical(m, _mf(files, "time"))
    # other calendars are still refused
    other = _series(tmp_path / "o", [2]) if (tmp_path / "o").mkdir() is None else None
    with xr.open_dataset(other[0]) as o:
        o = o.load()
    o.time.encoding["calendar"] = "noleap"
    o.to_netcdf(tmp_path / "noleap.nc", engine="h5netcdf")
    with pytest.raises(VirtualError) as e:
        build.virtualize([files[0], tmp_path / "noleap.nc"], concat_dim="time")
    assert e.value.code == "DM154" and "calendar" in e.value.message


@pytest.mark.covers("CHK-024")
def test_split_contiguous_picks_one_chunk_length_for_all_sources_of_a_join(tmp_path: Path):
    """A leap year (366 days) and a common year (365): one chunk length for both."""
    files = _series(tmp_path, [366, 365], width=800)  # too big to be inlined (> 1 MiB)
    with pytest.raises(VirtualError) as e:
        build.virtualize(files, concat_dim="time")
    assert e.value.code == "DM154" and "--split-contiguous" in (e.value.hint or "")
    size = int(e.value.hint.split("--split-contiguous ")[1].split()[0])
    m = build.virtualize(files, concat_dim="time",
                         options=build.Options(split_contiguous=size))
    assert spec_chunk(m, "tas")[0] == 1  # 366 and 365 share no other divisor
    _identical(m, _mf(files, "time"))
    m = build.virtualize(files, concat_dim="time", options=build.Options(split_contiguous=1000))
    _identical(m, _mf(files, "time"))


def spec_chunk(m, path):
    return m.nodes[path].metadata["chunk_grid"]["configuration"]["chunk_shape"]


def test_errors_about_a_file_are_located_at_its_path(tmp_path: Path):
    from .conftest import run_cli

    bad = tmp_path / "notes.nc"
    bad.write_text("not a netCDF file\n")
    with pytest.raises(VirtualError) as e:
        build.parse_source(bad)
    assert e.value.file == str(bad) and str(e.value).startswith(f"{bad}: error DM153")
    r = run_cli("virtualize", str(bad), "-o", str(tmp_path / "x.chunks.json"))
    assert r.returncode == 1 and f"{bad}: error DM153" in r.stderr and "<input>" not in r.stderr
    doc = tmp_path / "broken.chunks.json"
    doc.write_text('{"chunk_manifest": 2, "sources": [], "nodes": {}}')
    with pytest.raises(VirtualError) as e:
        open_virtual(doc)
    assert str(e.value).startswith(f"{doc}: error DM150")


@pytest.mark.covers("CHK-020", "CHK-023")
def test_a_truncated_file_or_broken_references_are_errors_at_their_path_not_tracebacks(
        tmp_path: Path, drb: Path):
    from .conftest import run_cli

    cut = tmp_path / "prcp.nc"  # the HDF5 signature, then nothing the library can open
    cut.write_bytes((drb / "prcp.nc").read_bytes()[:2000])
    with pytest.raises(VirtualError) as e:
        build.parse_source(cut)
    assert str(e.value).startswith(f"{cut}: error DM153 not a readable HDF5 file")
    refs = tmp_path / "refs.json"
    refs.write_text(json.dumps({"version": 1, "refs": {
        ".zgroup": '{"zarr_format": 2}', "x/.zarray": "{zarr_format: 2}"}}))
    with pytest.raises(VirtualError) as e:
        build.parse_source(refs)
    assert str(e.value).startswith(f"{refs}: error DM150 kerchunk reference 'x/.zarray'")
    for source, code in ((cut, "DM153"), (refs, "DM150")):
        r = run_cli("virtualize", str(source), "-o", str(tmp_path / "x.chunks.json"), "-q")
        assert r.returncode == 1 and f"{source}: error {code}" in r.stderr, r.stderr
        assert "Traceback" not in r.stderr

"""The `datamanifest` engine of xarray (SCHEMA.md INT-020), found through xarray's own plugin
machinery (the package's `xarray.backends` entry point), on real files from the package
registries (tests/realdata.py)."""

from __future__ import annotations

import importlib.metadata
import json
import warnings
from pathlib import Path

import pytest

from . import realdata as rd

xr = pytest.importorskip("xarray")
pytest.importorskip("h5py")
pytest.importorskip("dask")

import datamanifest  # noqa: E402
from datamanifest.errors import VirtualError  # noqa: E402
from datamanifest.virtual import build, document  # noqa: E402

warnings.filterwarnings("ignore", category=xr.SerializationWarning)


@pytest.fixture(scope="module")
def drb() -> Path:
    return rd.wheel_files(rd.PYWATERSHED, "pywatershed/data/drb_2yr")


def _write(manifest, path: Path) -> Path:
    document.write(manifest, path)
    return path


@pytest.mark.covers("INT-020")
def test_the_engine_is_registered_through_the_entry_point():
    eps = importlib.metadata.entry_points(group="xarray.backends", name="datamanifest")
    assert [ep.value for ep in eps] == [
        "datamanifest.xarray_backend:DataManifestBackendEntrypoint"], \
        "the package's metadata lacks the entry point: reinstall it (pip install -e .)"
    engines = xr.backends.list_engines()
    assert "datamanifest" in engines
    assert type(engines["datamanifest"]).__name__ == "DataManifestBackendEntrypoint"


@pytest.mark.covers("INT-020")
def test_open_dataset_with_and_without_engine_equals_open_virtual(drb: Path, tmp_path: Path):
    doc = _write(build.parse_source(drb / "prcp.nc"), tmp_path / "prcp.chunks.json")
    expected = datamanifest.open_virtual(doc).load()
    with xr.open_dataset(doc, engine="datamanifest") as ds:
        assert not ds["prcp"].variable._in_memory  # lazy: no chunk of prcp read yet
        xr.testing.assert_identical(ds.load(), expected)
    with xr.open_dataset(str(doc)) as ds:  # guess_can_open picks the engine by name
        xr.testing.assert_identical(ds.load(), expected)
    with xr.open_dataset(drb / "prcp.nc") as direct:
        xr.testing.assert_identical(expected, direct.load())
    from xarray.backends.plugins import guess_engine

    assert guess_engine(str(doc)) == "datamanifest"
    backend = xr.backends.list_engines()["datamanifest"]
    assert not backend.guess_can_open(drb / "prcp.nc")
    assert backend.guess_can_open("https://h.example.org/x/tas.chunks.json?sig=1")


def test_drop_variables_and_decoding_options_as_other_engines(drb: Path, tmp_path: Path):
    doc = _write(build.parse_source(drb / "prcp.nc"), tmp_path / "prcp.chunks.json")
    for kwargs in ({"drop_variables": ["prcp"]}, {"drop_variables": "nhm_id"},
                   {"decode_times": False}, {"mask_and_scale": False}, {"decode_cf": False},
                   {"drop_variables": ["no-such-variable"]}):
        with xr.open_dataset(doc, engine="datamanifest", **kwargs) as ours, \
                xr.open_dataset(drb / "prcp.nc", engine="h5netcdf", **kwargs) as theirs:
            xr.testing.assert_identical(ours.load(), theirs.load())


def test_chunks_follow_the_stored_chunks_as_other_engines(drb: Path, tmp_path: Path):
    doc = _write(build.parse_source(drb / "tmax.nc"), tmp_path / "tmax.chunks.json")
    with xr.open_dataset(doc, engine="datamanifest", chunks={}) as ours, \
            xr.open_dataset(drb / "tmax.nc", engine="h5netcdf", chunks={}) as theirs:
        assert ours["tmax"].chunks == theirs["tmax"].chunks  # the HDF5 chunks: 30 days
        assert ours["tmax"].encoding["preferred_chunks"] == \
            theirs["tmax"].encoding["preferred_chunks"]
        xr.testing.assert_identical(ours.compute(), theirs.compute())
    with xr.open_dataset(doc, engine="datamanifest", chunks={"time": 120}) as ds:
        assert ds["tmax"].chunks[0] == (120,) * 6 + (11,)
        import dask.array

        assert isinstance(ds["tmax"].data, dask.array.Array)


def test_open_mfdataset_of_several_chunk_manifests(tmp_path: Path):
    folder = rd.wheel_files(rd.IRIS, "iris_sample_data/sample_data/NEMO")
    files = sorted(folder.glob("*.nc"))
    docs = [_write(build.parse_source(f), tmp_path / f"{f.stem}.chunks.json") for f in files]
    kw = dict(combine="nested", concat_dim="time_counter", data_vars="minimal",
              coords="minimal", compat="override")
    with xr.open_mfdataset(docs, engine="datamanifest", **kw) as ours, \
            xr.open_mfdataset(files, **kw) as theirs:
        assert ours.sizes["time_counter"] == 3
        xr.testing.assert_identical(ours.compute(), theirs.compute())
    with xr.open_mfdataset([str(d) for d in docs], **kw) as guessed:  # no engine given
        assert guessed.sizes["time_counter"] == 3


def test_a_group_and_errors_are_the_readers(drb: Path, tmp_path: Path):
    doc = _write(build.parse_source(drb / "prcp.nc"), tmp_path / "prcp.chunks.json")
    with pytest.raises(VirtualError) as e:
        xr.open_dataset(doc, engine="datamanifest", group="nope")
    assert e.value.code == "DM151"
    with pytest.raises(VirtualError) as e:
        xr.open_dataset(tmp_path / "absent.chunks.json", engine="datamanifest")
    assert e.value.code == "DM074"
    edited = json.loads(doc.read_text())
    edited["nodes"]["prcp"]["refs"]["offset"][0] += 1
    (tmp_path / "edited.chunks.json").write_text(json.dumps(edited))
    with pytest.raises(VirtualError) as e:
        xr.open_dataset(tmp_path / "edited.chunks.json")
    assert e.value.code == "DM155"

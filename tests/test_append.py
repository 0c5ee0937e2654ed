"""Transactional appends to Zarr stores (SCHEMA.md §26): real Zarr v3/v2 targets read back by
xarray, every check refused before a byte is written, the crash sweep and random kills (a
short run; bench/append_crash.py is the full one), writers racing, S3 on moto, real data."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest

import datamanifest
from datamanifest import appends as api
from datamanifest.errors import AppendError, LockTimeout
from datamanifest.testing import appends as harness
from datamanifest.testing import crash, faults

from . import realdata as rd
from .conftest import run_cli

xr = pytest.importorskip("xarray")
pytest.importorskip("zarr")
warnings.filterwarnings("ignore", message=".*Consolidated metadata.*")

SHAPE = (18, 36)


def _tree(path: Path) -> dict[str, bytes]:
    """Every file beside and inside a target's folder (to prove nothing was touched)."""
    out = {}
    for p in sorted(path.rglob("*")):
        if p.is_file():
            out[str(p.relative_to(path))] = p.read_bytes()
    return out


def _open(target: Path):
    with xr.open_zarr(target) as ds:
        return ds.load()


@pytest.fixture(scope="module")
def slices(tmp_path_factory) -> list[Path]:
    return harness.write_slices(tmp_path_factory.mktemp("slices"), 8, SHAPE)


# -- appending ------------------------------------------------------------------------------------
def test_slices_from_memory_and_files_build_a_cube_xarray_reads(tmp_path: Path, slices):
    target = tmp_path / "cube.zarr"
    results = datamanifest.append(target, [harness.make_slice(0, SHAPE), slices[1]],
                                  append_step="1D")
    results += datamanifest.append(target, (harness.make_slice(i, SHAPE) for i in (2, 3)),
                                   append_step="1D")
    assert [(r.action, r.old_length, r.new_length) for r in results] == [
        ("created", 0, 1), ("appended", 1, 2), ("appended", 2, 3), ("appended", 3, 4)]
    ds = _open(target)
    assert ds.identical(harness.expected(4, SHAPE))
    root = json.loads((target / "zarr.json").read_text())
    assert root["zarr_format"] == 3 and root["consolidated_metadata"]["metadata"]["t2m"][
        "shape"] == [4, *SHAPE]
    # per-array metadata follows the committed view (APP-011)
    assert json.loads((target / "t2m" / "zarr.json").read_text())["shape"] == [4, *SHAPE]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cube.zarr", "cube.zarr.versions"]
    st = api.status(target)
    assert st.length == 4 and st.pending is None and st.lock is None
    assert st.version == results[-1].version


def test_zarr_v2_on_request(tmp_path: Path, slices):
    target = tmp_path / "cube.zarr"
    datamanifest.append(target, slices[:3], zarr_format=2, append_step="1D")
    assert (target / ".zmetadata").is_file() and not (target / "zarr.json").exists()
    ds = _open(target)
    assert ds.identical(harness.expected(3, SHAPE))
    meta = json.loads((target / ".zmetadata").read_text())["metadata"]
    assert meta["t2m/.zarray"]["shape"] == [3, *SHAPE]
    assert json.loads((target / "t2m" / ".zarray").read_text())["shape"] == [3, *SHAPE]


def test_partial_chunks_are_replaced_with_backups_and_read_back(tmp_path: Path):
    target = tmp_path / "cube.zarr"
    full = xr.concat([harness.make_slice(i, SHAPE) for i in range(7)], "time")
    cfg = {"variables": {"*": {"encoding": {"chunks": [4, 9, 36]}},
                         "time": {"encoding": {"chunks": [4]}},
                         "lat": {"encoding": {"chunks": False}},
                         "lon": {"encoding": {"chunks": False}}}}
    api.append(target, full.isel(time=[0]), cfg)
    for part in ([1, 2], [3, 4, 5], [6]):  # crosses the chunk boundary at 4
        r = api.append(target, full.isel(time=part), cfg)[0]
    assert r.new_length == 7
    meta = json.loads((target / "t2m" / "zarr.json").read_text())
    assert meta["chunk_grid"]["configuration"]["chunk_shape"] == [4, 9, 36]
    assert _open(target).identical(full)


def test_encodings_from_the_configuration_are_applied_and_kept(tmp_path: Path):
    target = tmp_path / "cube.zarr"
    cfg = {"variables": {"t2m": {"encoding": {"dtype": "int16", "scale_factor": 0.01,
                                              "add_offset": 273.15, "fill_value": -32768,
                                              "compressor": {"name": "gzip", "level": 4}}},
                         "time": {"encoding": {"units": "hours since 2000-01-01"}}},
           "attrs": {"title": "test cube"}}
    slices = [harness.make_slice(i, SHAPE) for i in range(3)]
    api.append(target, slices, cfg, append_step="1D")
    meta = json.loads((target / "t2m" / "zarr.json").read_text())
    assert meta["data_type"] == "int16" and meta["codecs"][-1]["name"] == "gzip"
    assert json.loads((target / "time" / "zarr.json").read_text())["attributes"]["units"] == \
        "hours since 2000-01-01"
    ds = _open(target)
    assert ds.attrs["title"] == "test cube"
    # the same as xarray's own round trip of the packing
    ref = tmp_path / "ref.zarr"
    xr.concat(slices, "time").to_zarr(ref, zarr_format=3, consolidated=True, encoding={
        "t2m": {"dtype": "int16", "scale_factor": 0.01, "add_offset": 273.15,
                "_FillValue": -32768}})
    with xr.open_zarr(ref) as want:
        np.testing.assert_array_equal(ds.t2m.values, want.t2m.load().values)
    assert ds.tp.identical(xr.concat(slices, "time").tp)


def test_attrs_update_modes(tmp_path: Path):
    for mode, want in (("keep", {"v": 0}), ("replace", {"v": 2}), ("update", {"v": 2, "a": 1})):
        target = tmp_path / f"{mode}.zarr"
        parts = []
        for i in range(3):
            s = harness.make_slice(i, SHAPE)
            s.attrs = {"v": i, **({"a": 1} if i == 1 else {})}
            parts.append(s)
        api.append(target, parts, attrs_update_mode=mode)
        assert _open(target).attrs == want, mode


# -- checks before any byte is written (APP-012) ------------------------------------------------
def _base(tmp_path: Path, n: int = 3) -> Path:
    target = tmp_path / "cube.zarr"
    api.append(target, [harness.make_slice(i, SHAPE) for i in range(n)], append_step="1D")
    return target


@pytest.mark.parametrize("name,mutate,code,words", [
    ("missing-variable", lambda s: s.drop_vars("tp"), "DM161", "tp"),
    ("new-variable", lambda s: s.assign(q=s.t2m * 2), "DM161", "q"),
    ("other-length", lambda s: s.isel(lat=slice(0, 10)), "DM162", "lat"),
    ("dims-order", lambda s: s.transpose("time", "lon", "lat"), "DM162", "t2m"),
    ("lossy-dtype", lambda s: s.assign(t2m=s.t2m.astype("f8")), "DM163", "float64"),
    ("units", lambda s: s.assign(t2m=s.t2m.assign_attrs(units="degC")), "DM163", "degC"),
    ("other-coordinates", lambda s: s.assign_coords(lat=s.lat + 0.5), "DM163", "lat"),
    ("repeated-label", lambda s: s.assign_coords(time=s.time - np.timedelta64(1, "D")),
     "DM164", "repeats"),
    ("gap", lambda s: s.assign_coords(time=s.time + np.timedelta64(1, "D")), "DM164",
     "1D"),
    ("sub-day-time", lambda s: s.assign_coords(time=s.time + np.timedelta64(6, "h")),
     "DM164", "append_step"),
])
def test_a_slice_that_does_not_fit_is_refused_and_the_target_untouched(
        tmp_path: Path, name, mutate, code, words):
    target = _base(tmp_path)
    before = _tree(tmp_path)
    bad = mutate(harness.make_slice(3, SHAPE))
    with pytest.raises(AppendError) as e:
        api.append(target, bad, append_step="1D")
    assert e.value.code == code and words in e.value.message, e.value.message
    assert _tree(tmp_path) == before
    api.append(target, harness.make_slice(3, SHAPE), append_step="1D")  # and it goes on


def test_time_labels_not_representable_in_the_target_units(tmp_path: Path):
    target = _base(tmp_path)
    before = _tree(tmp_path)
    s = harness.make_slice(3, SHAPE)
    s = s.assign_coords(time=s.time + np.timedelta64(6, "h"))
    with pytest.raises(AppendError) as e:
        api.append(target, s)  # no step: the time itself does not fit 'days since'
    assert e.value.code == "DM163" and "time" in e.value.message
    assert _tree(tmp_path) == before


def test_chunks_that_differ_and_targets_that_cannot_be_appended(tmp_path: Path):
    target = _base(tmp_path)
    with pytest.raises(AppendError) as e:
        api.append(target, harness.make_slice(3, SHAPE),
                   variables={"t2m": {"encoding": {"chunks": [2, 18, 36]}}})
    assert e.value.code == "DM165" and "t2m" in e.value.message
    plain = tmp_path / "plain.zarr"
    harness.make_slice(0, SHAPE).to_zarr(plain, zarr_format=3, consolidated=False)
    with pytest.raises(AppendError) as e:
        api.append(plain, harness.make_slice(1, SHAPE))
    assert e.value.code == "DM167" and "consolidated" in e.value.message
    with pytest.raises(AppendError) as e:
        api.append(target, harness.make_slice(3, SHAPE), append_dim="step")
    assert e.value.code == "DM162"


def test_dry_run_writes_nothing(tmp_path: Path):
    target = _base(tmp_path)
    before = _tree(tmp_path)
    r = api.append(target, harness.make_slice(3, SHAPE), dry_run=True)[0]
    assert (r.action, r.old_length, r.new_length) == ("dry-run", 3, 4)
    assert _tree(tmp_path) == before
    new = tmp_path / "new.zarr"
    assert api.append(new, harness.make_slice(0, SHAPE), dry_run=True)[0].new_length == 1
    assert not new.exists()


def test_configuration_files_merge_and_bad_ones_are_located(tmp_path: Path):
    a = tmp_path / "a.append.toml"
    a.write_text('append_step = "1D"\n\n[_META]\nschema = 1\n\n[variables.t2m.encoding]\n'
                 'dtype = "float32"\n')
    b = tmp_path / "b.append.toml"
    b.write_text('append_step = "+"\nattrs_update_mode = "update"\n')
    cfg = api.load_config([a, b], zarr_format=2)
    assert cfg.append_step == "+" and cfg.attrs_update_mode == "update"
    assert cfg.variable("t2m").encoding.dtype == "float32" and cfg.zarr_format == 2
    bad = tmp_path / "bad.append.toml"
    bad.write_text('append_step = "1D"\nappend_dimension = "time"\n')
    with pytest.raises(AppendError) as e:
        api.load_config([bad])
    assert (e.value.code, e.value.line, e.value.column) == ("DM160", 2, 1)
    assert "append_dim" in e.value.hint


# -- the lock (APP-020) --------------------------------------------------------------------------
def test_a_dead_writers_lock_is_taken_over_at_once_and_a_live_ones_never(tmp_path: Path):
    target = _base(tmp_path)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lock = tmp_path / "cube.zarr.lock"
    doc = {"owner": "x", "pid": dead.pid, "host": os.uname().nodename,
           "created": "2026-01-01T00:00:00Z"}
    lock.write_text(f"{dead.pid} {os.uname().nodename}\n{json.dumps(doc)}\n")
    r = api.append(target, harness.make_slice(3, SHAPE), lock={"wait": False})[0]
    assert r.new_length == 4 and not lock.exists()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        doc["pid"] = live.pid
        lock.write_text(f"{live.pid} {os.uname().nodename}\n{json.dumps(doc)}\n")
        os.utime(lock, (0, 0))  # an old heartbeat does not make a live local holder stale
        with pytest.raises(LockTimeout) as e:
            api.append(target, harness.make_slice(4, SHAPE), lock={"wait": False})
        assert e.value.code == "DM131" and str(live.pid) in e.value.message
        with pytest.raises(LockTimeout) as e:
            api.append(target, harness.make_slice(4, SHAPE), lock={"timeout": 0.3})
        assert e.value.code == "DM075"
        assert api.status(target).lock["pid"] == live.pid
    finally:
        live.kill()
        live.wait()
    assert api.append(target, harness.make_slice(4, SHAPE))[0].new_length == 5


# -- crashes (APP-022, APP-024) ------------------------------------------------------------------
@pytest.fixture(scope="module")
def crash_base(tmp_path_factory, slices) -> Path:
    base = tmp_path_factory.mktemp("crash") / "base"
    return harness.build_base(base, slices, 3)


def _report(outcomes, k0: int) -> dict:
    s = harness.lengths(outcomes, k0)
    bad = [f"{o.point}: {o.reason}" for o in outcomes if not o.clean]
    assert not bad, "\n".join(bad)
    return s


#: `make test` kills before every STRIDE-th mutation, in PARTS tests that pytest-xdist spreads,
#: plus the mutations on either side of the commit; `make reliability`
#: (bench/append_crash.py) kills before every one
#: (the offset moves with the sweep seed, crash.sweep_seed: each day's runs kill elsewhere)
STRIDE, PARTS = 20, 2


def _sampled(trace: list[str], part: int, stride: int = STRIDE) -> list[int]:
    """Kill points of part ``part``: every ``stride``-th mutation from an offset (the part's
    and the sweep seed's), and in part 0 the commit (the rename after the target's fsync)
    and the mutation after it."""
    n = len(trace)
    offset = (zlib.crc32(crash.sweep_seed().encode()) + part * stride // PARTS) % stride
    points = set(range(1 + offset % n, n + 1, stride))
    if part == 0:
        commit = next(i + 1 for i in range(1, n) if trace[i][1] == "rename"
                      and trace[i - 1][1] == "fsync"
                      and trace[i - 1][2].endswith("/cube.zarr"))
        points |= {commit, commit + 1}
    if part == PARTS - 1:
        points.add(n)
    return sorted(points)


@pytest.mark.parametrize("part", range(PARTS))
def test_crash_sweep_kill_before_every_mutation_of_an_append(tmp_path: Path, crash_base,
                                                             slices, part):
    scenario = harness.AppendScenario(slices, 3, SHAPE)
    trace = crash.trace(scenario, crash_base, tmp_path)
    assert len(trace) >= 30
    outcomes = crash.sweep(scenario, crash_base, tmp_path, _sampled(trace, part), lines=trace)
    s = _report(outcomes, 3)
    assert s["corrupt"] == 0 and s["blocked"] == 0
    if part == 0:
        assert s["k"] > 0 and s["k+1"] > 0  # kills before and after the commit point


def test_crash_sweep_of_the_first_append_that_creates_the_target(tmp_path: Path, slices):
    base = tmp_path / "empty"
    base.mkdir()
    trace = crash.trace(harness.AppendScenario(slices, 0, SHAPE), base, tmp_path)
    points = crash.sampled(len(trace), STRIDE, "first-append")  # all: make reliability
    for n in points:
        trial = crash.fresh(base, tmp_path)
        r = harness.run_append(trial / "cube.zarr", slices[0], env=dict(
            os.environ, **faults.environment(at=n, only=[trial])))
        assert r.returncode == -9, (n, r.stderr[-500:])
        target = trial / "cube.zarr"
        if (target / "zarr.json").exists():
            assert _open(target).identical(harness.expected(1, SHAPE)), n
        else:  # not committed: readers find no group
            with pytest.raises(Exception):
                xr.open_zarr(target)
        r = harness.next_append(target, slices[1] if (target / "zarr.json").exists()
                                 else slices[0])
        assert r.returncode == 0, (n, r.stdout)
        k = _open(target).sizes["time"]
        assert _open(target).identical(harness.expected(k, SHAPE)) and k in (1, 2), n
        assert harness.leftovers(trial) == [], n


def test_crash_sweep_over_a_partial_chunk_restores_its_backup(tmp_path: Path, slices):
    base = tmp_path / "base"
    cfg = {"variables": {"*": {"encoding": {"chunks": [4, 18, 36]}},
                         "time": {"encoding": {"chunks": [4]}},
                         "lat": {"encoding": {"chunks": False}},
                         "lon": {"encoding": {"chunks": False}}}}
    base.mkdir()
    api.append(base / "cube.zarr", slices[:3], cfg, append_step="1D")
    scenario = harness.AppendScenario(slices, 3, SHAPE)
    trace = crash.trace(scenario, base, tmp_path)
    outcomes = crash.sweep(scenario, base, tmp_path, _sampled(trace, 0), lines=trace)
    s = _report(outcomes, 3)
    assert s["corrupt"] == 0 and s["blocked"] == 0 and s["k"] > 0 and s["k+1"] > 0


@pytest.mark.covers("LCK-008", "APP-024")
def test_sigint_before_sampled_mutations_releases_the_lock_and_rolls_back(
        tmp_path: Path, crash_base, slices):
    """A real SIGINT (sent by the process to itself just before its n-th mutation) stops the
    append: exit 130, no traceback, the lock released, a transaction before its commit point
    rolled back at once (one after it rolled forward by the next start), and the next append
    lands the slice."""
    scenario = harness.AppendScenario(slices, 3, SHAPE)
    trace = crash.trace(scenario, crash_base, tmp_path)
    points = sorted({*_sampled(trace, 0), len(trace)})  # every STRIDE-th, the commit, the end
    outcomes = crash.sweep(scenario, crash_base, tmp_path, points, sig="INT", lines=trace)
    s = _report(outcomes, 3)
    assert s["killed"] == s["trials"] >= 5  # every trial was interrupted (exit 130)
    assert s["k"] > 0 and s["k+1"] > 0  # before and after the commit point


@pytest.mark.covers("APP-015")
def test_a_target_that_is_not_a_zarr_store_is_refused_before_anything_is_written(
        tmp_path: Path, slices):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "notes.md").write_text("mine\n")
    plain = tmp_path / "plain.txt"
    plain.write_text("plain\n")
    before = _tree(tmp_path)
    names = sorted(p.name for p in tmp_path.iterdir())
    for target, what in ((notes, "notes.md"), (plain, "not a folder"),
                         (plain / "cube.zarr", "plain.txt is not a folder")):
        for call in (lambda: api.append(target, slices[0]),
                     lambda: api.append(target, slices[0], dry_run=True),
                     lambda: api.recover(target), lambda: api.status(target)):
            with pytest.raises(AppendError) as e:
                call()
            assert e.value.code == "DM171" and what in e.value.message, e.value
            assert e.value.file == str(target)
            if target.parent == tmp_path:  # the hint names what makes a Zarr store
                assert all(n in e.value.hint for n in ("zarr.json", ".zmetadata", ".zgroup",
                                                       ".zarray")), e.value.hint
        r = run_cli("append", str(target), str(slices[0]), cwd=tmp_path)
        assert r.returncode == 1 and "DM171" in r.stderr and "Traceback" not in r.stderr
    # nothing written into the folder or beside it: no arrays, lock, journal, .versions
    assert _tree(tmp_path) == before and sorted(p.name for p in tmp_path.iterdir()) == names
    # an empty folder, an absent path and a Zarr store (v3 or v2) are targets
    empty = tmp_path / "empty"
    empty.mkdir()
    assert api.append(empty, slices[0])[0].action == "created"
    assert api.append(tmp_path / "new.zarr", slices[0], zarr_format=2)[0].action == "created"
    assert api.append(tmp_path / "new.zarr", slices[1], append_step="1D")[0].new_length == 2
    assert api.append(empty, slices[1], append_step="1D")[0].new_length == 2


def test_random_kills(tmp_path: Path, crash_base, slices):
    outcomes = crash.random_kills(harness.AppendScenario(slices, 3, SHAPE), crash_base,
                                  tmp_path, 5, seed=1)
    s = _report(outcomes, 3)
    assert s["corrupt"] == 0 and s["blocked"] == 0


@pytest.mark.parametrize("writers,nowait", [(2, False), (4, False), (2, True), (4, True)])
def test_writers_racing_land_each_slice_once_in_order_or_fail_clearly(
        tmp_path: Path, crash_base, slices, writers, nowait):
    for seed in range(2):
        r = harness.race(harness.AppendScenario(slices, 3, SHAPE, nowait=nowait), crash_base,
                         tmp_path, writers, seed=seed)
        assert r.ok, r.reason
        assert len(r.landed) + len(r.errors) == writers
        if not nowait:  # the next slice in order always lands; a late one is refused
            assert 3 in r.landed and all(c == "DM164" for c in r.errors.values())


# -- versions (APP-030) --------------------------------------------------------------------------
def test_every_commit_is_a_version_the_cli_lists_diffs_and_verifies(tmp_path: Path, slices):
    target = tmp_path / "cube.zarr"
    results = api.append(target, slices[:4], append_step="1D")
    r = run_cli("versions", str(target), "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert [x["checksum"] for x in rows] == [x.version for x in results]
    assert rows[-1]["latest"] and all(x["kept"] for x in rows)
    a, b = rows[1]["checksum"].split(":")[1][:12], rows[3]["checksum"].split(":")[1][:12]
    r = run_cli("diff", f"{target}@{a}", f"{target}@{b}", "--json", cwd=tmp_path)
    d = json.loads(r.stdout)
    assert r.returncode == 1 and "t2m/c/3/0/0" in d["added"] and "zarr.json" in d["modified"]
    r = run_cli("verify", str(target), cwd=tmp_path)
    assert r.returncode == 0 and "ok" in r.stdout
    chunk = target / "tp" / "c" / "1" / "0" / "0"
    chunk.write_bytes(chunk.read_bytes()[:-1] + b"\0")
    r = run_cli("verify", str(target), "--full", cwd=tmp_path)
    assert r.returncode == 1 and "modified tp/c/1/0/0" in r.stdout
    from datamanifest.tree import walk

    assert walk(target, "tree-sha256").checksum != results[-1].version


def test_version_checksums_equal_a_walk_of_the_target(tmp_path: Path, slices):
    """The incremental tree checksum of each commit is the checksum of the folder (TREE-003)."""
    from datamanifest.tree import walk

    target = tmp_path / "cube.zarr"
    for i in range(4):
        r = api.append(target, slices[i], append_step="1D")[0]
        assert r.version == walk(target, "tree-sha256").checksum, i


def test_versions_live_in_the_project_that_holds_the_target(tmp_path: Path, slices,
                                                            monkeypatch):
    from datamanifest.appends import versions
    from datamanifest.tree import walk

    monkeypatch.setattr(versions, "SNAPSHOT_EVERY", 2)  # snapshot, delta, snapshot, delta
    (tmp_path / "datamanifest.toml").write_text("[_META]\nschema = 1\n")
    target = tmp_path / "data" / "cube.zarr"
    target.parent.mkdir()
    results = []
    for i in range(4):
        results += api.append(target, slices[i], append_step="1D", keep_versions=1)
    folder = next((tmp_path / ".datamanifest" / "trees").rglob("HISTORY")).parent
    names = sorted(p.name for p in folder.glob("*.json"))
    # keep_versions = 1 keeps the newest and what it needs: its snapshot (version 3)
    assert names == sorted([results[2].version.split(":")[1] + ".json",
                            results[3].version.split(":")[1] + ".delta.json"])
    assert len((folder / "HISTORY").read_text().splitlines()) == 4
    assert not (target.parent / "cube.zarr.versions").exists()
    doc = versions.find(versions.target_of(str(target)), None)  # rebuilt from the delta
    assert doc["checksum"] == results[3].version == walk(target, "tree-sha256").checksum
    from datamanifest.tree import checksum_from_manifest

    assert checksum_from_manifest(doc) == results[3].version
    r = run_cli("versions", str(target), "--json", cwd=tmp_path)
    assert [x["kept"] for x in json.loads(r.stdout)] == [False, False, True, True]


# -- the command line -----------------------------------------------------------------------------
def test_cli_append_status_recover_and_errors(tmp_path: Path, slices):
    proj = tmp_path / "proj"
    proj.mkdir()
    target = proj / "cube.zarr"
    r = run_cli("append", str(target), *map(str, slices[:3]), "--step", "1D", "--json",
                cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert [x["new_length"] for x in json.loads(r.stdout)] == [1, 2, 3]
    r = run_cli("append", str(target), str(slices[1]), "--step", "1D", cwd=tmp_path)
    assert r.returncode == 1 and "DM164" in r.stderr and "Traceback" not in r.stderr
    assert str(slices[1]) in r.stderr
    r = run_cli("append", "--status", str(target), "--json", cwd=tmp_path)
    st = json.loads(r.stdout)
    assert st["length"] == 3 and st["pending"] is None
    # a kill after the journal: status shows the pending transaction, --recover repairs it
    work = tmp_path / "w"
    work.mkdir()
    trace = crash.trace(harness.AppendScenario(slices, 3, SHAPE), proj, work)
    journal_at = next(i for i, line in enumerate(trace, 1)  # the first rename: the journal
                      if line[1] == "rename")
    env = dict(os.environ, DATAMANIFEST_FAULT=str(journal_at + 2),
               DATAMANIFEST_FAULT_ONLY=str(proj))
    r = run_cli("append", str(target), str(slices[3]), "--step", "1D", cwd=tmp_path, env=env)
    assert r.returncode == -9
    st = json.loads(run_cli("append", "--status", str(target), "--json", cwd=tmp_path).stdout)
    assert st["pending"]["new_length"] == 4 and st["lock"]["stale"]
    r = run_cli("append", "--recover", str(target), "--json", cwd=tmp_path)
    assert r.returncode == 0 and json.loads(r.stdout)["action"] == "roll-back"
    assert _open(target).identical(harness.expected(3, SHAPE))
    r = run_cli("append", str(target), "--dry-run", str(slices[3]), cwd=tmp_path)
    assert r.returncode == 0 and "would append" in r.stderr
    r = run_cli("append", "--help")
    assert "--no-wait" in r.stdout and "--recover" in r.stdout


# -- S3 (moto on 127.0.0.1) -----------------------------------------------------------------------
def test_s3_target_with_conditional_writes_and_recovery(s3_endpoint, tmp_path: Path, slices):
    boto3 = pytest.importorskip("boto3")
    s3 = boto3.client("s3", endpoint_url=s3_endpoint)
    s3.create_bucket(Bucket="cubes")
    url = "s3://cubes/era/cube.zarr"
    os.chdir(tmp_path)
    api.append(url, slices[:3], append_step="1D")
    def read():  # a plain Zarr reader over the object store (zarr + obstore)
        import zarr
        from obstore.store import S3Store

        store = S3Store("cubes", prefix="era/cube.zarr", endpoint=s3_endpoint,
                        access_key_id="testing", secret_access_key="testing",
                        region="us-east-1", client_options={"allow_http": True})
        with xr.open_zarr(zarr.storage.ObjectStore(store, read_only=True)) as ds:
            return ds.load()

    assert read().identical(harness.expected(3, SHAPE))
    # a writer killed before its 4th object-store request leaves a journal; the next append
    # rolls it back by itself and goes on
    env = dict(os.environ, DATAMANIFEST_FAULT="4", DATAMANIFEST_FAULT_ONLY=str(tmp_path / "x"))
    r = harness.run_append(url, slices[3], env=env)
    assert r.returncode == -9
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="cubes")["Contents"]]
    assert "era/cube.zarr.journal.json" in keys and "era/cube.zarr.lock" in keys
    r = api.append(url, slices[3], append_step="1D")[0]
    assert r.recovered["action"] == "roll-back" and r.new_length == 4
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="cubes")["Contents"]]
    assert not any(k.endswith((".lock", ".journal.json")) or ".txn/" in k for k in keys)
    assert read().identical(harness.expected(4, SHAPE))
    # a root changed behind the writer's back fails the conditional commit
    from datamanifest.appends.targets import open_target

    t = open_target(url)
    with pytest.raises(AppendError) as e:
        t.commit("0" * 16, "zarr.json", b"{}", '"not-the-etag"')
    assert e.value.code == "DM166"
    assert r.version and api.status(url).version == r.version


# -- real data ------------------------------------------------------------------------------------
def test_cmip6_yearly_files_appended_one_by_one_equal_open_mfdataset(tmp_path: Path):
    root = rd.wheel_files(rd.ESMVALTOOL, "esmvaltool_sample_data/data/timeseries/CMIP6/CMIP/"
                          "AWI/AWI-CM-1-1-MR/historical/r1i1p1f1/Amon/ta")
    files = sorted(root.rglob("*.nc"))
    assert len(files) == 65
    target = tmp_path / "ta.zarr"
    results = api.append(target, files)
    assert results[-1].new_length == 780 and len({r.version for r in results}) == 65
    with xr.open_mfdataset(files, combine="nested", concat_dim="time",
                           data_vars="minimal", coords="minimal", compat="override") as want:
        want = want.load()
    got = _open(target)
    assert got.sizes["time"] == 780 and str(got.time.values[0])[:7] == "1950-01"
    xr.testing.assert_identical(got, want)


def test_pywatershed_daily_forcing_in_30_day_slices_equals_the_source(tmp_path: Path):
    src = rd.wheel_files(rd.PYWATERSHED, "pywatershed/data/drb_2yr") / "prcp.nc"
    with xr.open_dataset(src) as ds:
        ds = ds.load()
    target = tmp_path / "prcp.zarr"
    n = ds.sizes["time"]
    parts = (ds.isel(time=slice(i, i + 30)) for i in range(0, n, 30))
    results = api.append(target, parts, append_step="1D")
    assert results[-1].new_length == n == 731
    xr.testing.assert_identical(_open(target), ds)


def test_fault_layer_is_off_without_the_environment():
    code = "import datamanifest.faults as f; print(f.ENABLED, f.count())"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env={k: v for k, v in os.environ.items()
                            if not k.startswith("DATAMANIFEST_FAULT")})
    assert r.stdout.split() == ["False", "0"]


def test_harness_detects_a_corrupting_writer(tmp_path: Path, crash_base, slices):
    """The harness must be able to fail: a target whose root claims a slice that has no
    chunks (what zappend and xarray leave) is reported corrupt."""
    trial = crash.fresh(crash_base, tmp_path)
    root = json.loads((trial / "cube.zarr" / "zarr.json").read_text())
    for meta in root["consolidated_metadata"]["metadata"].values():
        if meta.get("dimension_names", [None])[0] == "time":
            meta["shape"][0] += 1
    (trial / "cube.zarr" / "zarr.json").write_text(json.dumps(root))
    o = harness.AppendScenario(slices, 3, SHAPE).judge(trial, "forged", False)
    assert o.corrupt
    shutil.rmtree(trial)


def _iris(name: str) -> Path:
    return rd.wheel_files(rd.IRIS, f"iris_sample_data/sample_data/{name}")


def test_ostia_monthly_sst_in_yearly_slices_equals_the_source(tmp_path: Path):
    with xr.open_dataset(_iris("ostia_monthly.nc")) as ds:
        ds = ds.load()
    target = tmp_path / "sst.zarr"
    api.append(target, [ds.isel(time=slice(i, i + 12)) for i in range(0, 54, 12)])
    xr.testing.assert_identical(_open(target), ds)


def test_a_360_day_calendar_appends_and_refuses_labels_as_written(tmp_path: Path):
    with xr.open_dataset(_iris("A1B_north_america.nc"), use_cftime=True) as ds:
        ds = ds.load()
    target = tmp_path / "a1b.zarr"
    api.append(target, [ds.isel(time=slice(i, i + 40)) for i in range(0, 240, 40)])
    with xr.open_zarr(target, use_cftime=True) as got:
        xr.testing.assert_identical(got.load(), ds)
    with pytest.raises(AppendError) as e:
        api.append(target, ds.isel(time=[5]))
    assert e.value.code == "DM164" and "1865-06-01" in e.value.message and \
        "2099-06-01" in e.value.message


def test_nemo_files_whose_time_counter_repeats_are_refused(tmp_path: Path):
    """Real data with a broken coordinate (time_counter is 0 in every file): refused with
    the label named, where to_zarr(append_dim) would write duplicate times."""
    files = sorted(_iris("NEMO").glob("*.nc"))
    target = tmp_path / "nemo.zarr"
    with pytest.raises(AppendError) as e:
        api.append(target, files, append_dim="time_counter")
    assert e.value.code == "DM164" and "repeats" in e.value.message
    assert files[1].name in str(e.value)
    assert _open(target).sizes["time_counter"] == 1  # the first file stayed committed


def test_fast_time_encoding_equals_xarrays():
    """The numpy path for datetime64 times equals xarray's encode_cf_datetime wherever it
    answers, and declines (None) where xarray must decide."""
    from hypothesis import example, given, settings
    from hypothesis import strategies as st
    from xarray.coding.times import encode_cf_datetime

    from datamanifest.appends.prepare import fast_times

    units = st.sampled_from(["days", "hours", "minutes", "seconds", "milliseconds"])
    refs = st.sampled_from(["1970-01-01", "2000-01-01 00:00:00", "1850-01-01T06:00:00",
                            "2020-02-29 12:00"])

    @settings(max_examples=300, deadline=None)
    @given(st.lists(st.integers(-10**6, 10**6), min_size=1, max_size=5), units, refs,
           st.sampled_from(["int64", "int32"]),
           st.sampled_from(["standard", "proleptic_gregorian", "gregorian"]),
           st.sampled_from([1, 3600, 86400, 7]))
    # near the ends of the datetime64[ns] range the difference to the reference wraps
    # around in int64: found by this test; the numpy path must decline, not wrap
    @example([95795], "days", "2000-01-01 00:00:00", "int64", "standard", 86400)
    @example([-10958, 95794], "days", "1970-01-01", "int64", "standard", 86400)
    def check(offsets, unit, ref, dtype, calendar, scale):
        base = np.datetime64("2000-01-01", "s")
        values = (base + np.array(offsets, dtype="int64") * scale).astype("datetime64[ns]")
        u = f"{unit} since {ref}"
        got = fast_times(values, u, calendar, np.dtype(dtype))
        if got is None:
            return
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                want, used, _ = encode_cf_datetime(values, u, calendar, np.dtype(dtype))
        except (UserWarning, OverflowError):
            # xarray overflows internally near the ends of the ns range and would change
            # the units; the numpy path must still give the exact integers (Python ints)
            import pandas as pd

            ref_ns = pd.Timestamp(ref).as_unit("ns").value
            step = {"days": 86400, "hours": 3600, "minutes": 60, "seconds": 1,
                    "milliseconds": 1e-3}[unit] * 10**9
            want = [(int(v) - ref_ns) // int(step) for v in values.view("int64")]
        np.testing.assert_array_equal(got, want)

    check()
    assert fast_times(np.array(["1500-01-01"], "datetime64[ns]"), "days since 1970-01-01",
                      "standard", np.dtype("int64")) is None  # Julian dates: xarray decides
    assert fast_times(np.array(["2000-01-01T06"], "datetime64[ns]"), "days since 2000-01-01",
                      "standard", np.dtype("int64")) is None  # inexact: xarray refuses


# -- issue 22: the source's time encoding, other units and calendars, other readers --------------
def _raw_arrays(target: Path, zarr_format: int) -> dict[str, np.ndarray]:
    """Every array of a target as stored, read by zarr-python and by tensorstore (which
    must agree)."""
    import zarr

    ts = pytest.importorskip("tensorstore")
    group = zarr.open_group(target, mode="r", zarr_format=zarr_format)
    out = {}
    for name, arr in group.arrays():
        mine = arr[...]
        spec = {"driver": "zarr3" if zarr_format == 3 else "zarr",
                "kvstore": {"driver": "file", "path": str(target / name)}}
        theirs = ts.open(spec, read=True).result().read().result()
        np.testing.assert_array_equal(theirs, mine, err_msg=name)
        out[name] = mine
    return out


@pytest.mark.covers("APP-013")
@pytest.mark.parametrize("zarr_format", [3, 2])
def test_appended_cube_keeps_the_sources_time_encoding_and_reads_alike_everywhere(
        tmp_path: Path, zarr_format: int):
    """A1B: cftime 360_day, ``hours since 1970-01-01`` float64, with time_bnds. The target
    keeps those units, calendar and dtype for time and its bounds; xarray, zarr-python and
    tensorstore read the same values."""
    f = _iris("A1B_north_america.nc")
    with xr.open_dataset(f, use_cftime=True) as ds:
        ds = ds.isel(time=slice(0, 60)).load()
    target = tmp_path / "a1b.zarr"
    api.append(target, [ds.isel(time=slice(i, i + 20)) for i in range(0, 60, 20)],
               zarr_format=zarr_format)
    with xr.open_zarr(target, use_cftime=True) as got:
        xr.testing.assert_identical(got.load(), ds)
    with xr.open_zarr(target, use_cftime=True, decode_times=False) as raw:
        for name in ("time", "time_bnds"):
            attrs = raw[name].attrs
            assert attrs["units"].startswith("hours since 1970-01-01"), (name, attrs)
            assert attrs["calendar"] == "360_day" and raw[name].dtype == np.float64
    arrays = _raw_arrays(target, zarr_format)
    with xr.open_dataset(f, decode_times=False) as src:
        np.testing.assert_array_equal(arrays["time"], src.time.values[:60])
        np.testing.assert_array_equal(arrays["time_bnds"], src.time_bnds.values[:60])
        np.testing.assert_array_equal(arrays["air_temperature"],
                                      src.air_temperature.values[:60])


def _daily(i: int, units: str, calendar: str = "standard", hour: int = 0):
    s = harness.make_slice(i, SHAPE)
    t = s.time.values + np.timedelta64(hour, "h")
    s = s.assign_coords(time=t)
    s.time.encoding.update(units=units, calendar=calendar)
    return s


@pytest.mark.covers("APP-014")
def test_other_time_units_convert_when_exact_and_are_refused_when_not(tmp_path: Path):
    target = tmp_path / "cube.zarr"
    api.append(target, _daily(0, "days since 2020-01-01"))
    api.append(target, _daily(1, "hours since 1970-01-01"))  # whole days: exact
    assert _open(target).sizes["time"] == 2
    with xr.open_zarr(target, decode_times=False) as raw:
        assert raw.time.attrs["units"].startswith("days since 2020-01-01")
        assert raw.time.values.tolist() == [0, 1]
    before = _tree(tmp_path)
    with pytest.raises(AppendError) as e:  # 06:00 is no whole day: refused, not rounded
        api.append(target, _daily(2, "hours since 1970-01-01", hour=6))
    assert e.value.code == "DM163" and "time" in e.value.message
    assert _tree(tmp_path) == before


@pytest.mark.covers("APP-014")
def test_other_calendars_convert_when_exact_and_are_refused_when_not(tmp_path: Path):
    import cftime

    target = tmp_path / "cube.zarr"
    api.append(target, _daily(0, "days since 2020-01-01", "standard"))
    api.append(target, _daily(1, "days since 2020-01-01", "proleptic_gregorian"))
    assert _open(target).sizes["time"] == 2
    before = _tree(tmp_path)
    s = harness.make_slice(2, SHAPE)
    s = s.assign_coords(time=[cftime.DatetimeNoLeap(2020, 1, 3)])
    with pytest.raises(AppendError) as e:
        api.append(target, s)
    assert e.value.code == "DM163" and "noleap" in e.value.message
    assert _tree(tmp_path) == before
    # before 1582-10-15 standard and proleptic_gregorian differ: refused
    old = tmp_path / "old.zarr"
    first = harness.make_slice(0, SHAPE).assign_coords(
        time=[cftime.DatetimeGregorian(1500, 1, 1)])
    first.time.encoding.update(units="days since 1500-01-01", calendar="standard")
    api.append(old, first)
    nxt = harness.make_slice(1, SHAPE).assign_coords(
        time=[cftime.DatetimeProlepticGregorian(1500, 1, 2)])
    with pytest.raises(AppendError) as e:
        api.append(old, nxt)
    assert e.value.code == "DM163" and "calendar" in e.value.message


# -- slice_polling and slice_source (APP-040, APP-041) -------------------------------------------
@pytest.mark.covers("APP-040")
def test_slice_polling_waits_until_a_slice_exists_and_is_stable(tmp_path: Path, slices):
    import threading

    target = tmp_path / "cube.zarr"
    api.append(target, slices[0])
    late = tmp_path / "late.nc"

    def write_later() -> None:  # arrives after 0.3 s, written in two steps
        import time

        time.sleep(0.3)
        data = slices[1].read_bytes()
        with open(late, "wb") as f:
            f.write(data[: len(data) // 2])
            f.flush()
            time.sleep(0.3)
            f.write(data[len(data) // 2:])
    t = threading.Thread(target=write_later)
    t.start()
    r = api.append(target, late, slice_polling={"interval": 0.5, "timeout": 10})
    t.join()
    assert r[0].new_length == 2 and _open(target).identical(harness.expected(2, SHAPE))
    with pytest.raises(AppendError) as e:
        api.append(target, tmp_path / "never.nc", slice_polling={"interval": 0.05,
                                                                 "timeout": 0.2})
    assert e.value.code == "DM190" and "never.nc" in str(e.value) and "exist" in e.value.message
    assert str(tmp_path / "never.nc") in e.value.render()  # located at the file, not <input>


@pytest.mark.covers("APP-040")
def test_slice_polling_with_a_marker_waits_for_the_marker(tmp_path: Path, slices):
    target = tmp_path / "cube.zarr"
    api.append(target, slices[0])
    poll = {"interval": 0.05, "timeout": 0.3, "marker": "{slice}.done"}
    with pytest.raises(AppendError) as e:  # the file is complete, but not said to be
        api.append(target, slices[1], slice_polling=poll)
    assert e.value.code == "DM190" and ".done" in e.value.message
    Path(f"{slices[1]}.done").write_text("")
    try:
        assert api.append(target, slices[1], slice_polling=poll)[0].new_length == 2
    finally:
        Path(f"{slices[1]}.done").unlink()


@pytest.mark.covers("APP-041")
def test_slice_source_is_a_function_and_an_iterable_of_its_arguments(tmp_path: Path,
                                                                      monkeypatch):
    target = tmp_path / "cube.zarr"
    calls = []

    def make(i: int, scale: float = 1.0):
        calls.append(i)
        return harness.make_slice(i, SHAPE)
    results = api.append(target, range(3), slice_source=make)
    assert calls == [0, 1, 2] and results[-1].new_length == 3
    assert _open(target).identical(harness.expected(3, SHAPE))
    # named in the configuration as "module:function", with keyword arguments
    mod = tmp_path / "mysource.py"
    mod.write_text("from datamanifest.testing import appends as harness\n"
                   "def make(i, shape):\n    return harness.make_slice(i, tuple(shape))\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    other = tmp_path / "other.zarr"
    api.append(other, [0, 1], {"slice_source": "mysource:make",
                               "slice_source_kwargs": {"shape": list(SHAPE)}})
    assert _open(other).identical(harness.expected(2, SHAPE))
    with pytest.raises(AppendError) as e:
        api.append(other, [2], {"slice_source": "mysource:nothing"})
    assert e.value.code == "DM191"

    def broken(i):
        raise RuntimeError("no data for this day")
    with pytest.raises(AppendError) as e:
        api.append(other, [2], slice_source=broken)
    assert e.value.code == "DM191" and "no data for this day" in e.value.message
    assert _open(other).sizes["time"] == 2


def test_a_refused_slice_is_located_at_its_file(tmp_path: Path, slices):
    target = _base(tmp_path)
    bad = tmp_path / "bad.nc"
    harness.make_slice(3, SHAPE).drop_vars("tp").to_netcdf(bad)
    with pytest.raises(AppendError) as e:
        api.append(target, bad)
    assert e.value.code == "DM161" and str(e.value).startswith(f"{bad}: error DM161")
    r = run_cli("append", str(target), str(bad))
    assert r.returncode == 1 and f"{bad}: error DM161" in r.stderr and "<input>" not in r.stderr
